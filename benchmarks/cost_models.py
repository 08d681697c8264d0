"""The models and the batch of ``benchmarks.cost``'s training-step part: ALBEF's variants (LAVIS's own
``AlbefPretrain`` and the plugin's ``albef_latent_pretrain`` with the ``latent:`` block of each
``projects/albef_*.yaml``), built at a size on one pair of shared encoders, and the batch every model family trains
on (the families, BLIP's builders among them, are in :mod:`benchmarks.cost_families`)."""
import os

import torch

from benchmarks import common

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECTS_DIR = os.path.join(REPO_ROOT, "projects")
MODEL_NAME = "albef_latent_pretrain"

#: variant -> project yaml whose ``model.latent`` block it uses (``lavis`` and ``none`` have none)
PROJECT_YAML = {"fs": "albef_fs.yaml", "bb": "albef_bb.yaml", "gc": "albef_gc.yaml", "all": "albef_all.yaml"}
#: ``name`` uses the augmented view of the data (``aug_view: data``, ALBEF's default: one more momentum-encoder
#: forward on the second view); ``name@momentum`` the paper-literal view (momentum features of the same input)
VARIANTS = ("lavis", "none", "fs", "bb", "gc", "all", "bb@momentum", "all@momentum")
BERT_BASE_VOCAB = 30522

CAPTIONS = [
    "a red circle at the top left of a plain background",
    "a blue square in the middle",
    "two green triangles near the bottom right corner",
    "a small yellow star drawn in the evening by alice",
    "a purple ring on a striped background",
    "an orange cross with a companion dot in the morning",
    "a large white heart on the left",
    "a black arrow pointing up, painted in paris",
]


def split_variant(variant):
    """``(regularizer variant, aug_view)`` of a variant name: ``"bb@momentum"`` -> ``("bb", "momentum")``."""
    name, _, view = variant.partition("@")
    return name, view or "data"


def latent_block(variant, project_yaml=None):
    """The ``model.latent`` block of a variant: ``{}`` for ``lavis`` / ``none``, else its project yaml's
    (``project_yaml``: variant -> yaml under ``projects/``, default ALBEF's :data:`PROJECT_YAML`)."""
    from omegaconf import OmegaConf

    variant = split_variant(variant)[0]
    if variant in ("lavis", "none"):
        return {}
    yaml = (PROJECT_YAML if project_yaml is None else project_yaml)[variant]
    block = OmegaConf.load(os.path.join(PROJECTS_DIR, yaml)).model.latent
    return OmegaConf.to_container(block, resolve=True)


def model_config(size, model_name=MODEL_NAME, full_tokenizer=None):
    """The model config of a size: ``tiny`` = the plugin's tiny type; ``full`` = the ``base`` type (for ALBEF ViT-B/16
    + BERT base, LAVIS's ``med_config_albef.json``) offline: random init, 224 px, the local vocabulary for tokenizing
    (``full_tokenizer``: a function of the tiny type's tokenizer path giving the full size's, e.g. a padded copy)."""
    if size not in ("tiny", "full"):
        raise ValueError(f"unknown size {size!r}: choose tiny or full")
    tiny = common.default_model_config(model_name, "tiny")
    if size == "tiny":
        return tiny
    cfg = common.default_model_config(model_name, "base")
    tokenizer = full_tokenizer(tiny.tokenizer) if full_tokenizer is not None else tiny.tokenizer
    cfg.update({"vit_from_pretrained": False, "text_from_pretrained": False, "image_size": 224,
                "load_pretrained": False, "pretrained": None, "tokenizer": tokenizer})
    return cfg


def lavis_reference_class(tokenizer):
    """LAVIS's ``AlbefPretrain`` with only ``init_tokenizer`` overridden (returns ``tokenizer``: no hub access)."""
    from lavis.models.albef_models.albef_pretrain import AlbefPretrain

    class LavisAlbefPretrain(AlbefPretrain):
        def init_tokenizer(self):
            return tokenizer

    return LavisAlbefPretrain


def model_bytes(model):
    """Bytes of a model's parameters and buffers (each storage counted once)."""
    seen, total = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        key = (t.device, t.data_ptr())
        if key not in seen:
            seen.add(key)
            total += t.numel() * t.element_size()
    return total


def build_encoders(cfg, size, seed):
    """``(image encoder, text encoder with its MLM head, tokenizer)`` of ``cfg``, randomly initialised from
    ``seed`` (the text encoder's vocabulary: the local tokenizer's at ``tiny``, BERT base's at ``full``)."""
    from lavis.models.med import BertForMaskedLM
    from lavis_latent.models.encoders import build_vision_encoder, load_med_config, load_tokenizer

    tokenizer = load_tokenizer(cfg.tokenizer)
    vocab = len(tokenizer) if size == "tiny" else BERT_BASE_VOCAB
    torch.manual_seed(seed)
    image_encoder = build_vision_encoder(cfg, from_pretrained=False)
    text_encoder = BertForMaskedLM(config=load_med_config(cfg, vocab_size=vocab))
    return image_encoder, text_encoder, tokenizer


def build_variants(cfg, size, batch, variants, seed, device):
    """``{variant: model}`` in training mode on ``device``, every model built on the same encoder modules; the small
    heads of every variant are initialised from the same seed."""
    from lavis_latent.models.albef_latent import AlbefLatentPretrain

    image_encoder, text_encoder, tokenizer = build_encoders(cfg, size, seed)
    kwargs = dict(image_encoder=image_encoder, text_encoder=text_encoder, queue_size=cfg.queue_size,
                  embed_dim=cfg.embed_dim, mlm_mask_prob=cfg.mlm_mask_prob, temp=cfg.temp, momentum=cfg.momentum,
                  alpha=cfg.alpha, max_txt_len=cfg.max_txt_len)
    if cfg.queue_size % batch:
        raise ValueError(f"queue_size {cfg.queue_size} is not a multiple of the batch size {batch}")
    models = {}
    for v in variants:
        torch.manual_seed(seed + 1)  # same initialisation of the small heads in every variant
        if v == "lavis":
            m = lavis_reference_class(tokenizer)(**kwargs)
        else:
            m = AlbefLatentPretrain(tokenizer=cfg.tokenizer, latent=latent_block(v), aug_view=split_variant(v)[1],
                                    **kwargs)
        models[v] = m.to(device).train()
    return models


def build_batches(batch, image_size, seed, device):
    """``(samples, aug, paired_samples)``: a training batch of ``batch`` random images and captions (distillation
    fully ramped up), its second view ``(images, reversed captions)``, and the batch carrying both views as the
    paired-view processors give it."""
    from lavis_latent.processors import PairedViews

    g = torch.Generator().manual_seed(seed + 2)
    samples = {
        "image": torch.randn(batch, 3, image_size, image_size, generator=g).to(device),
        "text_input": [CAPTIONS[i % len(CAPTIONS)] for i in range(batch)],
        "image_id": torch.arange(batch).to(device),
        "epoch": 0, "iters": 100, "num_iters_per_epoch": 100,  # distillation fully ramped up
    }
    aug_image = torch.randn(batch, 3, image_size, image_size, generator=g).to(device)
    aug = (aug_image, [" ".join(reversed(c.split())) for c in samples["text_input"]])
    paired_samples = dict(samples, image=PairedViews(samples["image"], aug[0]),
                          text_input=PairedViews(samples["text_input"], aug[1]))
    return samples, aug, paired_samples
