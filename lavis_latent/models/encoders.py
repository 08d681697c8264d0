"""Build ALBEF's and BLIP's encoders, tokenizer and weights from a model config, online (LAVIS's paths) or offline
(tiny types).

LAVIS builds its ViT only at ``base``/``large`` size, fetches DeiT and ``bert-base-uncased`` from the network and
loads its tokenizer from the HuggingFace hub. These helpers keep those paths for full-size types and add
``vit_type: custom`` (a ViT of any size, random init), a local tokenizer vocabulary (``tokenizer:`` a ``vocab.txt``
file or a folder that holds one) and random-init text encoders (``text_from_pretrained: False``). Whenever a network
path fails, the error names the file that is missing and the config key that points at a local copy.
"""
import logging
import os
from functools import partial

from lavis.common.utils import get_abs_path, is_url
from lavis.models.med import BertForMaskedLM, XBertEncoder, XBertLMHeadDecoder
from lavis.models.vit import VisionTransformerEncoder
from torch import nn
from transformers import BertConfig, BertTokenizer


HUB_TOKENIZER = "bert-base-uncased"
OFFLINE_HINT = (
    "If this machine is offline, download it elsewhere and point the config key at the local copy, "
    "or use the offline model type 'tiny'."
)


class WeightsUnavailableError(RuntimeError):
    """A tokenizer, encoder or checkpoint named by the config could not be loaded (usually: no network)."""


def load_tokenizer(name_or_path=HUB_TOKENIZER):
    """Return a ``BertTokenizer`` from a ``vocab.txt`` file, a folder holding one, or a HuggingFace hub name.

    Args:
        name_or_path: the model config's ``tokenizer`` value (default: LAVIS's ``bert-base-uncased``).
    """
    if os.path.isfile(name_or_path):
        return BertTokenizer(vocab_file=name_or_path, do_lower_case=True)
    if os.path.isdir(name_or_path) and not os.path.isfile(os.path.join(name_or_path, "tokenizer_config.json")):
        vocab = os.path.join(name_or_path, "vocab.txt")
        if not os.path.isfile(vocab):
            raise WeightsUnavailableError(f"model.tokenizer points at folder {name_or_path!r}, which has no vocab.txt")
        return BertTokenizer(vocab_file=vocab, do_lower_case=True)
    try:
        return BertTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as err:
        raise WeightsUnavailableError(
            f"Could not load the tokenizer {name_or_path!r} (model.tokenizer): {err}. {OFFLINE_HINT} "
            "model.tokenizer accepts a vocab.txt file or a folder holding one."
        ) from err


def build_vision_encoder(cfg, from_pretrained=False):
    """Return ALBEF's ViT (a LAVIS ``VisionTransformerEncoder``) with ``vision_width`` set.

    ``vit_type: base|large`` is LAVIS's own construction (``from_pretrained`` fetches DeiT / ImageNet-21k weights);
    ``vit_type: custom`` builds the same class directly from ``image_size``, ``vit_patch_size``, ``vit_width``,
    ``vit_depth`` and ``vit_num_heads`` with random weights.
    """
    vit_type = cfg.get("vit_type", "base")
    if vit_type in ("base", "large"):
        try:
            return VisionTransformerEncoder.from_config(cfg, from_pretrained=from_pretrained)
        except OSError as err:  # URLError is an OSError
            raise WeightsUnavailableError(
                f"Could not fetch the ImageNet weights that initialise the {vit_type} ViT: {err}. {OFFLINE_HINT} "
                "Set model.vit_from_pretrained: False to start from random weights."
            ) from err
    if vit_type != "custom":
        raise ValueError(f"model.vit_type must be 'base', 'large' or 'custom', got {vit_type!r}")
    eps = cfg.get("vit_layer_norm_epsilon", -1)
    width = cfg.get("vit_width", 128)
    encoder = VisionTransformerEncoder(
        img_size=cfg.get("image_size", 64),
        patch_size=cfg.get("vit_patch_size", 8),
        embed_dim=width,
        depth=cfg.get("vit_depth", 2),
        num_heads=cfg.get("vit_num_heads", 4),
        use_grad_checkpointing=cfg.get("vit_grad_ckpt", False),
        ckpt_layer=cfg.get("vit_ckpt_layer", 0),
        drop_path_rate=cfg.get("vit_drop_path_rate", 0),
        norm_layer=None if eps == -1 else partial(nn.LayerNorm, eps=eps),
    )
    encoder.vision_width = width
    return encoder


def load_med_config(cfg, vocab_size=None):
    """Return the ``BertConfig`` named by ``model.med_config_path`` (LAVIS-relative or absolute).

    ``vocab_size`` (the tokenizer's length) overrides the json's, so a local vocabulary and the embedding table
    always agree.
    """
    path = get_abs_path(cfg.get("med_config_path"))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model.med_config_path points at {path!r}, which does not exist")
    med_config = BertConfig.from_json_file(path)
    if vocab_size is not None:
        med_config.vocab_size = vocab_size
    return med_config


def build_text_encoder(cfg, vocab_size=None, masked_lm=False, from_pretrained=False):
    """Return the BERT text encoder: ``XBertEncoder`` (ALBEF retrieval, BLIP) or ``BertForMaskedLM`` (ALBEF
    pretraining, ``masked_lm``).

    ``from_pretrained`` initialises from the hub's ``bert-base-uncased`` as LAVIS's pretraining models do.
    """
    if masked_lm:
        return _build_bert(BertForMaskedLM, cfg, vocab_size, from_pretrained)
    return _build_bert(XBertEncoder, cfg, vocab_size, from_pretrained, add_pooling_layer=False)


def build_text_decoder(cfg, vocab_size=None, from_pretrained=False):
    """Return BLIP's image-grounded text decoder (LAVIS's ``XBertLMHeadDecoder``, the LM loss) from
    ``model.med_config_path``; ``from_pretrained`` initialises it from ``bert-base-uncased`` as LAVIS does."""
    return _build_bert(XBertLMHeadDecoder, cfg, vocab_size, from_pretrained)


def _build_bert(cls, cfg, vocab_size, from_pretrained, **kwargs):
    """``cls`` (a LAVIS med.py BERT class) from the config's med json: random init, or ``bert-base-uncased``."""
    med_config = load_med_config(cfg, vocab_size)
    if not from_pretrained:
        return cls(config=med_config, **kwargs)
    try:
        return cls.from_pretrained(HUB_TOKENIZER, config=med_config, **kwargs)
    except OSError as err:
        raise WeightsUnavailableError(
            f"Could not load the {HUB_TOKENIZER!r} text encoder weights: {err}. {OFFLINE_HINT} "
            "Set model.text_from_pretrained: False to start from random weights."
        ) from err


def load_weights_from_config(model, cfg):
    """Load the checkpoint a model config names, as LAVIS's ``load_checkpoint_from_config`` does, or none.

    ``load_finetuned: True`` loads ``model.finetuned``; otherwise ``model.pretrained`` when set and
    ``load_pretrained`` is not False (ALBEF's ``load_from_pretrained``: interpolates position embeddings, renames
    ``bert.`` keys, drops shape mismatches). A config that names neither keeps the initialisation (LAVIS asserts
    instead). Returns the load message or ``None``.
    """
    if cfg.get("load_finetuned", False):
        key, path = "model.finetuned", cfg.get("finetuned")
        if not path:
            raise ValueError("model.load_finetuned is True but model.finetuned is not set: give a path or URL")
        loader = model.load_checkpoint
    else:
        key, path = "model.pretrained", cfg.get("pretrained")
        if not path or not cfg.get("load_pretrained", True):
            return None
        loader = model.load_from_pretrained
    if not is_url(path) and not os.path.isfile(path):
        raise FileNotFoundError(f"{key} points at {path!r}, which does not exist")
    try:
        msg = loader(url_or_filename=path)
    except OSError as err:
        raise WeightsUnavailableError(f"Could not download {key} = {path!r}: {err}. {OFFLINE_HINT}") from err
    logging.info("loaded %s from %s", key, path)
    return msg


