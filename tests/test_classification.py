"""Classification datasets (digits, CIFAR, image folders) and the zero_shot_classification / linear_probe tasks.

The models here are hand-wired feature extractors with known answers (no mocks of the tasks): a colour detector
whose text tower looks the class word up, and a digits model whose image tower is a nearest-class-mean template
matcher on 8x8 pixels; ``_test_wired_clip`` is the latter, registered so the end-to-end runs go through LAVIS's
Config, task, builders and runner exactly as a user's yaml does.
"""
import atexit
import json
import os
import pickle
import re
import shutil
import tempfile
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from lavis.common.registry import registry
from lavis.models.base_model import BaseModel
from lavis.models.blip_models.blip_outputs import BlipOutputFeatures
from omegaconf import OmegaConf
from PIL import Image

from lavis_latent import evaluate, train
from lavis_latent.datasets import classification as cls_data
from lavis_latent.datasets.classification import DIGIT_WORDS, generate_digits, stratified_split
from lavis_latent.tasks import classification as cls_tasks
from lavis_latent.tasks.classification import (
    LinearProbeTask,
    ZeroShotClassificationTask,
    class_text_embeddings,
    extract_dataset_features,
    fit_linear_probe,
    topk_accuracy,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# ---------------------------------------------------------------------------------------------------------------------
# hand-wired models
# ---------------------------------------------------------------------------------------------------------------------
COLOURS = {"red": (220, 30, 30), "green": (30, 180, 50), "blue": (40, 80, 230), "yellow": (240, 220, 40),
           "purple": (140, 50, 180), "cyan": (0, 220, 220), "orange": (250, 140, 20)}
COLOUR_NAMES = list(COLOURS)
TEMPLATE_WORDS = ("photo", "drawing", "sketch")  # the text tower adds a per-template vector for these words


class ColourWired(nn.Module):
    """Image tower: the nearest palette colour c of the image's mean RGB -> ``V[c]``. Text tower: the class word j
    in the text -> ``V[perm[j]] + W[t]`` (t: which template word the text has). So the image of class c scores
    ``<V[c], normalize(V[perm[j]] + W[t])>`` against class j: every ranking is computable by hand."""

    def __init__(self, perm=None, dim=16, seed=0, sequence=False, template_scale=0.7):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        n = len(COLOUR_NAMES)
        self.register_buffer("V", F.normalize(torch.randn(n, dim, generator=g), dim=-1))
        w = F.normalize(torch.randn(len(TEMPLATE_WORDS), dim, generator=g), dim=-1)
        self.register_buffer("W", template_scale * w)
        self.register_buffer("palette", torch.tensor([COLOURS[c] for c in COLOUR_NAMES], dtype=torch.float32) / 255)
        self.perm = list(range(n)) if perm is None else list(perm)
        self.sequence = sequence  # return [N, 2, E] like ALBEF's feature extractor (token 0 is the real one)

    def _out(self, x):
        if not self.sequence:
            return x
        return torch.stack([x, torch.full_like(x, 7.0)], dim=1)

    def text_vector(self, text):
        words = re.findall(r"[a-z]+", text.lower())
        j = next(i for i, c in enumerate(COLOUR_NAMES) if c in words)
        v = self.V[self.perm[j]].clone()
        for t, w in enumerate(TEMPLATE_WORDS):
            if w in words:
                v = v + self.W[t]
        return v

    def extract_features(self, samples, mode="image"):
        if mode == "image":
            rgb = samples["image"].mean(dim=(2, 3))  # [N, 3] in [0, 1] (ToTensor, no normalisation)
            c = torch.cdist(rgb, self.palette).argmin(dim=1)
            z = self.V[c]
            return BlipOutputFeatures(image_embeds=self._out(z * 3.0), image_embeds_proj=self._out(z))
        z = torch.stack([self.text_vector(t) for t in samples["text_input"]])
        return BlipOutputFeatures(text_embeds=self._out(z), text_embeds_proj=self._out(F.normalize(z, dim=-1)))


class ColourSquares(torch.utils.data.Dataset):
    """``per_class`` solid-colour images per class (slightly jittered), with ``classnames``."""

    def __init__(self, per_class=3, size=8):
        self.classnames = list(COLOUR_NAMES)
        rng = np.random.default_rng(0)
        self.items = []
        for c, name in enumerate(COLOUR_NAMES):
            for k in range(per_class):
                rgb = np.clip(np.array(COLOURS[name]) + rng.integers(-10, 10, 3), 0, 255) / 255.0
                img = torch.tensor(rgb, dtype=torch.float32)[:, None, None].expand(3, size, size).clone()
                self.items.append({"image": img, "label": c, "instance_id": f"{c}_{k}"})

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def digit_pixels(images):
    """[N, 3, H, W] processed images -> [N, 64] mean-channel 8x8 average-pooled pixels."""
    return F.adaptive_avg_pool2d(images.float().mean(dim=1, keepdim=True), 8).flatten(1)


@dataclass
class WiredFeatures(BlipOutputFeatures):
    """LAVIS's feature output plus the separation heads' fields (as clip_latent's output class)."""

    image_embeds_ind: Optional[torch.FloatTensor] = None
    text_embeds_ind: Optional[torch.FloatTensor] = None


_WIRED_DIR = tempfile.mkdtemp(prefix="lavis_latent_wired_")
atexit.register(shutil.rmtree, _WIRED_DIR, True)
_WIRED_YAML = os.path.join(_WIRED_DIR, "wired.yaml")
OmegaConf.save(OmegaConf.create({"model": {"arch": "_test_wired_clip", "prototypes_path": None,
                                           "with_ind": False}}), _WIRED_YAML)


class WiredDigits(BaseModel):
    """Image tower: ``image_embeds`` = 8x8 pixels (64-d); ``image_embeds_proj`` = normalised cosine similarities of
    the centred pixels to the centred class prototypes (10-d). Text tower: the digit word in the text -> one-hot.
    Zero-shot = nearest class mean by cosine; the probe sees raw pixels. ``with_ind`` adds a fixed random
    ``image_embeds_ind`` (8-d) as a separation head would."""

    PRETRAINED_MODEL_CONFIG_DICT = {"default": _WIRED_YAML}

    def __init__(self, prototypes=None, center=None, with_ind=False):
        super().__init__()
        self.register_buffer("prototypes", torch.zeros(10, 64) if prototypes is None else torch.as_tensor(prototypes))
        self.register_buffer("center", torch.zeros(64) if center is None else torch.as_tensor(center))
        self.register_buffer("ind", torch.randn(64, 8, generator=torch.Generator().manual_seed(3)))
        self.with_ind = with_ind
        self.unused = nn.Parameter(torch.zeros(()))  # the runner builds an optimizer when it saves a checkpoint

    def similarities(self, pixels):
        return F.normalize(pixels - self.center, dim=-1) @ F.normalize(self.prototypes - self.center, dim=-1).t()

    def extract_features(self, samples, mode="image"):
        if mode == "image":
            pix = digit_pixels(samples["image"])
            ind = F.normalize(pix @ self.ind, dim=-1) if self.with_ind else None
            return WiredFeatures(image_embeds=pix, image_embeds_proj=F.normalize(self.similarities(pix), dim=-1),
                                 image_embeds_ind=ind)
        z = torch.zeros(len(samples["text_input"]), 10)
        for i, text in enumerate(samples["text_input"]):
            words = re.findall(r"[a-z]+", text.lower())
            for d, w in enumerate(DIGIT_WORDS):
                if w in words:
                    z[i, d] = 1.0
        return WiredFeatures(text_embeds=z, text_embeds_proj=F.normalize(z, dim=-1))

    @classmethod
    def from_config(cls, cfg=None):
        protos = center = None
        if cfg is not None and cfg.get("prototypes_path"):
            data = np.load(cfg.prototypes_path)
            protos, center = torch.tensor(data["prototypes"]), torch.tensor(data["center"])
        return cls(protos, center, with_ind=bool(cfg.get("with_ind", False)) if cfg is not None else False)


if registry.get_model_class("_test_wired_clip") is None:
    registry.register_model("_test_wired_clip")(WiredDigits)


# ---------------------------------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits(session_cache_root):
    """The digits builder's datasets with its default config (generated under the session cache root)."""
    return registry.get_builder_class("digits")().build_datasets()


@pytest.fixture(scope="module")
def digits_root(digits):
    return os.path.dirname(digits["test"].vis_root.rstrip(os.sep).rsplit(os.sep, 1)[0])


@pytest.fixture(scope="module")
def prototypes(digits, tmp_path_factory):
    """Class means and global mean of the train split's pixels (as WiredDigits sees them), saved for from_config."""
    x, y = extract_dataset_features(WiredDigits(), digits["train"], ["image_embeds"], batch_size=256)
    protos = np.stack([x[y == d].mean(axis=0) for d in range(10)])
    path = str(tmp_path_factory.mktemp("protos") / "protos.npz")
    np.savez(path, prototypes=protos, center=x.mean(axis=0))
    return path


@pytest.fixture
def result_paths(tmp_path):
    """The registry paths LAVIS's runner would register (result_dir, output_dir), restored afterwards."""
    paths = registry.mapping["paths"]
    old = {k: paths.get(k) for k in ("result_dir", "output_dir")}
    (tmp_path / "result").mkdir()
    paths["result_dir"], paths["output_dir"] = str(tmp_path / "result"), str(tmp_path)
    yield tmp_path
    for k, v in old.items():
        if v is None:
            paths.pop(k, None)
        else:
            paths[k] = v


def loader(dataset, batch_size=5):
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False,
                                       collate_fn=getattr(dataset, "collater", None))


# ---------------------------------------------------------------------------------------------------------------------
# digits data
# ---------------------------------------------------------------------------------------------------------------------
def test_stratified_split_is_deterministic_balanced_and_disjoint():
    labels = cls_data.load_digit_arrays()[1]
    a, b = stratified_split(labels, 0.6, 0.15, seed=0), stratified_split(labels, 0.6, 0.15, seed=0)
    assert all(np.array_equal(a[s], b[s]) for s in a)
    assert not np.array_equal(a["test"], stratified_split(labels, 0.6, 0.15, seed=1)["test"])
    everything = np.concatenate([a["train"], a["val"], a["test"]])
    assert len(everything) == len(labels) == 1797 and len(np.unique(everything)) == 1797
    for d in range(10):
        n = int((labels == d).sum())
        assert int((labels[a["train"]] == d).sum()) == round(n * 0.6)
        assert int((labels[a["val"]] == d).sum()) == round(n * 0.15)
        assert int((labels[a["test"]] == d).sum()) == n - round(n * 0.6) - round(n * 0.15)


def test_digits_layout_manifest_and_images(digits, digits_root):
    manifest = json.load(open(os.path.join(digits_root, "manifest.json")))
    assert manifest["params"] == cls_data.digits_params() and manifest["classnames"] == list(DIGIT_WORDS)
    labels = cls_data.load_digit_arrays()[1]
    split = stratified_split(labels, 0.6, 0.15, 0)
    for s in ("train", "val", "test"):
        files = sorted(os.path.join(d, f) for d in map(str, range(10))
                       for f in os.listdir(os.path.join(digits_root, "images", s, d)))
        expected = sorted(f"{labels[i]}/{i:04d}.jpg" for i in split[s])
        assert files == expected, s
        assert manifest["counts"][s] == {str(d): int((labels[split[s]] == d).sum()) for d in range(10)}
    with Image.open(os.path.join(digits_root, "images", "test", expected[0])) as im:
        assert im.format == "JPEG" and im.size == (64, 64) and im.mode == "RGB"
        # the JPEG is the rendered source digit (dark ink on white), up to compression
        index = int(expected[0].split("/")[1][:-4])
        source = cls_data.render_digit(cls_data.load_digit_arrays()[0][index])
        assert np.abs(np.asarray(im, np.float64) - np.asarray(source, np.float64)).mean() < 6
    ink = cls_data.render_digit(np.array([[16] * 8] + [[0] * 8] * 7), image_size=8, resample="nearest")
    assert np.asarray(ink)[0].max() == 0 and np.asarray(ink)[1:].min() == 255


def test_digits_generation_idempotent_and_regenerates_on_new_params(tmp_path):
    root = str(tmp_path / "d")
    paths = generate_digits(root, captions_per_image=1)
    stamp = os.stat(paths["manifest"]).st_mtime_ns
    folder = os.path.join(root, "images", "train", "0")
    image = os.path.join(folder, sorted(os.listdir(folder))[0])
    first = open(image, "rb").read()
    generate_digits(root, captions_per_image=1)
    assert os.stat(paths["manifest"]).st_mtime_ns == stamp  # same parameters: nothing rewritten
    generate_digits(root, captions_per_image=2)
    manifest = json.load(open(paths["manifest"]))
    assert manifest["params"]["captions_per_image"] == 2
    assert open(image, "rb").read() == first  # deterministic images
    rows = json.load(open(paths["caption_val"]))
    assert all(len(r["caption"]) == 2 for r in rows)
    os.makedirs(tmp_path / "other")
    open(tmp_path / "other" / "x.txt", "w").close()
    with pytest.raises(FileExistsError, match="no digits manifest"):
        generate_digits(str(tmp_path / "other"))


def test_digits_builder_builds_every_split_with_labels_and_classnames(digits):
    assert set(digits) == {"train", "val", "test"}
    assert [len(digits[s]) for s in ("train", "val", "test")] == [1078, 269, 450]
    for s, ds in digits.items():
        assert ds.classnames == list(DIGIT_WORDS)
        item = ds[7]
        assert item["image"].shape == (3, 64, 64) and isinstance(item["label"], int)
        assert item["image_id"].split("/")[0] == str(item["label"])  # folder digit == label
        batch = next(iter(loader(ds)))
        assert batch["image"].shape == (5, 3, 64, 64) and batch["label"].dtype == torch.int64


def test_digits_caption_builder_captions_name_the_digit(session_cache_root, digits):
    ds = registry.get_builder_class("digits_caption")().build_datasets()
    assert set(ds) == {"train", "val", "test"}
    assert len(ds["train"]) == 3 * 1078 and len(ds["test"]) == 450
    for ann in ds["train"].annotation[:60]:
        label = int(ann["image"].split("/")[1])
        words = re.findall(r"[a-z0-9]+", ann["caption"])
        assert DIGIT_WORDS[label] in words or str(label) in words, ann
    item = ds["train"][0]
    assert item["image"].shape == (3, 64, 64) and isinstance(item["text_input"], str)
    assert ds["val"][0]["image_id"] == ds["val"].annotation[0]["image"].split("/")[-1][:-4]


# ---------------------------------------------------------------------------------------------------------------------
# CIFAR and image folders
# ---------------------------------------------------------------------------------------------------------------------
def _cifar_config(name, storage, splits=("train", "test"), size=32):
    cls = registry.get_builder_class(name)
    cfg = OmegaConf.load(cls.default_config_path()).datasets[name]
    cfg.build_info.images.storage = str(storage)
    cfg.build_info.splits = list(splits)
    cfg.vis_processor.eval.image_size = cfg.vis_processor.train.image_size = size
    return cfg


def _write_batch(path, labels, key="labels"):
    # the colour of each image encodes its label: red channel = 20 * label, so the label is readable from pixels
    data = np.zeros((len(labels), 3, 32, 32), np.uint8)
    data[:, 0] = (20 * np.asarray(labels))[:, None, None]
    data[:, 1] = 7
    with open(path, "wb") as f:
        pickle.dump({"data": data.reshape(len(labels), -1), key: list(labels)}, f)


def test_missing_cifar_says_where_to_put_it(tmp_path):
    builder = registry.get_builder_class("cifar10")(_cifar_config("cifar10", tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError) as err:
        builder.build_datasets()
    msg = str(err.value)
    assert str(tmp_path / "nowhere" / "cifar-10-batches-py") in msg and "download=True" in msg
    assert "CIFAR10(root=" in msg


def test_fake_cifar10_on_disk_builds_with_labels_and_classnames(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names, "num_cases_per_batch": 2}, f)
    for b in range(1, 6):
        _write_batch(folder / f"data_batch_{b}", [b, 9 - b])
    _write_batch(folder / "test_batch", [3, 1, 4, 1, 5])
    ds = registry.get_builder_class("cifar10")(_cifar_config("cifar10", tmp_path)).build_datasets()
    assert len(ds["train"]) == 10 and len(ds["test"]) == 5
    assert ds["test"].classnames == names
    assert [ds["train"][i]["label"] for i in range(10)] == [1, 8, 2, 7, 3, 6, 4, 5, 5, 4]
    batch = next(iter(loader(ds["test"])))
    assert batch["label"].tolist() == [3, 1, 4, 1, 5]
    # the pixels travelled with their labels (clip_image_eval normalises: compare the red channel's ordering)
    red = batch["image"][:, 0].mean(dim=(1, 2))
    assert torch.argsort(red).tolist() == torch.argsort(torch.tensor([3., 1.5, 4, 1.6, 5])).tolist()
    # the storage may also be the cifar-10-batches-py folder itself; a missing batch names the file
    only_test = registry.get_builder_class("cifar10")(_cifar_config("cifar10", folder, ["test"])).build_datasets()
    assert list(only_test) == ["test"] and len(only_test["test"]) == 5
    os.remove(folder / "data_batch_3")
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        registry.get_builder_class("cifar10")(_cifar_config("cifar10", tmp_path)).build_datasets()


def test_fake_cifar100_fine_labels_and_readable_names(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": ["apple", "aquarium_fish", "maple_tree"], "coarse_label_names": []}, f)
    _write_batch(folder / "train", [0, 1, 2, 2], key="fine_labels")
    _write_batch(folder / "test", [2, 0], key="fine_labels")
    ds = registry.get_builder_class("cifar100")(_cifar_config("cifar100", tmp_path)).build_datasets()
    assert ds["test"].classnames == ["apple", "aquarium fish", "maple tree"]
    assert [ds["test"][i]["label"] for i in range(2)] == [2, 0] and len(ds["train"]) == 4


def _folder_config(storage, splits=("train", "test"), classnames=None):
    cls = registry.get_builder_class("image_folder")
    cfg = OmegaConf.load(cls.default_config_path()).datasets.image_folder
    cfg.build_info.images.storage = None if storage is None else str(storage)
    cfg.build_info.splits = list(splits)
    cfg.build_info.classnames = classnames
    cfg.vis_processor.eval.image_size = cfg.vis_processor.train.image_size = 16
    return cfg


def test_missing_image_folder_root_and_split_say_where(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        registry.get_builder_class("image_folder")(_folder_config(tmp_path / "missing")).build_datasets()
    assert str(tmp_path / "missing") in str(err.value) and "<split>/<class name>/<image>" in str(err.value)
    (tmp_path / "root" / "train" / "a").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "root" / "test"))):
        registry.get_builder_class("image_folder")(_folder_config(tmp_path / "root")).build_datasets()
    with pytest.raises(ValueError, match="images.storage is not set"):
        registry.get_builder_class("image_folder")(_folder_config(None)).build_datasets()


def test_image_folder_classnames_from_folders_or_config(tmp_path):
    for split in ("train", "test"):
        for k, cname in enumerate(("golden_retriever", "tabby_cat")):
            (tmp_path / split / cname).mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (20, 20), (100 * k, 0, 0)).save(tmp_path / split / cname / f"{i}.png")
    ds = registry.get_builder_class("image_folder")(_folder_config(tmp_path)).build_datasets()
    assert ds["test"].classnames == ["golden retriever", "tabby cat"]
    item = ds["test"][3]
    assert item["label"] == 1 and item["image_id"] == os.path.join("tabby_cat", "1.png")
    assert item["image"].shape == (3, 16, 16)
    ds = registry.get_builder_class("image_folder")(
        _folder_config(tmp_path, classnames=["dog", "cat"])).build_datasets()
    assert ds["train"].classnames == ["dog", "cat"]
    with pytest.raises(ValueError, match="one name per folder"):
        registry.get_builder_class("image_folder")(_folder_config(tmp_path, classnames=["dog"])).build_datasets()


def test_lavis_imagenet_builder_is_reused_and_checked(session_cache_root, tmp_path):
    from lavis.datasets.builders.imagefolder_builder import ImageNetBuilder

    assert registry.get_builder_class("imagenet") is ImageNetBuilder  # not re-registered
    cfg = OmegaConf.load(ImageNetBuilder.default_config_path()).datasets.imagenet
    cfg.build_info.images.storage = str(tmp_path / "imagenet")
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "imagenet" / "val"))):
        cls_data.prepare_stock_classification_config("imagenet", cfg)
    for i in range(1000):
        (tmp_path / "imagenet" / "val" / f"n{i:08d}").mkdir(parents=True)
    with pytest.raises(ValueError, match="vis_processor.eval is not set"):
        cls_data.prepare_stock_classification_config("imagenet", cfg)
    cfg.vis_processor = {"eval": {"name": "clip_image_eval", "image_size": 16}}
    cfg.build_info.images.storage = os.path.relpath(str(tmp_path / "imagenet"), registry.get_path("cache_root"))
    cls_data.prepare_stock_classification_config("imagenet", cfg)
    assert cfg.build_info.images.storage == str(tmp_path / "imagenet")  # made absolute against cache_root
    Image.new("RGB", (20, 20)).save(tmp_path / "x.JPEG")
    data = open(tmp_path / "x.JPEG", "rb").read()
    for i in range(1000):  # torchvision's ImageFolder refuses empty class folders
        open(tmp_path / "imagenet" / "val" / f"n{i:08d}" / "x.JPEG", "wb").write(data)
    ds = ImageNetBuilder(cfg).build_datasets()["val"]
    assert len(ds.classnames) == 1000 and ds.classnames[0] == "tench" and len(ds) == 1000
    assert ds[2]["label"] == 2 and ds[2]["image"].shape == (3, 16, 16)


# ---------------------------------------------------------------------------------------------------------------------
# zero-shot
# ---------------------------------------------------------------------------------------------------------------------
def _hand_class_embeddings(model, templates):
    """Hand computation of CLIP's prompt ensembling for ColourWired: mean of normalised prompt vectors, renormalised."""
    rows = []
    for name in COLOUR_NAMES:
        vs = [model.text_vector(t.format(name)) for t in templates]
        vs = [v / v.norm() for v in vs]
        m = sum(vs) / len(vs)
        rows.append(m / m.norm())
    return torch.stack(rows)


def _run_zero_shot(task, model, dataset, split="test"):
    results = task.evaluation(model, loader(dataset), cuda_enabled=False)
    return task.after_evaluation(val_result=results, split_name=split, epoch=0)


def test_prompt_ensemble_matches_hand_computation():
    model = ColourWired(perm=[3, 0, 1, 2, 6, 4, 5])
    templates = ["a photo of a {}.", "a drawing of the {}", "a {} sketch", "{}"]
    got = class_text_embeddings(model, COLOUR_NAMES, templates, batch_size=3)
    want = _hand_class_embeddings(model, templates)
    assert got.shape == (7, 16)
    torch.testing.assert_close(got, want)
    # not just the first template, nor an unnormalised mean
    assert not torch.allclose(got, _hand_class_embeddings(model, templates[:1]), atol=1e-3)


def test_zero_shot_wired_to_agree_is_perfect(result_paths):
    task = ZeroShotClassificationTask(templates=["a photo of the {}.", "a sketch of a {}"])
    metrics = _run_zero_shot(task, ColourWired(), ColourSquares())
    assert metrics["top1"] == metrics["agg_metrics"] == 100.0 and metrics["top5"] == 100.0
    assert metrics["num_samples"] == 21 and metrics["num_classes"] == 7
    rows = json.load(open(result_paths / "result" / "test_epoch0.json"))
    assert len(rows) == 21 and all(r["prediction"] == r["target"] for r in rows)
    logged = [json.loads(line) for line in open(result_paths / "evaluate.txt")]
    assert logged[-1]["test"]["top1"] == 100.0


@pytest.mark.parametrize("sequence", [False, True])
def test_zero_shot_permuted_wiring_gives_the_computed_value(result_paths, sequence):
    perm = [1, 0, 2, 4, 3, 6, 5]  # classes 0<->1, 3<->4, 5<->6 swapped; 2 fixed
    templates = ["a photo of the {}.", "a drawing of a {}", "{}"]
    model = ColourWired(perm=perm, sequence=sequence)
    dataset = ColourSquares()
    task = ZeroShotClassificationTask(templates=templates, topk=[1, 3, 5, 9])
    metrics = _run_zero_shot(task, model, dataset)
    # by hand: image of class c has embedding V[c]; class j's classifier row is the ensembled text vector
    scores = model.V @ _hand_class_embeddings(model, templates).t()  # [class of image, class j]
    ranks = torch.argsort(scores, dim=1, descending=True)
    labels = torch.tensor([item["label"] for item in dataset.items])
    want = {k: 100.0 * float((ranks[labels, :k] == labels[:, None]).any(dim=1).float().mean()) for k in (1, 3, 5)}
    assert {k: metrics[f"top{k}"] for k in (1, 3, 5)} == pytest.approx(want)
    assert "top9" not in metrics  # k > number of classes is skipped
    assert metrics["top1"] <= metrics["top3"] <= metrics["top5"]
    assert metrics["top1"] < 100.0  # the swap is seen


def test_topk_accuracy_and_bad_prompts():
    ranked = np.array([[2, 0, 1], [0, 1, 2], [1, 2, 0]])
    assert topk_accuracy(ranked, [0, 0, 0], ks=[1, 2, 3, 5]) == {1: pytest.approx(100 / 3), 2: pytest.approx(200 / 3),
                                                                 3: 100.0}
    with pytest.raises(ValueError, match="no '{}'"):
        ZeroShotClassificationTask(templates=["a photo"])


# ---------------------------------------------------------------------------------------------------------------------
# linear probe
# ---------------------------------------------------------------------------------------------------------------------
def test_linear_probe_on_digit_pixels_beats_chance_and_picks_c_from_grid(digits):
    model = WiredDigits()
    xs = {s: extract_dataset_features(model, digits[s], ["image_embeds"], batch_size=256) for s in digits}
    grid = [1e-4, 1e-2, 1.0, 100.0]
    fit = fit_linear_probe(*xs["train"], *xs["test"], *xs["val"], c_grid=grid, max_iter=500)
    assert fit["top"][1] > 85.0  # chance is 10 %
    assert fit["top"][1] <= fit["top"][3] <= fit["top"][5]
    assert set(fit["val_top1_by_C"]) == set(grid) and fit["C"] in grid
    assert fit["val_top1"] == max(fit["val_top1_by_C"].values()) == fit["val_top1_by_C"][fit["C"]]
    assert fit["val_top1_by_C"][1e-4] < fit["val_top1"]  # the grid matters: far too strong regularisation loses
    assert fit["val_source"] == "val" and fit["predictions"].shape == (450, 5)
    held = fit_linear_probe(*xs["train"], *xs["test"], c_grid=grid, max_iter=500)
    assert held["val_source"] == "train_holdout" and held["top"][1] > 85.0 and held["C"] in grid


def test_linear_probe_feature_choice(digits):
    sub = torch.utils.data.Subset(digits["test"], range(40))
    x, y = extract_dataset_features(WiredDigits(with_ind=True), sub, cls_tasks.parse_probe_features(
        "image_embeds_proj+ind"), batch_size=16)
    assert x.shape == (40, 18) and len(y) == 40
    with pytest.raises(ValueError, match="separation"):
        extract_dataset_features(WiredDigits(), sub, cls_tasks.parse_probe_features("image_embeds_proj+ind"))
    with pytest.raises(ValueError, match="not an image feature"):
        cls_tasks.parse_probe_features("text_embeds")


def test_linear_probe_with_tiny_clip_latent_random_init(digits):
    if registry.get_model_class("clip_latent") is None:
        pytest.skip("clip_latent is not in this tree yet")
    from lavis.models import load_model

    model = load_model("clip_latent", "tiny", is_eval=True)
    task = LinearProbeTask(probe_features="image_embeds", c_grid=[0.01, 1.0], max_iter=300, batch_size=128)
    task.datasets = {"digits": digits}
    out = task.evaluation(model, loader(digits["test"]), cuda_enabled=False)
    assert out["fit"]["top"][1] > 40.0 and out["fit"]["C"] in (0.01, 1.0)  # random conv features; chance 10 %


# ---------------------------------------------------------------------------------------------------------------------
# end to end through LAVIS's Config / task / builders / runner
# ---------------------------------------------------------------------------------------------------------------------
def _write_yaml(path, task, run_extra, model_extra=None):
    cfg = {
        "model": {"arch": "_test_wired_clip", "model_type": "default", **(model_extra or {})},
        "datasets": {"digits": {}},
        "run": {"task": task, "batch_size_train": 16, "batch_size_eval": 128, "num_workers": 0, "seed": 42,
                "init_lr": 1e-4, "min_lr": 0, "weight_decay": 0.0, "lr_sched": "constant_lr", "max_epoch": 1,
                "output_dir": str(path.parent / "out"), "amp": False, "evaluate": True, "train_splits": [],
                "valid_splits": [], "test_splits": ["test"], "device": "cpu", "world_size": 1,
                "dist_url": "env://", "distributed": False, "use_dist_eval_sampler": False, **run_extra},
    }
    OmegaConf.save(OmegaConf.create(cfg), str(path))
    return str(path)


def _nearest_mean_topk(digits, prototypes):
    """Independent expectation for the wired zero-shot run: rank the classes by cosine to the class means."""
    data = np.load(prototypes)
    x, y = extract_dataset_features(WiredDigits(), digits["test"], ["image_embeds"], batch_size=256)
    c = data["center"]
    a = (x - c) / np.linalg.norm(x - c, axis=1, keepdims=True)
    p = (data["prototypes"] - c) / np.linalg.norm(data["prototypes"] - c, axis=1, keepdims=True)
    ranked = np.argsort(-(a @ p.T), axis=1, kind="stable")
    return {k: 100.0 * float((ranked[:, :k] == y[:, None]).any(axis=1).mean()) for k in (1, 3, 5)}


def test_zero_shot_end_to_end_evaluate_and_train(digits, prototypes, tmp_path):
    yaml = _write_yaml(tmp_path / "zs.yaml", "zero_shot_classification",
                       {"prompts": ["a photo of the {}.", "a handwritten {}"]}, {"prototypes_path": prototypes})
    runner, logs = evaluate.main(["--cfg-path", yaml])
    metrics = logs["test"]
    want = _nearest_mean_topk(digits, prototypes)
    assert metrics["top1"] > 70.0
    assert {k: metrics[f"top{k}"] for k in (1, 3, 5)} == pytest.approx(want, abs=0.5)  # float32 vs 64 near-ties
    out = str(runner.output_dir)
    logged = json.loads(open(os.path.join(out, "evaluate.txt")).read().splitlines()[-1])
    assert logged["test"]["top1"] == metrics["top1"]
    assert len(json.load(open(os.path.join(out, "result", "test_epochbest.json")))) == 450
    # lavis_latent.train with run.evaluate: True (validation on val, then test), logged to log.txt
    runner = train.main(["--cfg-path", yaml, "--options", "run.valid_splits=[val]",
                         f"run.output_dir={tmp_path / 'tr'}"])
    log = [json.loads(line) for line in open(os.path.join(str(runner.output_dir), "log.txt")) if line.startswith('{"')]
    assert any("val_top1" in r for r in log)
    assert [r for r in log if "test_top1" in r][-1]["test_top1"] == pytest.approx(metrics["top1"])


def test_linear_probe_end_to_end_train_with_evaluate(digits, tmp_path):
    yaml = _write_yaml(tmp_path / "lp.yaml", "linear_probe",
                       {"probe_c_grid": [0.01, 0.1, 1.0, 10.0], "probe_max_iter": 500, "valid_splits": ["val"]})
    runner = train.main(["--cfg-path", yaml])
    log = [json.loads(line) for line in open(os.path.join(str(runner.output_dir), "log.txt")) if line.startswith('{"')]
    test = [r for r in log if "test_top1" in r][-1]
    val = [r for r in log if "val_top1" in r][-1]
    assert test["test_top1"] > 85.0 and test["test_top1"] <= test["test_top3"] <= test["test_top5"]
    assert test["test_probe_C"] in (0.01, 0.1, 1.0, 10.0) and test["test_probe_val_from_train"] == 0
    assert val["val_probe_val_from_train"] == 1  # evaluating val itself: C chosen on held-out train
    assert test["test_num_train"] == 1078 and test["test_feature_dim"] == 64
    result = os.path.join(str(runner.output_dir), "result")
    probe = json.load(open(os.path.join(result, "test_epochbest_probe.json")))
    assert set(probe["val_top1_by_C"]) == {"0.01", "0.1", "1.0", "10.0"}
    rows = json.load(open(os.path.join(result, "test_epochbest.json")))
    assert len(rows) == 450 and 100.0 * np.mean([r["prediction"] == r["target"] for r in rows]) == pytest.approx(
        test["test_top1"])


def test_checked_build_accepts_builders_without_annotation_files(digits):
    """The latent_* tasks' checked build (run.skip_bad_images) on a folder builder that has no annotations block."""
    from lavis_latent.datasets.checks import build_datasets_checked

    built = build_datasets_checked(registry.get_builder_class("digits")(), "digits")
    assert set(built) == {"train", "val", "test"}
    assert len(built["test"]) == len(digits["test"]) and built["test"][0]["label"] == digits["test"][0]["label"]
