"""Latent modality structure regularizers (Jiang et al., CVPR 2023, Sec. 4). Pure torch: imports nothing from LAVIS,
and works where LAVIS is not installed (``import lavis_latent`` registers the LAVIS plugin only where it is).

All losses take L2-normalised features of shape [N, D] (row j of each argument belongs to sample j), return a
scalar (float32; float64 for float64 inputs; fp16/bf16 inputs are computed in float32), are differentiable,
batch-size agnostic, and raise ``ValueError`` on non-2-D inputs, mismatched shapes (naming both) or t outside
[0, 1].

* :func:`contrastive_loss`            L_Con = 1/4 (V2T + T2V + V2V + T2T)                     (Sec. 4)
* :func:`orthogonal_loss`, :func:`uniformity_loss`, :class:`FeatureSeparation`  L_Sep          (Sec. 4.1)
* :func:`brownian_bridge_loss`        L_Br with Eq. 1's normalised bridge mean                (Sec. 4.2)
* :func:`geometric_consistency_loss`  L_GC + L^a_GC                                           (Sec. 4.3)
* :class:`LatentStructure`            the configured set, weighted, as a dict of named losses
* :class:`LatentStructureLoss`        open_clip-style loss: CLIP's loss + the configured set, from an output dict
* :func:`alignment_loss`          L_Align = 1/<Z_T, Z_V>^2 of the gap study            (Sec. 3.1)
* :func:`gather_features`             all-gather with gradient for the global-batch contrastive terms
"""
from .alignment import alignment_loss
from .bridge import bridge_mean, brownian_bridge_loss
from .contrastive import contrastive_loss, contrastive_terms
from .distributed import gather_features
from .geometric import GC_NORMALIZATIONS, geometric_consistency_loss, geometric_consistency_terms
from .separation import FeatureSeparation, orthogonal_loss, uniformity_loss
from .loss import LatentStructureLoss
from .structure import BRIDGE_FORMS, REGULARIZERS, LatentStructure

__all__ = [
    "contrastive_loss",
    "contrastive_terms",
    "brownian_bridge_loss",
    "bridge_mean",
    "geometric_consistency_loss",
    "geometric_consistency_terms",
    "orthogonal_loss",
    "uniformity_loss",
    "FeatureSeparation",
    "LatentStructure",
    "LatentStructureLoss",
    "REGULARIZERS",
    "BRIDGE_FORMS",
    "GC_NORMALIZATIONS",
    "gather_features",
    "alignment_loss",
]
