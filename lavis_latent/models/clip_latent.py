"""``clip_latent``: a CLIP-style two-tower model (ResNet + BERT) with latent modality structures (paper Sec. 4).

The paper's CLIP experiments train an RN50 image tower and a BERT text tower with the base loss
``L_Con = 1/4 (L_V2T + L_T2V + L_V2V + L_T2T)`` (CyCLIP's ``--inmodal`` loss) on image-caption pairs and their
augmented views (images: random crop and flip; captions: EDA), plus the regularizers of Sec. 4.1-4.3 on the
projected, L2-normalised embeddings. Here:

* towers: a torchvision ResNet with its ``fc`` removed (pooled features, 2048-d for ResNet-50) or a small ResNet of
  the same design (``image_encoder: resnet_custom``), and a transformers ``BertModel`` whose [CLS] hidden state is the
  text feature; a linear projection per tower to ``embed_dim``;
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
import os
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
import torchvision
from lavis.common.registry import registry
from lavis.models.base_model import BaseModel
from lavis.models.blip_models.blip_outputs import BlipOutputFeatures
from omegaconf import OmegaConf
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck
from transformers import BertConfig, BertModel
from transformers.modeling_outputs import ModelOutput

from lavis_latent.common.paths import config_path
from lavis_latent.models.encoders import (
    HUB_TOKENIZER,
    OFFLINE_HINT,
    WeightsUnavailableError,
    load_tokenizer,
    load_weights_from_config,
)
from lavis_latent.processors.paired_views import batch_sample_ids, batch_views, unpack_views
from lavis_latent.regularizers import LatentStructure, contrastive_terms

__all__ = ["ClipLatent", "ClipLatentOutput", "ClipLatentOutputFeatures", "ResNetTrunk", "build_image_encoder",
           "build_text_encoder", "BASE_LOSSES"]

BASE_LOSSES = ("paper", "clip")
TORCHVISION_RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
MAX_LOGIT_SCALE = math.log(100.0)
AUG_PROCESSORS_HINT = (
    "Use the paired-view training processors: vis_processor train name 'clip_latent_image_train' and "
    "text_processor train name 'eda_caption' (they return PairedViews(view, aug)), or put 'image_aug' and "
    "'text_input_aug' into the batch. Or train without augmented views: model.base_loss: clip and no latent block."
)


@dataclass
class ClipLatentOutput(ModelOutput):
    """Output of ``ClipLatent.forward``: scalar losses (only the computed ones are set).

    ``loss`` = ``loss_itc`` + the weighted regularizer terms; ``loss_itc`` is the base loss (``base_loss``).
    ``image_feat`` / ``text_feat``: [N, E] L2-normalised features of the original views, with gradient (ALBEF's
    names), for losses a caller adds on top (e.g. the gap study's ``alignment_loss``).
    """

    loss: Optional[torch.FloatTensor] = None
    loss_itc: Optional[torch.FloatTensor] = None
    loss_inmodal: Optional[torch.FloatTensor] = None
    loss_sep: Optional[torch.FloatTensor] = None
    loss_bridge: Optional[torch.FloatTensor] = None
    loss_geo: Optional[torch.FloatTensor] = None
    image_feat: Optional[torch.FloatTensor] = None
    text_feat: Optional[torch.FloatTensor] = None


@dataclass
class ClipLatentOutputFeatures(BlipOutputFeatures):
    """LAVIS's ``BlipOutputFeatures`` for a two-tower model (no ``multimodal_embeds``: there is no fusion encoder).

    image_embeds: [N, Dv] pooled image-encoder features (unnormalised); image_embeds_proj: [N, E] L2-normalised.
    text_embeds: [N, Dt] [CLS] hidden state (unnormalised); text_embeds_proj: [N, E] L2-normalised.
    image_embeds_ind, text_embeds_ind: [N, E] L2-normalised independent features of the separation heads
    (``latent.separation``), None without separation.
    """

    image_embeds_ind: Optional[torch.FloatTensor] = None
    text_embeds_ind: Optional[torch.FloatTensor] = None


class ResNetTrunk(nn.Module):
    """torchvision's ResNet design (7x7 stem, max-pool, four stages, global average pool) at any width, no ``fc``.

    Stage ``i`` has ``layers[i]`` blocks of width ``width * 2**i`` (``block``: "basic" or "bottleneck").
    ``forward(images [N, 3, H, W]) -> [N, num_features]``, ``num_features = 8 * width * block.expansion``.
    """

    def __init__(self, layers=(1, 1, 1, 1), width=16, block="basic"):
        super().__init__()
        blocks = {"basic": BasicBlock, "bottleneck": Bottleneck}
        if block not in blocks:
            raise ValueError(f"model.vision_block must be 'basic' or 'bottleneck', got {block!r}")
        layers = [int(n) for n in layers]
        if len(layers) != 4 or min(layers) < 1 or int(width) < 1:
            raise ValueError(f"model.vision_layers must be 4 positive block counts and model.vision_width a "
                             f"positive int, got {layers} and {width!r}")
        blk, width = blocks[block], int(width)
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = width
        for i, n in enumerate(layers):
            planes, stride = width * 2 ** i, 1 if i == 0 else 2
            downsample = None
            if stride != 1 or inplanes != planes * blk.expansion:
                downsample = nn.Sequential(
                    nn.Conv2d(inplanes, planes * blk.expansion, kernel_size=1, stride=stride, bias=False),
                    nn.BatchNorm2d(planes * blk.expansion),
                )
            stage = [blk(inplanes, planes, stride, downsample)]
            inplanes = planes * blk.expansion
            stage += [blk(inplanes, planes) for _ in range(1, n)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = inplanes
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


def build_image_encoder(cfg):
    """Return ``(encoder, width)``: an image tower mapping [N, 3, H, W] to pooled features [N, width].

    ``image_encoder``: a torchvision ResNet name (``resnet18`` ... ``resnet152``; ``fc`` replaced by ``Identity``;
    ``vision_from_pretrained: True`` loads torchvision's ``vision_weights``, default ``IMAGENET1K_V1``, from
    torch's hub cache or the network) or ``resnet_custom`` (``ResNetTrunk`` from ``vision_layers``,
    ``vision_width``, ``vision_block``; random init).

    Raises:
        WeightsUnavailableError: ImageNet weights requested but neither cached nor downloadable.
    """
    name = cfg.get("image_encoder", "resnet50")
    if name == "resnet_custom":
        if cfg.get("vision_from_pretrained", False):
            raise ValueError("model.vision_from_pretrained: True needs a torchvision ResNet (model.image_encoder: "
                             "resnet50, ...); resnet_custom has no pretrained weights")
        encoder = ResNetTrunk(layers=list(cfg.get("vision_layers", [1, 1, 1, 1])), width=cfg.get("vision_width", 16),
                              block=cfg.get("vision_block", "basic"))
        return encoder, encoder.num_features
    if name not in TORCHVISION_RESNETS:
        raise ValueError(f"model.image_encoder must be one of {', '.join(TORCHVISION_RESNETS)} or resnet_custom, "
                         f"got {name!r}")
    weights = cfg.get("vision_weights", "IMAGENET1K_V1") if cfg.get("vision_from_pretrained", True) else None
    try:
        encoder = getattr(torchvision.models, name)(weights=weights)
    except OSError as err:  # URLError is an OSError
        raise WeightsUnavailableError(
            f"Could not fetch torchvision's {name} ImageNet weights ({weights}): {err}. {OFFLINE_HINT} (torchvision "
            f"looks for them in {os.path.join(torch.hub.get_dir(), 'checkpoints')} first.) Set "
            "model.vision_from_pretrained: False to start from random weights."
        ) from err
    width = encoder.fc.in_features
    encoder.fc = nn.Identity()
    return encoder, width


def build_text_encoder(cfg, vocab_size):
    """Return a transformers ``BertModel`` without pooler (the [CLS] hidden state is the feature).

    ``text_from_pretrained: True`` loads ``text_model`` (default ``bert-base-uncased``) from the HuggingFace hub
    or its cache; otherwise random init from ``text_config`` (a ``BertConfig`` json; null = BERT-base's
    architecture). ``vocab_size`` (the tokenizer's length) overrides the config's for random init; a pretrained
    model must match it.
    """
    if cfg.get("text_from_pretrained", True):
        name = cfg.get("text_model", HUB_TOKENIZER)
        try:
            encoder = BertModel.from_pretrained(name, add_pooling_layer=False)
        except OSError as err:
            raise WeightsUnavailableError(
                f"Could not load the {name!r} text encoder weights (model.text_model): {err}. {OFFLINE_HINT} "
                "Set model.text_from_pretrained: False to start from random weights."
            ) from err
        if encoder.config.vocab_size != vocab_size:
            raise ValueError(f"model.tokenizer has {vocab_size} tokens but {name!r} has an embedding table of "
                             f"{encoder.config.vocab_size}: use the tokenizer that belongs to the text model")
        return encoder
    path = cfg.get("text_config", None)
    if path is None:
        config = BertConfig()  # transformers' defaults are bert-base-uncased's architecture
    else:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"model.text_config points at {path!r}, which does not exist")
        config = BertConfig.from_json_file(path)
    config.vocab_size = vocab_size
    return BertModel(config, add_pooling_layer=False)


def _as_text_list(value, key):
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(t, str) for t in value):
        return list(value)
    raise TypeError(f"samples[{key!r}] must be a list of strings (or PairedViews of two such lists), got "
                    f"{type(value).__name__}")


def _as_image_batch(value, key):
    if not torch.is_tensor(value) or value.dim() != 4:
        shape = tuple(value.shape) if torch.is_tensor(value) else type(value).__name__
        raise TypeError(f"samples[{key!r}] must be an image batch tensor [N, 3, H, W] (or PairedViews of two), "
                        f"got {shape}")
    return value


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
        image, image_aug = batch_views(samples, "image", "image_aug")
        text, text_aug = batch_views(samples, "text_input", "text_input_aug")
        image = _as_image_batch(image, "image")
        text = _as_text_list(text, "text_input")
        n = image.shape[0]
        if len(text) != n:
            raise ValueError(f"batch size mismatch: {n} images but {len(text)} captions in samples['text_input']")
        use_aug = self.needs_aug
        if use_aug:
            if image_aug is None or text_aug is None:
                missing = [k for k, v in (("image_aug", image_aug), ("text_input_aug", text_aug)) if v is None]
                reason = f"base_loss: {self.base_loss}" if self.base_loss == "paper" else "the latent regularizers"
                raise ValueError(f"{reason} need the augmented views, but the batch has no {' / '.join(missing)}. "
                                 + AUG_PROCESSORS_HINT)
            image_aug = _as_image_batch(image_aug, "image_aug")
            text_aug = _as_text_list(text_aug, "text_input_aug")
            if image_aug.shape != image.shape or len(text_aug) != n:
                raise ValueError(f"augmented views do not match the batch: images {tuple(image.shape)} vs augmented "
                                 f"{tuple(image_aug.shape)}, {n} captions vs {len(text_aug)} augmented captions")
            images = torch.cat([image.to(self.device), image_aug.to(self.device)])
            texts = text + text_aug
        else:
            images, texts = image, text

        self.clamp_logit_scale()
        image_embeds_all = self.image_features(images)
        text_embeds_all = self.text_features(texts)
        z_v_all = F.normalize(self.vision_proj(image_embeds_all), dim=-1)
        z_t_all = F.normalize(self.text_proj(text_embeds_all), dim=-1)
        temperature = self.temperature

        z_v, z_t = z_v_all[:n], z_t_all[:n]
        z_v_aug = z_t_aug = image_embeds_aug = text_embeds_aug = None
        if use_aug:
            z_v_aug, z_t_aug = z_v_all[n:], z_t_all[n:]
            image_embeds_aug, text_embeds_aug = image_embeds_all[n:], text_embeds_all[n:]

        ids = batch_sample_ids(samples)
        # cross-modal terms as CLIP / CyCLIP (diagonal positives); in-modal terms know their image (sample ids)
        terms = contrastive_terms(z_v, z_t, temperature=temperature, gather=True)
        if self.base_loss == "paper":
            terms.update(contrastive_terms(z_v, z_t, z_v_aug, z_t_aug, temperature=temperature, gather=True,
                                           cross_modal=False, sample_ids=ids))
        loss_itc = sum(terms.values()) / len(terms)
        losses = {}
        if self.latent.enabled:
            losses = self.latent(
                z_v, z_t, z_v_aug, z_t_aug,
                temperature=temperature,
                image_embeds=image_embeds_all[:n],
                text_embeds=text_embeds_all[:n],
                image_embeds_aug=image_embeds_aug,
                text_embeds_aug=text_embeds_aug,
                gather=True,
                sample_ids=ids,
            )
        loss = loss_itc
        for value in losses.values():
            loss = loss + value
        return ClipLatentOutput(loss=loss, loss_itc=loss_itc, image_feat=z_v, text_feat=z_t, **losses)

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
