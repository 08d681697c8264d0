"""ALBEF pretraining and retrieval models with latent modality structures (paper Sec. 4, Fig. 4b).

Both classes subclass LAVIS's own models, so every ALBEF behaviour (ITC with queues and distillation, ITM with hard
negatives, MLM, ``compute_sim_matrix``) is LAVIS's. The plugin adds model types ``tiny`` (offline, random init,
local vocabulary) beside LAVIS's ``base`` / ``coco`` / ``flickr``, and, through :class:`LatentAlbefMixin`
(:mod:`lavis_latent.models.latent_itc`, shared with BLIP), the ``latent:`` block on the normalised ITC features
``image_feat`` / ``text_feat``, ``aug_view`` (``data``: the data's second view through the momentum encoders, the
default; ``momentum``: the paper's literal reading), ALBEF's default ``bridge.form: online``, ``image_id`` as
positives in the in-modal terms, and batches without ITM negatives.

With no ``latent:`` block the forward pass is LAVIS's, bit for bit.
"""
from lavis.common.registry import registry
from lavis.models.albef_models.albef_pretrain import AlbefPretrain
from lavis.models.albef_models.albef_retrieval import AlbefRetrieval

from lavis_latent.common.paths import config_path
from lavis_latent.models.encoders import build_text_encoder, build_vision_encoder, load_weights_from_config
from lavis_latent.models.latent_itc import (  # noqa: F401  (AUG_VIEWS, FirstWhenNoCandidate, key_groups: re-exported)
    AUG_VIEWS,
    ITC_LATENT_DEFAULTS,
    FirstWhenNoCandidate,
    LatentItcMixin,
    key_groups,
    latent_kwargs,
)

#: the mixin's name for ALBEF (it serves BLIP too: lavis_latent.models.latent_itc)
LatentAlbefMixin = LatentItcMixin
#: ALBEF's own defaults for the regularizers' sub-keys (a config's values win)
ALBEF_LATENT_DEFAULTS = ITC_LATENT_DEFAULTS


def _common_kwargs(cfg):
    """Constructor arguments shared by ALBEF's pretraining and retrieval models, with LAVIS's defaults."""
    return dict(
        embed_dim=cfg.get("embed_dim", 256),
        temp=cfg.get("temp", 0.07),
        momentum=cfg.get("momentum", 0.995),
        alpha=cfg.get("alpha", 0.4),
        max_txt_len=cfg.get("max_txt_len", 30),
        **latent_kwargs(cfg),
    )


@registry.register_model("albef_latent_pretrain")
class AlbefLatentPretrain(LatentAlbefMixin, AlbefPretrain):
    """LAVIS's ``AlbefPretrain`` (ITC + ITM + MLM) plus the configured latent-structure regularizers.

    Model types: ``base`` (ViT-B/16 from DeiT + ``bert-base-uncased``, as LAVIS) and ``tiny`` (offline).

    Usage:
        >>> import lavis_latent
        >>> from lavis.models import load_model
        >>> model = load_model("albef_latent_pretrain", "tiny")
    """

    itm_negatives = "other_samples"

    PRETRAINED_MODEL_CONFIG_DICT = {
        "base": config_path("models", "albef_latent_pretrain_base.yaml"),
        "tiny": config_path("models", "albef_latent_pretrain_tiny.yaml"),
    }

    @classmethod
    def from_config(cls, cfg=None):
        """Build from a model config (LAVIS's ``albef_pretrain`` keys plus ``tokenizer``, ``latent``,
        ``vit_type: custom`` sizes, ``vit_from_pretrained``, ``text_from_pretrained``, ``pretrained``)."""
        tokenizer = cls.tokenizer_from_config(cfg)
        image_encoder = build_vision_encoder(cfg, from_pretrained=cfg.get("vit_from_pretrained", True))
        text_encoder = build_text_encoder(
            cfg,
            vocab_size=len(tokenizer),
            masked_lm=True,
            from_pretrained=cfg.get("text_from_pretrained", True),
        )
        model = cls(
            image_encoder=image_encoder,
            text_encoder=text_encoder,
            queue_size=cfg.get("queue_size", 65536),
            mlm_mask_prob=cfg.get("mlm_mask_prob", 0.15),
            **_common_kwargs(cfg),
        )
        load_weights_from_config(model, cfg)
        return model


@registry.register_model("albef_latent_retrieval")
class AlbefLatentRetrieval(LatentAlbefMixin, AlbefRetrieval):
    """LAVIS's ``AlbefRetrieval`` (ITC + ITM fine-tuning, ITC-then-ITM ranking) plus latent-structure regularizers.

    Model types: ``coco`` and ``flickr`` (LAVIS's fine-tuned checkpoints) and ``tiny`` (offline, random init).

    Usage:
        >>> import lavis_latent
        >>> from lavis.models import load_model_and_preprocess
        >>> model, vis, txt = load_model_and_preprocess("albef_latent_retrieval", "tiny")
    """

    itm_negatives = "other_images"

    PRETRAINED_MODEL_CONFIG_DICT = {
        "coco": config_path("models", "albef_latent_retrieval_coco.yaml"),
        "flickr": config_path("models", "albef_latent_retrieval_flickr.yaml"),
        "tiny": config_path("models", "albef_latent_retrieval_tiny.yaml"),
    }

    @classmethod
    def from_config(cls, cfg=None):
        """Build from a model config (LAVIS's ``albef_retrieval`` keys plus ``tokenizer``, ``latent`` and
        ``vit_type: custom`` sizes); loads ``finetuned`` / ``pretrained`` as LAVIS does, or starts random."""
        tokenizer = cls.tokenizer_from_config(cfg)
        model = cls(
            image_encoder=build_vision_encoder(cfg, from_pretrained=False),
            text_encoder=build_text_encoder(cfg, vocab_size=len(tokenizer)),
            queue_size=cfg.get("queue_size", 0),
            use_distill=cfg.get("use_distill", True),
            **_common_kwargs(cfg),
        )
        load_weights_from_config(model, cfg)
        return model
