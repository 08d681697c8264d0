"""Brownian-bridge loss L_Br (paper Sec. 4.2, Eq. 1): inter-modality regularization."""
from __future__ import annotations

from typing import Optional, Union

import torch

from ._checks import cast, check_same_shape, check_unit_interval, compute_dtype, no_autocast

__all__ = ["brownian_bridge_loss", "bridge_mean"]

BridgeT = Union[float, str, torch.Tensor]


def _bridge_t(t: BridgeT, n: int, dtype: torch.dtype, device: torch.device,
              generator: Optional[torch.Generator]) -> torch.Tensor:
    """Return t as a [N, 1] tensor (validated)."""
    if isinstance(t, str):
        if t != "uniform":
            raise ValueError(f"t must be a number in [0, 1], a tensor of shape [N] or \"uniform\", got {t!r}")
        gen_device = generator.device if generator is not None else device
        return torch.rand(n, generator=generator, device=gen_device, dtype=dtype).to(device).unsqueeze(1)
    if isinstance(t, torch.Tensor):
        if t.dim() == 0:
            t = t.expand(n)
        if t.shape != (n,):
            raise ValueError(f"t as a tensor must have shape [N] = ({n},) (or be a scalar), got {tuple(t.shape)}")
        if not t.is_floating_point():
            t = t.to(dtype)
        if bool((torch.isnan(t) | (t < 0) | (t > 1)).any()):  # one host sync
            raise ValueError(f"t must be in [0, 1], got values in [{t.min().item()}, {t.max().item()}]")
        return t.to(device=device, dtype=dtype).unsqueeze(1)
    value = check_unit_interval("t", t)
    return torch.full((n, 1), value, dtype=dtype, device=device)


def bridge_mean(z_v: torch.Tensor, z_t: torch.Tensor, t: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Eq. 1's mean ``mu(z_V, z_T, t) = m / ||m||`` with ``m = t z_V + (1-t) z_T``, row-wise.

    ``t`` broadcasts against [N, D] (a float or a [N, 1] tensor). Where ``||m|| < eps`` (e.g. antipodal
    z_V = -z_T at t = 0.5, or zero vectors) the direction is undefined: there ``mu = 0`` (a constant, so no
    gradient flows into z_V, z_T from that row) instead of NaN. Just above ``eps`` the gradient scales like
    ``1 / ||m||``, which is inherent to normalising a near-zero vector.
    """
    m = t * z_v + (1.0 - t) * z_t
    sq = (m * m).sum(dim=1, keepdim=True)
    mu = m / sq.clamp_min(eps * eps).sqrt()
    return torch.where(sq >= eps * eps, mu, torch.zeros_like(mu))


@no_autocast
def brownian_bridge_loss(
    z_v: torch.Tensor,
    z_t: torch.Tensor,
    z_v_aug: torch.Tensor,
    t: BridgeT = 0.25,
    generator: Optional[torch.Generator] = None,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Paper's L_Br (Sec. 4.2): ``1/N sum_j || z^a_Vj - mu(z_Vj, z_Tj, t) ||^2`` with Eq. 1's normalised mean.

    ``mu(z_V, z_T, t) = (t z_V + (1-t) z_T) / ||t z_V + (1-t) z_T||``: the augmented image feature is pulled onto
    the bridge from the image (t = 1) to the text (t = 0). t = 0.25 (the paper's value) puts the mean closer to the
    text. t = 0 gives ``||z^a_V - z_T/||z_T|| ||^2`` and t = 1 gives ``||z^a_V - z_V/||z_V|| ||^2``.

    Args:
        z_v, z_t, z_v_aug: [N, D] image, text and augmented-image features (L2-normalised; mu is normalised
            here, the inputs are not).
        t: a float in [0, 1] (fixed for all samples), a tensor of shape [N] with per-sample values in [0, 1],
            or ``"uniform"``: t ~ U(0, 1) drawn independently per sample with torch's RNG (``generator`` if given)
            at every call (the paper's "randomly sampled at each time" option).
        generator: optional ``torch.Generator`` for ``t="uniform"``.
        eps: threshold on ``||t z_V + (1-t) z_T||``. Below it (antipodal pairs at t = 0.5 give exactly 0) the
            bridge mean is defined as ``mu = 0``: that sample contributes ``||z^a_V||^2`` (= 1 for a unit vector),
            a zero gradient to z_V, z_T, and ``2 z^a_V / N`` to z^a_V (finite, no NaN).

    Returns:
        Scalar loss, float32 (float64 for float64 inputs). Per-sample, so ``gather`` is meaningless (local).

    The norm form is implemented: the paper's printed expansion (a ratio of inner products) drops the constant,
    the sign and a square root of the exact expansion ``2 - 2 (t<z_V, z^a_V> + (1-t)<z_T, z^a_V>) /
    sqrt(t^2 + (1-t)^2 + 2t(1-t)<z_V, z_T>)`` (unit vectors). The variance t(1-t) of Eq. 1 is not used (mean
    matching only), and no gradient is stopped.

    Raises:
        ValueError: non-2-D inputs, mismatched shapes, t outside [0, 1], t tensor of the wrong shape, bad string.
    """
    check_same_shape("z_v", z_v, "z_t", z_t)
    check_same_shape("z_v", z_v, "z_v_aug", z_v_aug)
    dtype = compute_dtype(z_v, z_t, z_v_aug)
    zv, zt, zva = cast(dtype, z_v, z_t, z_v_aug)
    tt = _bridge_t(t, zv.shape[0], dtype, zv.device, generator)
    mu = bridge_mean(zv, zt, tt, eps)
    return ((zva - mu) ** 2).sum(dim=1).mean()
