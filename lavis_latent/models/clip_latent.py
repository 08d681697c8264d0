"""``clip_latent``: a CLIP-style two-tower model (ResNet + BERT) with latent modality structures (paper Sec. 4).

The paper's CLIP experiments train an RN50 image tower and a BERT text tower with the base loss
``L_Con = 1/4 (L_V2T + L_T2V + L_V2V + L_T2T)`` (CyCLIP's ``--inmodal`` loss) on image-caption pairs and their
augmented views (images: random crop and flip; captions: EDA), plus the regularizers of Sec. 4.1-4.3 on the
projected, L2-normalised embeddings. Here:

* towers (:mod:`lavis_latent.models.clip_towers`): a torchvision ResNet with its ``fc`` removed (pooled features,
  2048-d for ResNet-50) or a small ResNet of the same design (``image_encoder: resnet_custom``), and a transformers
  ``BertModel`` whose [CLS] hidden state is the text feature; a linear projection per tower to ``embed_dim``;
* a learnable temperature as CLIP's: ``logit_scale`` initialised to ``ln(1 / temp)``, clamped to ``[0, ln 100]`` at
  every forward (CyCLIP clamps after every step), ``temperature = exp(-logit_scale)``;
* ``base_loss: paper`` (default, L_Con on the original and augmented views) or ``clip`` (``1/2 (L_V2T + L_T2V)``,
  original views only);
* ``latent:`` the same ``LatentStructure`` as ALBEF's (``loss_sep``, ``loss_bridge``, ``loss_geo``, ``loss_inmodal``),
  whose augmented view is the batch's ``image_aug`` / ``text_input_aug`` encoded by the same towers with gradient.

Augmented views come from the data pipeline: the training processors ``clip_latent_image_train`` and
``eda_caption`` return ``PairedViews(view, aug)``; see ``lavis_latent.processors``.
"""
import logging
import math
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from lavis.common.registry import registry
from lavis.models.base_model import BaseModel
from omegaconf import OmegaConf
from torch import nn

from lavis_latent.models.dummy_inputs import image_text_batch
from lavis_latent.common.paths import config_path
from lavis_latent.models.clip_outputs import ClipLatentOutput, ClipLatentOutputFeatures
from lavis_latent.models.clip_towers import ResNetTrunk, build_image_encoder, build_text_encoder
from lavis_latent.models.encoders import HUB_TOKENIZER, load_tokenizer, load_weights_from_config
from lavis_latent.processors.paired_views import batch_sample_ids, batch_views, unpack_views
from lavis_latent.regularizers import LatentStructure, contrastive_terms

__all__ = ["ClipLatent", "ClipLatentOutput", "ClipLatentOutputFeatures", "ResNetTrunk", "build_image_encoder",
           "build_text_encoder", "BASE_LOSSES"]

BASE_LOSSES = ("paper", "clip")
MAX_LOGIT_SCALE = math.log(100.0)
AUG_PROCESSORS_HINT = (
    "Use the paired-view training processors: vis_processor train name 'clip_latent_image_train' and "
    "text_processor train name 'eda_caption' (they return PairedViews(view, aug)), or put 'image_aug' and "
    "'text_input_aug' into the batch. Or train without augmented views: model.base_loss: clip and no latent block."
)


def _as_text_list(value, key):
    """``value`` as a list of str (a str is one caption); ``TypeError`` naming ``samples[key]`` otherwise."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(t, str) for t in value):
        return list(value)
    raise TypeError(f"samples[{key!r}] must be a list of strings (or PairedViews of two such lists), got "
                    f"{type(value).__name__}")


def _as_image_batch(value, key):
    """``value`` itself when it is an image batch tensor [N, 3, H, W]; ``TypeError`` naming ``samples[key]``."""
    if not torch.is_tensor(value) or value.dim() != 4:
        shape = tuple(value.shape) if torch.is_tensor(value) else type(value).__name__
        raise TypeError(f"samples[{key!r}] must be an image batch tensor [N, 3, H, W] (or PairedViews of two), "
                        f"got {shape}")
    return value


class _EncodedViews(NamedTuple):
    """A training batch encoded: L2-normalised embeddings ``z_*`` [N, E] and tower features ``*_embeds`` [N, D] of
    the original views, and of the augmented views (None when training uses none)."""

    z_v: torch.Tensor
    z_t: torch.Tensor
    image_embeds: torch.Tensor
    text_embeds: torch.Tensor
    z_v_aug: Optional[torch.Tensor] = None
    z_t_aug: Optional[torch.Tensor] = None
    image_embeds_aug: Optional[torch.Tensor] = None
    text_embeds_aug: Optional[torch.Tensor] = None


@registry.register_model("clip_latent")
class ClipLatent(BaseModel):
    """CLIP-style two-tower model (ResNet image tower, BERT text tower) with latent modality structures.

    Model types: ``rn50_bert`` (the paper's CLIP setting: torchvision ResNet-50 from ImageNet weights and
    ``bert-base-uncased``, needs the network or caches) and ``tiny`` (offline, random init, local vocabulary).

    Usage:
        >>> import lavis_latent
        >>> from lavis.models import load_model_and_preprocess
        >>> model, vis, txt = load_model_and_preprocess("clip_latent", "tiny")
        >>> out = model({"image": vis["train"](img), ...})   # training batch of PairedViews (see forward)
        >>> feats = model.extract_features({"image": images, "text_input": captions})
    """

    PRETRAINED_MODEL_CONFIG_DICT = {
        "rn50_bert": config_path("models", "clip_latent_rn50_bert.yaml"),
        "tiny": config_path("models", "clip_latent_tiny.yaml"),
    }

    def dummy_inputs(self, n=2, seed=0, image_size=64):
        """A small random training batch (:func:`~lavis_latent.models.dummy_inputs.image_text_batch`): images of
        ``image_size`` px (the ResNet pools any size), captions, ids; as paired views when training needs the
        augmented views (``needs_aug``)."""
        return image_text_batch(n, image_size, seed, paired=self.needs_aug)

    def __init__(self, visual_encoder, text_encoder, tokenizer, vision_width, text_width, embed_dim=512, temp=0.07,
                 max_txt_len=77, base_loss="paper", latent=None):
        """
        Args:
            visual_encoder: module [N, 3, H, W] -> [N, vision_width] (pooled features).
            text_encoder: a transformers ``BertModel`` (its [CLS] hidden state [N, text_width] is used).
            tokenizer: the matching ``BertTokenizer``.
            embed_dim: width E of the projected, normalised embeddings.
            temp: initial temperature tau (``logit_scale = ln(1 / temp)``), in [0.01, 1].
            max_txt_len: token limit (truncation) of the tokenizer.
            base_loss: ``"paper"`` (L_Con with augmented views) or ``"clip"`` (``1/2 (V2T + T2V)``).
            latent: the ``latent:`` config block (``LatentStructure``), or None.
        """
        super().__init__()
        if base_loss not in BASE_LOSSES:
            raise ValueError(f"model.base_loss must be one of {', '.join(BASE_LOSSES)}, got {base_loss!r}")
        temp = float(temp)
        if not 0.01 <= temp <= 1.0:
            raise ValueError(f"model.temp must be in [0.01, 1] (logit scale at most 100, as CLIP), got {temp}")
        max_pos = getattr(getattr(text_encoder, "config", None), "max_position_embeddings", None)
        if max_pos is not None and int(max_txt_len) > max_pos:
            raise ValueError(f"model.max_txt_len = {max_txt_len} exceeds the text encoder's "
                             f"max_position_embeddings = {max_pos}")
        self.visual_encoder = visual_encoder
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.vision_width, self.text_width = int(vision_width), int(text_width)
        self.vision_proj = nn.Linear(self.vision_width, int(embed_dim))
        self.text_proj = nn.Linear(self.text_width, int(embed_dim))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temp)))
        self.max_txt_len = int(max_txt_len)
        self.base_loss = base_loss
        self.latent = LatentStructure.from_config(latent, image_dim=self.vision_width, text_dim=self.text_width,
                                                  embed_dim=int(embed_dim))
        if base_loss == "paper" and "inmodal" in self.latent.names:
            raise ValueError(
                "model.latent.inmodal with model.base_loss: paper counts the in-modal terms V2V and T2T twice (the "
                "paper's L_Con = 1/4 (V2T + T2V + V2V + T2T) already has them). Remove latent.inmodal, or set "
                "model.base_loss: clip to train CLIP's 1/2 (V2T + T2V) plus latent.inmodal."
            )

    # -- temperature ---------------------------------------------------------------------------------------------
    @property
    def temperature(self):
        """tau = 1 / exp(logit_scale), a scalar tensor with gradient (what the losses take)."""
        return torch.exp(-self.logit_scale)

    def clamp_logit_scale(self):
        """Clamp ``logit_scale`` in place to [0, ln 100] (scale <= 100), as CLIP and CyCLIP do."""
        with torch.no_grad():
            self.logit_scale.clamp_(0.0, MAX_LOGIT_SCALE)

    @property
    def needs_aug(self):
        """Whether training needs the augmented views (``base_loss: paper`` or any ``latent`` regularizer)."""
        return self.base_loss == "paper" or self.latent.enabled

    # -- encoders ------------------------------------------------------------------------------------------------
    def tokenize(self, texts):
        """BERT tokens of a list of strings, padded to the longest, truncated at ``max_txt_len``, on the device."""
        return self.tokenizer(texts, padding="longest", truncation=True, max_length=self.max_txt_len,
                              return_tensors="pt").to(self.device)

    def image_features(self, images):
        """Pooled image-tower features [N, Dv] (unnormalised) of images [N, 3, H, W]."""
        return self.visual_encoder(images.to(self.device))

    def text_features(self, texts):
        """[CLS] hidden states [N, Dt] (unnormalised) of a list of N strings."""
        tokens = self.tokenize(_as_text_list(texts, "text_input"))
        out = self.text_encoder(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask, return_dict=True)
        return out.last_hidden_state[:, 0, :]

    def encode_image(self, images):
        """L2-normalised image embeddings [N, E] of images [N, 3, H, W] (a tensor or PairedViews: its ``view``)."""
        images = _as_image_batch(unpack_views(images)[0], "image")
        return F.normalize(self.vision_proj(self.image_features(images)), dim=-1)

    def encode_text(self, texts):
        """L2-normalised text embeddings [N, E] of N captions (a list of str, a str, or PairedViews: ``view``)."""
        return F.normalize(self.text_proj(self.text_features(unpack_views(texts)[0])), dim=-1)

    # -- training ------------------------------------------------------------------------------------------------
    def forward(self, samples):
        """Training losses of one batch.

        Args:
            samples: dict with ``"image"``: Tensor [N, 3, H, W] or ``PairedViews(view, aug)`` of two such tensors;
                ``"text_input"``: list of N str or ``PairedViews`` of two such lists; optionally ``"image_aug"`` /
                ``"text_input_aug"`` (the augmented views given separately). Augmented views are required when
                ``base_loss: paper`` or a ``latent`` regularizer is active, and ignored otherwise. ``"image_id"``
                where present: captions of one image are positives of each other in the in-modal terms (V2V, T2T,
                L^i_Con); the cross-modal terms keep CLIP's diagonal positives.

        Original and augmented views are encoded as one concatenated batch per tower (as CyCLIP does), so
        BatchNorm sees both.

        Returns:
            ``ClipLatentOutput`` with ``loss`` (total), ``loss_itc`` (base loss) and the weighted regularizer terms
            ``loss_inmodal`` / ``loss_sep`` / ``loss_bridge`` / ``loss_geo`` of the active ones, and the features
            ``image_feat`` / ``text_feat`` [N, E] of the original views.
        """
        image, text, image_aug, text_aug = self._training_views(samples)
        self.clamp_logit_scale()
        views = self._encode_views(image, text, image_aug, text_aug)
        temperature = self.temperature
        ids = batch_sample_ids(samples)
        loss_itc = self._base_loss(views, temperature, ids)
        losses = self._latent_losses(views, temperature, ids)
        loss = loss_itc
        for value in losses.values():
            loss = loss + value
        return ClipLatentOutput(loss=loss, loss_itc=loss_itc, image_feat=views.z_v, text_feat=views.z_t, **losses)

    def _training_views(self, samples):
        """``(image [N, 3, H, W], text [N str], image_aug, text_aug)`` of a training batch, checked; the augmented
        views are None when training does not need them (``needs_aug``)."""
        image, image_aug = batch_views(samples, "image", "image_aug")
        text, text_aug = batch_views(samples, "text_input", "text_input_aug")
        image = _as_image_batch(image, "image")
        text = _as_text_list(text, "text_input")
        n = image.shape[0]
        if len(text) != n:
            raise ValueError(f"batch size mismatch: {n} images but {len(text)} captions in samples['text_input']")
        if not self.needs_aug:
            return image, text, None, None
        return (image, text) + self._checked_aug_views(image, image_aug, text_aug)

    def _checked_aug_views(self, image, image_aug, text_aug):
        """The augmented views ``(image_aug [N, 3, H, W], text_aug [N str])``, present and of the batch's shape
        (``image``: the original images); a ``ValueError`` that says how to provide them otherwise."""
        if image_aug is None or text_aug is None:
            missing = [k for k, v in (("image_aug", image_aug), ("text_input_aug", text_aug)) if v is None]
            reason = f"base_loss: {self.base_loss}" if self.base_loss == "paper" else "the latent regularizers"
            raise ValueError(f"{reason} need the augmented views, but the batch has no {' / '.join(missing)}. "
                             + AUG_PROCESSORS_HINT)
        image_aug = _as_image_batch(image_aug, "image_aug")
        text_aug = _as_text_list(text_aug, "text_input_aug")
        n = image.shape[0]
        if image_aug.shape != image.shape or len(text_aug) != n:
            raise ValueError(f"augmented views do not match the batch: images {tuple(image.shape)} vs augmented "
                             f"{tuple(image_aug.shape)}, {n} captions vs {len(text_aug)} augmented captions")
        return image_aug, text_aug

    def _encode_views(self, image, text, image_aug=None, text_aug=None):
        """``_EncodedViews`` of the batch: the original and augmented views go through each tower as one
        concatenated batch (as CyCLIP does, so BatchNorm sees both), then are split again."""
        n = image.shape[0]
        if image_aug is None:
            images, texts = image, text
        else:
            images = torch.cat([image.to(self.device), image_aug.to(self.device)])
            texts = text + text_aug
        image_embeds = self.image_features(images)
        text_embeds = self.text_features(texts)
        z_v = F.normalize(self.vision_proj(image_embeds), dim=-1)
        z_t = F.normalize(self.text_proj(text_embeds), dim=-1)
        views = _EncodedViews(z_v[:n], z_t[:n], image_embeds[:n], text_embeds[:n])
        if image_aug is None:
            return views
        return views._replace(z_v_aug=z_v[n:], z_t_aug=z_t[n:], image_embeds_aug=image_embeds[n:],
                              text_embeds_aug=text_embeds[n:])

    def _base_loss(self, views, temperature, sample_ids):
        """``loss_itc``, the mean of the base loss's terms: the cross-modal V2T, T2V (CLIP's diagonal positives)
        and, with ``base_loss: paper``, the in-modal V2V, T2T against the augmented views (``sample_ids``: captions
        of one image are positives of each other)."""
        terms = contrastive_terms(views.z_v, views.z_t, temperature=temperature, gather=True)
        if self.base_loss == "paper":
            terms.update(contrastive_terms(views.z_v, views.z_t, views.z_v_aug, views.z_t_aug,
                                           temperature=temperature, gather=True, cross_modal=False,
                                           sample_ids=sample_ids))
        return sum(terms.values()) / len(terms)

    def _latent_losses(self, views, temperature, sample_ids):
        """The weighted regularizer losses of the ``latent:`` block (``{"loss_sep": ..., ...}``; {} without one)."""
        if not self.latent.enabled:
            return {}
        return self.latent(
            views.z_v, views.z_t, views.z_v_aug, views.z_t_aug,
            temperature=temperature,
            image_embeds=views.image_embeds,
            text_embeds=views.text_embeds,
            image_embeds_aug=views.image_embeds_aug,
            text_embeds_aug=views.text_embeds_aug,
            gather=True,
            sample_ids=sample_ids,
        )

    # -- inference -----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def extract_features(self, samples, mode="multimodal"):
        """Unimodal features in LAVIS's feature-extractor convention (no gradient; uses the current train/eval mode).

        Args:
            samples: dict with ``"image"`` (Tensor [N, 3, H, W]; for mode image/multimodal) and/or
                ``"text_input"`` (list of N str; for mode text/multimodal). A ``PairedViews`` gives its ``view``.
            mode: ``"image"``, ``"text"`` or ``"multimodal"`` (both; there is no fusion encoder).

        Returns:
            ``ClipLatentOutputFeatures``: ``image_embeds`` [N, Dv], ``image_embeds_proj`` [N, E] (normalised),
            ``text_embeds`` [N, Dt], ``text_embeds_proj`` [N, E] (normalised), ``image_embeds_ind`` /
            ``text_embeds_ind`` [N, E] (normalised separation-head features; None without separation); the
            fields of the modality not asked for are None.
        """
        if mode not in ("image", "text", "multimodal"):
            raise ValueError(f"mode must be 'image', 'text' or 'multimodal', got {mode!r}")
        heads = self.latent.separation
        out = {}
        if mode in ("image", "multimodal"):
            if samples.get("image") is None:
                raise KeyError(f"extract_features(mode={mode!r}) needs samples['image']")
            image = _as_image_batch(unpack_views(samples["image"])[0], "image")
            embeds = self.image_features(image)
            out["image_embeds"] = embeds
            out["image_embeds_proj"] = F.normalize(self.vision_proj(embeds), dim=-1)
            if heads is not None:
                out["image_embeds_ind"] = F.normalize(heads.image_proj(embeds), dim=-1)
        if mode in ("text", "multimodal"):
            if samples.get("text_input") is None:
                raise KeyError(f"extract_features(mode={mode!r}) needs samples['text_input']")
            embeds = self.text_features(unpack_views(samples["text_input"])[0])
            out["text_embeds"] = embeds
            out["text_embeds_proj"] = F.normalize(self.text_proj(embeds), dim=-1)
            if heads is not None:
                out["text_embeds_ind"] = F.normalize(heads.text_proj(embeds), dim=-1)
        return ClipLatentOutputFeatures(**out)

    # -- construction and weights --------------------------------------------------------------------------------
    def load_from_pretrained(self, url_or_filename):
        """Load a checkpoint (``{"model": state_dict}`` or a state dict) non-strictly, logging unused/missing keys."""
        msg = self.load_checkpoint(url_or_filename)
        if msg.unexpected_keys:
            logging.info("%s: checkpoint keys not used by ClipLatent: %s", url_or_filename, msg.unexpected_keys)
        return msg

    @classmethod
    def from_config(cls, cfg=None):
        """Build from a model config (keys: see ``clip_latent_rn50_bert.yaml`` / ``clip_latent_tiny.yaml``):

        ``image_encoder``, ``vision_from_pretrained``, ``vision_weights``, ``vision_layers``, ``vision_width``,
        ``vision_block``; ``text_model``, ``text_config``, ``text_from_pretrained``, ``tokenizer``; ``embed_dim``,
        ``temp``, ``max_txt_len``, ``base_loss``, ``latent``; ``load_finetuned`` / ``finetuned``, ``pretrained`` /
        ``load_pretrained`` (a local checkpoint or URL, as LAVIS).
        """
        if cfg is None:
            cfg = OmegaConf.create()
        tokenizer = load_tokenizer(cfg.get("tokenizer", HUB_TOKENIZER))
        visual_encoder, vision_width = build_image_encoder(cfg)
        text_encoder = build_text_encoder(cfg, vocab_size=len(tokenizer))
        model = cls(
            visual_encoder=visual_encoder,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            vision_width=vision_width,
            text_width=text_encoder.config.hidden_size,
            embed_dim=cfg.get("embed_dim", 512),
            temp=cfg.get("temp", 0.07),
            max_txt_len=cfg.get("max_txt_len", 77),
            base_loss=cfg.get("base_loss", "paper"),
            latent=cfg.get("latent", None),
        )
        load_weights_from_config(model, cfg)
        return model
