"""VQA, NLVR2 and SNLI-VE fine-tuning: checkpoint mapping from pretraining, LAVIS parity and traps, and each task
trained and evaluated through LAVIS's runner on the embedded data, with metrics checked against predictions."""
import copy
import glob
import json
import logging
import os
import random

import pytest
import torch
from omegaconf import OmegaConf

from conftest import PROJECTS_DIR, tiny_config
from lavis.models.albef_models.albef_classification import AlbefClassification
from lavis.models.albef_models.albef_vqa import AlbefVQA
from lavis_latent import evaluate, train
from lavis_latent.datasets import TextAssignmentDataset, check_stock_dataset_files
from lavis_latent.datasets.storage import resolve_storage
from lavis_latent.models import AlbefLatentClassification, AlbefLatentNLVR, AlbefLatentVQA

MODELS = {"vqa": "albef_latent_vqa", "nlvr": "albef_latent_nlvr", "snli_ve": "albef_latent_classification"}
SMALL = ["run.max_epoch=1", "run.batch_size_train=16"]  # 48 training images (as test_train: one shared world)
ALL_REGULARIZERS = {"inmodal": {}, "separation": {}, "bridge": {}, "geometric": {}}



def batch(task, n=4, seed=0):
    """A training batch in the collated format of LAVIS's dataset class for the task."""
    g = torch.Generator().manual_seed(seed)
    image = lambda: torch.randn(n, 3, 64, 64, generator=g)  # noqa: E731
    common = {"epoch": 0, "iters": 1, "num_iters_per_epoch": 10}
    if task == "vqa":
        answers = ["red", "circle", "top", "blue", "square"]
        return dict(common, image=image(), text_input=[f"what is shown {i}?" for i in range(n)],
                    answer=answers[: n + 1], weight=torch.ones(n + 1), n_answers=torch.tensor([2] + [1] * (n - 1)))
    texts = [f"the left shape is {c}" for c in ("red", "blue", "green", "purple", "orange", "yellow")]
    if task == "nlvr":
        return dict(common, image0=image(), image1=image(), text_input=texts[:n], label=torch.arange(n) % 2)
    return dict(common, image=image(), text_input=texts[:n], label=torch.arange(n) % 3)


def demo_yaml(name):
    """Path of a demo project yaml."""
    return os.path.join(PROJECTS_DIR, "demo", name)


# ---------------------------------------------------------------------------------------------------------------------
# Checkpoints: albef_latent_pretrain (with separation heads) -> each downstream model
# ---------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pretrain_ckpt(tmp_path_factory):
    """A tiny ``albef_latent_pretrain`` checkpoint with separation heads (random weights, momentum included)."""
    cls, cfg = tiny_config("albef_latent_pretrain", latent={"separation": {}})
    torch.manual_seed(0)
    state = cls.from_config(cfg).state_dict()
    path = tmp_path_factory.mktemp("pretrain") / "checkpoint_5.pth"
    torch.save({"model": state}, path)
    return str(path), state


def expected_source(task, key, fusion=2):
    """The pretraining checkpoint key a downstream parameter must come from (None: a new parameter)."""
    parts = key.split(".")
    if parts[0].startswith("cls_head"):
        return None
    if parts[0] in ("text_encoder", "text_encoder_m"):
        rest = parts[1:]
        if task == "nlvr" and rest[:2] == ["encoder", "layer"] and int(rest[2]) >= fusion:
            rest = rest[:2] + [str(fusion + (int(rest[2]) - fusion) // 2)] + rest[3:]  # both copies <- one layer
        return ".".join([parts[0], "bert"] + rest)
    if parts[0] in ("text_decoder", "text_decoder_m"):  # VQA decoder <- fusion layers, embeddings, MLM head
        encoder = parts[0].replace("decoder", "encoder")
        if parts[1] == "cls":
            return ".".join([encoder] + parts[1:])
        rest = parts[2:]
        if rest[:2] == ["encoder", "layer"]:
            rest = rest[:2] + [str(int(rest[2]) + fusion)] + rest[3:]
        return ".".join([encoder, "bert"] + rest)
    return key  # visual encoders; with a latent block: projections, temp, separation heads


@pytest.mark.parametrize("latent", [None, {"separation": {}}], ids=["plain", "latent"])
@pytest.mark.parametrize("task", list(MODELS))
def test_pretrain_checkpoint_loads_into_downstream_model(task, latent, pretrain_ckpt, caplog):
    path, source = pretrain_ckpt
    cls, cfg = tiny_config(MODELS[task], latent=latent)
    torch.manual_seed(1)
    model = cls.from_config(cfg)
    with caplog.at_level(logging.INFO):
        msg = model.load_from_pretrained(path)
    state = model.state_dict()
    new = {k for k in state if expected_source(task, k) is None}
    # the new parameters are exactly the task head and its momentum copy (VQA: none, its decoder is the fusion stack)
    assert new == ({k for k in state if k.startswith(("cls_head.", "cls_head_m."))} if task != "vqa" else set())
    assert len(new) == (0 if task == "vqa" else 8)
    assert set(msg.missing_keys) == new
    for key, value in state.items():
        if key not in new:
            assert torch.equal(value, source[expected_source(task, key)]), key
    # regularizer heads and pretraining-only heads are dropped and reported, unless this model has them too
    unexpected = set(msg.unexpected_keys)
    assert {"itm_head.weight", "image_queue", "text_queue"} <= unexpected
    regularizer_heads = {k for k in source if k.startswith(("latent.", "separation_m.", "vision_proj", "text_proj"))}
    assert len(regularizer_heads) == 16
    assert (regularizer_heads & unexpected) == (set() if latent else regularizer_heads)
    report = " ".join(r.getMessage() for r in caplog.records)
    assert "dropped" in report and "itm_head (2)" in report
    assert (not latent) == ("latent.separation (4)" in report and "separation_m (4)" in report)


def test_nlvr_pairs_share_cross_attention_from_fusion_layer():
    cls, cfg = tiny_config("albef_latent_nlvr")
    model = cls.from_config(cfg)
    layers = model.text_encoder.encoder.layer
    assert len(layers) == 6 and not hasattr(layers[1], "crossattention")  # 2 text + 2 x 2 fusion layers
    for first in (2, 4):
        a, b = layers[first].crossattention.self, layers[first + 1].crossattention.self
        assert a.key.weight is b.key.weight and a.value.bias is b.value.bias and a.query.weight is not b.query.weight


# ---------------------------------------------------------------------------------------------------------------------
# LAVIS parity, LAVIS traps, the latent block
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("task, lavis_cls", [("vqa", AlbefVQA), ("snli_ve", AlbefClassification)])
def test_without_latent_block_losses_equal_lavis(task, lavis_cls):
    cls, cfg = tiny_config(MODELS[task])
    ours = cls.from_config(cfg)

    class Reference(lavis_cls):  # LAVIS's class with the local tokenizer instead of the hub's
        def init_tokenizer(self):
            return ours.tokenizer

    kwargs = {"text_decoder": ours.text_decoder} if task == "vqa" else {"num_classes": 3}
    reference = Reference(**copy.deepcopy(dict(image_encoder=ours.visual_encoder, text_encoder=ours.text_encoder,
                                               max_txt_len=cfg.max_txt_len, **kwargs)))
    assert set(reference.state_dict()) == set(ours.state_dict())
    reference.load_state_dict(ours.state_dict())
    out_ours, out_ref = ours(batch(task)), reference(batch(task))
    assert torch.allclose(out_ours.loss, out_ref.loss, atol=1e-6, rtol=0)


@pytest.mark.parametrize("task", list(MODELS))
@pytest.mark.parametrize("use_distill", [True, False])
def test_trains_with_and_without_distillation_and_latent_terms(task, use_distill):
    """LAVIS 1.0.2 crashes for VQA and NLVR2 with use_distill False; every trainable parameter gets a gradient
    (DDP without find_unused_parameters), momentum copies none."""
    cls, cfg = tiny_config(MODELS[task], use_distill=use_distill, latent=ALL_REGULARIZERS)
    model = cls.from_config(cfg)
    out = model(batch(task))
    terms = ["loss_inmodal", "loss_sep", "loss_bridge", "loss_geo"]
    assert all(torch.isfinite(out[k]) and out[k] > 0 for k in terms)
    out.loss.backward()
    assert [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None] == []
    assert all(not p.requires_grad for p in model.visual_encoder_m.parameters())
    plain_cls, plain_cfg = tiny_config(MODELS[task], use_distill=use_distill)
    plain = plain_cls.from_config(plain_cfg)
    plain(batch(task)).loss.backward()
    assert hasattr(plain, "visual_encoder_m") == use_distill  # no momentum encoder unless distilling or regularizing


@pytest.mark.parametrize("task", list(MODELS))
def test_latent_views_are_the_unimodal_features(task):
    """The taps read the ViT output and the last text-only layer of LAVIS's own forward pass: the same as a
    separate unimodal pass; the augmented view is the momentum encoders'."""
    cls, cfg = tiny_config(MODELS[task], latent={"bridge": {}})
    model = cls.from_config(cfg)
    model.eval()  # same numbers in both passes
    samples = batch(task)
    with model._recording():
        model._lavis_forward(dict(samples))
        views = model.latent_views(samples)
    tokens = model.tokenizer(samples["text_input"], padding="longest", truncation=True, max_length=model.max_txt_len,
                             return_tensors="pt")
    with torch.no_grad():
        text = model.text_encoder(tokens.input_ids, attention_mask=tokens.attention_mask, mode="text")
        text_m = model.text_encoder_m(tokens.input_ids, attention_mask=tokens.attention_mask, mode="text")
        images = model._latent_images(samples)
        image = model._pair_image_cls(model.visual_encoder.forward_features(images)[:, 0])
        image_m = model._pair_image_cls(model.visual_encoder_m(images)[:, 0])
    for got, want in zip(views, (image, text.last_hidden_state[:, 0], image_m, text_m.last_hidden_state[:, 0])):
        assert torch.allclose(got, want, atol=1e-5)
    assert views[0].requires_grad and views[1].requires_grad and not views[2].requires_grad


def test_text_assignment_samples():
    class Captions(torch.utils.data.Dataset):  # 6 captions of 3 images; the "image" is its index
        annotation = [{"image": f"img{i // 2}.jpg"} for i in range(6)]

        def __len__(self):
            return 6

        def __getitem__(self, i):
            return {"image": torch.tensor(i // 2), "text_input": f"caption {i}", "image_id": i // 2}

    ds = TextAssignmentDataset(Captions(), rng=random.Random(0))
    labels = set()
    for i in range(60):
        s = ds[i % 6]
        own = (i % 6) // 2
        labels.add(s["label"])
        assert s["text_input"] == f"caption {i % 6}" and s["image0"] != s["image1"]
        assert (s["image0"] == own) == (s["label"] == 0) and (s["image1"] == own) == (s["label"] == 1)
    assert labels == {0, 1, 2}
    assert set(ds.collater([ds[0], ds[1]])) == {"image0", "image1", "text_input", "label", "instance_id"}


# ---------------------------------------------------------------------------------------------------------------------
# Through LAVIS's runner: one short epoch, validation and test, metrics recomputed from the predictions
# ---------------------------------------------------------------------------------------------------------------------
def small_world(task):
    """``--options`` for the 48-image world every test of the session shares."""
    return [f"datasets.demo_{task}.build_info.generator.num_train=48"]


def annotations(runner, builder, split="test"):
    """The annotation list a run's split was built from (the first file of the split)."""
    storage = runner.config.datasets_cfg[builder].build_info.annotations[split].storage
    path = resolve_storage(storage if isinstance(storage, str) else storage[0])
    return json.load(open(path))


def read_log(output_dir):
    """The json records of a run's log.txt."""
    return [json.loads(line) for line in open(os.path.join(output_dir, "log.txt")) if line.startswith('{"')]


@pytest.fixture(scope="module")
def ta_ckpt(session_cache_root, pretrain_ckpt, tmp_path_factory):
    """ALBEF's text-assignment step (one epoch on the demo captions) from the pretraining checkpoint."""
    out = tmp_path_factory.mktemp("ta")
    runner = train.main(["--cfg-path", demo_yaml("albef_nlvr_ta.yaml"), "--options", *SMALL,
                         "datasets.demo_caption.build_info.generator.num_train=48", f"model.pretrained={pretrain_ckpt[0]}",
                         f"run.output_dir={out}"])
    return runner, os.path.join(str(runner.output_dir), "checkpoint_0.pth")


@pytest.fixture(scope="module")
def runs(session_cache_root, pretrain_ckpt, ta_ckpt, tmp_path_factory):
    """One short fine-tuning run per task, each with one regularizer on (NLVR2 starts from the TA checkpoint)."""
    latent = {"vqa": "model.latent.bridge.weight=1.0", "nlvr": "model.latent.geometric.weight=0.25",
              "snli_ve": "model.latent.separation.weight=1.0"}
    start = {"vqa": pretrain_ckpt[0], "nlvr": ta_ckpt[1], "snli_ve": pretrain_ckpt[0]}
    out = {}
    for task in MODELS:
        runner = train.main(["--cfg-path", demo_yaml(f"albef_{task}.yaml"), "--options", *SMALL, *small_world(task),
                             f"model.pretrained={start[task]}", latent[task],
                             f"run.output_dir={tmp_path_factory.mktemp(task)}"])
        out[task] = runner
    return out


def test_text_assignment_trains_and_its_checkpoint_starts_nlvr(ta_ckpt):
    runner, path = ta_ckpt
    stats = runner.last_train_stats
    assert 0.5 < float(stats["loss"]) < 2.0  # three classes: ln 3 = 1.1 at chance
    cls, cfg = tiny_config("albef_latent_nlvr")
    model = cls.from_config(cfg)
    msg = model.load_from_pretrained(path)
    ta_state = torch.load(path, map_location="cpu")["model"]
    assert {k for k in msg.unexpected_keys if k.startswith("cls_head")} == {k for k in ta_state if k.startswith("cls_head")}
    assert set(msg.missing_keys) == {k for k in model.state_dict() if k.startswith("cls_head")}
    state = model.state_dict()
    for key, value in state.items():  # the two-image layout loads as it is, momentum encoders included
        if not key.startswith("cls_head"):
            assert torch.equal(value, ta_state[key]), key
    assert all(torch.equal(state[k], state[k.replace("cls_head", "cls_head_m", 1)]) for k in state
               if k.startswith("cls_head."))  # the new head's momentum copy starts equal to it


@pytest.mark.parametrize("task, term", [("vqa", "loss_bridge"), ("nlvr", "loss_geo"), ("snli_ve", "loss_sep")])
def test_finetuning_epoch_logs_terms_and_reports_metrics_of_its_predictions(runs, task, term):
    runner = runs[task]
    out = str(runner.output_dir)
    records = read_log(out)
    train_stats = [r for r in records if "train_loss" in r][-1]
    assert float(train_stats[f"train_{term}"]) > 0
    test = runner.last_test_logs["test"]
    pattern = "test_vqa_result.json" if task == "vqa" else "test_epoch*.json"  # LAVIS's merged result file
    result_files = [f for f in glob.glob(os.path.join(out, "result", pattern)) if "_rank" not in f]
    assert len(result_files) == 1
    predictions = json.load(open(result_files[0]))
    if task == "vqa":
        truth = {a["question_id"]: a["answer"][0] for a in annotations(runner, "demo_vqa")}
        assert sorted(p["question_id"] for p in predictions) == sorted(truth)
        accuracy = 100 * sum(p["answer"] == truth[p["question_id"]] for p in predictions) / len(truth)
        assert test["agg_metrics"] == pytest.approx(accuracy, abs=0.006)
        assert {"shared", "image_only"} <= set(test)
    else:
        anns = annotations(runner, f"demo_{task}")
        labels = {"False": 0, "True": 1} if task == "nlvr" else {"contradiction": 0, "neutral": 1, "entailment": 2}
        assert len(predictions) == len(anns)
        for p in predictions:
            assert p["target"] == labels[anns[int(p["instance_id"])]["label"]]
        accuracy = sum(p["prediction"] == p["target"] for p in predictions) / len(predictions)
        assert test["agg_metrics"] == pytest.approx(accuracy) and test["acc"] == pytest.approx(accuracy)
    assert any("val_agg_metrics" in r for r in records)  # validation ran and chose the checkpoint tested


@pytest.mark.parametrize("task, forced", [("vqa", "red"), ("nlvr", "True"), ("snli_ve", "entailment")])
def test_model_forced_to_one_answer_scores_its_frequency(session_cache_root, monkeypatch, tmp_path, task, forced):
    """LAVIS's evaluation of a model that always answers ``forced``: the share of ``forced`` in the test labels."""
    if task == "vqa":
        monkeypatch.setattr(AlbefLatentVQA, "predict_answers",
                            lambda self, samples, answer_list, **kw: [forced] * len(samples["text_input"]))
    else:
        cls = AlbefLatentNLVR if task == "nlvr" else AlbefLatentClassification
        index = {"True": 1, "entailment": 2}[forced]

        def predict(self, samples):
            logits = torch.zeros(len(samples["text_input"]), 3 if task == "snli_ve" else 2)
            logits[:, index] = 1.0
            return {"predictions": logits, "targets": samples["label"]}

        monkeypatch.setattr(cls, "predict", predict)
    runner, results = evaluate.main(["--cfg-path", demo_yaml(f"albef_{task}.yaml"), "--options", *small_world(task),
                                     f"run.output_dir={tmp_path}"])
    anns = annotations(runner, f"demo_{task}")
    truth = [a["answer"][0] if task == "vqa" else a["label"] for a in anns]
    share = sum(t == forced for t in truth) / len(truth)
    assert 0 < share < 1
    if task == "vqa":
        assert results["test"]["agg_metrics"] == pytest.approx(100 * share, abs=0.006)
        shared = [a["answer"][0] for a in anns if a["question_type"] in ("shape", "color", "position")]
        assert results["test"]["shared"] == pytest.approx(100 * shared.count(forced) / len(shared), abs=0.006)
        assert results["test"]["image_only"] == 0.0  # "red" answers no image-only question
    else:
        assert results["test"]["acc"] == pytest.approx(share)


# ---------------------------------------------------------------------------------------------------------------------
# Full-size configs: where the unreachable stock data goes
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config, match", [
    ("snli_ve_baseline.yaml", r"snli_ve annotation file for split 'train' not found: .*ve_train\.json.*ALBEF's data"),
    ("nlvr_fs.yaml", r"nlvr image folder not found: .*nlvr2/images.*datasets\.nlvr\.build_info\.images\.storage"),
])
def test_unreachable_stock_data_is_named_before_anything_is_built(session_cache_root, config, match):
    with pytest.raises(FileNotFoundError, match=match):
        train.main(["--cfg-path", os.path.join(PROJECTS_DIR, "albef", config)])


def test_stock_check_passes_when_files_are_in_place(tmp_path):
    cfg = OmegaConf.create({"snli_ve": {"data_type": "images", "build_info": {
        "annotations": {"train": {"url": "/export/x.json", "storage": str(tmp_path / "ve_train.json")}},
        "images": {"storage": str(tmp_path)}}}})
    with pytest.raises(FileNotFoundError, match="ve_train.json"):
        check_stock_dataset_files(cfg)
    (tmp_path / "ve_train.json").write_text("[]")
    check_stock_dataset_files(cfg)


def test_demo_tasks_option_and_table():
    from lavis_latent import demo

    assert demo.parse_tasks("all") == ["retrieval", "vqa", "nlvr", "snli_ve"]
    assert demo.parse_tasks("snli_ve,vqa") == ["vqa", "snli_ve"]
    with pytest.raises(SystemExit, match="unknown task"):
        demo.parse_tasks("vqa,nlvr2")
    row = {"variant": "fs", "test": {"txt_r1": 52.0, "img_r1": 41.5}, "seconds": 12.0,
           "downstream": {"vqa": {"test": {"agg_metrics": 61.25}}, "nlvr": {"test": {"acc": 0.58}},
                          "snli_ve": {"test": {"acc": 0.705}}}}
    table = demo.format_downstream_table([row], demo.parse_tasks("all")).splitlines()
    assert table[0] == "| variant | txt R@1 | img R@1 | VQA acc | NLVR2 acc | SNLI-VE acc | time s |"
    assert table[2] == "| fs | 52.0 | 41.5 | 61.2 | 58.0 | 70.5 | 12 |"
