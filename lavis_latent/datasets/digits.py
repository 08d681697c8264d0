"""scikit-learn's handwritten digits written as an image dataset: 64 px JPEGs in the ImageFolder layout and
captions in LAVIS's caption format (the data of the ``digits`` and ``digits_caption`` builders).

The digit images are sklearn's 8x8 grey levels (0-16) drawn as dark ink on white (``255 - 255 * v / 16``) and
upscaled with bilinear interpolation (``resample: nearest`` for blocky pixels), saved as JPEG (quality 95), so the
same files serve ``digits`` and ``digits_caption`` (LAVIS's caption dataset derives image ids by stripping
``.jpg``). Generation is idempotent and atomic, like the demo world's (:mod:`lavis_latent.datasets.demo_data`).
"""
import logging
import os
import random

import numpy as np
from PIL import Image

from lavis_latent.datasets.generated_files import JPEG_QUALITY, manifest_matches, replace_atomically, write_json

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
    return manifest_matches(root, DIGITS_FORMAT_VERSION, params, digits_layout(root).values())


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
                os.path.join(out, "images", rel), format="JPEG", quality=JPEG_QUALITY)
            captions = digit_captions(label, int(index), p["seed"], p["captions_per_image"])
            if split == "train":  # CaptionDataset: one row per caption
                rows.extend({"image": rel, "caption": c, "image_id": int(index)} for c in captions)
            else:  # caption eval format (as the demo world's): one row per image, its captions in a list
                rows.append({"image": rel, "caption": captions, "image_id": int(index)})
        write_json(os.path.join(out, "annotations", f"caption_{split}.json"), rows)
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
    # "generator" keeps the module that first wrote this data: the same parameters give byte-identical files
    manifest = {"format_version": DIGITS_FORMAT_VERSION, "generator": "lavis_latent.datasets.classification",
                "params": params, "classnames": list(DIGIT_WORDS)}
    replace_atomically(root, lambda staging: {"counts": _write_digits(staging, params)}, manifest, "digits")
    logging.info("digits data written to %s (%s)", root, params)
    return paths
