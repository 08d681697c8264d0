"""LAVIS's own ``imagenet`` builder, made safe to build (see :func:`prepare_stock_classification_config`)."""
import os

from lavis_latent.datasets.storage import resolve_storage

_HINT = ("Put ILSVRC-2012 there as <storage>/<split>/<wnid>/<image>.JPEG (1000 folders named by WordNet id, e.g. "
         "n01440764; the validation images sorted into them, e.g. with the usual valprep.sh), and set "
         "datasets.imagenet.build_info.images.storage to <storage> (relative paths are joined to LAVIS's "
         "cache_root); build_info.splits lists the splits (LAVIS allows train and val).")


def _check_split_folders(storage, splits):
    """Each split folder must exist and hold exactly 1000 class folders."""
    for split in splits:
        folder = os.path.join(storage, split)
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"imagenet split folder {folder} not found. {_HINT}")
        n = sum(1 for d in os.scandir(folder) if d.is_dir())
        if n != 1000:
            raise ValueError(f"imagenet: {folder} has {n} class folders, LAVIS's class names need exactly 1000 (one "
                             f"per WordNet id, sorted). {_HINT}")


def _check_processors(procs, splits):
    """The ``train`` / ``eval`` vis processor each split needs must be configured."""
    for split in splits:
        which = "train" if split == "train" else "eval"
        if procs.get(which) is None:
            raise ValueError(
                f"datasets.imagenet.vis_processor.{which} is not set (needed by split {split!r}): LAVIS's imagenet "
                "config declares no processors, so PIL images would reach the collate function. Add e.g. "
                "vis_processor: {eval: {name: clip_image_eval, image_size: 224}, train: {name: clip_image_eval, "
                "image_size: 224}}.")


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
    _check_split_folders(storage, splits)
    _check_processors(dataset_cfg.get("vis_processor") or {}, splits)
    return dataset_cfg
