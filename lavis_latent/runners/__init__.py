"""Runner and distributed set-up that let LAVIS's runner work on CPU, single-process and under torchrun."""
from lavis_latent.runners.distributed import broadcast_object, init_distributed_mode, resolve_device
from lavis_latent.runners.runner_latent import RunnerLatent

__all__ = ["RunnerLatent", "init_distributed_mode", "resolve_device", "broadcast_object"]
