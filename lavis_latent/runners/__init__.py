"""Runner and distributed set-up that let LAVIS's runner work on CPU, single-process and under torchrun, and resume
exactly (mid-epoch checkpoints, RNG state, momentum encoders and queues)."""
from lavis_latent.runners.distributed import broadcast_object, init_distributed_mode, resolve_device
from lavis_latent.runners.loaders import ResumableIterLoader
from lavis_latent.runners.runner_latent import RunnerLatent, load_full_state

__all__ = ["RunnerLatent", "ResumableIterLoader", "load_full_state", "init_distributed_mode", "resolve_device",
           "broadcast_object"]
