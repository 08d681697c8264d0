"""The paper's evaluation suites: Table 2's ImageNet shifts (zero-shot) and Table 3's 14 linear-probe datasets.

Each dataset's builder reads a tiny copy of its real on-disk layout (``tests/eval_data_copies.py``); the ImageNet-A/-R
subset mapping is checked against a hand-wired model; ``python -m lavis_latent.evaluate_suite`` runs both suites end
to end with the tiny ``clip_latent`` model and writes both tables.
"""
import json
import os

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from lavis.common.registry import registry
from lavis.models.blip_models.blip_outputs import BlipOutputFeatures
from omegaconf import OmegaConf

import eval_data_copies as copies
from lavis_latent import evaluate_suite
from lavis_latent.common.paths import set_cache_root
from lavis_latent.datasets.eval_datasets import (
    EVAL_BUILDERS,
    clip_benchmark_data,
    clip_classnames,
    clip_templates,
    imagenet_wnids,
    wnid_indices,
)
from lavis_latent.tasks.zero_shot import ZeroShotClassificationTask, class_text_embeddings

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PROBE_WRITERS = dict(copies.WRITERS, svhn=copies.write_svhn)


def write_all(root):
    """Every dataset of both suites under ``root`` as the default yamls expect it (``root`` = cache_root); LAVIS's
    ImageNet under ``root/imagenet``."""
    tv = os.path.join(root, "torchvision")
    for writer in copies.WRITERS.values():
        writer(tv)
    copies.write_svhn(os.path.join(tv, "svhn"))
    copies.write_cifar(os.path.join(root, "cifar"), "cifar10")
    copies.write_cifar(os.path.join(root, "cifar"), "cifar100")
    wnids = imagenet_wnids()
    copies.write_imagenet(os.path.join(root, "imagenet"), wnids)
    shifts = os.path.join(root, "imagenet_shifts")
    copies.write_class_folders(os.path.join(shifts, "imagenetv2-matched-frequency-format-val"),
                               [str(i) for i in range(1000)], range(1000))
    copies.write_class_folders(os.path.join(shifts, "sketch"), wnids, range(1000))
    data = clip_benchmark_data()
    for name in ("imagenet_a", "imagenet_r"):
        sub = data[f"{name}_wnids"]
        copies.write_class_folders(os.path.join(shifts, name.replace("_", "-")), sub, wnid_indices(sub))


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """A cache root holding every tiny copy (LAVIS's cache_root points there for the module)."""
    import lavis_latent  # noqa: F401

    previous = registry.get_path("cache_root")
    root = str(tmp_path_factory.mktemp("eval_data"))
    write_all(root)
    set_cache_root(root)
    yield root
    set_cache_root(previous)


def _builder(name, **build_info):
    cls = EVAL_BUILDERS[name]
    cfg = OmegaConf.load(cls.default_config_path()).datasets[name]
    for which in ("train", "eval"):
        cfg.vis_processor[which].image_size = 16
    for k, v in build_info.items():
        OmegaConf.update(cfg, f"build_info.{k}", v, merge=False)
    return cls(cfg)


# ------------------------------------------------------------------------------------------------ builders -----------
EXPECTED = {  # name: ({split: images}, number of class names, first class name)
    "caltech101": ({"train": 204, "test": 102}, 102, "background"),
    "dtd": ({"train": 6, "val": 6, "test": 6}, 3, "banded"),
    "fgvc_aircraft": ({"train": 6, "val": 6, "test": 6}, 3, "707-320"),
    "flowers102": ({"train": 8, "val": 8, "test": 8}, 102, "pink primrose"),
    "food101": ({"train": 6, "test": 6}, 3, "apple pie"),
    "gtsrb": ({"train": 86, "test": 86}, 43, "red and white circle 20 kph speed limit"),
    "oxford_pets": ({"trainval": 6, "test": 6}, 37, "Abyssinian"),
    "rendered_sst2": ({"train": 4, "val": 4, "test": 4}, 2, "negative"),
    "stanford_cars": ({"train": 6, "test": 6}, 3, "AM General Hummer SUV 2000"),
    "stl10": ({"train": 20, "test": 20}, 10, "airplane"),
    "svhn": ({"train": 20, "test": 20}, 10, "zero"),
    "imagenet_v2": ({"test": 1000}, 1000, "tench"),
    "imagenet_sketch": ({"test": 1000}, 1000, "tench"),
    "imagenet_a": ({"test": 200}, 1000, "tench"),
    "imagenet_r": ({"test": 200}, 1000, "tench"),
}


def _mean_colour(item):
    """The image's mean RGB in 0-255 (``clip_image_eval`` normalises with CLIP's mean / std)."""
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073])[:, None, None]
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711])[:, None, None]
    return ((item["image"] * std + mean).mean(dim=(1, 2)) * 255).numpy()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_builder_reads_its_tiny_copy(data_root, name):
    sizes, n_names, first = EXPECTED[name]
    builder = _builder(name, splits=list(sizes))
    built = builder.build_datasets()
    assert {s: len(d) for s, d in built.items()} == sizes
    for split, ds in built.items():
        assert len(ds.classnames) == n_names and ds.classnames[0] == first
        for i in (0, len(ds) - 1):  # the label's colour is the image's colour: images and labels line up
            item = ds[i]
            assert item["image"].shape == (3, 16, 16) and 0 <= item["label"] < n_names
            c = item["label"] % 997 if name.startswith("imagenet") else item["label"]
            want = copies._colour(c).astype(float)
            assert np.abs(_mean_colour(item) - want).max() <= 20, (split, i)  # jitter of +-8 per image
    if name == "svhn":  # SVHN stores digit 0 as label 10
        assert sorted({built["test"][i]["label"] for i in range(20)}) == list(range(10))


def test_shift_labels_are_imagenet_indices(data_root):
    v2 = _builder("imagenet_v2").build_datasets()["test"]
    labels = [v2.reader.items[i][1] for i in range(len(v2))]
    assert labels == list(range(1000))  # folder "10" is class 10, not the 3rd in lexicographic order
    a = _builder("imagenet_a").build_datasets()["test"]
    official = clip_benchmark_data()["imagenet_a_wnids"]
    assert a.class_subset == sorted(wnid_indices(official)) and len(a.class_subset) == 200
    assert {lab for _, lab in a.reader.items} == set(a.class_subset)


@pytest.mark.parametrize("name", sorted(EVAL_BUILDERS))
def test_missing_dataset_names_path_key_and_source(tmp_path, name):
    builder = _builder(name)
    builder.config.build_info.images.storage = str(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError) as err:
        builder.build_datasets()
    msg = str(err.value)
    assert str(tmp_path / "nothing") in msg and f"datasets.{name}.build_info.images.storage" in msg
    assert "http" in msg or "torchvision.datasets." in msg or "Kaggle" in msg


def test_incomplete_shift_dataset_stops(tmp_path):
    base = tmp_path / "imagenet-r"
    sub = clip_benchmark_data()["imagenet_r_wnids"]
    copies.write_class_folders(str(base), sub[:-1], range(199))
    builder = _builder("imagenet_r")
    builder.config.build_info.images.storage = str(tmp_path)
    with pytest.raises(FileNotFoundError, match=f"lacks 1 of its 200 class folders.*{sub[-1]}.*incomplete"):
        builder.build_datasets()


# ------------------------------------------------------------------------------- ImageNet-A/-R subset mapping ---------
HAND_WNIDS = ["n01440764", "n01443537", "n15075141"]  # ImageNet indices 0, 1, 999


class SubsetWired(nn.Module):
    """Text: ImageNet class 0 / 1 / 999 -> e0 / e1 / e2, every other class -> e3. Image of class c (its colour) ->
    normalize(e3 + 0.5 e_pos(c) + 0.1 e_pos(c)+1): over all 1000 classes an image is closest to the 997 "other"
    classes; restricted to the subset {0, 1, 999} it is closest to its own class."""

    def __init__(self):
        super().__init__()
        names = clip_classnames("imagenet1k")
        self.special = {names[0]: 0, names[1]: 1, names[999]: 2}
        self.register_buffer("palette", torch.tensor(np.stack([copies._colour(c) for c in (0, 1, 999 % 997)]),
                                                     dtype=torch.float32))

    def extract_features(self, samples, mode="image"):
        if mode == "text":
            idx = [next((v for k, v in self.special.items() if f" {k}." in t), 3) for t in samples["text_input"]]
            return BlipOutputFeatures(text_embeds_proj=F.one_hot(torch.tensor(idx), 4).float())
        rgb = _mean_colour_batch(samples["image"])
        pos = torch.cdist(rgb, self.palette).argmin(dim=1)
        z = (F.one_hot(torch.full_like(pos, 3), 4).float() + 0.5 * F.one_hot(pos, 4).float()
             + 0.1 * F.one_hot((pos + 1) % 3, 4).float())  # no ties: the next subset class ranks second
        return BlipOutputFeatures(image_embeds_proj=F.normalize(z, dim=-1), image_embeds=z)


def _mean_colour_batch(images):
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073])[None, :, None, None]
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711])[None, :, None, None]
    return ((images * std + mean).mean(dim=(2, 3)) * 255)


def test_imagenet_a_subset_restricts_logits_hand_made(tmp_path, result_paths):
    assert wnid_indices(HAND_WNIDS) == [0, 1, 999]
    copies.write_class_folders(str(tmp_path / "imagenet-a"), HAND_WNIDS, [0, 1, 999], per_class=2)
    builder = _builder("imagenet_a", wnids=HAND_WNIDS)
    builder.config.build_info.images.storage = str(tmp_path)
    ds = builder.build_datasets()["test"]
    assert ds.class_subset == [0, 1, 999] and [lab for _, lab in ds.reader.items] == [0, 0, 1, 1, 999, 999]
    loader = torch.utils.data.DataLoader(ds, batch_size=4)
    model = SubsetWired()
    task = ZeroShotClassificationTask(templates=["a photo of a {}."], topk=[1, 3, 5])
    rows = task.evaluation(model, loader, cuda_enabled=False)
    metrics = task.after_evaluation(rows, "test", "best")
    assert [r["prediction"] for r in rows] == [0, 0, 1, 1, 999, 999]  # ImageNet indices, all correct
    assert metrics["top1"] == 100.0 and metrics["num_classes"] == 3 and "top5" not in metrics
    # the same as masking the full 1000-way logits by hand
    w = class_text_embeddings(model, clip_classnames("imagenet1k"), ["a photo of a {}."])
    z = torch.cat([model.extract_features({"image": b["image"]})["image_embeds_proj"] for b in loader])
    logits = z @ w.t()
    assert (logits.argmax(dim=1) != torch.tensor([0, 0, 1, 1, 999, 999])).all()  # unrestricted: all wrong
    masked = torch.full_like(logits, float("-inf"))
    masked[:, [0, 1, 999]] = logits[:, [0, 1, 999]]
    assert [r["topk"] for r in rows] == masked.topk(3, dim=1).indices.tolist()


@pytest.fixture
def result_paths(tmp_path):
    saved = {k: registry.mapping["paths"].get(k) for k in ("result_dir", "output_dir")}
    for k in saved:
        registry.mapping["paths"][k] = str(tmp_path / k)
        os.makedirs(tmp_path / k, exist_ok=True)
    yield
    for k, v in saved.items():
        if v is None:
            registry.mapping["paths"].pop(k, None)
        else:
            registry.mapping["paths"][k] = v


def test_prompt_sets():
    assert len(clip_templates("imagenet1k")) == 80 and all("{}" in t for t in clip_templates("imagenet1k"))
    cfg = OmegaConf.create({"run_cfg": {"prompt_set": "imagenet1k"}})
    assert ZeroShotClassificationTask.setup_task(cfg).templates == clip_templates("imagenet1k")
    cfg = OmegaConf.create({"run_cfg": {"prompt_set": "cifar10", "prompts": ["a {}"]}})
    assert ZeroShotClassificationTask.setup_task(cfg).templates == ["a {}"]  # prompts win
    with pytest.raises(ValueError, match="unknown prompt set"):
        clip_templates("nope")


# ------------------------------------------------------------------------------------------------- the suite ---------
def test_markdown_tables_from_hand_rows():
    t = {"suite": "probes", "rows": []}
    evaluate_suite.merge_results(t, "clip", "a.pth", {d: {"top1": 50.0} for d in evaluate_suite.SUITES["probes"]})
    evaluate_suite.merge_results(t, "gc", "b.pth", {"svhn": {"top1": 63.584}})
    evaluate_suite.merge_results(t, "clip", "a.pth", {"svhn": {"top1": 64.0}})
    md = evaluate_suite.render_markdown(t).splitlines()
    assert md[2].startswith("| Method | Caltech101 | SVHN | STL10 |") and md[2].endswith("| ImageNet1K | Avg |")
    assert md[4] == "| clip | 50.00 | 64.00 | " + " | ".join(["50.00"] * 12) + f" | {(13 * 50 + 64) / 14:.2f} |"
    assert md[5] == "| gc | - | 63.58 | " + " | ".join(["-"] * 12) + " | - |"
    s = {"suite": "shifts", "rows": [{"name": "x", "checkpoint": "c", "results": {"imagenet_a": {
        "top1": 1.0, "top3": 2.0, "top5": 3.0}}}]}
    md = evaluate_suite.render_markdown(s).splitlines()
    assert md[2] == "| Method | INV2 T1 | T3 | T5 | Sketch T1 | T3 | T5 | IN-A T1 | T3 | T5 | IN-R T1 | T3 | T5 |"
    assert md[4] == "| x | - | - | - | - | - | - | 1.00 | 2.00 | 3.00 | - | - | - |"
    assert evaluate_suite.resolve_datasets(["dtd,imagenet_a", "svhn"]) == {"shifts": ["imagenet_a"],
                                                                             "probes": ["svhn", "dtd"]}
    with pytest.raises(evaluate_suite.SuiteError, match="not a suite"):
        evaluate_suite.resolve_datasets(["mnist"])
    args = evaluate_suite.parse_args(["--suite", "shifts", "--checkpoints", "a=b", "--output-dir", "o", "--prompts",
                                      "ensemble", "--image-size", "32", "--options", "run.topk=[1]",
                                      "datasets.imagenet.build_info.images.storage=/x"])
    assert evaluate_suite.run_options("shifts", "imagenet_a", args) == [
        "datasets.imagenet_a.vis_processor.train.image_size=32", "datasets.imagenet_a.vis_processor.eval.image_size=32",
        "run.prompt_set=imagenet1k", "run.topk=[1]"]
    assert evaluate_suite.run_options("probes", "imagenet", args)[-2:] == [
        "run.topk=[1]", "datasets.imagenet.build_info.images.storage=/x"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Two tiny clip_latent checkpoints (random init, different seeds) as a runner saves them."""
    from lavis.models import load_model

    out = {}
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = load_model("clip_latent", "tiny", is_eval=True)
        path = str(tmp_path_factory.mktemp("ckpt") / f"tiny_{seed}.pth")
        torch.save({"model": model.state_dict()}, path)
        out[f"tiny{seed}"] = path
    return out


@pytest.fixture(scope="module")
def tiny_configs(tmp_path_factory):
    """projects/clip's suite configs with ``model_type: tiny`` (LAVIS's Config picks the model's default yaml from the
    yaml's model_type, not from ``--options model.model_type=...``)."""
    out = tmp_path_factory.mktemp("configs")
    for name in os.listdir(evaluate_suite.DEFAULT_CONFIG_DIR):
        if name.startswith(("zs_", "linprobe_")):
            with open(os.path.join(evaluate_suite.DEFAULT_CONFIG_DIR, name)) as f:
                text = f.read()
            assert "model_type: rn50_bert" in text
            (out / name).write_text(text.replace("model_type: rn50_bert", "model_type: tiny"))
    return str(out)


def _suite_argv(suite, ckpts, out, root, config_dir):
    return (["--suite", *suite, "--checkpoints", *[f"{k}={v}" for k, v in ckpts.items()], "--output-dir", str(out),
             "--config-dir", config_dir, "--image-size", "16", "--options", "run.device=cpu", "run.distributed=False",
             "run.num_workers=0", "run.batch_size_eval=512", "run.batch_size_train=512", "run.probe_c_grid=[1.0]",
             "run.probe_max_iter=50", f"datasets.imagenet.build_info.images.storage={root}/imagenet"])


def test_suite_stops_before_any_model_when_data_is_missing(tmp_path, checkpoints, data_root, tiny_configs):
    set_cache_root(str(tmp_path / "empty"))
    try:
        with pytest.raises(evaluate_suite.SuiteError) as err:
            evaluate_suite.main(_suite_argv(["shifts", "dtd"], checkpoints, tmp_path / "out", tmp_path / "empty",
                                            tiny_configs))
    finally:
        set_cache_root(data_root)
    msg = str(err.value)
    for name in ("imagenet_v2", "imagenet_sketch", "imagenet_a", "imagenet_r", "dtd"):
        assert f"datasets.{name}.build_info.images.storage" in msg
    assert str(tmp_path / "empty" / "torchvision" / "dtd" / "dtd" / "images") in msg
    assert not (tmp_path / "out").exists()  # nothing ran
    with pytest.raises(evaluate_suite.SuiteError, match="checkpoint file .* not found"):
        evaluate_suite.main(["--suite", "dtd", "--checkpoints", f"x={tmp_path / 'no.pth'}", "--output-dir", "o"])


def test_suite_end_to_end_writes_both_tables_and_merges_rows(data_root, checkpoints, tmp_path, tiny_configs):
    out = tmp_path / "tables"
    root = data_root
    shifts = evaluate_suite.main(_suite_argv(["shifts"], checkpoints, out, root, tiny_configs))["shifts"]
    assert [r["name"] for r in shifts["rows"]] == ["tiny0", "tiny1"]
    for row in shifts["rows"]:
        assert set(row["results"]) == {"imagenet_v2", "imagenet_sketch", "imagenet_a", "imagenet_r"}
        for d, m in row["results"].items():
            assert 0.0 <= m["top1"] <= m["top3"] <= m["top5"] <= 100.0
            assert m["num_classes"] == (200 if d in ("imagenet_a", "imagenet_r") else 1000)
    argv = _suite_argv(["probes"], {"tiny0": checkpoints["tiny0"]}, out, root, tiny_configs)
    probes = evaluate_suite.main(argv)["probes"]
    row = probes["rows"][0]
    assert set(row["results"]) == set(evaluate_suite.SUITES["probes"])
    assert row["results"]["oxford_pets"]["num_train"] == 6 and row["results"]["dtd"]["probe_val_from_train"] == 0
    assert row["results"]["imagenet"]["num_samples"] == 1000
    md = (out / "probes.md").read_text()
    assert "| tiny0 |" in md and md.count("| - ") == 0  # every column and the average filled
    # a second run adds a row and keeps the first one's results
    evaluate_suite.main(_suite_argv(["svhn"], {"other": checkpoints["tiny1"]}, out, root, tiny_configs))
    table = json.loads((out / "probes.json").read_text())
    assert [r["name"] for r in table["rows"]] == ["tiny0", "other"]
    assert table["rows"][0]["results"] == row["results"] and set(table["rows"][1]["results"]) == {"svhn"}
    lines = (out / "probes.md").read_text().splitlines()
    assert lines[5].startswith("| other | - | ") and lines[5].endswith(" | - |")
    assert (out / "shifts.md").read_text().count("| tiny") == 2
    assert os.path.isfile(out / "runs" / "tiny0" / "zs_imagenet_a" / "evaluate.txt") or any(
        f == "evaluate.txt" for _, _, files in os.walk(out / "runs" / "tiny0" / "zs_imagenet_a") for f in files)
