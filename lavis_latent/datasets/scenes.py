"""The demo world's scenes: per-image seeded sampling of the attributes, and drawing (a coloured shape on a
background, on a 64 px grid scaled to the image size)."""
import random

from PIL import Image, ImageDraw

from lavis_latent.datasets.world import ATTRIBUTES, IMAGE_ONLY, INACTIVE_IMAGE_VALUE, TEXT_ONLY, VALUES

RGB = {
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


def world_rng(*parts):
    """A ``random.Random`` seeded by ``"lavis_latent_demo/<part>/..."``: one independent stream per purpose.

    str seeds are hashed with sha512 by ``random.seed`` (version 2): stable across runs and ``PYTHONHASHSEED``.
    """
    return random.Random("/".join(str(p) for p in ("lavis_latent_demo",) + parts))


def sample_scene(seed, split, index):
    """``(latent, layout)`` of one image: every attribute's sampled value, and where the shapes sit."""
    rng = world_rng(seed, split, index, "scene")
    latent = {attr: rng.choice(VALUES[attr]) for attr in ATTRIBUTES}
    layout = {"x": rng.randint(18, 46), "companion_y": rng.choice(("top", "bottom"))}
    return latent, layout


def express(latent, active):
    """The expressed attributes: inactive image-only ones at their constant value, inactive text-only ones None."""
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


def _draw_texture(draw, texture, alt, image_size, s):
    """The background pattern (``plain`` draws nothing) in colour ``alt``."""
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


def render_scene(attributes, layout, image_size=64):
    """Draw one scene (a PIL RGB image of ``image_size`` px) from expressed ``attributes`` and ``layout``."""
    s = image_size / 64.0
    bg = RGB[attributes["background"]]
    img = Image.new("RGB", (image_size, image_size), bg)
    draw = ImageDraw.Draw(img)
    _draw_texture(draw, attributes["texture"], _shade(bg, 45), image_size, s)
    if attributes["companion"] != "nothing":
        cx = 57 if layout["x"] < 32 else 7
        cy = 7 if layout["companion_y"] == "top" else 57
        _draw_shape(draw, attributes["companion"], cx, cy, 5, _COMPANION_RGB, s)
    _draw_shape(draw, attributes["shape"], layout["x"], _Y_CENTER[attributes["position"]],
                _HALF_EXTENT[attributes["size"]], RGB[attributes["color"]], s)
    return img
