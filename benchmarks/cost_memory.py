"""Memory for ``benchmarks.cost``: what one training step of a variant needs above what is resident before it, and
the bytes the plugin's latent losses keep for backward, on a :class:`benchmarks.cost_bench.Bench`.

CPU: glibc's free heap is returned to the OS (``malloc_trim``), the kernel's peak-RSS mark is reset
(``/proc/self/clear_refs``), and the step's memory is the peak RSS during the step minus the RSS before it. CUDA:
``max_memory_allocated`` during the step minus ``memory_allocated`` before it.
"""
import gc

import torch

from benchmarks import common
from benchmarks.cost_timing import cls_inputs


def _forward_backward(bench, model, variant):
    out = model(bench.batch_of(variant))
    out.loss.backward()


def _cuda_step_bytes(bench, model, variant):
    """CUDA bytes a step allocates at its peak above those allocated before it."""
    torch.cuda.synchronize(bench.device)
    torch.cuda.reset_peak_memory_stats(bench.device)
    before = torch.cuda.memory_allocated(bench.device)
    _forward_backward(bench, model, variant)
    torch.cuda.synchronize(bench.device)
    return torch.cuda.max_memory_allocated(bench.device) - before


def _cpu_step_bytes(bench, model, variant):
    """Peak RSS during a step minus the RSS before it (after handing free heap pages back to the OS)."""
    common.release_free_memory()
    before = common.rss_bytes()
    if before is None or not common.reset_peak_rss():
        raise RuntimeError("CPU memory needs Linux's /proc/self/status and /proc/self/clear_refs")
    _forward_backward(bench, model, variant)
    return common.peak_rss_bytes() - before


def step_memory_bytes(bench, variant, seed):
    """Bytes a training step of ``variant`` needs above what is resident before it, with the model owning its
    momentum weights as in real training (see the module docstring); the RNG is seeded by ``seed``."""
    model = bench.models[variant]
    bench.untie_momentum(model)
    bench.clear_grads(model)
    gc.collect()
    torch.manual_seed(seed)
    step_bytes = _cuda_step_bytes if bench.device.type == "cuda" else _cpu_step_bytes
    used = step_bytes(bench, model, variant)
    bench.clear_grads(model)
    bench.restore(model)
    return used


def extra_saved_bytes(bench, variant):
    """Bytes of the new tensors that the plugin's latent losses keep alive for backward on this batch (storages
    of the model's parameters and of the [CLS] features they read are excluded: those are resident anyway).
    0 without a ``latent:`` block; None for ``lavis``."""
    model = bench.models[variant]
    if getattr(model, "latent", None) is None:
        return None
    if not model.latent.enabled:
        return 0
    inputs = cls_inputs(bench, 9000)
    exclude = {t.untyped_storage().data_ptr() for t in list(model.parameters()) + list(inputs)}
    saved = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in exclude:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        losses = model.latent_losses_from_cls(*inputs)
    sum(losses.values()).backward()
    bench.clear_grads(model)
    bench.restore(model)
    return sum(saved.values())
