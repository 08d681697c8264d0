"""Checks of LAVIS annotation files before a dataset is built: each entry has the fields its dataset class reads,
no empty text, and every image it names exists (see :mod:`lavis_latent.datasets.checks`)."""
import json
import os

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


def annotation_format(dataset_cls):
    """The :data:`ANNOTATION_FORMATS` entry of a dataset class (or of its nearest known base class), or None."""
    for klass in getattr(dataset_cls, "__mro__", ()):
        if klass.__name__ in ANNOTATION_FORMATS:
            return ANNOTATION_FORMATS[klass.__name__]
    return None


def images_of(entry, suffix=""):
    """The image names (relative to the image folder) an annotation entry refers to: its ``"image"`` and the items
    of its ``"images"`` list, each with ``suffix`` appended."""
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


def _load_entries(path, where):
    """The JSON list of an annotation file; ``ValueError`` naming the file when it is not one."""
    try:
        with open(path) as f:
            entries = json.load(f)
    except ValueError as err:
        raise ValueError(f"{where}: annotation file {path} is not valid JSON: {err}") from None
    if not isinstance(entries, list):
        raise ValueError(f"{where}: annotation file {path} must hold a JSON list of entries, "
                         f"got a {type(entries).__name__}")
    return entries


def _check_fields(entry, fmt, dataset_cls, at):
    """``ValueError`` when an entry is not an object or lacks a field its dataset class reads."""
    if not isinstance(entry, dict):
        raise ValueError(f"{at} is a {type(entry).__name__}, not an object with fields {', '.join(fmt['fields'])}")
    for field in fmt["fields"]:
        if field not in entry:
            raise ValueError(f"{at} has no field {field!r} ({dataset_cls.__name__} entries need "
                             f"{', '.join(fmt['fields'])}; this one has {', '.join(sorted(entry)) or 'none'})")


def _entry_problem(entry, fmt, vis_root, at, place, exists, skip_bad):
    """The first skippable problem of an entry as ``(kind, detail)`` (``None`` when it has none); raises instead
    unless ``skip_bad``. ``at`` and ``place`` name the entry in errors and details; ``exists`` caches image
    lookups."""
    problem = None
    for field in fmt["text"]:
        if _empty_text(entry[field]):
            if not skip_bad:
                raise ValueError(f"{at}: field {field!r} is empty ({entry[field]!r}). Fix or remove the entry, or set "
                                 "run.skip_bad_images: true to drop such training samples.")
            problem = problem or ("empty text", f"{place} field {field!r}")
    for name in images_of(entry, fmt.get("image_suffix", "")):
        image = os.path.join(vis_root, name)
        if image not in exists:
            exists[image] = os.path.isfile(image)
        if not exists[image]:
            if not skip_bad:
                raise FileNotFoundError(f"{at}: image {image} does not exist. Fix the path (images are read from "
                                        "build_info.images.storage) or set run.skip_bad_images: true to drop such "
                                        "training samples.")
            problem = problem or ("missing image", image)
    return problem


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
    paths = list(ann_paths)[:1] if fmt.get("first_file_only") else list(ann_paths)
    bad, offset, exists = {}, 0, {}
    for path in paths:
        entries = _load_entries(path, where)
        for i, entry in enumerate(entries):
            at = f"{where}: annotation file {path}, entry {i} (0-based)"
            _check_fields(entry, fmt, dataset_cls, at)
            problem = _entry_problem(entry, fmt, vis_root, at, f"{path} entry {i}", exists, skip_bad)
            if problem is not None:
                bad[offset + i] = problem
        offset += len(entries)
    return bad
