"""The demo world's attributes, its modality groups and its generation parameters (see
:mod:`lavis_latent.datasets.demo_data`)."""

SPLITS = ("train", "val", "test")

SHARED = ("shape", "color", "position")
IMAGE_ONLY = ("background", "size", "texture", "companion")  # activated in this order
TEXT_ONLY = ("name", "mood", "time", "place")  # activated in this order
ATTRIBUTES = SHARED + IMAGE_ONLY + TEXT_ONLY

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
_INTEGER_PARAMS = ("seed", "num_train", "num_val", "num_test", "captions_per_image", "image_size", "nlvr_per_image",
                   "snli_per_image")


def resolve_k(info_gap, k_image_only, k_text_only):
    """``(k_image_only, k_text_only)``: the counts of active modality-specific attributes at a knob setting.

    A count left ``None`` is ``round(4 * info_gap)`` (half up). Raises ``ValueError`` for an ``info_gap`` outside
    [0, 1] or a count that is not an integer in [0, 4].
    """
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


def active_attributes(info_gap=DEFAULTS["info_gap"], k_image_only=None, k_text_only=None):
    """Which attributes are expressed at a knob setting.

    Returns ``{"shared": [...], "image_only": [...], "text_only": [...]}``.

    ``k = round(len(IMAGE_ONLY) * info_gap)`` (half up) for each kind unless ``k_image_only`` / ``k_text_only`` is
    given; the first ``k`` attributes of :data:`IMAGE_ONLY` / :data:`TEXT_ONLY` are active.
    """
    k_img, k_txt = resolve_k(info_gap, k_image_only, k_text_only)
    return {"shared": list(SHARED), "image_only": list(IMAGE_ONLY[:k_img]), "text_only": list(TEXT_ONLY[:k_txt])}


def _check_counts(p):
    """Make the integer parameters of ``p`` ints in place; ``ValueError`` for a non-integer or out-of-range one."""
    for key in _INTEGER_PARAMS:
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


def world_params(**kwargs):
    """The normalised, validated generation parameters (defaults filled in, ``k_*`` resolved) as a plain dict.

    Raises ``ValueError`` on an unknown key or an out-of-range value. This dict is what the manifest records.
    """
    unknown = sorted(set(kwargs) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown demo-data parameter(s) {unknown}; valid: {sorted(DEFAULTS)}")
    p = dict(DEFAULTS)
    p.update({k: v for k, v in kwargs.items()})
    _check_counts(p)
    try:
        p["info_gap"] = float(p["info_gap"])
    except (TypeError, ValueError):
        raise ValueError(f"info_gap must be a number in [0, 1], got {p['info_gap']!r}") from None
    k_img, k_txt = resolve_k(p["info_gap"], p["k_image_only"], p["k_text_only"])
    p["k_image_only"], p["k_text_only"] = k_img, k_txt
    return p
