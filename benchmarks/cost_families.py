"""The model families ``benchmarks.cost`` measures, chosen by ``--model``: ALBEF (LAVIS's ``AlbefPretrain`` against
the plugin's ``albef_latent_pretrain``) and BLIP (LAVIS's ``BlipPretrain`` against ``blip_latent_pretrain``).

A :class:`ModelFamily` says what differs between them: the LAVIS class that is the reference, the plugin model and
the project yamls whose ``latent:`` blocks give the variants, how to build the variants at a size on shared encoder
modules, which base losses must equal LAVIS's, the report's wording and its file names. Everything else (the batch,
the interleaved timing, memory, the targets and verdicts, the report's layout) is the same for every family.
"""
import contextlib
import dataclasses
import io
import os
import tempfile
from typing import Callable, Mapping, Optional, Tuple

import torch

from benchmarks import cost_models as albef
from benchmarks.cost_models import VARIANTS, latent_block, split_variant

DEFAULT_FAMILY = "albef"


@dataclasses.dataclass(frozen=True)
class ModelFamily:
    """What ``benchmarks.cost`` needs to know about one model family."""

    name: str  #: the ``--model`` value
    label: str  #: as the report names it: ``ALBEF``
    model_name: str  #: the plugin's registered pretraining model
    reference: str  #: LAVIS's class the variants are timed against
    project_yaml: Mapping[str, str]  #: regularizer variant -> project yaml (under ``projects/``) of its latent block
    projects_glob: str  #: those yamls as the report names them
    base_losses: Tuple[str, ...]  #: LAVIS's loss terms, equal in every variant (checked each step)
    output_stem: str  #: ``<stem>.md``, ``<stem>.json``, ``<stem>_scaling.png``
    scaling: bool  #: whether part 2 (each loss alone vs N) runs by default
    model_config: Callable  #: ``size -> model config``
    build_variants: Callable  #: ``(cfg, size, batch, variants, seed, device) -> {variant: model}``
    full_size_note: str  #: the report's note on what ``full`` is
    memory_example: Optional[str] = None  #: RSS noise in words; None: taken from the run's own repeats
    no_scaling_note: Optional[str] = None  #: the report's note when part 2 did not run
    variants: Tuple[str, ...] = VARIANTS

    def latent_block(self, variant):
        """The ``model.latent`` block of ``variant`` (``{}`` for ``lavis`` / ``none``)."""
        return latent_block(variant, self.project_yaml)

    def base_loss_names(self):
        """``"ITC/ITM/MLM"``: the base losses as the report names them."""
        return "/".join(k.split("_", 1)[1].upper() for k in self.base_losses)

    def output_files(self, output_dir):
        """The paths of the report's markdown, json and scaling plot under ``output_dir`` (created)."""
        os.makedirs(output_dir, exist_ok=True)
        return {ext: os.path.join(output_dir, self.output_stem + suffix)
                for ext, suffix in (("md", ".md"), ("json", ".json"), ("png", "_scaling.png"))}


# -- BLIP --------------------------------------------------------------------------------------------------------
BLIP_MODEL_NAME = "blip_latent_pretrain"
BLIP_PROJECT_YAML = {v: f"blip/pretrain_{v}.yaml" for v in ("fs", "bb", "gc", "all")}
#: BLIP base's vocabulary: bert-base-uncased's 30522 + ``[DEC]`` + ``[ENC]`` (``BlipPretrain`` resizes to it)
BLIP_BASE_VOCAB = 30524


def padded_vocab_file(vocab_file, size):
    """A ``vocab.txt`` of ``size`` entries: ``vocab_file``'s (same ids; the local one holds ``[DEC]`` / ``[ENC]``)
    then ``[unused<i>]`` fillers that no text tokenizes to (``[`` is split off as punctuation). Written (atomically)
    under the temp folder; returns its path."""
    with open(vocab_file) as f:
        tokens = f.read().splitlines()
    if len(tokens) > size:
        raise ValueError(f"{vocab_file} has {len(tokens)} tokens, more than {size}")
    taken = set(tokens)
    fillers = (t for t in (f"[unused{i}]" for i in range(2 * size)) if t not in taken)
    tokens += [next(fillers) for _ in range(size - len(tokens))]
    folder = os.path.join(tempfile.gettempdir(), "lavis_latent_cost")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"vocab_{size}.txt")
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".txt")
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(tokens) + "\n")
    os.replace(tmp, path)
    return path


def blip_model_config(size):
    """BLIP's model config of a size (:func:`benchmarks.cost_models.model_config`): the ``base`` type has LAVIS's
    ``bert_config.json``, and the local vocabulary padded to BLIP base's 30524 entries (:func:`padded_vocab_file`: the
    embeddings and the LM head keep BLIP base's size)."""
    return albef.model_config(size, BLIP_MODEL_NAME, lambda path: padded_vocab_file(path, BLIP_BASE_VOCAB))


def blip_tokenizer(path):
    """The ``BertTokenizer`` of ``path`` with BLIP's ``[DEC]`` / ``[ENC]`` tokens, as LAVIS's ``init_tokenizer``."""
    from lavis_latent.models.blip_latent import add_blip_tokens
    from lavis_latent.models.encoders import load_tokenizer

    return add_blip_tokens(load_tokenizer(path))


def blip_reference_class(tokenizer_path):
    """LAVIS's ``BlipPretrain`` with only ``init_tokenizer`` overridden (the tokenizer of ``tokenizer_path`` with
    BLIP's special tokens, as LAVIS's: no hub access)."""
    from lavis.models.blip_models.blip_pretrain import BlipPretrain

    class LavisBlipPretrain(BlipPretrain):
        @classmethod
        def init_tokenizer(cls):
            return blip_tokenizer(tokenizer_path)

    return LavisBlipPretrain


def build_blip_encoders(cfg, seed):
    """``(image encoder, text encoder, text decoder)`` of ``cfg``, randomly initialised from ``seed``, the BERTs
    sized to the tokenizer (as ``BlipPretrain`` resizes them)."""
    from lavis_latent.models.encoders import build_text_decoder, build_text_encoder, build_vision_encoder

    vocab = len(blip_tokenizer(cfg.tokenizer))
    torch.manual_seed(seed)
    image_encoder = build_vision_encoder(cfg, from_pretrained=False)
    text_encoder = build_text_encoder(cfg, vocab_size=vocab)
    text_decoder = build_text_decoder(cfg, vocab_size=vocab)
    return image_encoder, text_encoder, text_decoder


def build_blip_variants(cfg, size, batch, variants, seed, device):
    """``{variant: model}`` in training mode on ``device``, every model built on the same image encoder, text
    encoder and text decoder modules (``BlipPretrain`` ties the decoder to the encoder but for its self-attention;
    re-tying shared modules is a no-op); the small heads of every variant are initialised from the same seed."""
    from lavis_latent.models.blip_latent import BlipLatentPretrain

    image_encoder, text_encoder, text_decoder = build_blip_encoders(cfg, seed)
    kwargs = dict(image_encoder=image_encoder, text_encoder=text_encoder, text_decoder=text_decoder,
                  queue_size=cfg.queue_size, embed_dim=cfg.embed_dim, momentum=cfg.momentum, alpha=cfg.alpha,
                  max_txt_len=cfg.max_txt_len, tie_enc_dec_weights=True)
    if cfg.queue_size % batch:
        raise ValueError(f"queue_size {cfg.queue_size} is not a multiple of the batch size {batch}")
    models = {}
    for v in variants:
        torch.manual_seed(seed + 1)  # same initialisation of the small heads in every variant
        # LAVIS's tie_encoder_decoder_weights prints a line per tied module
        with contextlib.redirect_stdout(io.StringIO()):
            if v == "lavis":
                m = blip_reference_class(cfg.tokenizer)(**kwargs)
            else:
                m = BlipLatentPretrain(tokenizer=cfg.tokenizer, latent=latent_block(v, BLIP_PROJECT_YAML),
                                       aug_view=split_variant(v)[1], **kwargs)
        models[v] = m.to(device).train()
    return models


# -- the families --------------------------------------------------------------------------------------------------
FAMILIES = {
    "albef": ModelFamily(
        name="albef", label="ALBEF", model_name=albef.MODEL_NAME, reference="AlbefPretrain",
        project_yaml=albef.PROJECT_YAML, projects_glob="projects/albef_*.yaml",
        base_losses=("loss_itc", "loss_itm", "loss_mlm"), output_stem="cost", scaling=True,
        model_config=albef.model_config, build_variants=albef.build_variants,
        full_size_note=(
            "- `full` is ALBEF's ViT-B/16 + BERT-base (6 text + 6 fusion layers, LAVIS's med_config_albef.json, "
            "vocabulary 30522) with random weights, at 224 px; captions are tokenized with the plugin's local "
            "vocabulary (no hub access), which changes token ids, not shapes (max_txt_len 30)."),
        memory_example="a few MiB of the tiny model's ~120 MiB, up to ~100 MiB of the full model's ~1.5 GiB",
    ),
    "blip": ModelFamily(
        name="blip", label="BLIP", model_name=BLIP_MODEL_NAME, reference="BlipPretrain",
        project_yaml=BLIP_PROJECT_YAML, projects_glob="projects/blip/pretrain_*.yaml",
        base_losses=("loss_itc", "loss_itm", "loss_lm"), output_stem="cost_blip", scaling=False,
        model_config=blip_model_config, build_variants=build_blip_variants,
        full_size_note=(
            "- `full` is BLIP base: ViT-B/16 + BERT-base (12 layers, a cross-attention in each, LAVIS's "
            "bert_config.json) and the image-grounded LM decoder, tied to the encoder but for its self-attention as "
            "LAVIS ties them, vocabulary 30524, random weights, at 224 px; captions are tokenized with the plugin's "
            "local vocabulary padded with unused entries to 30524 (no hub access; the embeddings and the LM head "
            "keep BLIP base's size), which changes token ids, not shapes (max_txt_len 30)."),
        no_scaling_note=(
            "- Part 2 (each loss alone as the batch grows) is not run for BLIP: it times the regularizers on random "
            "[N, D] features, which do not depend on the model; ALBEF's run (`cost.md`, `cost_scaling.png`) has it."),
    ),
}


def family(name=None):
    """The :class:`ModelFamily` named ``name`` (default ALBEF's)."""
    name = DEFAULT_FAMILY if name is None else name
    if name not in FAMILIES:
        raise ValueError(f"unknown model family {name!r} (choose from {', '.join(FAMILIES)})")
    return FAMILIES[name]
