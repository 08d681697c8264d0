"""Step time for ``benchmarks.cost``: one training step (forward + backward, no optimizer step) of a variant, and
the code the plugin adds to LAVIS's step timed alone, on a :class:`benchmarks.cost_bench.Bench`."""
import time

import torch

from benchmarks import common


def step_seconds(bench, variant, seed):
    """Seconds of one training step (forward + backward) of ``variant`` with the RNG seeded by ``seed``.

    Also checks that the base losses (the family's: ITC, ITM and MLM or LM) equal LAVIS's at the same seed
    (:meth:`~benchmarks.cost_bench.Bench.record_base_losses`); the weights and buffers are restored after it.
    """
    model = bench.models[variant]
    bench.clear_grads(model)
    torch.manual_seed(seed)
    common.synchronize(bench.device)
    t0 = time.perf_counter()
    out = model(bench.batch_of(variant))
    out.loss.backward()
    common.synchronize(bench.device)
    seconds = time.perf_counter() - t0
    bench.record_base_losses(variant, seed, out)
    del out
    bench.clear_grads(model)
    bench.restore(model)
    return seconds


def cls_inputs(bench, seed):
    """``(image_cls, text_cls, image_cls_m, text_cls_m)``: LAVIS's [CLS] features of the batch, the online ones
    fresh copies that need gradients."""
    cls = bench.cls_features(seed)
    image_cls, text_cls = (t.clone().requires_grad_(True) for t in cls[:2])
    return (image_cls, text_cls, *cls[2:])


def separation_momentum_update(model):
    """LAVIS's ``_momentum_update`` on the separation heads' pair only (what the plugin adds to it)."""
    pairs = model.model_pairs
    model.model_pairs = [[model.latent.separation, model.separation_m]]
    try:
        with torch.no_grad():
            model._momentum_update()
    finally:
        model.model_pairs = pairs


def run_plugin_code(bench, variant, inputs):
    """The code the plugin's model (``albef_latent_pretrain``, ``blip_latent_pretrain``) adds to LAVIS's step, on
    ``inputs`` (:func:`cls_inputs`): the forward's checks and, with a ``latent:`` block, the separation heads'
    momentum update, the momentum encoders' pass over the second view (data view only) and
    ``latent_losses_from_cls`` forward + backward."""
    model = bench.models[variant]
    image_cls, text_cls, image_cls_m, text_cls_m = inputs
    model._itm_has_negatives(bench.samples)
    if not model.latent.enabled:
        return
    if model.separation_m is not None:
        separation_momentum_update(model)
    if bench.batch_of(variant) is bench.paired_samples:
        image_cls_m, text_cls_m = model.momentum_cls(*bench.aug)
    losses = model.latent_losses_from_cls(image_cls, text_cls, image_cls_m, text_cls_m)
    sum(losses.values()).backward()


def extra_seconds(bench, variant, seed):
    """Seconds of the code the plugin adds to LAVIS's step, run alone on this batch: the forward's checks
    (``_itm_has_negatives``, ``latent.enabled``) and, with a ``latent:`` block, ``latent_losses_from_cls``
    forward + backward on the step's own [CLS] features plus the momentum update of the separation heads
    (LAVIS's ``_momentum_update`` on that pair only) and, with the data's augmented view, the momentum
    encoders' pass over the second view (``momentum_cls``). None for ``lavis``."""
    model = bench.models[variant]
    if getattr(model, "latent", None) is None:
        return None
    inputs = cls_inputs(bench, seed)
    bench.clear_grads(model)
    common.synchronize(bench.device)
    t0 = time.perf_counter()
    run_plugin_code(bench, variant, inputs)
    common.synchronize(bench.device)
    seconds = time.perf_counter() - t0
    bench.clear_grads(model)
    bench.restore(model)
    return seconds
