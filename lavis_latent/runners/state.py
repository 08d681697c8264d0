"""Training state that LAVIS 1.0.2's checkpoints leave out: RNG states, and atomic checkpoint files.

Everything stored here loads with ``torch.load(..., weights_only=True)`` (torch >= 2.6's default, which LAVIS's own
``_reload_best_model`` and ``_load_checkpoint`` use): tensors, numbers, strings, lists, tuples and dicts only, so a
plugin checkpoint stays readable by LAVIS.
"""
import glob
import logging
import os
import random

import numpy as np
import torch
import torch.distributed as dist

from lavis_latent.regularizers.distributed import world_info


def rng_state():
    """This process's python, numpy, torch CPU and (when initialised) CUDA RNG states, as ``weights_only`` types."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])],
        "torch": torch.get_rng_state(),
        "cuda": None,
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state):
    """Restore the states :func:`rng_state` returned (CUDA states only when this process has as many GPUs)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            logging.warning("checkpoint holds %d CUDA RNG states, this process sees %d GPUs: CUDA RNG not restored",
                            len(cuda), torch.cuda.device_count())


def gather_rng_states():
    """Every rank's :func:`rng_state`, in rank order (a collective: call it on all ranks at the same point)."""
    state = rng_state()
    world = world_info()[1]
    if world == 1:
        return [state]
    states = [None] * world
    dist.all_gather_object(states, state)
    return states


def atomic_save(obj, path):
    """``torch.save(obj, path)`` that never leaves a half-written ``path``: write a temporary file in the same
    folder, flush it to disk, then ``os.replace`` it over ``path`` (atomic on POSIX and Windows). A kill during the
    write leaves the previous ``path`` intact (and at most a stray ``*.tmp-<pid>`` file)."""
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_dir(os.path.dirname(os.path.abspath(path)))


def atomic_link(src, dst):
    """Make ``dst`` name the same file as ``src`` (a hard link, or a copy where links are unsupported), atomically
    replacing any previous ``dst``."""
    tmp = f"{dst}.tmp-{os.getpid()}"
    if os.path.exists(tmp):
        os.remove(tmp)
    try:
        os.link(src, tmp)
    except OSError:
        import shutil

        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
    _fsync_dir(os.path.dirname(os.path.abspath(dst)))


def _fsync_dir(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def last_checkpoint(output_dir):
    """The newest ``checkpoint_<epoch>.pth`` under a run's output folder."""
    found = glob.glob(os.path.join(output_dir, "checkpoint_*.pth"))
    numbered = [p for p in found if os.path.basename(p)[len("checkpoint_") : -len(".pth")].isdigit()]
    if not numbered:
        raise FileNotFoundError(f"the run wrote no checkpoint_<epoch>.pth under {output_dir}")
    return max(numbered, key=lambda p: int(os.path.basename(p)[len("checkpoint_") : -len(".pth")]))
