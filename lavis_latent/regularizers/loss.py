"""An open_clip-style loss: CLIP's contrastive loss plus the configured latent-structure regularizers (pure torch).

For any two-tower training loop (open_clip, a plain torch loop): the module takes the model's output dict and
returns the named, weighted losses, as open_clip's ``ClipLoss(..., output_dict=True)`` does, and gathers the
negatives of other ranks itself (with gradient), so the training loop needs no distributed code::

    loss_fn = LatentStructureLoss({"inmodal": {}, "bridge": {"weight": 0.3}})
    out = model(images, texts)                        # open_clip: image_features, text_features, logit_scale
    aug = model(images_aug, texts_aug)
    losses = loss_fn(**out, image_features_aug=aug["image_features"], text_features_aug=aug["text_features"],
                     output_dict=True)
    sum(losses.values()).backward()

Conventions are open_clip's: features L2-normalised [N, D]; ``logit_scale`` is the *exponentiated* scale
(open_clip's models return ``self.logit_scale.exp()``), so the temperature of every contrastive term is
``1 / logit_scale``.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Union

import torch
import torch.nn as nn

from ._checks import check_positive
from .contrastive import contrastive_terms
from .separation import FeatureSeparation
from .structure import LatentStructure

__all__ = ["LatentStructureLoss"]


class LatentStructureLoss(nn.Module):
    """``contrastive_loss = w * 1/2 (L_V2T + L_T2V)`` plus :class:`LatentStructure`'s weighted regularizers.

    Args:
        latent: the ``latent:`` block (dict or None; see :mod:`lavis_latent.regularizers.structure`). None or
            empty gives plain CLIP's loss.
        image_dim, text_dim: widths of the features given as ``image_embeds`` / ``text_embeds`` (the encoders'
            outputs before the projection), needed only for ``separation``; ``embed_dim``: the width of the
            contrastive features. The separation heads are parameters of this module: give them to the optimizer
            (``model.parameters()`` plus ``loss_fn.parameters()``).
        contrastive_weight: weight of the cross-modal term (CLIP's loss); 0 leaves only the regularizers.
        gather: score the local rows against the keys of every rank (open_clip's ``local_loss=True,
            gather_with_grad=True``); a no-op on one process.
        defaults: sub-key defaults of the regularizers (e.g. ``{"bridge": {"form": "online"}}``).

    The returned losses (``output_dict=True``): ``contrastive_loss`` (open_clip's key, so logging is unchanged
    when this module replaces ``ClipLoss``) and ``loss_inmodal``, ``loss_sep``, ``loss_bridge``, ``loss_geo`` for
    the active regularizers; ``output_dict=False`` returns their sum.
    """

    def __init__(self, latent: Any = None, image_dim: Optional[int] = None, text_dim: Optional[int] = None,
                 embed_dim: Optional[int] = None, contrastive_weight: float = 1.0, gather: bool = True,
                 defaults: Optional[Mapping[str, Mapping[str, Any]]] = None):
        super().__init__()
        self.structure = LatentStructure(latent, image_dim=image_dim, text_dim=text_dim, embed_dim=embed_dim,
                                         defaults=defaults)
        if contrastive_weight != 0:
            check_positive("contrastive_weight", contrastive_weight)
        self.contrastive_weight = float(contrastive_weight)
        if not self.contrastive_weight and not self.structure.enabled:
            raise ValueError("LatentStructureLoss: nothing to compute: contrastive_weight is 0 and no regularizer "
                             "is active (give a latent block, or a contrastive_weight > 0)")
        self.gather = bool(gather)

    @property
    def separation(self) -> Optional[FeatureSeparation]:
        """The independent projection heads (``separation`` active), else None."""
        return self.structure.separation

    def forward(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: Union[float, torch.Tensor],
        image_features_aug: Optional[torch.Tensor] = None,
        text_features_aug: Optional[torch.Tensor] = None,
        image_embeds: Optional[torch.Tensor] = None,
        text_embeds: Optional[torch.Tensor] = None,
        image_embeds_aug: Optional[torch.Tensor] = None,
        text_embeds_aug: Optional[torch.Tensor] = None,
        sample_ids: Optional[torch.Tensor] = None,
        generator: Optional[torch.Generator] = None,
        output_dict: bool = False,
    ) -> Union[torch.Tensor, Dict[str, torch.Tensor]]:
        """The weighted losses of one batch.

        Args:
            image_features, text_features: [N, D] L2-normalised features, row j of each a positive pair.
            logit_scale: exponentiated logit scale (open_clip's model output), a number or scalar tensor > 0.
            image_features_aug, text_features_aug: [N, D] features of the augmented image / caption, through the
                same model with gradient (needed by ``inmodal`` and ``bridge``; used by ``geometric``).
            image_embeds, text_embeds (+ ``_aug``): [N, image_dim], [N, text_dim] inputs of the separation heads.
            sample_ids: optional [N] integer ids; rows with one id are positives of each other.
            generator: RNG for ``bridge.t: uniform``.
            output_dict: return the dict of named losses (else their sum).

        Returns:
            A scalar (the total), or ``{name: scalar}`` with ``output_dict=True``.
        """
        temperature = 1.0 / logit_scale
        losses: Dict[str, torch.Tensor] = {}
        if self.contrastive_weight:
            terms = contrastive_terms(image_features, text_features, temperature=temperature, gather=self.gather,
                                      sample_ids=sample_ids)
            losses["contrastive_loss"] = self.contrastive_weight * 0.5 * (terms["v2t"] + terms["t2v"])
        losses.update(self.structure(
            image_features, text_features, image_features_aug, text_features_aug, temperature=temperature,
            image_embeds=image_embeds, text_embeds=text_embeds, image_embeds_aug=image_embeds_aug,
            text_embeds_aug=text_embeds_aug, gather=self.gather, generator=generator, sample_ids=sample_ids))
        return losses if output_dict else sum(losses.values())
