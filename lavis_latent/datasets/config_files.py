"""Up-front checks that the files a LAVIS builder config names exist, with errors naming the config key."""
import json
import os

from omegaconf import OmegaConf

from lavis_latent.datasets.annotation_checks import images_of
from lavis_latent.datasets.storage import cache_root, config_entries, resolve_storage


def _referenced_images(ann_path, image_suffix=""):
    """Image paths (relative to the image folder) referenced by a LAVIS annotation list; [] for other json."""
    try:
        with open(ann_path) as f:
            rows = json.load(f)
    except (OSError, ValueError):
        return []
    if not isinstance(rows, list):
        return []
    return [name for row in rows if isinstance(row, dict) for name in images_of(row, image_suffix)]


def _annotation_files(build_info, prefix, fix):
    """``{split: [absolute paths]}`` of ``build_info.annotations``; ``FileNotFoundError`` for a missing one."""
    result = {}
    anns = build_info.get("annotations") or {}
    for split in anns.keys():
        storage = anns[split].get("storage") if anns[split] is not None else None
        entries = config_entries(storage)
        key = f"{prefix}build_info.annotations.{split}.storage"
        if not entries:
            raise FileNotFoundError(f"{key} is not set: split {split!r} names no annotation file.{fix}")
        resolved = []
        for i, entry in enumerate(entries):
            path = resolve_storage(entry)
            if not os.path.isfile(path):
                where = key if isinstance(storage, str) else f"{key}[{i}]"
                raise FileNotFoundError(
                    f"annotation file for split {split!r} not found: {path} (config key {where} = {entry!r}).{fix}")
            resolved.append(path)
        result[split] = resolved
    return result


def _visual_folder(build_info, data_type, key, fix):
    """The absolute folder of ``build_info.<data_type>.storage``; ``FileNotFoundError`` when unset or missing."""
    vis = build_info.get(data_type)
    if vis is None or vis.get("storage") is None:
        raise FileNotFoundError(f"{key} is not set: no folder for the {data_type}.{fix}")
    folder = resolve_storage(vis.get("storage"))
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"{data_type} folder not found: {folder} (config key {key} = {vis.get('storage')!r}).{fix}")
    return folder


def _check_images(annotations, folder, image_suffix, where, fix):
    """``FileNotFoundError`` for the first image named in the annotation files that is not in ``folder``."""
    for split, paths in annotations.items():
        for ann_path in paths:
            for rel in _referenced_images(ann_path, image_suffix):
                if not os.path.isfile(os.path.join(folder, rel)):
                    raise FileNotFoundError(
                        f"image {os.path.join(folder, rel)} named in {ann_path} (split {split!r}) does not exist "
                        f"(images are read from config key {where}).{fix}")


def check_annotation_files(builder_config, name=None, check_images=False, image_suffix="", hint=None):
    """Check up front that a LAVIS builder config's files exist; raise ``FileNotFoundError`` naming what is missing.

    Works for any LAVIS builder config (a dataset node such as ``cfg.datasets_cfg.coco_retrieval``): every
    ``build_info.annotations.<split>.storage`` entry (a path or a list of paths) and the visual folder
    ``build_info.<data_type>.storage``, resolved as LAVIS resolves them (relative paths are joined to
    ``cache_root``). With ``check_images`` every image named in the annotation lists (``"image"`` or ``"images"``
    entries, plus ``image_suffix``: ``".jpg"`` for SNLI-VE, whose dataset appends it) must exist as well; LAVIS itself
    only warns at build time and crashes later in ``__getitem__``.

    Args:
        builder_config: the dataset config node (OmegaConf or dict) with ``build_info``.
        name: the dataset name, used to spell the config key in messages (``datasets.<name>.build_info...``).
        check_images: also check every referenced image file.
        image_suffix: appended to each referenced image name.
        hint: an extra sentence for the error message (how to fix it for this dataset).

    Returns:
        ``{"annotations": {split: [absolute paths]}, "images": absolute folder}``.
    """
    cfg = OmegaConf.create(builder_config) if isinstance(builder_config, dict) else builder_config
    prefix = f"datasets.{name}." if name else ""
    build_info = cfg.get("build_info")
    if build_info is None:
        raise KeyError(f"{prefix or 'dataset config '}build_info is missing: nothing says where the data lives")
    data_type = cfg.get("data_type", "images")
    fix = (f" Relative paths are joined to LAVIS's cache_root ({cache_root()}; set $LAVIS_CACHE_ROOT or call "
           f"lavis_latent.common.paths.set_cache_root to move it).")
    if hint:
        fix = " " + hint + fix
    annotations = _annotation_files(build_info, prefix, fix)
    key = f"{prefix}build_info.{data_type}.storage"
    folder = _visual_folder(build_info, data_type, key, fix)
    if check_images:
        _check_images(annotations, folder, image_suffix, f"{key} = {build_info.get(data_type).get('storage')!r}", fix)
    return {"annotations": annotations, "images": folder}
