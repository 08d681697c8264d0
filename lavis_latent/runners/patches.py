"""Every change the plugin makes to LAVIS's own objects, each scoped: applied on entry, the original put back on exit.

LAVIS 1.0.2's runner builds its loaders and meters from module globals, so three of its choices can only be changed
by swapping those globals while the runner works (``runner_latent`` enters :func:`lavis_runtime_patches` around
each call into LAVIS's runner code; nothing else in the plugin changes a LAVIS or torch attribute):

* ``lavis.common.logger.SmoothedValue.synchronize_between_processes`` builds its all-reduce tensor on ``cuda``
  whatever the backend: under gloo (CPU ``torchrun``, or the single-process group ``init_distributed_mode``
  creates) that fails. The replacement puts the tensor on cuda for nccl and on cpu otherwise; nccl runs behave
  exactly as before.
* ``lavis.runners.runner_base.IterLoader`` becomes :class:`~lavis_latent.runners.loaders.ResumableIterLoader`
  (seeded per-epoch order, mid-epoch start).
* ``lavis.runners.runner_base.PrefetchLoader`` opens a CUDA stream in its constructor and moves every batch to the
  GPU; off the GPU it is replaced by the identity.

:data:`PATCH_TARGETS` lists every (owner, attribute) that may be swapped, so a test can check that the originals
are back after a run.
"""
import contextlib

import torch
import torch.distributed as dist

from lavis_latent.runners.loaders import ResumableIterLoader

__all__ = ["lavis_runtime_patches", "patch_targets", "swapped"]


def patch_targets():
    """``[(owner object, attribute name)]`` of everything :func:`lavis_runtime_patches` may swap."""
    from lavis.common import logger
    from lavis.runners import runner_base

    return [(logger.SmoothedValue, "synchronize_between_processes"), (runner_base, "IterLoader"),
            (runner_base, "PrefetchLoader")]


@contextlib.contextmanager
def swapped(owner, name, value):
    """Within the block ``owner.name`` is ``value``; on exit (error or not) the previous value is put back."""
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield original
    finally:
        setattr(owner, name, original)


def _synchronize_between_processes(self):
    """LAVIS's ``SmoothedValue.synchronize_between_processes`` with the tensor on the backend's device."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([self.count, self.total], dtype=torch.float64, device=device)
    dist.barrier()
    dist.all_reduce(t)
    t = t.tolist()
    self.count = int(t[0])
    self.total = t[1]


def _identity_loader(loader):
    return loader


@contextlib.contextmanager
def lavis_runtime_patches(cuda_enabled: bool, seed: int, rank: int):
    """The runner's patches of LAVIS (module docstring), entered together and undone together.

    Args:
        cuda_enabled: whether the run is on a GPU (LAVIS's ``PrefetchLoader`` is kept there).
        seed, rank: ``run.seed`` and this process's rank, for the resumable training loader.
    """
    (meter, sync), (runner_base, iter_loader), (_, prefetch) = patch_targets()

    def resumable(loader, use_distributed=False):
        return ResumableIterLoader(loader, use_distributed=use_distributed, seed=seed, rank=rank)

    with contextlib.ExitStack() as stack:
        stack.enter_context(swapped(meter, sync, _synchronize_between_processes))
        stack.enter_context(swapped(runner_base, iter_loader, resumable))
        if not cuda_enabled:
            stack.enter_context(swapped(runner_base, prefetch, _identity_loader))
        yield
