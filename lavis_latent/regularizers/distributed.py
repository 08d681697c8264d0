"""Gathering features across data-parallel ranks with gradient (pure torch).

``gather_features`` is the building block of the ``gather=True`` option of the contrastive terms: every rank
scores its *local* rows against the *global* batch of keys (open_clip's ``local_loss=True`` with
``gather_with_grad=True``).
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.distributed as dist

__all__ = ["gather_features", "world_info"]


def world_info() -> Tuple[int, int]:
    """``(rank, world_size)`` of the default process group, or ``(0, 1)`` if none is initialized."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _GatherWithGrad(torch.autograd.Function):
    """all_gather along dim 0 whose backward all-reduces (sums) the gradient and returns this rank's slice.

    Equivalent to ``torch.cat(torch.distributed.nn.all_gather(x))`` (open_clip's ``gather_with_grad``) but built
    on ``all_reduce`` only, which every backend (gloo, nccl, mpi) supports, and without that deprecated API.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        rank, world = dist.get_rank(), dist.get_world_size()
        x = x.contiguous()
        out = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(out, x)
        ctx.rank, ctx.n = rank, x.shape[0]
        return torch.cat(out, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n]


def gather_features(*tensors: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """Concatenate each tensor over all ranks (dim 0), keeping the gradient path to this rank's slice.

    Args:
        *tensors: tensors of shape [N, ...]; N must be the same on every rank (as with a DistributedSampler
            and ``drop_last``), since the gathered layout is ``[rank 0 rows, rank 1 rows, ...]`` and the
            contrastive labels are offset by ``rank * N``.

    Returns:
        A tuple with one tensor of shape [world_size * N, ...] per input, in rank order. Without an
        initialized process group, or with world size 1, the inputs are returned unchanged (same objects).

    Gradient semantics: the backward pass sums, over all ranks, the gradient that each rank's loss sends to
    the gathered tensor and hands each rank the slice of its own rows. So if every rank computes the loss of
    its local rows against the global keys and the parameter gradients are then *averaged* across ranks (DDP),
    the result is exactly the gradient of the mean of the per-rank losses, i.e. of the single-process loss on
    the concatenated batch. Equivalently, the gradient that rank r's loss leaves on its local features is
    ``world_size`` times the matching slice of the single-process gradient.
    """
    rank, world = world_info()
    if world == 1:
        return tuple(tensors)
    return tuple(None if t is None else _GatherWithGrad.apply(t) for t in tensors)
