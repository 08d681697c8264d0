"""``clip_latent``: offline construction, every base loss and regularizer, gradients, features, errors."""
import math
import os

import pytest
import torch
from torch.utils.data import default_collate

from conftest import tiny_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CAPTIONS = ["a red square on the left", "a small blue circle", "the green triangle at the top right",
            "a yellow star in the middle of a dark picture", "dog", "two purple squares",
            "an orange ring below a cat", "a white cross"]


def build(**overrides):
    import lavis_latent  # noqa: F401

    cls, cfg = tiny_config("clip_latent", **overrides)
    torch.manual_seed(0)
    return cls.from_config(cfg)


def images(n, seed=0, size=64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=g)


def paired_batch(n=4, seed=0):
    """A collated batch as the paired-view processors produce it: PairedViews of tensors and of caption lists."""
    from lavis_latent.processors import PairedViews

    view, aug = images(n, seed), images(n, seed + 100)
    caps = CAPTIONS[:n]
    aug_caps = [" ".join(reversed(c.split())) for c in caps]
    items = [{"image": PairedViews(view[i], aug[i]), "text_input": PairedViews(caps[i], aug_caps[i])}
             for i in range(n)]
    return default_collate(items)


def test_registered_and_loads_offline():
    import lavis_latent  # noqa: F401
    from lavis.models import load_model, load_model_and_preprocess
    from lavis_latent.processors import ClipLatentImageTrainProcessor, EdaCaptionProcessor

    model = load_model("clip_latent", "tiny", is_eval=True)
    assert type(model).__name__ == "ClipLatent" and not model.training
    model, vis, txt = load_model_and_preprocess("clip_latent", "tiny")
    assert isinstance(vis["train"], ClipLatentImageTrainProcessor) and isinstance(txt["train"], EdaCaptionProcessor)
    assert type(vis["eval"]).__name__ == "ClipImageEvalProcessor" and type(txt["eval"]).__name__ == "BlipCaptionProcessor"
    assert model.vision_width == 128 and model.text_width == 128 and model.vision_proj.out_features == 64
    assert model.text_encoder.config.num_hidden_layers == 2
    assert model.text_encoder.config.vocab_size == len(model.tokenizer)
    assert math.isclose(model.temperature.item(), 0.07, rel_tol=1e-5)


def _check_step(model, batch, expected_terms):
    model.train()
    model.zero_grad()
    out = model(batch)
    assert set(k for k in out.keys() if k.startswith("loss")) == {"loss", "loss_itc", *expected_terms}
    assert torch.isfinite(out.loss)
    total = out.loss_itc + sum(out[k] for k in expected_terms)
    assert torch.allclose(out.loss, total)
    out.loss.backward()
    no_grad = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not no_grad, no_grad  # DDP without find_unused_parameters needs a gradient for every parameter
    if len(out_batch_texts(batch)) > 1:  # one sample: InfoNCE is log 1 = 0, flat in the temperature
        assert model.logit_scale.grad.abs() > 0
    return out


def out_batch_texts(batch):
    from lavis_latent.processors import unpack_views

    return unpack_views(batch["text_input"])[0]


@pytest.mark.parametrize("overrides, terms", [
    ({"base_loss": "clip"}, []),
    ({"base_loss": "paper"}, []),
    ({"latent": {"separation": {}}}, ["loss_sep"]),
    ({"latent": {"bridge": {"t": 0.25}}}, ["loss_bridge"]),
    ({"latent": {"geometric": {}}}, ["loss_geo"]),
    ({"base_loss": "clip", "latent": {"inmodal": {}, "separation": {}, "bridge": {}, "geometric": {"weight": 0.25}}},
     ["loss_inmodal", "loss_sep", "loss_bridge", "loss_geo"]),
])
def test_forward_every_loss_finite_with_gradients(overrides, terms):
    model = build(**overrides)
    out = _check_step(model, paired_batch(4), terms)
    for k in terms:
        assert out[k].item() != 0.0


def test_clip_base_loss_needs_no_aug_and_ignores_it():
    model = build(base_loss="clip")
    batch = paired_batch(4)
    plain = {"image": batch["image"].view, "text_input": list(batch["text_input"].view)}
    model.eval()
    with torch.no_grad():
        a, b = model(plain).loss, model(batch).loss
    assert torch.allclose(a, b, atol=1e-6)


def test_paper_loss_equals_contrastive_loss_of_extracted_features():
    from lavis_latent.regularizers import contrastive_loss

    model = build(base_loss="paper")
    model.eval()  # BatchNorm on running statistics: per-sample, so the concatenated batch changes nothing
    batch = paired_batch(6)
    with torch.no_grad():
        loss = model(batch).loss_itc
    f = model.extract_features({"image": batch["image"].view, "text_input": list(batch["text_input"].view)})
    fa = model.extract_features({"image": batch["image"].aug, "text_input": list(batch["text_input"].aug)})
    tau = 1.0 / model.logit_scale.exp()
    expected = contrastive_loss(f.image_embeds_proj, f.text_embeds_proj, fa.image_embeds_proj, fa.text_embeds_proj,
                                temperature=tau)
    assert torch.allclose(loss, expected, atol=1e-5), (loss, expected)
    # ... and the plain CLIP loss is the cross-modal half only
    clip = contrastive_loss(f.image_embeds_proj, f.text_embeds_proj, temperature=tau)
    assert not torch.allclose(loss, clip, atol=1e-4)


def test_explicit_aug_keys_equal_paired_views():
    model = build(latent={"bridge": {}})
    model.eval()
    batch = paired_batch(4)
    explicit = {"image": batch["image"].view, "image_aug": batch["image"].aug,
                "text_input": list(batch["text_input"].view), "text_input_aug": list(batch["text_input"].aug)}
    with torch.no_grad():
        a, b = model(batch), model(explicit)
    assert torch.allclose(a.loss, b.loss, atol=1e-6) and torch.allclose(a.loss_bridge, b.loss_bridge, atol=1e-6)


def test_inmodal_with_paper_loss_raises():
    with pytest.raises(ValueError, match=r"twice.*base_loss: clip"):
        build(base_loss="paper", latent={"inmodal": {}})


def test_bad_base_loss_and_temperature():
    with pytest.raises(ValueError, match="base_loss must be one of paper, clip"):
        build(base_loss="cyclip")
    with pytest.raises(ValueError, match="temp"):
        build(temp=0.001)


def test_missing_aug_views_name_the_processors():
    batch = paired_batch(4)
    plain = {"image": batch["image"].view, "text_input": list(batch["text_input"].view)}
    with pytest.raises(ValueError, match=r"image_aug / text_input_aug.*clip_latent_image_train.*eda_caption"):
        build(base_loss="paper")(plain)
    with pytest.raises(ValueError, match=r"latent regularizers.*text_input_aug.*eda_caption"):
        build(base_loss="clip", latent={"geometric": {}})({"image": batch["image"], "text_input": plain["text_input"]})


def test_mismatched_batches_are_clear_errors():
    model = build()
    batch = paired_batch(4)
    with pytest.raises(ValueError, match="4 images but 3 captions"):
        model({"image": batch["image"], "text_input": type(batch["text_input"])(batch["text_input"].view[:3],
                                                                                batch["text_input"].aug[:3])})
    with pytest.raises(ValueError, match="augmented views do not match"):
        model({"image": batch["image"].view, "image_aug": batch["image"].aug[:3], "text_input": batch["text_input"]})
    with pytest.raises(ValueError, match="both in"):
        model({**batch, "image_aug": batch["image"].aug})
    with pytest.raises(TypeError, match=r"\[N, 3, H, W\]"):
        model({"image": batch["image"].view[0], "text_input": batch["text_input"]})


def test_extract_features_shapes_norms_and_modes():
    model = build(latent={"separation": {}})
    model.eval()
    x, caps = images(5), CAPTIONS[:5]
    f = model.extract_features({"image": x, "text_input": caps})
    assert f.image_embeds.shape == (5, 128) and f.text_embeds.shape == (5, 128)
    for t in (f.image_embeds_proj, f.text_embeds_proj, f.image_embeds_ind, f.text_embeds_ind):
        assert t.shape == (5, 64) and torch.allclose(t.norm(dim=-1), torch.ones(5), atol=1e-5)
    assert f.multimodal_embeds is None and not f.image_embeds_proj.requires_grad
    fi = model.extract_features({"image": x}, mode="image")
    ft = model.extract_features({"text_input": caps}, mode="text")
    assert fi.text_embeds is None and fi.text_embeds_ind is None and ft.image_embeds is None
    assert torch.allclose(fi.image_embeds_proj, f.image_embeds_proj, atol=1e-6)
    assert torch.allclose(ft.text_embeds_proj, f.text_embeds_proj, atol=1e-6)
    assert torch.allclose(model.encode_image(x), f.image_embeds_proj, atol=1e-6)
    assert torch.allclose(model.encode_text(caps), f.text_embeds_proj, atol=1e-6)
    # the inference features do not depend on the separation heads
    plain = build()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("latent.")})
    plain.eval()
    assert torch.allclose(plain.extract_features({"image": x}, mode="image").image_embeds_proj, fi.image_embeds_proj)
    assert plain.extract_features({"image": x}, mode="image").image_embeds_ind is None
    with pytest.raises(ValueError, match="mode"):
        model.extract_features({"image": x}, mode="fusion")
    with pytest.raises(KeyError, match="text_input"):
        model.extract_features({"image": x}, mode="text")


def test_batch_of_one_trains():
    model = build(latent={"separation": {}, "bridge": {}, "geometric": {}})
    out = _check_step(model, paired_batch(1), ["loss_sep", "loss_bridge", "loss_geo"])
    assert torch.isfinite(out.loss)
    clip = build(base_loss="clip")
    b = paired_batch(1)
    _check_step(clip, {"image": b["image"].view, "text_input": b["text_input"].view}, [])


def test_logit_scale_is_clamped_to_100():
    model = build(base_loss="clip")
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    model.train()
    model(paired_batch(2))
    assert math.isclose(model.logit_scale.item(), math.log(100.0), rel_tol=1e-6)
    assert math.isclose(model.temperature.item(), 0.01, rel_tol=1e-5)


def test_a_few_steps_lower_the_loss():
    model = build(latent={"separation": {}, "bridge": {}})
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = paired_batch(8)
    model.train()
    losses = []
    for _ in range(8):
        out = model(batch)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss_itc.item())
    assert losses[-1] < losses[0], losses


def test_checkpoint_roundtrip_through_config(tmp_path):
    model = build(latent={"separation": {}})
    path = tmp_path / "ckpt.pth"
    torch.save({"model": model.state_dict()}, path)
    other = build(latent={"separation": {}}, load_finetuned=True, finetuned=str(path))
    for (k, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items()):
        assert torch.equal(a, b), k
    with pytest.raises(FileNotFoundError, match="model.pretrained"):
        build(pretrained=str(tmp_path / "missing.pth"))


def test_rn50_bert_offline_errors_and_random_build(monkeypatch, tmp_path):
    """The rn50_bert type names what it cannot fetch; with pretrained flags off it builds offline at full size."""
    import urllib.error

    import lavis_latent  # noqa: F401
    from lavis_latent.common.paths import config_path
    from lavis_latent.models.encoders import WeightsUnavailableError

    def offline(url, *args, **kwargs):  # what urllib raises on a machine without network; nothing is fetched
        raise urllib.error.URLError(f"offline test: no download of {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    previous_hub_dir = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "empty_hub"))  # no cached ImageNet weights either
    vocab = config_path("tokenizer", "vocab.txt")
    try:
        with pytest.raises(WeightsUnavailableError, match="vision_from_pretrained: False"):
            build_type("rn50_bert", tokenizer=vocab, text_from_pretrained=False)
    finally:
        torch.hub.set_dir(previous_hub_dir)
    with pytest.raises(WeightsUnavailableError, match="text_from_pretrained: False"):
        build_type("rn50_bert", tokenizer=vocab, vision_from_pretrained=False)
    model = build_type("rn50_bert", tokenizer=vocab, vision_from_pretrained=False, text_from_pretrained=False)
    assert model.vision_width == 2048 and model.text_width == 768 and model.vision_proj.out_features == 512
    assert model.text_encoder.config.num_hidden_layers == 12
    assert model.text_encoder.pooler is None  # an unused pooler would get no gradient (DDP needs one for each)
    model.eval()
    with torch.no_grad():  # a forward pass at full size (small images; backward is covered by the tiny type)
        out = model(paired_batch(2))
    assert torch.isfinite(out.loss)


def build_type(model_type, **overrides):
    from lavis.common.registry import registry
    from omegaconf import OmegaConf

    cls = registry.get_model_class("clip_latent")
    cfg = OmegaConf.load(cls.default_config_path(model_type)).model
    for k, v in overrides.items():
        cfg[k] = v
    return cls.from_config(cfg)


RUN_YAML = """
model:
  arch: clip_latent
  model_type: tiny
datasets:
  demo_caption:
    vis_processor:
      train: {name: clip_latent_image_train, image_size: 64, flip: False}   # captions name positions
    text_processor:
      train: {name: eda_caption}
    build_info:
      generator: {num_train: 32}
run:
  task: latent_pretrain
  lr_sched: linear_warmup_cosine_lr
  init_lr: 1e-3
  min_lr: 1e-4
  warmup_lr: 1e-5
  warmup_steps: 2
  weight_decay: 0.02
  max_epoch: 1
  batch_size_train: 16
  batch_size_eval: 32
  num_workers: 0
  seed: 42
  amp: False
  resume_ckpt_path: null
  evaluate: False
  train_splits: ["train"]
  device: cpu
  world_size: 1
  dist_url: "env://"
  distributed: False
"""


@pytest.mark.parametrize("options, terms", [
    (["model.latent.separation.weight=1.0"], ["loss_sep"]),
    (["model.latent.bridge.t=0.25"], ["loss_bridge"]),
    (["model.latent.geometric.weight=0.25"], ["loss_geo"]),
    (["model.base_loss=clip", "model.latent.inmodal.weight=1.0"], ["loss_inmodal"]),
], ids=["separation", "bridge", "geometric", "clip+inmodal"])
def test_pretrain_one_epoch_through_lavis_runner(options, terms, session_cache_root, tmp_path):
    """lavis_latent.train on the embedded demo_caption data with the paired-view processors, one epoch."""
    from lavis.common.registry import registry
    from lavis_latent import train

    cfg = tmp_path / "clip.yaml"
    cfg.write_text(RUN_YAML)
    runner = train.main(["--cfg-path", str(cfg), "--options", *options, f"run.output_dir={tmp_path / 'out'}"])
    stats = runner.last_train_stats
    for term in ["loss", "loss_itc", *terms]:
        assert math.isfinite(float(stats[term])), (term, stats)
    ckpt = os.path.join(str(runner.output_dir), "checkpoint_0.pth")
    state = torch.load(ckpt, map_location="cpu")["model"]
    assert "logit_scale" in state and all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    # the checkpoint loads back as a fine-tuned clip_latent
    cls = registry.get_model_class("clip_latent")
    model_cfg = runner.config.model_cfg
    model = build(load_finetuned=True, finetuned=ckpt, latent=model_cfg.latent, base_loss=model_cfg.base_loss)
    assert isinstance(model, cls) and torch.equal(model.logit_scale.detach(), state["logit_scale"])
