"""Input validation and dtype handling shared by the regularizers (pure torch, private).

Precision convention for every loss in this package: half-precision inputs (float16, bfloat16) are upcast and the
loss is computed and returned in float32; float32 inputs are computed in float32 and float64 inputs in float64 (so
``torch.autograd.gradcheck`` works). The returned scalar therefore has dtype float64 if any input is float64 and
float32 otherwise. Gradients flow back to the inputs in their own dtype. The losses also switch autocast off for
their own body (:func:`no_autocast`), so under AMP their matmuls stay in float32 too.
"""
from __future__ import annotations

import functools
import itertools
import numbers
from typing import Optional

import torch

__all__ = ["no_autocast", "check_2d", "check_same_shape", "check_views", "compute_dtype", "cast", "check_temperature",
           "check_unit_interval", "check_positive", "check_ids"]


def check_2d(name: str, x) -> None:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape [N, D], got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must be 2-D [N, D], got shape {tuple(x.shape)}")
    if x.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one sample, got shape {tuple(x.shape)}")
    if not (x.is_floating_point()):
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")


def check_same_shape(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    check_2d(name_a, a)
    check_2d(name_b, b)
    if a.shape != b.shape:
        raise ValueError(
            f"shape mismatch: {name_a} has shape {tuple(a.shape)} but {name_b} has shape {tuple(b.shape)}"
        )


def check_views(z_v: torch.Tensor, z_t: torch.Tensor, z_v_aug: Optional[torch.Tensor],
                z_t_aug: Optional[torch.Tensor]) -> None:
    """Check a pair [N, D] and its optional augmented views: both views or neither, each shaped as its original."""
    check_same_shape("z_v", z_v, "z_t", z_t)
    if (z_v_aug is None) != (z_t_aug is None):
        raise ValueError("z_v_aug and z_t_aug must be given together (both or neither)")
    if z_v_aug is not None:
        check_same_shape("z_v", z_v, "z_v_aug", z_v_aug)
        check_same_shape("z_t", z_t, "z_t_aug", z_t_aug)


def compute_dtype(*tensors: Optional[torch.Tensor]) -> torch.dtype:
    """float64 if any input is float64, else float32 (half precision is upcast)."""
    for t in tensors:
        if isinstance(t, torch.Tensor) and t.dtype == torch.float64:
            return torch.float64
    return torch.float32


def cast(dtype: torch.dtype, *tensors: Optional[torch.Tensor]):
    return tuple(None if t is None else t.to(dtype) for t in tensors)


def check_temperature(temperature, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Validate a temperature (python number or scalar tensor, possibly learnable) and return it as a tensor."""
    if isinstance(temperature, torch.Tensor):
        if temperature.numel() != 1:
            raise ValueError(f"temperature must be a scalar, got a tensor of shape {tuple(temperature.shape)}")
        return temperature.reshape(()).to(device=device, dtype=dtype)
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise ValueError(f"temperature must be a positive number or a scalar tensor, got {temperature!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    return torch.tensor(float(temperature), dtype=dtype, device=device)


def check_unit_interval(name: str, value) -> float:
    """Validate a python number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return value


def check_positive(name: str, value) -> float:
    """Validate a python number > 0 (``name`` leads the error message) and return it as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"{name} must be a number > 0, got {value!r}")
    return float(value)


def check_ids(name: str, ids, n: int, device: torch.device) -> Optional[torch.Tensor]:
    """Validate optional sample ids for N rows and return them as an int64 tensor of shape [N] on ``device``.

    ``ids`` may be None (every row is its own sample), a tensor of shape [N] or [N, 1] (LAVIS's ``image_id``),
    or a sequence of N integers. Rows with equal ids are positives of each other in the contrastive terms.
    """
    if ids is None:
        return None
    if not isinstance(ids, torch.Tensor):
        try:
            ids = torch.as_tensor(ids)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(f"{name} must be a tensor or a sequence of N integers, got {type(ids).__name__}") \
                from exc
    if ids.dim() == 2 and ids.shape[1] == 1:
        ids = ids[:, 0]
    if ids.dim() != 1 or ids.shape[0] != n:
        raise ValueError(f"{name} must have shape [N] = ({n},) (one id per row of the features), "
                         f"got shape {tuple(ids.shape)}")
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise ValueError(f"{name} must hold integers (e.g. LAVIS's image_id), got dtype {ids.dtype}")
    return ids.to(device=device, dtype=torch.long)


def no_autocast(fn):
    """Run ``fn`` with autocast disabled on the device of its first tensor argument (if autocast is on there)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        device = next((a.device.type for a in itertools.chain(args, kwargs.values()) if isinstance(a, torch.Tensor)),
                      None)
        if device is not None:
            try:
                active = torch.is_autocast_enabled(device)
            except (RuntimeError, TypeError):  # device type without autocast support
                active = False
            if active:
                with torch.autocast(device_type=device, enabled=False):
                    return fn(*args, **kwargs)
        return fn(*args, **kwargs)

    return wrapper
