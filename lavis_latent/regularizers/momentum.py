"""Momentum (EMA) copies of modules, as ALBEF keeps them for its encoders and the separation heads (pure torch)."""
from __future__ import annotations

import copy

import torch.nn as nn

__all__ = ["momentum_copy"]


def momentum_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` with ``requires_grad=False`` on every parameter: same weights, no gradient."""
    copied = copy.deepcopy(module)
    for p in copied.parameters():
        p.requires_grad_(False)
    return copied
