"""Reading ALBEF checkpoints and renaming their text-encoder keys for the downstream models.

A pretraining checkpoint (``albef_latent_pretrain``, ALBEF's own, or an NLVR2 text-assignment one) stores its text
encoder as ``text_encoder(_m).bert.*`` (a ``BertForMaskedLM``) or ``text_encoder(_m).*``; the downstream models keep
a ``BertModel`` under ``text_encoder(_m).*``. The helpers here read such a checkpoint and parse or rename those
keys; each model maps the fusion layers onto its own layout (``convert_pretrained_state_dict``).
"""
import os
import re

import torch
from lavis.common.dist_utils import download_cached_file
from lavis.common.utils import is_url

__all__ = ["TASK_HEAD_PREFIXES", "read_checkpoint_state_dict", "text_layer_keys", "rename_text_keys"]

_TEXT_KEY = re.compile(r"^(text_encoder(?:_m)?)\.(?:bert\.)?(.*)$")
_LAYER_KEY = re.compile(r"^encoder\.layer\.(\d+)\.(.*)$")
# task heads never come from a pretraining checkpoint (ALBEF starts them fresh, e.g. after NLVR2's TA step)
TASK_HEAD_PREFIXES = ("cls_head.", "cls_head_m.")


def read_checkpoint_state_dict(url_or_filename):
    """The state dict of a checkpoint file or URL (LAVIS's rule: the ``model`` entry when there is one)."""
    if is_url(url_or_filename):
        path = download_cached_file(url_or_filename, check_hash=False, progress=True)
    elif os.path.isfile(url_or_filename):
        path = url_or_filename
    else:
        raise RuntimeError(f"checkpoint url or path is invalid: {url_or_filename!r}")
    checkpoint = torch.load(path, map_location="cpu")
    return dict(checkpoint["model"] if "model" in checkpoint else checkpoint)


def text_layer_keys(state_dict):
    """``{key: (encoder, layer or None, rest)}`` for the text encoders' keys of a state dict.

    ``encoder`` is ``text_encoder`` or ``text_encoder_m``; ``bert.`` (``BertForMaskedLM`` checkpoints) is
    stripped; ``layer`` is the BERT layer index for ``encoder.layer.<i>.*`` keys (``rest`` then follows the index)
    and ``None`` otherwise (``rest`` is the key below the encoder, e.g. ``embeddings.word_embeddings.weight``).
    """
    out = {}
    for key in state_dict:
        m = _TEXT_KEY.match(key)
        if not m:
            continue
        encoder, rest = m.groups()
        layer = _LAYER_KEY.match(rest)
        out[key] = (encoder, int(layer.group(1)), layer.group(2)) if layer else (encoder, None, rest)
    return out


def rename_text_keys(state_dict):
    """``text_encoder(_m).bert.*`` -> ``text_encoder(_m).*`` (an ``XBertEncoder``/``BertModel`` text encoder)."""
    out = {}
    for key, value in state_dict.items():
        m = _TEXT_KEY.match(key)
        out[f"{m.group(1)}.{m.group(2)}" if m else key] = value
    return out
