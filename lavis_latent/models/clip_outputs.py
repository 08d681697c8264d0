"""Output classes of ``clip_latent`` (:mod:`lavis_latent.models.clip_latent`): training losses and features."""
from dataclasses import dataclass
from typing import Optional

import torch
from lavis.models.blip_models.blip_outputs import BlipOutputFeatures
from transformers.modeling_outputs import ModelOutput

__all__ = ["ClipLatentOutput", "ClipLatentOutputFeatures"]


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
