"""Every yaml under projects/ parses, names only registered things, and builds (at tiny size) and runs."""
import glob
import os

import pytest
import torch
from omegaconf import OmegaConf

from conftest import PROJECTS_DIR
from lavis.common.registry import registry
from lavis.models.albef_models.albef_classification import AlbefClassification
from lavis.models.albef_models.albef_nlvr import AlbefNLVR
from lavis.models.albef_models.albef_vqa import AlbefVQA
from lavis_latent.common.config_check import check_run_config, load_run_config
from lavis_latent.models import ClipLatent
from lavis_latent.processors import PairedViews

PROJECT_YAMLS = sorted(glob.glob(os.path.join(PROJECTS_DIR, "**", "*.yaml"), recursive=True))
# keys of a full-size project that choose weights or sizes; the tiny type's own values replace them
SIZE_KEYS = {"model_type", "pretrained", "finetuned", "load_finetuned", "load_pretrained", "queue_size", "image_size"}
LOSS_OF = {"inmodal": "loss_inmodal", "separation": "loss_sep", "bridge": "loss_bridge", "geometric": "loss_geo"}


def test_projects_exist():
    names = {os.path.relpath(p, PROJECTS_DIR) for p in PROJECT_YAMLS}
    for v in ("baseline", "fs", "bb", "gc", "all"):
        assert f"albef_{v}.yaml" in names
        assert f"albef/ret_coco_{v}.yaml" in names and f"albef/ret_flickr_{v}.yaml" in names
    assert "demo/albef_pretrain.yaml" in names and "demo/albef_retrieval.yaml" in names
    for task in ("vqa", "nlvr", "snli_ve"):
        assert f"demo/albef_{task}.yaml" in names
        for v in ("baseline", "fs", "bb", "gc", "all"):
            assert f"albef/{task}_{v}.yaml" in names
            assert v == "baseline" or f"demo/albef_{task}_{v}.yaml" in names
    assert "demo/albef_nlvr_ta.yaml" in names and "albef/nlvr_ta_all.yaml" in names
    for v in ("baseline", "inmodal", "fs", "bb", "gc"):
        assert f"clip/clip_{v}.yaml" in names
    for v in ("baseline", "fs", "bb", "gc", "all"):
        assert {f"blip/pretrain_{v}.yaml", f"blip/ret_coco_{v}.yaml", f"blip/ret_flickr_{v}.yaml"} <= names
        suffix = "" if v == "baseline" else f"_{v}"
        assert {f"demo/blip_pretrain{suffix}.yaml", f"demo/blip_retrieval{suffix}.yaml"} <= names


def sample_batch(model, n=4):
    """A training batch shaped as the model's LAVIS base class reads it (collated as its dataset class does):
    VQA (question + answers), NLVR2 (two images + statement + label), classification (image + text + label), or
    retrieval / pretraining (image + caption + image_id)."""
    common = {"epoch": 0, "iters": 0, "num_iters_per_epoch": 4}
    texts = ["a red square"] * (n // 2) + ["a blue circle"] * (n - n // 2)
    if isinstance(model, ClipLatent):  # paired views, as clip_latent_image_train / eda_caption give them
        return dict(common, image=PairedViews(torch.randn(n, 3, 64, 64), torch.randn(n, 3, 64, 64)),
                    text_input=PairedViews(texts, texts[::-1]), image_id=torch.arange(n))
    if isinstance(model, AlbefVQA):
        return dict(common, image=torch.randn(n, 3, 64, 64), text_input=["what color is it?"] * n,
                    answer=["red"] * n, weight=torch.ones(n), n_answers=torch.ones(n, dtype=torch.long))
    if isinstance(model, AlbefNLVR):
        return dict(common, image0=torch.randn(n, 3, 64, 64), image1=torch.randn(n, 3, 64, 64), text_input=texts,
                    label=torch.arange(n) % 2)
    if isinstance(model, AlbefClassification):
        return dict(common, image=torch.randn(n, 3, 64, 64), text_input=texts, label=torch.arange(n) % 2)
    # retrieval / pretraining: paired views, as the variant configs' paired_image_train / eda_caption give them
    return dict(common, image=PairedViews(torch.randn(n, 3, 64, 64), torch.randn(n, 3, 64, 64)),
                text_input=PairedViews(texts, texts[::-1]), image_id=torch.arange(n) // 2)


@pytest.mark.parametrize("path", PROJECT_YAMLS, ids=lambda p: os.path.relpath(p, PROJECTS_DIR))
def test_project_config_resolves_and_builds_tiny(path):
    cfg = load_run_config(path)
    check_run_config(cfg)
    model_cls = registry.get_model_class(cfg.model.arch)
    tiny = OmegaConf.load(model_cls.default_config_path("tiny")).model
    project = {k: v for k, v in OmegaConf.to_container(cfg.model).items() if k not in SIZE_KEYS}
    model_cfg = OmegaConf.merge(tiny, project, {"queue_size": 32})
    model = model_cls.from_config(model_cfg)
    latent = cfg.model.get("latent")
    latent = OmegaConf.to_container(latent) if latent is not None else {}
    assert model.latent.names == [n for n in LOSS_OF if n in latent]
    torch.manual_seed(0)  # MLM masks at random: a draw that masks no token makes loss_mlm NaN (LAVIS's)
    out = model(sample_batch(model))
    assert {k for k in out.keys() if k in LOSS_OF.values()} == {LOSS_OF[n] for n in latent}
    assert torch.isfinite(out.loss)
