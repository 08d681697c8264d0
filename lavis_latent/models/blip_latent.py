"""BLIP pretraining and retrieval models with latent modality structures (paper Sec. 4, on LAVIS's BLIP).

BLIP has ALBEF's ITC structure (``vision_proj`` / ``text_proj`` of the [CLS] tokens, momentum encoders and queues,
``image_embeds`` / ``text_embeds`` / ``*_m`` in its ``BlipIntermediateOutput``), so both classes take the
regularizers through the mixin ALBEF uses (:class:`~lavis_latent.models.latent_itc.LatentItcMixin`): the same
``latent:`` block, ``aug_view`` (``data`` / ``momentum``), ``bridge.form`` default ``online``, ``image_id`` as
positives and geometric normalisation. Everything else (ITC with queues and distillation, ITM with hard negatives,
BLIP pretraining's image-grounded LM decoder, ``compute_sim_matrix``) is LAVIS's ``BlipPretrain`` /
``BlipRetrieval``. Where BLIP differs from ALBEF:

* its tokenizer has two more tokens, ``[DEC]`` (bos, the decoder's first token) and ``[ENC]`` (the ITM encoder's
  first token): :func:`add_blip_tokens`, the mixin's ``prepare_tokenizer`` hook (the local ``vocab.txt`` already
  holds both, so the tiny types keep its 491 tokens);
* its text encoder is one BERT whose every layer has a cross-attention (no ``fusion_layer``): the unimodal [CLS]
  state is ``mode="text"`` through all layers, as ``XBertEncoder.forward_text`` (the mixin's ``_text_cls`` as is);
  a med config with ALBEF's ``fusion_layer`` is refused (:func:`check_blip_med_config`);
* retrieval's ``negative_all_rank`` draws ITM negatives from every rank's batch (LAVIS's COCO recipe): here it acts
  only where more than one rank runs (LAVIS's gather fails on a single process, where drawing from every rank is
  drawing from the batch), and the mixin's check for a batch without ITM negatives reads every rank's ids;
* no ``temp`` argument (LAVIS starts BLIP's learnable temperature at 0.07);
* pretraining builds its text encoder and decoder from ``bert-base-uncased``'s vocabulary, which LAVIS resizes to
  the tokenizer's (30524) in ``BlipPretrain.__init__``; ``base`` loads ``pretrained`` (the ALBEF types' rule:
  ``load_pretrained: True``), where LAVIS's ``BlipPretrain.from_config`` ignores it.

Model types: ``base`` (pretraining; LAVIS's ViT-B/16 + BERT-base) / ``coco`` / ``flickr`` (retrieval, LAVIS's
fine-tuned checkpoints) where the network is available, and ``tiny`` (offline, random init, the local vocabulary,
a 2-layer BERT of width 128 with BLIP's layout, ``configs/models/med_config_blip_tiny.json``).
"""
from lavis.common.registry import registry
from lavis.models.base_model import concat_all_gather
from lavis.models.blip_models.blip_pretrain import BlipPretrain
from lavis.models.blip_models.blip_retrieval import BlipRetrieval

from lavis_latent.common.paths import config_path
from lavis_latent.models.encoders import (
    build_text_decoder,
    build_text_encoder,
    build_vision_encoder,
    load_med_config,
    load_weights_from_config,
)
from lavis_latent.models.latent_itc import LatentItcMixin, latent_kwargs
from lavis_latent.regularizers.distributed import world_info

__all__ = ["BlipLatentPretrain", "BlipLatentRetrieval", "add_blip_tokens", "check_blip_med_config"]


def add_blip_tokens(tokenizer):
    """LAVIS's ``BlipBase.init_tokenizer`` changes to a ``BertTokenizer``: ``[DEC]`` as bos token, ``[ENC]`` as an
    additional special token and its id as ``tokenizer.enc_token_id``. Returns the tokenizer (changed in place)."""
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    tokenizer.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    tokenizer.enc_token_id = tokenizer.additional_special_tokens_ids[0]
    return tokenizer


class _BlipLatentMixin(LatentItcMixin):
    """The mixin with BLIP's tokenizer (``[DEC]``, ``[ENC]``)."""

    @classmethod
    def prepare_tokenizer(cls, tokenizer):
        """BLIP's special tokens (:func:`add_blip_tokens`)."""
        return add_blip_tokens(tokenizer)


def check_blip_med_config(cfg):
    """A ``ValueError`` naming ``model.med_config_path`` when its BERT json has ALBEF's layout (``fusion_layer``):
    LAVIS would build it, but its ITC text features would come from the layers below ``fusion_layer`` only, and ITM
    would see the image in the layers above only; BLIP's BERT has a cross-attention in every layer."""
    path = cfg.get("med_config_path")
    if getattr(load_med_config(cfg), "fusion_layer", None) is not None:
        raise ValueError(
            f"model.med_config_path {path!r} sets fusion_layer (ALBEF's BERT layout); BLIP's text encoder has a "
            "cross-attention in every layer and no fusion_layer. Use a BLIP config: LAVIS's "
            "configs/models/med_config.json (retrieval) or configs/models/bert_config.json (pretraining), or "
            "${lavis_latent:models/med_config_blip_tiny.json} at tiny size.")


def _blip_kwargs(cfg, max_txt_len):
    """Constructor arguments shared by BLIP's pretraining and retrieval models, with LAVIS's defaults."""
    return dict(
        embed_dim=cfg.get("embed_dim", 256),
        momentum=cfg.get("momentum", 0.995),
        alpha=cfg.get("alpha", 0.4),
        max_txt_len=cfg.get("max_txt_len", max_txt_len),
        **latent_kwargs(cfg),
    )


@registry.register_model("blip_latent_pretrain")
class BlipLatentPretrain(_BlipLatentMixin, BlipPretrain):
    """LAVIS's ``BlipPretrain`` (ITC + ITM + LM) plus the configured latent-structure regularizers.

    Model types: ``base`` (ViT-B/16 from DeiT + ``bert-base-uncased``, as LAVIS) and ``tiny`` (offline).

    Usage:
        >>> import lavis_latent
        >>> from lavis.models import load_model
        >>> model = load_model("blip_latent_pretrain", "tiny")
    """

    itm_negatives = "other_samples"

    PRETRAINED_MODEL_CONFIG_DICT = {
        "base": config_path("models", "blip_latent_pretrain_base.yaml"),
        "tiny": config_path("models", "blip_latent_pretrain_tiny.yaml"),
    }

    @classmethod
    def from_config(cls, cfg=None):
        """Build from a model config (LAVIS's ``blip_pretrain`` keys plus ``tokenizer``, ``latent``, ``aug_view``,
        ``vit_type: custom`` sizes, ``vit_from_pretrained``, ``text_from_pretrained``, ``pretrained``)."""
        check_blip_med_config(cfg)
        tokenizer = cls.tokenizer_from_config(cfg)
        text_from_pretrained = cfg.get("text_from_pretrained", True)
        # LAVIS: bert-base-uncased's vocabulary, resized to the tokenizer's by BlipPretrain.__init__
        vocab_size = None if text_from_pretrained else len(tokenizer)
        model = cls(
            image_encoder=build_vision_encoder(cfg, from_pretrained=cfg.get("vit_from_pretrained", True)),
            text_encoder=build_text_encoder(cfg, vocab_size=vocab_size, from_pretrained=text_from_pretrained),
            text_decoder=build_text_decoder(cfg, vocab_size=vocab_size, from_pretrained=text_from_pretrained),
            queue_size=cfg.get("queue_size", 57600),
            tie_enc_dec_weights=True,
            **_blip_kwargs(cfg, max_txt_len=30),
        )
        load_weights_from_config(model, cfg)
        model.reset_queue_ptr()  # as LAVIS: the last batch of a pass must fit the rest of the queue
        return model


@registry.register_model("blip_latent_retrieval")
class BlipLatentRetrieval(_BlipLatentMixin, BlipRetrieval):
    """LAVIS's ``BlipRetrieval`` (ITC + ITM fine-tuning, ITC-then-ITM ranking) plus latent-structure regularizers.

    Model types: ``coco`` and ``flickr`` (LAVIS's fine-tuned checkpoints) and ``tiny`` (offline, random init).

    Usage:
        >>> import lavis_latent
        >>> from lavis.models import load_model_and_preprocess
        >>> model, vis, txt = load_model_and_preprocess("blip_latent_retrieval", "tiny")
    """

    itm_negatives = "other_images"

    PRETRAINED_MODEL_CONFIG_DICT = {
        "coco": config_path("models", "blip_latent_retrieval_coco.yaml"),
        "flickr": config_path("models", "blip_latent_retrieval_flickr.yaml"),
        "tiny": config_path("models", "blip_latent_retrieval_tiny.yaml"),
    }

    @property
    def negative_all_rank(self):
        """LAVIS's ``negative_all_rank`` (ITM negatives from every rank's batch), in effect only where more than one
        rank runs."""
        return self._negative_all_rank and world_info()[1] > 1

    @negative_all_rank.setter
    def negative_all_rank(self, value):
        self._negative_all_rank = bool(value)

    def _itm_negative_ids(self, samples):
        """``image_id`` [M] of every rank's batch with ``negative_all_rank``, else of this batch."""
        ids = samples["image_id"].view(-1)
        return concat_all_gather(ids.to(self.device)) if self.negative_all_rank else ids

    @classmethod
    def from_config(cls, cfg=None):
        """Build from a model config (LAVIS's ``blip_retrieval`` keys plus ``tokenizer``, ``latent``, ``aug_view``
        and ``vit_type: custom`` sizes); loads ``finetuned`` / ``pretrained`` as LAVIS does, or starts random."""
        check_blip_med_config(cfg)
        tokenizer = cls.tokenizer_from_config(cfg)
        model = cls(
            image_encoder=build_vision_encoder(cfg, from_pretrained=False),
            text_encoder=build_text_encoder(cfg, vocab_size=len(tokenizer)),
            queue_size=cfg.get("queue_size", 0),
            negative_all_rank=cfg.get("negative_all_rank", False),
            **_blip_kwargs(cfg, max_txt_len=35),
        )
        load_weights_from_config(model, cfg)
        model.reset_queue_ptr()
        return model
