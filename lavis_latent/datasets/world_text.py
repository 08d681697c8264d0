"""The demo world's text: captions, VQA questions, SNLI-VE hypotheses and NLVR2 statements about its scenes."""
from lavis_latent.datasets.world import VALUES

POSITION_PHRASE = {"top": "at the top", "middle": "in the middle", "bottom": "at the bottom"}
TIME_PHRASE = {"morning": "in the morning", "afternoon": "in the afternoon", "evening": "in the evening",
               "night": "at night"}
PLACE_PHRASE = {"park": "in the park", "beach": "on the beach", "city": "in the city", "forest": "in the forest"}
_PHRASES = {"position": POSITION_PHRASE, "time": TIME_PHRASE, "place": PLACE_PHRASE}

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

QUESTIONS = {
    "shape": ("what shape is shown?", "what is the shape of the object?"),
    "color": ("what color is the {shape}?", "what color is the main shape?"),
    "position": ("where is the {color} shape?", "where is the {shape} placed?"),
    "background": ("what color is the background?",),
    "size": ("how big is the {shape}?", "what size is the {color} shape?"),
    "texture": ("what pattern does the background have?",),
    "companion": ("what small shape is in the corner?",),
}

# SNLI-VE hypotheses: one template per attribute ({v}: the value, {phrase}: its phrase), and whole sentences for
# the values the template would word badly
_STATEMENTS = {
    "shape": "there is a {v} in the picture",
    "color": "the main shape is {v}",
    "position": "the shape is {phrase}",
    "background": "the background is {v}",
    "size": "the shape is {v}",
    "texture": "the background has {v}",
    "companion": "there is a small {v} in a corner",
    "name": "it was drawn by {v}",
    "mood": "the artist was {v}",
    "time": "it was drawn {phrase}",
    "place": "it was drawn {phrase}",
}
_STATEMENT_EXCEPTIONS = {
    ("size", "medium"): "the shape is of medium size",
    ("texture", "plain"): "the background is plain",
    ("companion", "nothing"): "there is nothing in the corners",
}

# NLVR2 statements: (attribute needed, template, truth(left, right, value)); value None when the template has none.
# Avoid "left"/"right" except to name the images: LAVIS's NLVRDataset._flip swaps those words with the images.
_SIZE_RANK = {v: i for i, v in enumerate(VALUES["size"])}
_POS_RANK = {"top": 0, "middle": 1, "bottom": 2}
NLVR_TEMPLATES = (
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


def article(text):
    """Fix "a" before a vowel sound ("a orange" -> "an orange") in a generated sentence."""
    words = text.split(" ")
    for i in range(len(words) - 1):
        if words[i] == "a" and words[i + 1][:1] in "aeiou":
            words[i] = "an"
    return " ".join(words)


def _phrase(attr, value):
    """The adverbial phrase of a position, time or place value ("at the top"); None for other attributes."""
    phrases = _PHRASES.get(attr)
    return phrases[value] if phrases is not None else None


def caption(attrs, active, rng):
    """One caption of a scene: a shared-facts template, then a clause per active text-only attribute (shuffled)."""
    pos = POSITION_PHRASE[attrs["position"]]
    text = rng.choice(_SHARED_TEMPLATES).format(color=attrs["color"], shape=attrs["shape"], pos=pos)
    clauses = []
    for attr in active["text_only"]:
        v = attrs[attr]
        clauses.append(rng.choice(_TEXT_CLAUSES[attr]).format(v=v, phrase=_phrase(attr, v)))
    rng.shuffle(clauses)
    if clauses:
        text += ", " + ", ".join(clauses)
    return article(text)


def statement(attr, value):
    """A sentence asserting ``attr == value`` about one scene (SNLI-VE hypotheses)."""
    if attr not in _STATEMENTS:
        raise ValueError(attr)
    if (attr, value) in _STATEMENT_EXCEPTIONS:
        return _STATEMENT_EXCEPTIONS[attr, value]
    return _STATEMENTS[attr].format(v=value, phrase=_phrase(attr, value))
