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
import logging

import torch.distributed as dist
from lavis.common.dist_utils import is_dist_avail_and_initialized, is_main_process

from lavis_latent.datasets.annotation_checks import ANNOTATION_FORMATS, annotation_format, check_split_annotations
from lavis_latent.datasets.image_reading import IMAGE_ERRORS, BadImageError, CheckedImageDataset
from lavis_latent.datasets.storage import config_entries, resolve_storage

__all__ = [
    "ANNOTATION_FORMATS", "IMAGE_ERRORS", "BadImageError", "CheckedImageDataset", "annotation_format",
    "check_split_annotations", "build_datasets_checked",
]


def _split_files(builder, split):
    """``(annotation files, image folder)`` of one split of a builder's config, as absolute paths."""
    info = builder.config.build_info
    ann_paths = [resolve_storage(p) for p in config_entries(info.annotations.get(split).storage)]
    vis = info.get(builder.config.get("data_type", "images"))
    vis_root = resolve_storage(vis.storage) if vis is not None and vis.get("storage") is not None else ""
    return ann_paths, vis_root


def _builder_options(builder, skip_bad):
    """The keyword arguments of the builder's ``_download_data`` and ``build``: ``skip_bad_images`` for a builder
    that declares it takes it (``takes_skip_bad_images``: the demo builders, whose own up-front image check would
    otherwise raise on the training samples this build drops), none for others."""
    return {"skip_bad_images": skip_bad} if getattr(builder, "takes_skip_bad_images", False) else {}


def _check_annotations(builder, name, skip_bad):
    """:func:`check_split_annotations` on each train / val / test split; ``{split: entries to drop}``."""
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
    return drops


def _first_five(items, sep):
    return f"{sep.join(items[:5])}{' ...' if len(items) > 5 else ''}"


def _drop_entries(dataset, bad, name, split):
    """Remove the entries ``bad`` names from a built dataset's annotation list, with one warning of the counts."""
    dataset.annotation = [a for i, a in enumerate(dataset.annotation) if i not in bad]
    missing = sorted({path for kind, path in bad.values() if kind == "missing image"})
    empty = [where for kind, where in bad.values() if kind == "empty text"]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing images ({_first_five(missing, ', ')})")
    if empty:
        parts.append(f"{len(empty)} entries with an empty text ({_first_five(empty, '; ')})")
    logging.warning("datasets.%s split %r: dropped %d bad training samples (run.skip_bad_images): %s",
                    name, split, len(bad), "; ".join(parts))


def build_datasets_checked(builder, name, skip_bad=False):
    """``builder.build_datasets()`` (LAVIS: download on the main process, barrier, ``build()``) with the
    annotation checks before ``build()`` and :class:`CheckedImageDataset` around each split (see the module
    docstring). ``skip_bad`` applies to the ``train`` split only."""
    options = _builder_options(builder, skip_bad)
    if is_main_process():
        builder._download_data(**options)
    if is_dist_avail_and_initialized():
        dist.barrier()

    drops = _check_annotations(builder, name, skip_bad)
    logging.info("Building datasets...")
    datasets = builder.build(**options)
    for split, dataset in list(datasets.items()):
        if drops.get(split):
            _drop_entries(dataset, drops[split], name, split)
        datasets[split] = CheckedImageDataset(dataset, f"datasets.{name} split {split!r}",
                                              skip=skip_bad and split == "train")
    return datasets
