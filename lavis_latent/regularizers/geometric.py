"""Geometric consistency loss L_GC + L^a_GC (paper Sec. 4.3): intra- and inter-modality regularization.

Two normalisations (``normalization``):

* ``"paper"`` (the printed form, exact): every double sum over the N^2 pairs (j, k) is scaled by 1/N, so the
  loss grows linearly with the batch (0.86 / 4.2 / 15.9 on random features at N = 16 / 64 / 256) while the
  ``aug_pair`` part, a single sum scaled by 1/N, does not: the mix of the parts changes with N, and a weight
  means something else at every batch size (CyCLIP's 0.25 per term was tuned at a global batch of 128).
* ``"mean"`` (batch-invariant): every part is the mean of its squared differences, the double sums over their
  N^2 pairs and ``aug_pair`` over its N pairs. The value, the gradient per sample and the mix of the parts do not
  depend on N (duplicating the batch leaves the loss unchanged). ``paper = mean * N`` for the double sums and
  ``paper = mean`` for ``aug_pair``, so a weight ``w`` under ``"mean"`` acts like ``w / N`` under ``"paper"`` on the
  double sums.

``gather=True`` computes the double sums over the global batch of all ranks, as CyCLIP does: each rank scores its
local rows j against the gathered rows k (with gradient through the gather, :func:`gather_features`), with the
normalisation of the global batch, so that the mean of the per-rank losses (and DDP's mean of the gradients) is
the single-process loss on the concatenated batch. ``aug_pair`` is per sample and stays local.
"""
from __future__ import annotations

from typing import Dict, Optional

import torch

from ._checks import cast, check_views, compute_dtype, no_autocast
from .contrastive import global_keys

__all__ = ["geometric_consistency_loss", "geometric_consistency_terms", "GC_NORMALIZATIONS"]

GC_NORMALIZATIONS = ("paper", "mean")


@no_autocast
def geometric_consistency_terms(
    z_v: torch.Tensor,
    z_t: torch.Tensor,
    z_v_aug: Optional[torch.Tensor] = None,
    z_t_aug: Optional[torch.Tensor] = None,
    normalization: str = "paper",
    gather: bool = False,
) -> Dict[str, torch.Tensor]:
    """The parts of L_GC (+ L^a_GC), unweighted (see :func:`geometric_consistency_loss` and the module docstring).

    Returns a dict with ``"cross"`` = S_jk (<V_j,T_k> - <V_k,T_j>)^2, ``"inmodal"`` = S_jk (<V_j,V_k> - <T_j,T_k>)^2
    (these two are L_GC, CyCLIP's cyclic losses) and, if the aug views are given, ``"aug_image"`` =
    S_jk (<V_j,V_k> - <V^a_j,V^a_k>)^2, ``"aug_text"`` (same for T) and ``"aug_pair"`` =
    S_j (<V_j,T_j> - <V^a_j,T^a_j>)^2 (these three are L^a_GC). ``S_jk`` is ``1/N sum_jk`` (``"paper"``) or the mean
    over the N^2 pairs (``"mean"``); ``S_j`` is ``1/N sum_j`` under both.
    """
    check_views(z_v, z_t, z_v_aug, z_t_aug)
    if normalization not in GC_NORMALIZATIONS:
        raise ValueError(f"geometric consistency normalization must be one of {', '.join(GC_NORMALIZATIONS)}, "
                         f"got {normalization!r}")
    dtype = compute_dtype(z_v, z_t, z_v_aug, z_t_aug)
    zv, zt, zva, zta = cast(dtype, z_v, z_t, z_v_aug, z_t_aug)
    n = zv.shape[0]
    _, (kv, kt, kva, kta), _ = global_keys(gather, None, zv, zt, zva, zta)
    m = kv.shape[0]
    # local rows j against (global) rows k: 1/N sum_{j local, k} averages over ranks to 1/M sum_{j, k}
    double = n if normalization == "paper" else n * m
    vv, tt = zv @ kv.t(), zt @ kt.t()
    out = {
        "cross": ((zv @ kt.t() - zt @ kv.t()) ** 2).sum() / double,  # <V_j,T_k> - <V_k,T_j>
        "inmodal": ((vv - tt) ** 2).sum() / double,
    }
    if zva is not None:
        out["aug_image"] = ((vv - zva @ kva.t()) ** 2).sum() / double
        out["aug_text"] = ((tt - zta @ kta.t()) ** 2).sum() / double
        out["aug_pair"] = (((zv * zt).sum(1) - (zva * zta).sum(1)) ** 2).sum() / n
    return out


def geometric_consistency_loss(
    z_v: torch.Tensor,
    z_t: torch.Tensor,
    z_v_aug: Optional[torch.Tensor] = None,
    z_t_aug: Optional[torch.Tensor] = None,
    normalization: str = "paper",
    gather: bool = False,
) -> torch.Tensor:
    """Paper's L_GC + L^a_GC (Sec. 4.3); with ``normalization="paper"`` exactly as printed, 1/N scaling included.

    ``L_GC = 1/N sum_j sum_k [(<z_Vj, z_Tk> - <z_Vk, z_Tj>)^2 + (<z_Vj, z_Vk> - <z_Tj, z_Tk>)^2]``

    ``L^a_GC = 1/N sum_j sum_k [(<z_Vj, z_Vk> - <z^a_Vj, z^a_Vk>)^2 + (<z_Tj, z_Tk> - <z^a_Tj, z^a_Tk>)^2]
    + 1/N sum_j (<z_Vj, z_Tj> - <z^a_Vj, z^a_Tj>)^2``

    Args:
        z_v, z_t: [N, D] image / text features (L2-normalised; raw inner products, no temperature).
        z_v_aug, z_t_aug: [N, D] augmented-view features, both or neither. Without them only L_GC is returned
            (= CyCLIP's in-modal + cross-modal cyclic losses with unit weights).
        normalization: ``"paper"`` (1/N double sums: grows linearly with N; read a weight relative to the batch)
            or ``"mean"`` (every part a mean over its pairs: batch-invariant). See the module docstring.
        gather: double sums over the global batch of all ranks (CyCLIP), with gradient; a no-op on one process.

    Returns:
        Scalar loss, float32 (float64 for float64 inputs).

    Raises:
        ValueError: non-2-D inputs, mismatched shapes, only one aug view, unknown normalization.
    """
    return sum(geometric_consistency_terms(z_v, z_t, z_v_aug, z_t_aug, normalization, gather).values())
