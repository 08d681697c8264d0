"""Alignment loss L_Align of the paper's empirical gap study (Sec. 3.1, Fig. 2). Not one of the three regularizers.

The paper adds ``L_Align = 1 / <Z_T, Z_V>^2`` to contrastive pretraining at scales 1, 0.5 and 0 to shrink the
modality gap, and shows that retrieval "barely changes" while the gap changes a lot.
"""
from __future__ import annotations

import torch

from ._checks import cast, check_same_shape, compute_dtype, no_autocast

__all__ = ["alignment_loss"]


@no_autocast
def alignment_loss(z_v: torch.Tensor, z_t: torch.Tensor, eps: float = 1e-2) -> torch.Tensor:
    """``L_Align = 1 / (max(<Z_T, Z_V>, 0)^2 + eps)`` (paper Sec. 3.1, Fig. 2: ``1 / <Z_T, Z_V>^2``).

    Args:
        z_v, z_t: [N, D] L2-normalised paired image and text features.
        eps: keeps the loss finite where the pairs are orthogonal (the start of training): the loss is at most
            ``1 / eps``.

    Returns:
        scalar tensor (float32; float64 for float64 inputs).

    Ambiguity (our choice): the paper writes ``1/<Z_T, Z_V>^2`` with the random variables ``Z_T, Z_V``; we read
    ``<Z_T, Z_V>`` as the expected inner product of a pair, estimated by the batch mean ``1/N sum_j <z_Tj, z_Vj>``,
    and add ``eps`` to the square (the printed form is infinite at 0). The printed form is also even in the inner
    product, so minimising it can *anti*-align the pairs (from a random start it drove the mean paired cosine to
    -0.7 in a few steps): we count only its positive part, so the loss decreases monotonically as the pairs
    align (at a negative mean cosine it is the constant ``1 / eps``, with no gradient, and the contrastive loss
    brings the pairs back). Minimising it pushes the mean paired cosine towards 1: a smaller gap.
    """
    check_same_shape("z_v", z_v, "z_t", z_t)
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps!r}")
    z_v, z_t = cast(compute_dtype(z_v, z_t), z_v, z_t)
    mean_cos = (z_v * z_t).sum(dim=1).mean().clamp(min=0)
    return 1.0 / (mean_cos * mean_cos + eps)
