"""Device-aware replacements for the two LAVIS 1.0.2 helpers that assume CUDA.

* ``SmoothedValue.synchronize_between_processes`` builds its all-reduce tensor on ``cuda`` whatever the backend:
  under gloo (CPU ``torchrun``, or the single-process group ``init_distributed_mode`` creates) that fails. The
  replacement puts the tensor on cuda for nccl and on cpu otherwise; nccl runs behave exactly as before.
* ``PrefetchLoader`` opens a CUDA stream in its constructor and moves every batch to the GPU;
  ``without_prefetch_loader`` lets ``RunnerBase.create_loaders`` build its loaders without it for CPU runs.
"""
import contextlib

import torch
import torch.distributed as dist
from lavis.common import logger as lavis_logger


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


def patch_smoothed_value():
    """Install the device-aware ``synchronize_between_processes`` on LAVIS's ``SmoothedValue`` (idempotent)."""
    lavis_logger.SmoothedValue.synchronize_between_processes = _synchronize_between_processes


@contextlib.contextmanager
def without_prefetch_loader():
    """Within the block, LAVIS's runner module wraps loaders in nothing instead of ``PrefetchLoader``."""
    from lavis.runners import runner_base

    original = runner_base.PrefetchLoader
    runner_base.PrefetchLoader = lambda loader: loader
    try:
        yield
    finally:
        runner_base.PrefetchLoader = original
