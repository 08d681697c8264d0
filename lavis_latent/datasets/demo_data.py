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
"""
import json
import os
import random
import shutil
import tempfile
import uuid

from PIL import Image, ImageDraw

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")

# ---------------------------------------------------------------------------------------------------------------------
# The world's attributes
# ---------------------------------------------------------------------------------------------------------------------
SHARED = ("shape", "color", "position")
IMAGE_ONLY = ("background", "size", "texture", "companion")  # activated in this order
TEXT_ONLY = ("name", "mood", "time", "place")  # activated in this order

VALUES = {
    "shape": ("circle", "square", "triangle", "diamond"),
    "color": ("red", "green", "blue", "yellow", "purple", "orange"),
    "position": ("top", "middle", "bottom"),
    "background": ("black", "grey", "white", "brown"),
    "size": ("tiny", "small", "medium", "large"),
    "texture": ("plain", "stripes", "dots", "checks"),
    "companion": ("nothing", "circle", "square", "triangle"),
    "name": ("alice", "bob", "carol", "dave"),
    "mood": ("happy", "sad", "calm", "angry"),
    "time": ("morning", "afternoon", "evening", "night"),
    "place": ("park", "beach", "city", "forest"),
}
# value drawn for an image-only attribute that the knob leaves inactive (constant: it carries no information)
INACTIVE_IMAGE_VALUE = {"background": "grey", "size": "medium", "texture": "plain", "companion": "nothing"}

MODALITY = dict(
    [(a, "shared") for a in SHARED] + [(a, "image_only") for a in IMAGE_ONLY] + [(a, "text_only") for a in TEXT_ONLY]
)

_RGB = {
    "red": (220, 30, 30),
    "green": (30, 175, 50),
    "blue": (40, 80, 230),
    "yellow": (240, 220, 40),
    "purple": (140, 50, 180),
    "orange": (250, 140, 20),
    "black": (20, 20, 20),
    "grey": (128, 128, 128),
    "white": (235, 235, 235),
    "brown": (110, 70, 40),
}
_COMPANION_RGB = (0, 225, 225)  # cyan: not one of the main colours
_HALF_EXTENT = {"tiny": 5, "small": 8, "medium": 11, "large": 14}  # at 64 px
_Y_CENTER = {"top": 16, "middle": 32, "bottom": 48}  # at 64 px
_POSITION_PHRASE = {"top": "at the top", "middle": "in the middle", "bottom": "at the bottom"}
_TIME_PHRASE = {"morning": "in the morning", "afternoon": "in the afternoon", "evening": "in the evening",
                "night": "at night"}
_PLACE_PHRASE = {"park": "in the park", "beach": "on the beach", "city": "in the city", "forest": "in the forest"}

_JPEG_QUALITY = 95

# ---------------------------------------------------------------------------------------------------------------------
# File layout under the root (relative paths). The builders' default yaml uses the same names.
# ---------------------------------------------------------------------------------------------------------------------
LAYOUT = {
    "images": "images",
    "metadata": "metadata.json",
    "manifest": "manifest.json",
}
for _s in SPLITS:
    LAYOUT.update(
        {
            f"retrieval_{_s}": f"annotations/retrieval_{_s}.json",
            f"caption_{_s}": f"annotations/caption_{_s}.json",
            f"nlvr_{_s}": f"annotations/nlvr_{_s}.json",
            f"snli_ve_{_s}": f"annotations/snli_ve_{_s}.json",
        }
    )
LAYOUT["vqa_train"] = "annotations/vqa_train.json"
LAYOUT["vqa_answer_list"] = "annotations/vqa_answer_list.json"
for _s in ("val", "test"):
    LAYOUT[f"vqa_{_s}"] = f"annotations/vqa_{_s}.json"
    LAYOUT[f"vqa_{_s}_questions"] = f"annotations/vqa_{_s}_questions.json"  # official VQA questions format
    LAYOUT[f"vqa_{_s}_annotations"] = f"annotations/vqa_{_s}_annotations.json"  # official VQA annotations format
del _s

DEFAULTS = dict(
    seed=0,
    num_train=200,
    num_val=50,
    num_test=50,
    info_gap=0.5,
    k_image_only=None,
    k_text_only=None,
    captions_per_image=3,
    image_size=64,
    nlvr_per_image=2,
    snli_per_image=3,
)


# ---------------------------------------------------------------------------------------------------------------------
# Public helpers
# ---------------------------------------------------------------------------------------------------------------------
def layout_paths(root):
    """Absolute paths of every file and folder :func:`generate` writes under ``root`` (nothing is created)."""
    root = os.path.abspath(os.path.expanduser(str(root)))
    out = {"root": root}
    out.update({key: os.path.join(root, rel) for key, rel in LAYOUT.items()})
    return out


def active_attributes(info_gap=DEFAULTS["info_gap"], k_image_only=None, k_text_only=None):
    """Which attributes are expressed at a knob setting.

    Returns ``{"shared": [...], "image_only": [...], "text_only": [...]}``.

    ``k = round(len(IMAGE_ONLY) * info_gap)`` (half up) for each kind unless ``k_image_only`` / ``k_text_only`` is
    given; the first ``k`` attributes of :data:`IMAGE_ONLY` / :data:`TEXT_ONLY` are active.
    """
    k_img, k_txt = _resolve_k(info_gap, k_image_only, k_text_only)
    return {"shared": list(SHARED), "image_only": list(IMAGE_ONLY[:k_img]), "text_only": list(TEXT_ONLY[:k_txt])}


def world_params(**kwargs):
    """The normalised, validated generation parameters (defaults filled in, ``k_*`` resolved) as a plain dict.

    Raises ``ValueError`` on an unknown key or an out-of-range value. This dict is what the manifest records.
    """
    unknown = sorted(set(kwargs) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown demo-data parameter(s) {unknown}; valid: {sorted(DEFAULTS)}")
    p = dict(DEFAULTS)
    p.update({k: v for k, v in kwargs.items()})
    for key in ("seed", "num_train", "num_val", "num_test", "captions_per_image", "image_size", "nlvr_per_image",
                "snli_per_image"):
        if isinstance(p[key], bool) or not isinstance(p[key], int) and not (
                isinstance(p[key], float) and float(p[key]).is_integer()):
            raise ValueError(f"demo-data parameter {key} must be an integer, got {p[key]!r}")
        p[key] = int(p[key])
    for key in ("num_train", "num_val", "num_test"):
        if p[key] < 2:
            raise ValueError(f"{key} must be at least 2 (NLVR pairs two images of a split), got {p[key]}")
    for key in ("captions_per_image", "nlvr_per_image", "snli_per_image"):
        if p[key] < 1:
            raise ValueError(f"{key} must be at least 1, got {p[key]}")
    if p["image_size"] < 16:
        raise ValueError(f"image_size must be at least 16 px, got {p['image_size']}")
    try:
        p["info_gap"] = float(p["info_gap"])
    except (TypeError, ValueError):
        raise ValueError(f"info_gap must be a number in [0, 1], got {p['info_gap']!r}") from None
    k_img, k_txt = _resolve_k(p["info_gap"], p["k_image_only"], p["k_text_only"])
    p["k_image_only"], p["k_text_only"] = k_img, k_txt
    return p


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


def replace_atomically(root, fill, manifest, what):
    """Build a generated folder in a staging folder beside ``root`` and swap it in with renames.

    ``fill(staging)`` writes the data and may return a dict of further manifest entries; ``manifest`` (a dict) plus
    those is written last, as ``manifest.json``, so readers never see a half-written folder with a manifest. A non-empty ``root`` without a manifest (not generated data) is never
    replaced: ``FileExistsError`` naming ``what`` (e.g. ``"demo-data"``, ``"digits"``).
    """
    if os.path.isdir(root) and os.listdir(root) and read_manifest(root) is None:
        raise FileExistsError(
            f"{root} exists, is not empty and holds no {what} manifest: refusing to replace it; "
            "choose another root (build_info.generator.root) or remove that folder")
    parent = os.path.dirname(root)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(root)}.staging-", dir=parent)
    try:
        extra = fill(staging) or {}
        write_json(os.path.join(staging, LAYOUT["manifest"]), {**manifest, **extra}, indent=1)
        old = None
        if os.path.lexists(root):
            old = os.path.join(parent, f".{os.path.basename(root)}.old-{uuid.uuid4().hex[:8]}")
            os.rename(root, old)
        os.chmod(staging, 0o755)  # mkdtemp makes it private
        os.rename(staging, root)
        staging = None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def read_manifest(root):
    """The manifest dict written by :func:`generate` under ``root``, or ``None`` when absent or unreadable."""
    path = layout_paths(root)["manifest"]
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def is_complete(root, params):
    """True when ``root`` holds a finished world generated with exactly ``params`` (as :func:`world_params` gives)."""
    paths = layout_paths(root)
    return manifest_matches(root, FORMAT_VERSION, params, [paths[key] for key in LAYOUT])


def manifest_matches(root, format_version, params, paths):
    """True when ``root``'s manifest records ``format_version`` and exactly ``params``, and every path exists."""
    manifest = read_manifest(root)
    if not manifest or manifest.get("format_version") != format_version or manifest.get("params") != params:
        return False
    return all(os.path.exists(p) for p in paths)


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


# ---------------------------------------------------------------------------------------------------------------------
# Sampling and rendering
# ---------------------------------------------------------------------------------------------------------------------
def _resolve_k(info_gap, k_image_only, k_text_only):
    try:
        gap = float(info_gap)
    except (TypeError, ValueError):
        raise ValueError(f"info_gap must be a number in [0, 1], got {info_gap!r}") from None
    if not 0.0 <= gap <= 1.0:
        raise ValueError(f"info_gap must be in [0, 1], got {info_gap!r}")
    out = []
    for name, k, n in (("k_image_only", k_image_only, len(IMAGE_ONLY)), ("k_text_only", k_text_only, len(TEXT_ONLY))):
        if k is None:
            k = int(gap * n + 0.5)
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= n:
            raise ValueError(f"{name} must be an integer in [0, {n}] or None, got {k!r}")
        out.append(k)
    return tuple(out)


def _rng(*parts):
    # str seeds are hashed with sha512 by random.seed (version 2): stable across runs and PYTHONHASHSEED
    return random.Random("/".join(str(p) for p in parts))


def _sample_scene(seed, split, index):
    rng = _rng("lavis_latent_demo", seed, split, index, "scene")
    latent = {attr: rng.choice(VALUES[attr]) for attr in SHARED + IMAGE_ONLY + TEXT_ONLY}
    layout = {"x": rng.randint(18, 46), "companion_y": rng.choice(("top", "bottom"))}
    return latent, layout


def _express(latent, active):
    attrs = dict(latent)
    for attr in IMAGE_ONLY:
        if attr not in active["image_only"]:
            attrs[attr] = INACTIVE_IMAGE_VALUE[attr]
    for attr in TEXT_ONLY:
        if attr not in active["text_only"]:
            attrs[attr] = None
    return attrs


def _shade(rgb, amount):
    lum = sum(rgb) / 3
    d = -amount if lum > 110 else amount
    return tuple(max(0, min(255, c + d)) for c in rgb)


def _polygon(shape, cx, cy, h):
    if shape == "square":
        return [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if shape == "triangle":
        return [(cx, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if shape == "diamond":
        return [(cx, cy - h), (cx + h, cy), (cx, cy + h), (cx - h, cy)]
    raise ValueError(shape)


def _draw_shape(draw, shape, cx, cy, h, fill, s):
    cx, cy, h = cx * s, cy * s, h * s
    if shape == "circle":
        draw.ellipse([cx - h, cy - h, cx + h, cy + h], fill=fill)
    else:
        draw.polygon(_polygon(shape, cx, cy, h), fill=fill)


def render_scene(attributes, layout, image_size=64):
    """Draw one scene (a PIL RGB image of ``image_size`` px) from expressed ``attributes`` and ``layout``."""
    s = image_size / 64.0
    bg = _RGB[attributes["background"]]
    img = Image.new("RGB", (image_size, image_size), bg)
    draw = ImageDraw.Draw(img)
    alt = _shade(bg, 45)
    texture = attributes["texture"]
    if texture == "stripes":
        for y in range(0, 64, 8):
            draw.rectangle([0, y * s, image_size, (y + 3) * s - 1], fill=alt)
    elif texture == "dots":
        for y in range(4, 64, 8):
            for x in range(4, 64, 8):
                draw.ellipse([(x - 1.5) * s, (y - 1.5) * s, (x + 1.5) * s, (y + 1.5) * s], fill=alt)
    elif texture == "checks":
        for y in range(0, 64, 8):
            for x in range(0, 64, 8):
                if (x + y) // 8 % 2:
                    draw.rectangle([x * s, y * s, (x + 8) * s - 1, (y + 8) * s - 1], fill=alt)
    if attributes["companion"] != "nothing":
        cx = 57 if layout["x"] < 32 else 7
        cy = 7 if layout["companion_y"] == "top" else 57
        _draw_shape(draw, attributes["companion"], cx, cy, 5, _COMPANION_RGB, s)
    _draw_shape(draw, attributes["shape"], layout["x"], _Y_CENTER[attributes["position"]],
                _HALF_EXTENT[attributes["size"]], _RGB[attributes["color"]], s)
    return img


# ---------------------------------------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------------------------------------
_SHARED_TEMPLATES = (
    "a {color} {shape} {pos}",
    "there is a {color} {shape} {pos}",
    "the picture shows a {color} {shape} {pos}",
    "a {shape} colored {color} {pos}",
    "{pos} of the picture there is a {color} {shape}",
)
_TEXT_CLAUSES = {
    "name": ("drawn by {v}", "made by {v}", "a drawing by {v}"),
    "mood": ("in a {v} mood", "by someone feeling {v}"),
    "time": ("{phrase}",),
    "place": ("{phrase}",),
}


def _article(text):
    """Fix "a" before a vowel sound ("a orange" -> "an orange") in a generated sentence."""
    words = text.split(" ")
    for i in range(len(words) - 1):
        if words[i] == "a" and words[i + 1][:1] in "aeiou":
            words[i] = "an"
    return " ".join(words)


def _caption(attrs, active, rng):
    pos = _POSITION_PHRASE[attrs["position"]]
    text = rng.choice(_SHARED_TEMPLATES).format(color=attrs["color"], shape=attrs["shape"], pos=pos)
    clauses = []
    for attr in active["text_only"]:
        v = attrs[attr]
        phrase = _TIME_PHRASE.get(v) if attr == "time" else _PLACE_PHRASE.get(v) if attr == "place" else None
        clauses.append(rng.choice(_TEXT_CLAUSES[attr]).format(v=v, phrase=phrase))
    rng.shuffle(clauses)
    if clauses:
        text += ", " + ", ".join(clauses)
    return _article(text)


_QUESTIONS = {
    "shape": ("what shape is shown?", "what is the shape of the object?"),
    "color": ("what color is the {shape}?", "what color is the main shape?"),
    "position": ("where is the {color} shape?", "where is the {shape} placed?"),
    "background": ("what color is the background?",),
    "size": ("how big is the {shape}?", "what size is the {color} shape?"),
    "texture": ("what pattern does the background have?",),
    "companion": ("what small shape is in the corner?",),
}


def _statement(attr, value):
    """A sentence asserting ``attr == value`` about one scene (SNLI-VE hypotheses)."""
    if attr == "shape":
        return f"there is a {value} in the picture"
    if attr == "color":
        return f"the main shape is {value}"
    if attr == "position":
        return f"the shape is {_POSITION_PHRASE[value]}"
    if attr == "background":
        return f"the background is {value}"
    if attr == "size":
        return f"the shape is {value}" if value != "medium" else "the shape is of medium size"
    if attr == "texture":
        return "the background is plain" if value == "plain" else f"the background has {value}"
    if attr == "companion":
        return "there is nothing in the corners" if value == "nothing" else f"there is a small {value} in a corner"
    if attr == "name":
        return f"it was drawn by {value}"
    if attr == "mood":
        return f"the artist was {value}"
    if attr == "time":
        return f"it was drawn {_TIME_PHRASE[value]}"
    if attr == "place":
        return f"it was drawn {_PLACE_PHRASE[value]}"
    raise ValueError(attr)


# NLVR2 statements: (attribute needed, template, truth(left, right, value)); value None when the template has none.
# Avoid "left"/"right" except to name the images: LAVIS's NLVRDataset._flip swaps those words with the images.
_SIZE_RANK = {v: i for i, v in enumerate(VALUES["size"])}
_POS_RANK = {"top": 0, "middle": 1, "bottom": 2}
_NLVR_TEMPLATES = (
    ("shape", "the left image contains a {v}", lambda a, b, v: a["shape"] == v),
    ("shape", "the right image contains a {v}", lambda a, b, v: b["shape"] == v),
    ("color", "the left image contains a {v} shape", lambda a, b, v: a["color"] == v),
    ("color", "the right image contains a {v} shape", lambda a, b, v: b["color"] == v),
    ("shape", "both images contain a {v}", lambda a, b, v: a["shape"] == v and b["shape"] == v),
    ("color", "both shapes are {v}", lambda a, b, v: a["color"] == v and b["color"] == v),
    ("color", "the two shapes have the same color", lambda a, b, v: a["color"] == b["color"]),
    ("shape", "the two images show the same kind of shape", lambda a, b, v: a["shape"] == b["shape"]),
    ("position", "the shape in the left image is higher than the shape in the right image",
     lambda a, b, v: _POS_RANK[a["position"]] < _POS_RANK[b["position"]]),
    ("background", "both images have the same background color", lambda a, b, v: a["background"] == b["background"]),
    ("background", "the left image has a {v} background", lambda a, b, v: a["background"] == v),
    ("size", "the shape in the left image is bigger than the shape in the right image",
     lambda a, b, v: _SIZE_RANK[a["size"]] > _SIZE_RANK[b["size"]]),
    ("texture", "the two backgrounds have the same pattern", lambda a, b, v: a["texture"] == b["texture"]),
    ("companion", "both images have a small shape in a corner",
     lambda a, b, v: a["companion"] != "nothing" and b["companion"] != "nothing"),
)


# ---------------------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------------------
def write_json(path, obj, indent=None):
    """Write ``obj`` as json to ``path`` (creating its folder), with a final newline."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=indent, sort_keys=False)
        f.write("\n")


def _official_vqa_files(split, records):
    """The official VQA questions / annotations dicts (lavis/common/vqa_tools/vqa.py reads these keys)."""
    common = {"info": {"description": "lavis_latent demo VQA", "version": "1.0"},
              "license": {"name": "CC0", "url": ""}, "data_type": "lavis_latent_demo", "data_subtype": split}
    questions = dict(common, task_type="Open-Ended",
                     questions=[{"image_id": r["image_id"], "question": r["question"],
                                 "question_id": r["question_id"]} for r in records])
    annotations = dict(common, annotations=[{
        "image_id": r["image_id"], "question_id": r["question_id"], "question_type": r["attribute"],
        "answer_type": r["modality"], "multiple_choice_answer": r["answer"],
        "answers": [{"answer": r["answer"], "answer_confidence": "yes", "answer_id": i + 1} for i in range(10)],
    } for r in records])
    return questions, annotations


def _write_world(out, p):
    active = active_attributes(p["info_gap"], p["k_image_only"], p["k_text_only"])
    visible = list(SHARED) + active["image_only"]
    seed = p["seed"]
    counts = {"train": p["num_train"], "val": p["num_val"], "test": p["num_test"]}

    images, by_split = [], {s: [] for s in SPLITS}
    image_id = 0
    for split in SPLITS:
        os.makedirs(os.path.join(out, LAYOUT["images"], split), exist_ok=True)
        for index in range(counts[split]):
            latent, layout = _sample_scene(seed, split, index)
            attrs = _express(latent, active)
            rel = f"{split}/{index:06d}.jpg"
            render_scene(attrs, layout, p["image_size"]).save(
                os.path.join(out, LAYOUT["images"], rel), format="JPEG", quality=_JPEG_QUALITY)
            crng = _rng("lavis_latent_demo", seed, split, index, "captions")
            captions = [_caption(attrs, active, crng) for _ in range(p["captions_per_image"])]
            rec = {"image_id": image_id, "split": split, "image": rel, "attributes": attrs, "latent": latent,
                   "layout": layout, "captions": captions}
            images.append(rec)
            by_split[split].append(rec)
            image_id += 1

    # retrieval (COCO karpathy style) and captioning / pretraining (CaptionDataset; eval = karpathy eval format)
    for split in SPLITS:
        recs = by_split[split]
        if split == "train":
            rows = [{"image": r["image"], "caption": c, "image_id": r["image_id"]} for r in recs for c in r["captions"]]
            write_json(os.path.join(out, LAYOUT["retrieval_train"]), rows)
            write_json(os.path.join(out, LAYOUT["caption_train"]), rows)
        else:
            rows = [{"image": r["image"], "caption": list(r["captions"]), "image_id": r["image_id"]} for r in recs]
            write_json(os.path.join(out, LAYOUT[f"retrieval_{split}"]), rows)
            write_json(os.path.join(out, LAYOUT[f"caption_{split}"]), rows)

    # VQA: one question per visible (shared or active image-only) attribute per image
    answer_list = []
    for attr in SHARED + IMAGE_ONLY:
        for v in VALUES[attr]:
            if v not in answer_list:
                answer_list.append(v)
    write_json(os.path.join(out, LAYOUT["vqa_answer_list"]), answer_list)
    for split in SPLITS:
        records = []
        for r in by_split[split]:
            qrng = _rng("lavis_latent_demo", seed, split, r["image"], "vqa")
            for qi, attr in enumerate(visible):
                question = qrng.choice(_QUESTIONS[attr]).format(shape=r["attributes"]["shape"],
                                                                color=r["attributes"]["color"])
                records.append({"image": r["image"], "image_id": r["image_id"], "question": question,
                                "question_id": r["image_id"] * 10 + qi, "answer": r["attributes"][attr],
                                "attribute": attr, "modality": MODALITY[attr]})
        if split == "train":
            rows = [{"image": q["image"], "question": q["question"], "answer": [q["answer"]],
                     "question_id": q["question_id"], "question_type": q["attribute"]} for q in records]
            write_json(os.path.join(out, LAYOUT["vqa_train"]), rows)
        else:
            rows = [{"image": q["image"], "question": q["question"], "question_id": q["question_id"],
                     "answer": [q["answer"]], "question_type": q["attribute"]} for q in records]
            write_json(os.path.join(out, LAYOUT[f"vqa_{split}"]), rows)
            questions, annotations = _official_vqa_files(split, records)
            write_json(os.path.join(out, LAYOUT[f"vqa_{split}_questions"]), questions)
            write_json(os.path.join(out, LAYOUT[f"vqa_{split}_annotations"]), annotations)

    # NLVR2: statements about (left, right) pairs of the same split, labels balanced by rejection sampling
    templates = [t for t in _NLVR_TEMPLATES if t[0] in visible]
    for split in SPLITS:
        recs = by_split[split]
        nrng = _rng("lavis_latent_demo", seed, split, "nlvr")
        rows = []
        for i, left in enumerate(recs):
            for n in range(p["nlvr_per_image"]):
                want = (i * p["nlvr_per_image"] + n) % 2 == 0
                for _ in range(200):
                    attr, template, truth = nrng.choice(templates)
                    right = recs[nrng.choice([j for j in range(len(recs)) if j != i])]
                    value = nrng.choice(VALUES[attr])
                    label = truth(left["attributes"], right["attributes"], value)
                    if label == want:
                        break
                rows.append({"images": [left["image"], right["image"]], "sentence": _article(template.format(v=value)),
                             "label": "True" if label else "False", "attribute": attr})
        write_json(os.path.join(out, LAYOUT[f"nlvr_{split}"]), rows)

    # SNLI-VE: entailment = a true visible fact, contradiction = a false visible fact, neutral = a text-only fact
    for split in SPLITS:
        srng = _rng("lavis_latent_demo", seed, split, "snli_ve")
        rows = []
        for r in by_split[split]:
            for n in range(p["snli_per_image"]):
                label = ("entailment", "neutral", "contradiction")[(r["image_id"] + n) % 3]
                if label == "neutral":
                    attr = srng.choice(TEXT_ONLY)
                    value = srng.choice(VALUES[attr])
                else:
                    attr = srng.choice(visible)
                    true = r["attributes"][attr]
                    value = true if label == "entailment" else srng.choice([v for v in VALUES[attr] if v != true])
                rows.append({"image": os.path.splitext(r["image"])[0], "sentence": _article(_statement(attr, value)),
                             "label": label, "attribute": attr})
        write_json(os.path.join(out, LAYOUT[f"snli_ve_{split}"]), rows)

    metadata = {
        "params": p,
        "active": active,
        "attributes": {a: {"modality": MODALITY[a], "values": list(VALUES[a]),
                           "active": a in SHARED or a in active["image_only"] or a in active["text_only"]}
                       for a in SHARED + IMAGE_ONLY + TEXT_ONLY},
        "images": images,
    }
    write_json(os.path.join(out, LAYOUT["metadata"]), metadata)
