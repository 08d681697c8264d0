"""Geometric consistency loss L_GC + L^a_GC (paper Sec. 4.3): intra- and inter-modality regularization."""
from __future__ import annotations

from typing import Dict, Optional

import torch

from ._checks import cast, check_same_shape, compute_dtype, no_autocast

__all__ = ["geometric_consistency_loss", "geometric_consistency_terms"]


@no_autocast
def geometric_consistency_terms(
    z_v: torch.Tensor,
    z_t: torch.Tensor,
    z_v_aug: Optional[torch.Tensor] = None,
    z_t_aug: Optional[torch.Tensor] = None,
) -> Dict[str, torch.Tensor]:
    """The parts of L_GC (+ L^a_GC), unweighted, each with the paper's 1/N scaling (see
    :func:`geometric_consistency_loss`).

    Returns a dict with ``"cross"`` = 1/N sum_jk (<V_j,T_k> - <V_k,T_j>)^2, ``"inmodal"`` =
    1/N sum_jk (<V_j,V_k> - <T_j,T_k>)^2 (these two are L_GC, CyCLIP's cyclic losses) and, if the aug views
    are given, ``"aug_image"`` = 1/N sum_jk (<V_j,V_k> - <V^a_j,V^a_k>)^2, ``"aug_text"`` (same for T) and
    ``"aug_pair"`` = 1/N sum_j (<V_j,T_j> - <V^a_j,T^a_j>)^2 (these three are L^a_GC).
    """
    check_same_shape("z_v", z_v, "z_t", z_t)
    if (z_v_aug is None) != (z_t_aug is None):
        raise ValueError("z_v_aug and z_t_aug must be given together (both or neither)")
    if z_v_aug is not None:
        check_same_shape("z_v", z_v, "z_v_aug", z_v_aug)
        check_same_shape("z_t", z_t, "z_t_aug", z_t_aug)
    dtype = compute_dtype(z_v, z_t, z_v_aug, z_t_aug)
    zv, zt, zva, zta = cast(dtype, z_v, z_t, z_v_aug, z_t_aug)
    n = zv.shape[0]
    vt = zv @ zt.t()
    vv = zv @ zv.t()
    tt = zt @ zt.t()
    out = {
        "cross": ((vt - vt.t()) ** 2).sum() / n,
        "inmodal": ((vv - tt) ** 2).sum() / n,
    }
    if zva is not None:
        out["aug_image"] = ((vv - zva @ zva.t()) ** 2).sum() / n
        out["aug_text"] = ((tt - zta @ zta.t()) ** 2).sum() / n
        out["aug_pair"] = (((zv * zt).sum(1) - (zva * zta).sum(1)) ** 2).sum() / n
    return out


def geometric_consistency_loss(
    z_v: torch.Tensor,
    z_t: torch.Tensor,
    z_v_aug: Optional[torch.Tensor] = None,
    z_t_aug: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Paper's L_GC + L^a_GC (Sec. 4.3), exactly as printed, including the 1/N scaling of the double sums.

    ``L_GC = 1/N sum_j sum_k [(<z_Vj, z_Tk> - <z_Vk, z_Tj>)^2 + (<z_Vj, z_Vk> - <z_Tj, z_Tk>)^2]``

    ``L^a_GC = 1/N sum_j sum_k [(<z_Vj, z_Vk> - <z^a_Vj, z^a_Vk>)^2 + (<z_Tj, z_Tk> - <z^a_Tj, z^a_Tk>)^2]
    + 1/N sum_j (<z_Vj, z_Tj> - <z^a_Vj, z^a_Tj>)^2``

    Args:
        z_v, z_t: [N, D] image / text features (L2-normalised; raw inner products, no temperature).
        z_v_aug, z_t_aug: [N, D] augmented-view features, both or neither. Without them only L_GC is returned
            (= CyCLIP's in-modal + cross-modal cyclic losses with unit weights).

    Returns:
        Scalar loss, float32 (float64 for float64 inputs). Computed on the local batch only (no gather): the
        double sums are over the N local samples.

    Note: the double sums have N^2 terms scaled by 1/N, so the loss grows linearly with the batch size N
    (as in CyCLIP); read a weight relative to the batch size.

    Raises:
        ValueError: non-2-D inputs, mismatched shapes, only one aug view.
    """
    return sum(geometric_consistency_terms(z_v, z_t, z_v_aug, z_t_aug).values())
