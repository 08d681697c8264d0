"""Process-group set-up for LAVIS's runner on CPU (gloo) and GPU (nccl), single process or under ``torchrun``.

LAVIS's ``init_distributed_mode`` hard-codes nccl and ``torch.cuda.set_device``, and leaves a single-process run
without any process group, although ``RunnerBase.train`` calls ``dist.barrier()`` at every epoch end (LAVIS issue
#537). ``init_distributed_mode`` here has LAVIS's signature and effects on ``run_cfg`` (``distributed``, ``rank``,
``world_size``, ``gpu``, ``dist_backend``), chooses the backend from the device, and gives a single process a
one-member gloo group so that LAVIS's barriers and all-reduces are no-ops instead of errors.
"""
import datetime
import logging
import os

import torch
import torch.distributed as dist
from lavis.common.dist_utils import setup_for_distributed

from lavis_latent.regularizers.distributed import world_info


def resolve_device(run_cfg):
    """Resolve ``run.device`` in place: ``auto`` -> cuda if available else cpu; cuda without a GPU is an error."""
    requested = str(run_cfg.get("device", "cuda"))
    if requested == "auto":
        run_cfg.device = "cuda" if torch.cuda.is_available() else "cpu"
    elif requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"run.device is {requested!r} but this machine has no usable CUDA GPU. "
            "Set run.device: cpu (or auto, to use a GPU when there is one), e.g. --options run.device=cpu"
        )
    return run_cfg.device


def backend_for(device):
    """``nccl`` for CUDA devices, ``gloo`` otherwise."""
    return "nccl" if str(device).startswith("cuda") else "gloo"


def init_distributed_mode(run_cfg):
    """Initialise ``torch.distributed`` for a LAVIS run, like LAVIS's function but device-aware.

    Under ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set) or SLURM: joins the job's group with nccl on GPU
    and gloo on CPU, and sets ``run_cfg.distributed = True``. Otherwise: ``run_cfg.distributed = False`` and, when no
    group exists yet, creates a single-member gloo group in memory (no ports, no files).
    """
    device = resolve_device(run_cfg)
    backend = backend_for(device)
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        run_cfg.rank = int(os.environ["RANK"])
        run_cfg.world_size = int(os.environ["WORLD_SIZE"])
        run_cfg.gpu = int(os.environ.get("LOCAL_RANK", 0))
    elif "SLURM_PROCID" in os.environ:
        run_cfg.rank = int(os.environ["SLURM_PROCID"])
        run_cfg.world_size = int(os.environ["SLURM_NTASKS"])
        run_cfg.gpu = run_cfg.rank % max(torch.cuda.device_count(), 1)
    else:
        run_cfg.distributed = False
        run_cfg.rank, run_cfg.world_size, run_cfg.gpu = 0, 1, 0
        if not dist.is_initialized():
            dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
        return
    run_cfg.distributed = True
    run_cfg.dist_backend = backend
    if backend == "nccl":
        torch.cuda.set_device(run_cfg.gpu)
    if not dist.is_initialized():
        logging.info("distributed init (rank %d, world %d): %s, %s", run_cfg.rank, run_cfg.world_size,
                     run_cfg.get("dist_url", "env://"), backend)
        dist.init_process_group(
            backend=backend,
            init_method=run_cfg.get("dist_url", "env://"),
            world_size=run_cfg.world_size,
            rank=run_cfg.rank,
            timeout=datetime.timedelta(minutes=int(os.environ.get("LAVIS_LATENT_DIST_TIMEOUT_MIN", 60))),
        )
    dist.barrier()
    setup_for_distributed(run_cfg.rank == 0)


def broadcast_object(obj):
    """Rank 0's ``obj`` on every rank (identity without a multi-process group)."""
    if world_info()[1] == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
