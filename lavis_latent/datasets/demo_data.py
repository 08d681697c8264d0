"""A small, seeded image-text world for demos, tests and benchmarks (no network, no downloads).

Every image is a rendered scene (a coloured shape on a background, JPEG) with several captions. The facts of a scene
fall in three groups, so the data has a *modality gap* by construction (the setting the paper studies):

=============  ===========================================  ==========================================
group          attributes (4 values each unless noted)      where the fact appears
=============  ===========================================  ==========================================
shared         ``shape`` (4), ``color`` (6), ``position`` (3)  drawn in the image *and* written in captions
image-only     ``background``, ``size``, ``texture``,       drawn only; no caption ever mentions them
               ``companion`` (a small cyan shape in a
               corner, or ``nothing``)
text-only      ``name``, ``mood``, ``time``, ``place``      written only; the picture cannot show them
=============  ===========================================  ==========================================

The knob is ``info_gap`` in [0, 1]: ``k = round(4 * info_gap)`` modality-specific attributes of each kind are
*active* (in the fixed orders :data:`IMAGE_ONLY` and :data:`TEXT_ONLY`); ``k_image_only`` / ``k_text_only`` set the
two counts directly. An inactive image-only attribute is drawn with a constant value (grey, medium, plain,
nothing), so it carries no information; an inactive text-only attribute is not written. The scene attributes are
sampled from per-image random streams whatever the knob, so the same seed gives the same shared facts at every
``info_gap``: varying the knob changes only the modality-specific content.

:func:`generate` writes, under one root folder, the images and the annotation files of every LAVIS task in the exact
formats LAVIS's dataset classes read (see :data:`LAYOUT`), a ``metadata.json`` with the ground truth of every image
(for probes), and a ``manifest.json`` with the generation parameters; it is idempotent and atomic (a new world is
built in a staging folder and renamed into place, manifest included, so an interrupted run leaves no manifest
claiming completeness).

The parts live in sibling modules: the attributes and parameters in :mod:`~lavis_latent.datasets.world`, the file
layout in :mod:`~lavis_latent.datasets.world_layout`, sampling and drawing in :mod:`~lavis_latent.datasets.scenes`,
the sentences in :mod:`~lavis_latent.datasets.world_text`, one writer per file format in
:mod:`~lavis_latent.datasets.world_writers`, and the manifest and atomic swap in
:mod:`~lavis_latent.datasets.generated_files`. This module keeps the entry points and re-exports their names.
"""
import json

import lavis_latent.datasets.world_writers as writers
from lavis_latent.datasets.generated_files import (
    MANIFEST,
    manifest_matches,
    read_manifest,
    replace_atomically,
    write_json,
)
from lavis_latent.datasets.scenes import RGB, render_scene
from lavis_latent.datasets.world import (
    DEFAULTS,
    IMAGE_ONLY,
    INACTIVE_IMAGE_VALUE,
    MODALITY,
    SHARED,
    SPLITS,
    TEXT_ONLY,
    VALUES,
    active_attributes,
    world_params,
)
from lavis_latent.datasets.world_layout import FORMAT_VERSION, LAYOUT, layout_paths
from lavis_latent.datasets.world_text import NLVR_TEMPLATES, POSITION_PHRASE, article, statement

__all__ = [
    "SPLITS", "SHARED", "IMAGE_ONLY", "TEXT_ONLY", "VALUES", "INACTIVE_IMAGE_VALUE", "MODALITY", "DEFAULTS",
    "FORMAT_VERSION", "LAYOUT", "MANIFEST", "layout_paths", "active_attributes", "world_params", "render_scene",
    "generate", "is_complete", "read_manifest", "manifest_matches", "replace_atomically", "write_json",
    "load_metadata", "attribute_labels",
]

# the former private names of this module's colours, phrases and sentences (tests and benchmarks read them here)
_RGB, _POSITION_PHRASE, _NLVR_TEMPLATES, _article, _statement = RGB, POSITION_PHRASE, NLVR_TEMPLATES, article, statement


def generate(root, seed=0, num_train=200, num_val=50, num_test=50, info_gap=0.5, k_image_only=None, k_text_only=None,
             captions_per_image=3, image_size=64, nlvr_per_image=2, snli_per_image=3, force=False):
    """Generate the demo world under ``root`` (unless an identical one is already there) and return its paths.

    Args:
        root: output folder (created; its parent must be writable).
        seed: base seed; every image, caption and task sample is drawn from a stream derived from it.
        num_train, num_val, num_test: images per split (at least 2 each).
        info_gap: amount of modality-specific information in [0, 1] (see the module docstring).
        k_image_only, k_text_only: explicit counts of active image-only / text-only attributes (0-4); override
            ``info_gap`` for that kind.
        captions_per_image: captions per image (retrieval, captioning / pretraining).
        image_size: rendered image side in pixels (scenes are drawn on a 64 px grid and scaled).
        nlvr_per_image: NLVR2 statements per image of a split (the image is the left one).
        snli_per_image: SNLI-VE hypotheses per image (labels cycle entailment / neutral / contradiction).
        force: regenerate even when the manifest matches.

    Returns:
        dict of absolute paths: ``root``, ``images``, ``metadata``, ``manifest`` and one key per annotation file
        (see :data:`LAYOUT`, e.g. ``retrieval_train``, ``vqa_val``, ``vqa_val_questions``, ``snli_ve_test``).

    Idempotent: when ``root/manifest.json`` records the same parameters and every file exists, nothing is written.
    Otherwise the world is built in a staging folder beside ``root`` and swapped in with renames (manifest last
    inside it), so readers never see a half-written world with a manifest. A non-empty ``root`` without a manifest
    (not a world of this generator) is never replaced: ``FileExistsError``.
    """
    params = world_params(seed=seed, num_train=num_train, num_val=num_val, num_test=num_test, info_gap=info_gap,
                          k_image_only=k_image_only, k_text_only=k_text_only, captions_per_image=captions_per_image,
                          image_size=image_size, nlvr_per_image=nlvr_per_image, snli_per_image=snli_per_image)
    paths = layout_paths(root)
    if not force and is_complete(paths["root"], params):
        return paths

    manifest = {  # no timestamps: the same parameters give byte-identical files
        "format_version": FORMAT_VERSION,
        "generator": "lavis_latent.datasets.demo_data",
        "params": params,
        "files": dict(LAYOUT),
    }
    replace_atomically(paths["root"], lambda staging: _write_world(staging, params), manifest, "demo-data")
    return paths


def is_complete(root, params):
    """True when ``root`` holds a finished world generated with exactly ``params`` (as :func:`world_params` gives)."""
    paths = layout_paths(root)
    return manifest_matches(root, FORMAT_VERSION, params, [paths[key] for key in LAYOUT])


def load_metadata(root):
    """The ground truth written by :func:`generate`: a dict with ``params``, ``attributes`` (modality, values and
    whether active, per attribute), ``active`` and ``images`` (one record per image: ``image_id``, ``split``,
    ``image`` (path relative to the images folder), ``attributes`` (expressed values; ``None`` for an inactive
    text-only attribute), ``latent`` (sampled values, whatever the knob), ``layout`` and ``captions``)."""
    with open(layout_paths(root)["metadata"]) as f:
        return json.load(f)


def attribute_labels(metadata, split, attribute):
    """``(image paths, integer labels)`` of one attribute over one split, for probes (index into ``VALUES``).

    Uses the *expressed* value; raises ``ValueError`` for an inactive modality-specific attribute (it is not in the
    data, so a probe of it measures nothing).
    """
    info = metadata["attributes"][attribute]
    if not info["active"]:
        raise ValueError(f"attribute {attribute!r} is inactive at this info_gap; active: {metadata['active']}")
    values = info["values"]
    recs = [r for r in metadata["images"] if r["split"] == split]
    return [r["image"] for r in recs], [values.index(r["attributes"][attribute]) for r in recs]


def _write_world(out, p):
    """Write every file of a world with parameters ``p`` (:func:`world_params`) under ``out``."""
    active = active_attributes(p["info_gap"], p["k_image_only"], p["k_text_only"])
    visible = list(SHARED) + active["image_only"]
    by_split = writers.write_images(out, p, active)
    writers.write_retrieval_and_captions(out, by_split)
    writers.write_vqa(out, by_split, visible, p["seed"])
    writers.write_nlvr(out, by_split, visible, p["seed"], p["nlvr_per_image"])
    writers.write_snli_ve(out, by_split, visible, p["seed"], p["snli_per_image"])
    writers.write_metadata(out, p, active, by_split)
