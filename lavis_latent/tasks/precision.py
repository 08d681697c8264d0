"""Mixed precision for the training loop: ``run.amp`` on CPU and GPU, and the dtype it computes in.

LAVIS 1.0.2 autocasts for CUDA only (``torch.cuda.amp``): ``run.amp: True`` on a CPU does nothing, and bfloat16 is
not offered. Here:

* ``run.amp: True`` on CUDA: float16 autocast with a ``GradScaler`` (LAVIS's behaviour); with
  ``run.amp_dtype: bfloat16``, bfloat16 autocast and no scaler (bfloat16 has float32's range).
* ``run.amp: True`` on CPU: bfloat16 autocast, no scaler (``run.amp_dtype: float16`` is refused: CPU float16 autocast
  has no loss scaling and underflows).
* ``run.amp: False`` (default): float32.

The regularizers switch autocast off inside their own body (``lavis_latent.regularizers._checks.no_autocast``), so
they keep computing in float32 whatever the model computes in.
"""
from collections import namedtuple

import torch

from lavis_latent.common.run_config import run_value

AMP_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}

#: ``enabled``: autocast on; ``device_type``: "cuda" or "cpu"; ``dtype``: the autocast dtype; ``scaler``: whether the
#: step needs a GradScaler (float16 on CUDA)
AmpPolicy = namedtuple("AmpPolicy", "enabled device_type dtype scaler")


def amp_policy(amp, amp_dtype=None, cuda=False):
    """The precision a run trains in.

    Args:
        amp: ``run.amp`` (bool).
        amp_dtype: ``run.amp_dtype``: ``"float16"``, ``"bfloat16"`` or None (float16 on CUDA, bfloat16 on CPU).
        cuda: whether the run is on a CUDA device.

    Raises:
        ValueError: an unknown ``amp_dtype``, or float16 on CPU, naming the key and the valid values.
    """
    device_type = "cuda" if cuda else "cpu"
    name = amp_dtype or ("float16" if cuda else "bfloat16")
    if name not in AMP_DTYPES:
        raise ValueError(f"run.amp_dtype must be one of {', '.join(AMP_DTYPES)} (or unset), got {amp_dtype!r}")
    if amp and not cuda and name == "float16":
        raise ValueError("run.amp_dtype: float16 is for CUDA (with loss scaling); on CPU use bfloat16 (or leave "
                         "run.amp_dtype unset)")
    dtype = AMP_DTYPES[name]
    return AmpPolicy(bool(amp), device_type, dtype, bool(amp) and cuda and dtype == torch.float16)


def run_amp_policy(run_cfg, cuda):
    """:func:`amp_policy` of a LAVIS ``run:`` block (``amp``, ``amp_dtype``); float32 for None."""
    return amp_policy(bool(run_value(run_cfg, "amp", False)), run_value(run_cfg, "amp_dtype", None), cuda)


def autocast(policy):
    """``torch.autocast`` for ``policy`` (a no-op context when it is disabled)."""
    return torch.autocast(device_type=policy.device_type, dtype=policy.dtype, enabled=policy.enabled)
