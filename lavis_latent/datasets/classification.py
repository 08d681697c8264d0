"""Image classification datasets for zero-shot classification and linear probes, as LAVIS builders.

=================  ==========================================================  =================================
builder name       data                                                        splits (``build_info.splits``)
=================  ==========================================================  =================================
``cifar10``        torchvision's CIFAR-10 python files (``cifar-10-batches-py``)  ``train``, ``test``
``cifar100``       torchvision's CIFAR-100 python files (``cifar-100-python``)    ``train``, ``test``
``image_folder``   any ``<storage>/<split>/<class>/<image>`` tree (torchvision    any folder names
                   ImageFolder layout); class names = folder names, ``_`` ->
                   space, or ``build_info.classnames``
``digits``         scikit-learn's bundled handwritten digits (1,797 8x8          ``train``, ``val``, ``test``
                   images), written as 64 px JPEGs in the ImageFolder layout     (60 / 15 / 25 %, stratified)
                   on first use; class names ``zero`` ... ``nine``
``digits_caption`` the same digit images with captions, for pretraining          ``train``, ``val``, ``test``
                   (LAVIS's ``coco_caption`` format and dataset classes)
``imagenet``       LAVIS's own builder (``<storage>/<split>/<wnid>/*.JPEG``,      ``train``, ``val``
                   LAVIS's CLIP-style readable class names); not re-registered
=================  ==========================================================  =================================

Every classification dataset returns ``{"image": Tensor [3, H, W], "label": int, "image_id", "instance_id": str}``
and has ``classnames`` (``list[str]``, index = label). Every builder checks its files when it builds and raises
``FileNotFoundError`` naming the missing path and where to put the data. The default yaml of each builder lies in
``lavis_latent/configs/datasets/<name>/defaults.yaml``; relative storage paths are joined to LAVIS's ``cache_root``.

LAVIS's ``imagenet`` builder works offline when its image folder exists, with three traps that
:func:`prepare_stock_classification_config` (called by the plugin's classification tasks) closes before it builds:
a relative ``storage`` is not joined to ``cache_root`` by that builder and breaks every image path, its default
config declares no processors (PIL images would reach the collate function), and a missing folder surfaces as a
torchvision error that does not say where ImageNet goes.

The digit images are sklearn's 8x8 grey levels (0-16) drawn as dark ink on white (``255 - 255 * v / 16``) and
upscaled with bilinear interpolation (``resample: nearest`` for blocky pixels), saved as JPEG (quality 95), so the
same files serve ``digits`` and ``digits_caption`` (LAVIS's caption dataset derives image ids by stripping
``.jpg``). Generation is idempotent and atomic, like the demo world's (:mod:`lavis_latent.datasets.demo_data`).
"""
import logging
import os
import pickle
import random

import numpy as np
from lavis.common.registry import registry
from lavis.datasets.builders.base_dataset_builder import BaseDatasetBuilder
from lavis.datasets.datasets.base_dataset import BaseDataset
from lavis.datasets.datasets.imagefolder_dataset import ImageFolderDataset
from PIL import Image

from lavis_latent.common.paths import config_path
from lavis_latent.datasets import demo_data
from lavis_latent.datasets.builders import COCOCapBuilder, DemoBuilderMixin, GeneratedDataMixin, resolve_storage

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

#: caption templates of ``digits_caption``: ``{word}`` is the digit's name, ``{numeral}`` the digit itself
DIGIT_CAPTION_TEMPLATES = (
    "a photo of the digit {word}",
    "a handwritten {word}",
    "the number {numeral} written by hand",
    "a scanned image of a handwritten {numeral}",
    "the digit {numeral}",
    "a small drawing of the number {word}",
    "{word}, written by hand",
    "a blurry picture of a handwritten digit {word}",
)

DIGITS_FORMAT_VERSION = 1
DIGITS_SPLITS = ("train", "val", "test")
DIGITS_DEFAULTS = {"seed": 0, "image_size": 64, "resample": "bilinear", "train_frac": 0.6, "val_frac": 0.15,
                   "captions_per_image": 3}
_RESAMPLE = {"bilinear": Image.BILINEAR, "nearest": Image.NEAREST, "bicubic": Image.BICUBIC}
_JPEG_QUALITY = 95
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


# ---------------------------------------------------------------------------------------------------------------------
# Digits: generation
# ---------------------------------------------------------------------------------------------------------------------
def digits_params(**kwargs):
    """Validated, normalised generation parameters of :func:`generate_digits` (defaults filled in).

    Raises ``ValueError`` naming the parameter for an unknown key or a value out of range.
    """
    unknown = sorted(set(kwargs) - set(DIGITS_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown digits generator parameter(s) {unknown}; valid: {sorted(DIGITS_DEFAULTS)}")
    p = dict(DIGITS_DEFAULTS)
    p.update({k: v for k, v in kwargs.items() if v is not None})
    p["seed"] = int(p["seed"])
    p["image_size"] = int(p["image_size"])
    if p["image_size"] < 8:
        raise ValueError(f"image_size must be at least 8 (the source images are 8x8), got {p['image_size']}")
    if p["resample"] not in _RESAMPLE:
        raise ValueError(f"resample must be one of {sorted(_RESAMPLE)}, got {p['resample']!r}")
    p["train_frac"], p["val_frac"] = float(p["train_frac"]), float(p["val_frac"])
    if not (0 < p["train_frac"] < 1 and 0 <= p["val_frac"] < 1 and p["train_frac"] + p["val_frac"] < 1):
        raise ValueError(f"need 0 < train_frac, 0 <= val_frac and train_frac + val_frac < 1 (the rest is test), got "
                         f"train_frac={p['train_frac']}, val_frac={p['val_frac']}")
    p["captions_per_image"] = int(p["captions_per_image"])
    if not 1 <= p["captions_per_image"] <= len(DIGIT_CAPTION_TEMPLATES):
        raise ValueError(f"captions_per_image must be in 1..{len(DIGIT_CAPTION_TEMPLATES)}, "
                         f"got {p['captions_per_image']}")
    return p


def load_digit_arrays():
    """scikit-learn's bundled handwritten digits: ``(images uint8 [1797, 8, 8] in 0-16, labels int64 [1797])``.

    Read from the files installed with scikit-learn (no network).
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise ImportError("the digits datasets need scikit-learn: pip install 'lavis-latent[probe]'") from err
    data = load_digits()
    return data.images.astype(np.uint8), data.target.astype(np.int64)


def stratified_split(labels, train_frac=0.6, val_frac=0.15, seed=0):
    """Deterministic stratified split of sample indices into train / val / test.

    Each class's indices are shuffled with a generator seeded by ``(seed, class)``; the first
    ``round(n_c * train_frac)`` go to train, the next ``round(n_c * val_frac)`` to val, the rest to test.

    Args:
        labels: int array [N].
        train_frac, val_frac: fractions of each class (the rest is test).
        seed: split seed.

    Returns:
        ``{"train": int array, "val": int array, "test": int array}`` of sorted indices into ``labels``.
    """
    labels = np.asarray(labels)
    out = {s: [] for s in DIGITS_SPLITS}
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng = np.random.default_rng([int(seed), int(c)])
        idx = idx[rng.permutation(len(idx))]
        n_train = int(round(len(idx) * train_frac))
        n_val = int(round(len(idx) * val_frac))
        out["train"].extend(idx[:n_train])
        out["val"].extend(idx[n_train:n_train + n_val])
        out["test"].extend(idx[n_train + n_val:])
    return {s: np.array(sorted(v), dtype=np.int64) for s, v in out.items()}


def render_digit(image8, image_size=64, resample="bilinear"):
    """One sklearn digit (8x8, grey levels 0-16, 16 = ink) as an RGB PIL image of ``image_size`` px, dark ink on
    white."""
    grey = (255 - np.round(np.asarray(image8, dtype=np.float64) * 255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(grey, mode="L").resize((image_size, image_size), _RESAMPLE[resample])
    return img.convert("RGB")


def digit_captions(label, index, seed=0, captions_per_image=3):
    """``captions_per_image`` distinct captions of digit ``label`` (templates :data:`DIGIT_CAPTION_TEMPLATES`,
    chosen by a generator seeded with ``(seed, index)``)."""
    rng = random.Random(f"lavis_latent_digits/{seed}/{index}")
    chosen = rng.sample(range(len(DIGIT_CAPTION_TEMPLATES)), captions_per_image)
    return [DIGIT_CAPTION_TEMPLATES[t].format(word=DIGIT_WORDS[label], numeral=label) for t in chosen]


def digits_layout(root):
    """Absolute paths under a digits root: ``root``, ``images`` (``images/<split>/<digit>/<index>.jpg``),
    ``manifest``, and ``caption_<split>`` annotation files."""
    root = os.path.abspath(os.path.expanduser(root))
    paths = {"root": root, "images": os.path.join(root, "images"), "manifest": os.path.join(root, "manifest.json")}
    for split in DIGITS_SPLITS:
        paths[f"caption_{split}"] = os.path.join(root, "annotations", f"caption_{split}.json")
    return paths


def _digits_complete(root, params):
    return demo_data.manifest_matches(root, DIGITS_FORMAT_VERSION, params, digits_layout(root).values())


def _write_digits(out, p):
    images, labels = load_digit_arrays()
    splits = stratified_split(labels, p["train_frac"], p["val_frac"], p["seed"])
    counts = {}
    for split in DIGITS_SPLITS:
        for d in range(10):
            os.makedirs(os.path.join(out, "images", split, str(d)), exist_ok=True)
        rows = []
        for index in splits[split]:
            label = int(labels[index])
            rel = f"{split}/{label}/{index:04d}.jpg"
            render_digit(images[index], p["image_size"], p["resample"]).save(
                os.path.join(out, "images", rel), format="JPEG", quality=_JPEG_QUALITY)
            captions = digit_captions(label, int(index), p["seed"], p["captions_per_image"])
            if split == "train":  # CaptionDataset: one row per caption
                rows.extend({"image": rel, "caption": c, "image_id": int(index)} for c in captions)
            else:  # caption eval format (as the demo world's): one row per image, its captions in a list
                rows.append({"image": rel, "caption": captions, "image_id": int(index)})
        demo_data.write_json(os.path.join(out, "annotations", f"caption_{split}.json"), rows)
        counts[split] = {str(d): int((labels[splits[split]] == d).sum()) for d in range(10)}
    return counts


def generate_digits(root, seed=0, image_size=64, resample="bilinear", train_frac=0.6, val_frac=0.15,
                    captions_per_image=3, force=False):
    """Write the digits data under ``root`` (unless identical data is already there) and return its paths.

    Layout: ``images/<split>/<digit>/<index>.jpg`` (``index``: position in sklearn's ``load_digits``, unique across
    splits; folders ``0``-``9`` so torchvision's ImageFolder order is the digit order),
    ``annotations/caption_<split>.json`` (LAVIS caption format) and ``manifest.json`` (parameters and per-split
    class counts).

    Args:
        root: output folder (created).
        seed: seed of the stratified split and of the caption choice.
        image_size: side of the written images in pixels (upscaled from 8x8).
        resample: ``"bilinear"`` (default), ``"nearest"`` or ``"bicubic"`` upscaling.
        train_frac, val_frac: per-class fractions of train and val (the rest is test).
        captions_per_image: distinct caption templates per image.
        force: regenerate even when the manifest matches.

    Returns:
        dict of absolute paths (:func:`digits_layout`).

    Idempotent (same parameters and complete files: nothing is written) and atomic (built in a staging folder and
    renamed into place). A non-empty ``root`` without a digits manifest is never replaced (``FileExistsError``).
    """
    params = digits_params(seed=seed, image_size=image_size, resample=resample, train_frac=train_frac,
                           val_frac=val_frac, captions_per_image=captions_per_image)
    paths = digits_layout(root)
    root = paths["root"]
    if not force and _digits_complete(root, params):
        return paths
    manifest = {"format_version": DIGITS_FORMAT_VERSION, "generator": "lavis_latent.datasets.classification",
                "params": params, "classnames": list(DIGIT_WORDS)}
    demo_data.replace_atomically(root, lambda staging: {"counts": _write_digits(staging, params)}, manifest, "digits")
    logging.info("digits data written to %s (%s)", root, params)
    return paths


class DigitsGeneratorMixin(GeneratedDataMixin):
    """``prepare_demo_data`` that writes the digits data (instead of the demo world) when the builder's storage
    paths lie under ``build_info.generator.root``."""

    generated_what = "digits data"
    generator_params = staticmethod(digits_params)
    generate_data = staticmethod(generate_digits)


# ---------------------------------------------------------------------------------------------------------------------
# Dataset classes
# ---------------------------------------------------------------------------------------------------------------------
def folder_classnames(folder_names):
    """Readable class names from ImageFolder class folder names: ``_`` -> space (``"maple_tree"`` -> ``"maple
    tree"``)."""
    return [name.replace("_", " ") for name in folder_names]


class ImageFolderClassificationDataset(ImageFolderDataset):
    """LAVIS's ``ImageFolderDataset`` over ``vis_root/<class>/<image>``, with class names and relative image ids.

    Args:
        vis_processor: image transform (PIL -> Tensor [3, H, W]).
        vis_root: the split folder (absolute).
        classnames: ``list[str]`` in the sorted order of the class folders, or ``None`` for the folder names with
            ``_`` -> space.

    Items: ``{"image": Tensor, "label": int, "image_id": "<class>/<file>", "instance_id": str}``.
    """

    def __init__(self, vis_processor, vis_root, classnames=None, **kwargs):
        vis_root = os.path.abspath(vis_root)
        super().__init__(vis_processor=vis_processor, vis_root=vis_root, classnames=[])
        self.folder_names = list(self.inner_dataset.classes)
        if classnames:
            classnames = [str(c) for c in classnames]
            if len(classnames) != len(self.folder_names):
                raise ValueError(
                    f"{len(classnames)} class names given (build_info.classnames) but {vis_root} has "
                    f"{len(self.folder_names)} class folders ({', '.join(self.folder_names[:10])}"
                    f"{' ...' if len(self.folder_names) > 10 else ''}); give one name per folder, in sorted "
                    "folder order")
            self.classnames = classnames
        else:
            self.classnames = folder_classnames(self.folder_names)
        for ann in self.annotation:  # LAVIS keeps the joined path; relative ids are portable in result files
            ann["image"] = os.path.relpath(ann["image"], vis_root)
            ann["image_id"] = ann["image"]


def cifar_folder(root, variant):
    """The folder holding the CIFAR python files: ``root/<torchvision base folder>`` or ``root`` itself."""
    from torchvision.datasets import CIFAR10, CIFAR100

    tv = {"cifar10": CIFAR10, "cifar100": CIFAR100}[variant]
    nested = os.path.join(root, tv.base_folder)
    if os.path.isdir(nested):
        return nested, tv
    if os.path.isfile(os.path.join(root, tv.meta["filename"])):
        return root, tv
    return nested, tv


def cifar_download_hint(variant, root):
    """How to put CIFAR where the builder looks (a sentence for error messages)."""
    tv_name = {"cifar10": "CIFAR10", "cifar100": "CIFAR100"}[variant]
    url = {"cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
           "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"}[variant]
    return (f"Download the {tv_name.replace('CIFAR', 'CIFAR-')} python version into {root} "
            f"(torchvision.datasets.{tv_name}(root={root!r}, download=True) on a machine with network, or extract "
            f"{url} there), or set datasets.{variant}.build_info.images.storage to the folder that holds it.")


def read_cifar(root, variant="cifar10", train=False):
    """Read torchvision's on-disk CIFAR format (pickled batches) without downloading or checking md5 sums.

    Args:
        root: the folder holding ``cifar-10-batches-py/`` / ``cifar-100-python/`` (torchvision's ``root``), or that
            folder itself.
        variant: ``"cifar10"`` or ``"cifar100"`` (fine labels).
        train: the training batches, else the test batch.

    Returns:
        ``(images uint8 [N, 32, 32, 3], labels int64 [N], classnames list[str])``; class names from the meta file
        with ``_`` -> space.

    Raises:
        FileNotFoundError: naming the missing file and how to get the data.
    """
    folder, tv = cifar_folder(root, variant)
    files = [name for name, _ in (tv.train_list if train else tv.test_list)]
    needed = [tv.meta["filename"]] + files
    for name in needed:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{variant}: {path} not found (need {', '.join(needed)} in {folder}). "
                                    + cifar_download_hint(variant, root))
    with open(os.path.join(folder, tv.meta["filename"]), "rb") as f:
        meta = pickle.load(f, encoding="latin1")
    classnames = folder_classnames(meta[tv.meta["key"]])
    data, labels = [], []
    for name in files:
        with open(os.path.join(folder, name), "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        data.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.extend(entry["labels"] if "labels" in entry else entry["fine_labels"])
    images = np.ascontiguousarray(np.concatenate(data).transpose(0, 2, 3, 1))
    return images, np.asarray(labels, dtype=np.int64), classnames


class CIFARDataset(BaseDataset):
    """CIFAR-10 / CIFAR-100 from torchvision's on-disk format (see :func:`read_cifar`), held in memory as uint8.

    Items: ``{"image": Tensor, "label": int, "image_id": int (index in the split), "instance_id": str}``.
    """

    def __init__(self, vis_processor, vis_root, variant="cifar10", split="test", **kwargs):
        super().__init__(vis_processor=vis_processor, vis_root=vis_root, ann_paths=[])
        self.images, labels, self.classnames = read_cifar(vis_root, variant, train=split == "train")
        self.annotation = [{"label": int(y), "image_id": i} for i, y in enumerate(labels)]
        self._add_instance_ids()

    def __getitem__(self, index):
        ann = self.annotation[index]
        image = self.vis_processor(Image.fromarray(self.images[index]))
        return {"image": image, "label": ann["label"], "image_id": ann["image_id"], "instance_id": ann["instance_id"]}


# ---------------------------------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------------------------------
class ClassificationBuilder(BaseDatasetBuilder):
    """Base of the plugin's classification builders: ``build_info.splits`` + ``build_info.images.storage``, checked
    files, the ``train`` vis processor for the train split and the ``eval`` one for the others."""

    name = None
    allowed_splits = None  # None: any split name
    DATASET_CONFIG_DICT = {}

    @classmethod
    def default_config_path(cls, type="default"):
        """Absolute path of the default yaml (LAVIS would join a relative one to its own package root)."""
        return cls.DATASET_CONFIG_DICT[type]

    def splits(self):
        """The configured split names (``build_info.splits``), checked against :attr:`allowed_splits`."""
        splits = list(self.config.build_info.get("splits") or [])
        if not splits:
            raise ValueError(f"datasets.{self.name}.build_info.splits is empty: name the splits to build")
        if self.allowed_splits is not None:
            bad = [s for s in splits if s not in self.allowed_splits]
            if bad:
                raise ValueError(f"datasets.{self.name}.build_info.splits: {bad} not available; {self.name} has "
                                 f"{', '.join(self.allowed_splits)} (the linear probe holds out part of train when "
                                 "there is no val split)")
        return splits

    def storage(self):
        """The image root (``build_info.images.storage``) as an absolute path (relative = under ``cache_root``)."""
        vis = self.config.build_info.get(self.data_type)
        storage = vis.get("storage") if vis is not None else None
        if not storage:
            raise ValueError(f"datasets.{self.name}.build_info.{self.data_type}.storage is not set: "
                             "the folder that holds the data")
        return resolve_storage(storage)

    def check_files(self):
        """Raise ``FileNotFoundError`` naming what is missing and where the data goes."""
        raise NotImplementedError

    def make_dataset(self, split, vis_processor):
        """The dataset of one split."""
        raise NotImplementedError

    def _download_data(self):  # LAVIS: main process only, before build()
        self.check_files()

    def build(self):
        """``{split: dataset}`` for every configured split (files checked first)."""
        self.check_files()
        self.build_processors()
        datasets = {}
        for split in self.splits():
            proc = self.vis_processors["train" if split == "train" else "eval"]
            if proc is None:
                raise ValueError(f"datasets.{self.name}.vis_processor."
                                 f"{'train' if split == 'train' else 'eval'} is not set (split {split!r})")
            datasets[split] = self.make_dataset(split, proc)
        return datasets


def _classnames_from_config(value, name):
    """``build_info.classnames``: a list, a path to a text file (one name per line), or None."""
    if value is None:
        return None
    if isinstance(value, str):
        path = resolve_storage(value)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"datasets.{name}.build_info.classnames: file {path} not found (a text file with "
                                    "one class name per line, in sorted class-folder order, or a yaml list)")
        with open(path) as f:
            return [line.strip() for line in f if line.strip()]
    return [str(c) for c in value]


@registry.register_builder("image_folder")
class ImageFolderBuilder(ClassificationBuilder):
    """Any torchvision ImageFolder tree, one folder per split: ``<storage>/<split>/<class>/<image>``."""

    name = "image_folder"
    train_dataset_cls = eval_dataset_cls = ImageFolderClassificationDataset
    DATASET_CONFIG_DICT = {"default": config_path("datasets", "image_folder", "defaults.yaml")}

    def _hint(self, root):
        return (f"Put one folder per split under {root} ({root}/<split>/<class name>/<image>, e.g. "
                f"{root}/test/golden_retriever/0001.jpg; class names are the folder names with _ -> space unless "
                f"build_info.classnames lists them) and set datasets.{self.name}.build_info.images.storage to that "
                "root (relative paths are joined to LAVIS's cache_root).")

    def check_files(self):
        root = self.storage()
        if not os.path.isdir(root):
            raise FileNotFoundError(f"{self.name}: image root {root} not found. " + self._hint(root))
        for split in self.splits():
            folder = os.path.join(root, split)
            if not os.path.isdir(folder):
                raise FileNotFoundError(f"{self.name}: split folder {folder} not found (split {split!r} of "
                                        f"build_info.splits). " + self._hint(root))
            classes = sorted(d.name for d in os.scandir(folder) if d.is_dir())
            if not classes:
                raise FileNotFoundError(f"{self.name}: {folder} has no class folders. " + self._hint(root))

    def make_dataset(self, split, vis_processor):
        classnames = _classnames_from_config(self.config.build_info.get("classnames"), self.name)
        return self.eval_dataset_cls(vis_processor=vis_processor, vis_root=os.path.join(self.storage(), split),
                                     classnames=classnames)


@registry.register_builder("digits")
class DigitsBuilder(DigitsGeneratorMixin, ImageFolderBuilder):
    """scikit-learn's handwritten digits in the ImageFolder layout, generated under ``cache_root`` on first use
    (``build_info.generator``); class names ``zero`` ... ``nine``."""

    name = "digits"
    DATASET_CONFIG_DICT = {"default": config_path("datasets", "digits", "defaults.yaml")}

    def _download_data(self):
        self.prepare_demo_data()
        self.check_files()

    def _hint(self, root):
        return ("The digits are generated into build_info.generator.root when build_info.generator.enabled is true "
                "and build_info.images.storage lies under that root; otherwise point the storage at an existing "
                "<root>/<split>/<class>/ tree. " + super()._hint(root))


class _CIFARBuilder(ClassificationBuilder):
    variant = None
    allowed_splits = ("train", "test")
    train_dataset_cls = eval_dataset_cls = CIFARDataset

    def check_files(self):
        root = self.storage()
        folder, tv = cifar_folder(root, self.variant)
        names = [tv.meta["filename"]]
        splits = self.splits()
        if "train" in splits:
            names += [n for n, _ in tv.train_list]
        if any(s != "train" for s in splits):
            names += [n for n, _ in tv.test_list]
        for name in names:
            path = os.path.join(folder, name)
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"{self.variant}: {path} not found (config key datasets.{self.name}.build_info.images.storage = "
                    f"{root}). " + cifar_download_hint(self.variant, root))

    def make_dataset(self, split, vis_processor):
        return self.eval_dataset_cls(vis_processor=vis_processor, vis_root=self.storage(), variant=self.variant,
                                     split=split)


@registry.register_builder("cifar10")
class CIFAR10Builder(_CIFARBuilder):
    """CIFAR-10 (torchvision's ``cifar-10-batches-py`` under ``build_info.images.storage``): train 50k, test 10k."""

    name = variant = "cifar10"
    DATASET_CONFIG_DICT = {"default": config_path("datasets", "cifar10", "defaults.yaml")}


@registry.register_builder("cifar100")
class CIFAR100Builder(_CIFARBuilder):
    """CIFAR-100, fine labels (torchvision's ``cifar-100-python`` under ``build_info.images.storage``)."""

    name = variant = "cifar100"
    DATASET_CONFIG_DICT = {"default": config_path("datasets", "cifar100", "defaults.yaml")}


@registry.register_builder("digits_caption")
class DigitsCaptionBuilder(DigitsGeneratorMixin, DemoBuilderMixin, COCOCapBuilder):
    """The digit images with captions (LAVIS's ``coco_caption`` format and dataset classes), for pretraining
    (``image_text_pretrain`` / ``latent_pretrain``); generated on first use like ``digits``."""

    name = "digits_caption"
    DATASET_CONFIG_DICT = {"default": config_path("datasets", "digits_caption", "defaults.yaml")}


CLASSIFICATION_BUILDERS = {cls.name: cls for cls in (ImageFolderBuilder, DigitsBuilder, CIFAR10Builder,
                                                     CIFAR100Builder)}


# ---------------------------------------------------------------------------------------------------------------------
# LAVIS's imagenet builder
# ---------------------------------------------------------------------------------------------------------------------
def prepare_stock_classification_config(name, dataset_cfg):
    """Make a LAVIS ``imagenet`` dataset config safe to build; other names are left alone.

    LAVIS's ``ImageNetBuilder`` reads ``<storage>/<split>/<wnid>/*`` with torchvision's ImageFolder and LAVIS's
    1000 readable class names (``lavis.datasets.builders.imagefolder_builder.imagenet_classnames``), offline. This
    resolves a relative ``storage`` against ``cache_root`` and writes it back as an absolute path (the builder joins
    it with nothing, and its dataset then doubles relative image paths), and checks up front that every split folder
    holds 1000 class folders and that the processors the splits need are configured.

    Args:
        name: the dataset's name in the run config.
        dataset_cfg: its config node (``cfg.datasets_cfg[name]``), edited in place.

    Raises:
        FileNotFoundError: a missing split folder (the message says where ImageNet goes).
        ValueError: a wrong number of class folders, or no ``vis_processor`` for a configured split.
    """
    if name != "imagenet":
        return dataset_cfg
    build_info = dataset_cfg.build_info
    storage = os.path.normpath(resolve_storage(build_info.images.storage))
    build_info.images.storage = storage
    splits = list(build_info.get("splits") or [])
    hint = ("Put ILSVRC-2012 there as <storage>/<split>/<wnid>/<image>.JPEG (1000 folders named by WordNet id, e.g. "
            "n01440764; the validation images sorted into them, e.g. with the usual valprep.sh), and set "
            "datasets.imagenet.build_info.images.storage to <storage> (relative paths are joined to LAVIS's "
            "cache_root); build_info.splits lists the splits (LAVIS allows train and val).")
    for split in splits:
        folder = os.path.join(storage, split)
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"imagenet split folder {folder} not found. {hint}")
        n = sum(1 for d in os.scandir(folder) if d.is_dir())
        if n != 1000:
            raise ValueError(f"imagenet: {folder} has {n} class folders, LAVIS's class names need exactly 1000 (one "
                             f"per WordNet id, sorted). {hint}")
    procs = dataset_cfg.get("vis_processor") or {}
    for split in splits:
        which = "train" if split == "train" else "eval"
        if procs.get(which) is None:
            raise ValueError(
                f"datasets.imagenet.vis_processor.{which} is not set (needed by split {split!r}): LAVIS's imagenet "
                "config declares no processors, so PIL images would reach the collate function. Add e.g. "
                "vis_processor: {eval: {name: clip_image_eval, image_size: 224}, train: {name: clip_image_eval, "
                "image_size: 224}}.")
    return dataset_cfg
