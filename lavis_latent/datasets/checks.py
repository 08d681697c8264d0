"""Bad input in LAVIS datasets: annotation files checked before the datasets are built, images read with errors
that name the file, and an opt-in switch that skips bad training samples instead (counted, each one named).

LAVIS 1.0.2's dataset classes read an annotation entry's fields without checking them (a missing ``image_id`` is a
bare ``KeyError: 'image_id'`` from the dataset constructor, or from ``__getitem__`` in the middle of an epoch), only
warn about a missing image folder, and open each image in ``__getitem__`` with ``Image.open(path).convert("RGB")``
(grayscale, palette and RGBA images are therefore converted to RGB; a truncated JPEG fails with "image file is
truncated", which names no file). :func:`build_datasets_checked` builds a LAVIS builder's datasets the way
``BaseDatasetBuilder.build_datasets`` does, with two additions:

* before ``build()``, every annotation entry of the known dataset classes (:data:`ANNOTATION_FORMATS`) is checked:
  it must be an object with the fields the class reads (else ``ValueError`` naming the file, the entry's index
  and the field), its text fields must not be empty, and every image it names must exist;
* after ``build()``, each dataset is wrapped in :class:`CheckedImageDataset`, whose ``__getitem__`` turns an
  unreadable image into :class:`BadImageError` naming the file, the split and the sample index.

``skip_bad=True`` (``run.skip_bad_images: true``) turns the *training* split's empty captions, missing images and
unreadable images into skipped samples: the first two are dropped from the annotation list before training (one
warning with the counts and the first files), a sample whose image cannot be decoded is replaced by the next readable
one (a warning naming the file the first time, with the running count of this process; it is never read again;
``CheckedImageDataset.skipped``). Validation and test splits are
never thinned (their metrics are computed per index): bad samples there stay errors.
"""
import json
import logging
import os

import torch.distributed as dist
from lavis.common.dist_utils import is_dist_avail_and_initialized, is_main_process
from PIL import Image
from torch.utils.data import Dataset

#: LAVIS dataset class name -> format of its annotation entries: ``fields`` every entry must have, ``text`` fields
#: that must not be empty (a string, or a list of strings), ``image_suffix`` appended to image names by the class,
#: ``first_file_only`` when only the first annotation file of the split holds entries (VQA eval: answer list etc.).
#: Subclasses inherit their parent's format (looked up along the MRO).
ANNOTATION_FORMATS = {
    "RetrievalDataset": {"fields": ("image", "caption", "image_id"), "text": ("caption",)},
    "RetrievalEvalDataset": {"fields": ("image", "caption"), "text": ("caption",)},
    "CaptionDataset": {"fields": ("image", "caption", "image_id"), "text": ("caption",)},
    "COCOCapEvalDataset": {"fields": ("image",), "text": ()},
    "CaptionEvalDataset": {"fields": ("image", "image_id"), "text": ()},
    "COCOVQADataset": {"fields": ("image", "question", "answer"), "text": ("question",)},
    "COCOVQAEvalDataset": {"fields": ("image", "question", "question_id"), "text": ("question",),
                           "first_file_only": True},
    "NLVRDataset": {"fields": ("images", "sentence", "label"), "text": ("sentence",)},
    "SNLIVisualEntialmentDataset": {"fields": ("image", "sentence", "label"), "text": ("sentence",),
                                    "image_suffix": ".jpg"},
}

#: exceptions that mean "this image file cannot be read" (PIL raises OSError subclasses, SyntaxError for some
#: broken PNGs, DecompressionBombError for absurd sizes)
IMAGE_ERRORS = (OSError, SyntaxError, Image.DecompressionBombError)


class BadImageError(OSError):
    """An image named by an annotation entry is missing or cannot be decoded (the message names the file)."""


def annotation_format(dataset_cls):
    """The :data:`ANNOTATION_FORMATS` entry of a dataset class (or of its nearest known base class), or None."""
    for klass in getattr(dataset_cls, "__mro__", ()):
        if klass.__name__ in ANNOTATION_FORMATS:
            return ANNOTATION_FORMATS[klass.__name__]
    return None


def _images_of(entry, suffix=""):
    names = []
    if isinstance(entry.get("image"), str):
        names.append(entry["image"] + suffix)
    if isinstance(entry.get("images"), (list, tuple)):
        names.extend(str(n) + suffix for n in entry["images"])
    return names


def _empty_text(value):
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple)):
        return len(value) == 0 or any(not isinstance(v, str) or not v.strip() for v in value)
    return value is None


def check_split_annotations(dataset_cls, ann_paths, vis_root, where, skip_bad=False):
    """Check the annotation files of one split before LAVIS builds its dataset.

    Args:
        dataset_cls: the LAVIS dataset class that will read them (its format comes from :data:`ANNOTATION_FORMATS`;
            an unknown class gets only the JSON and image checks).
        ann_paths: the split's annotation files (absolute), in LAVIS's order.
        vis_root: the image folder (absolute).
        where: ``"datasets.<name> split '<split>'"``, for messages.
        skip_bad: return skippable problems (empty text, missing image) instead of raising.

    Returns:
        ``{index in the concatenated annotation list: (kind, detail)}`` of the entries to drop, kind ``"empty text"``
        or ``"missing image"`` (empty unless ``skip_bad``).

    Raises:
        ValueError: a file that is not a JSON list, an entry that is not an object or lacks a field (always); an
            empty text field (unless ``skip_bad``).
        FileNotFoundError: an image that does not exist (unless ``skip_bad``).
    """
    fmt = annotation_format(dataset_cls) or {"fields": (), "text": ()}
    suffix = fmt.get("image_suffix", "")
    paths = list(ann_paths)[:1] if fmt.get("first_file_only") else list(ann_paths)
    bad, offset, exists = {}, 0, {}
    for path in paths:
        try:
            with open(path) as f:
                entries = json.load(f)
        except ValueError as err:
            raise ValueError(f"{where}: annotation file {path} is not valid JSON: {err}") from None
        if not isinstance(entries, list):
            raise ValueError(f"{where}: annotation file {path} must hold a JSON list of entries, "
                             f"got a {type(entries).__name__}")
        for i, entry in enumerate(entries):
            at = f"{where}: annotation file {path}, entry {i} (0-based)"
            if not isinstance(entry, dict):
                raise ValueError(f"{at} is a {type(entry).__name__}, not an object with fields "
                                 f"{', '.join(fmt['fields'])}")
            for field in fmt["fields"]:
                if field not in entry:
                    raise ValueError(f"{at} has no field {field!r} ({dataset_cls.__name__} entries need "
                                     f"{', '.join(fmt['fields'])}; this one has {', '.join(sorted(entry)) or 'none'})")
            for field in fmt["text"]:
                if _empty_text(entry[field]):
                    reason = f"{at}: field {field!r} is empty ({entry[field]!r})"
                    if not skip_bad:
                        raise ValueError(reason + ". Fix or remove the entry, or set run.skip_bad_images: true to "
                                                  "drop such training samples.")
                    bad.setdefault(offset + i, ("empty text", f"{path} entry {i} field {field!r}"))
            for name in _images_of(entry, suffix):
                image = os.path.join(vis_root, name)
                if image not in exists:
                    exists[image] = os.path.isfile(image)
                if not exists[image]:
                    if not skip_bad:
                        raise FileNotFoundError(f"{at}: image {image} does not exist. Fix the path (images are read "
                                                "from build_info.images.storage) or set run.skip_bad_images: true "
                                                "to drop such training samples.")
                    bad.setdefault(offset + i, ("missing image", image))
        offset += len(entries)
    return bad


class CheckedImageDataset(Dataset):
    """A LAVIS dataset whose unreadable images raise :class:`BadImageError` naming the file, or (``skip=True``)
    are replaced by the next readable sample, counted in ``skipped``. Everything else (``collater``, ``text``,
    ``img2txt``, ``annotation``, ...) is the wrapped dataset's."""

    def __init__(self, dataset, where, skip=False, max_tries=16):
        self.dataset, self.where, self.skip, self.max_tries = dataset, where, skip, max_tries
        self.bad_indices = set()  # samples found unreadable (in this process), never read again

    @property
    def skipped(self):
        """How many samples this process found unreadable and skipped."""
        return len(self.bad_indices)

    def __len__(self):
        return len(self.dataset)

    def collater(self, samples):
        """The wrapped dataset's collater."""
        return self.dataset.collater(samples)

    def _describe(self, index, err):
        files = getattr(err, "filename", None)
        if not files:
            try:
                ann = self.dataset.annotation[index]
                fmt = annotation_format(type(self.dataset)) or {}
                names = _images_of(ann, fmt.get("image_suffix", ""))
                files = ", ".join(os.path.join(str(self.dataset.vis_root), n) for n in names) or "?"
            except Exception:  # noqa: BLE001  (best effort: the message must not hide the original error)
                files = "?"
        return f"{self.where}, sample {index}: cannot read image {files}: {type(err).__name__}: {err}"

    def _read(self, index):
        """The sample, or None when (skipping) its image is unreadable."""
        if index in self.bad_indices:
            return None
        try:
            return self.dataset[index]
        except IMAGE_ERRORS as err:
            message = self._describe(index, err)
            if not self.skip:
                raise BadImageError(message + " (set run.skip_bad_images: true to skip such training "
                                              "samples)") from err
            self.bad_indices.add(index)
            logging.warning("%s; skipped (%d unreadable samples skipped so far in this process)", message,
                            self.skipped)
            return None

    def __getitem__(self, index):
        n = len(self.dataset)
        for k in range(min(self.max_tries, n)):
            sample = self._read((index + k) % n)
            if sample is not None:
                return sample
        raise BadImageError(f"{self.where}: {min(self.max_tries, n)} samples in a row from index {index} have "
                            "unreadable images; check the image folder")

    def __getattr__(self, name):
        if name == "dataset" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.dataset, name)


def _split_files(builder, split):
    from lavis_latent.datasets.builders import resolve_storage

    info = builder.config.build_info
    storage = info.annotations.get(split).storage
    ann_paths = [resolve_storage(p) for p in ([storage] if isinstance(storage, str) else list(storage))]
    vis = info.get(builder.config.get("data_type", "images"))
    vis_root = resolve_storage(vis.storage) if vis is not None and vis.get("storage") is not None else ""
    return ann_paths, vis_root


def build_datasets_checked(builder, name, skip_bad=False):
    """``builder.build_datasets()`` (LAVIS: download on the main process, barrier, ``build()``) with the
    annotation checks before ``build()`` and :class:`CheckedImageDataset` around each split (see the module
    docstring). ``skip_bad`` applies to the ``train`` split only."""
    if skip_bad and hasattr(builder, "check_images"):
        builder.check_images = False  # the demo builders' own up-front image check would raise
    if is_main_process():
        builder._download_data()
    if is_dist_avail_and_initialized():
        dist.barrier()

    drops = {}
    # builders without annotation files (image folders, CIFAR) have nothing to check here
    annotations = builder.config.build_info.get("annotations", None) or {}
    for split in annotations.keys():
        if split not in ("train", "val", "test"):
            continue
        is_train = split == "train"
        dataset_cls = builder.train_dataset_cls if is_train else builder.eval_dataset_cls
        if dataset_cls is None:
            continue
        ann_paths, vis_root = _split_files(builder, split)
        where = f"datasets.{name} split {split!r}"
        drops[split] = check_split_annotations(dataset_cls, ann_paths, vis_root, where, skip_bad and is_train)

    logging.info("Building datasets...")
    datasets = builder.build()
    for split, dataset in list(datasets.items()):
        bad = drops.get(split)
        if bad:
            dataset.annotation = [a for i, a in enumerate(dataset.annotation) if i not in bad]
            missing = sorted({path for kind, path in bad.values() if kind == "missing image"})
            empty = [where for kind, where in bad.values() if kind == "empty text"]
            parts = []
            if missing:
                parts.append(f"{len(missing)} missing images ({', '.join(missing[:5])}"
                             f"{' ...' if len(missing) > 5 else ''})")
            if empty:
                parts.append(f"{len(empty)} entries with an empty text ({'; '.join(empty[:5])}"
                             f"{' ...' if len(empty) > 5 else ''})")
            logging.warning("datasets.%s split %r: dropped %d bad training samples (run.skip_bad_images): %s",
                            name, split, len(bad), "; ".join(parts))
        datasets[split] = CheckedImageDataset(dataset, f"datasets.{name} split {split!r}",
                                              skip=skip_bad and split == "train")
    return datasets
