"""Part 1 of ``benchmarks.cost`` for one size: the variants' step times in interleaved rounds (ratios to LAVIS's
within each round), the plugin's extra code alone, step memory, and the json-able summary of them."""
import gc
import random
import time

from benchmarks import common
from benchmarks.common import log
from benchmarks.cost_bench import Bench
from benchmarks.cost_memory import extra_saved_bytes, step_memory_bytes
from benchmarks.cost_timing import extra_seconds, step_seconds

#: per-size defaults; ``--repeats`` / ``--batch-size`` override repeats / batch for every size
SIZES = {
    "tiny": dict(batch=16, warmup=3, repeats=40, memory_repeats=3),
    "full": dict(batch=2, warmup=1, repeats=5, memory_repeats=2),
}
QUICK = dict(batch=4, warmup=1, repeats=2, memory_repeats=1)
EXTRA_REPEATS = 3  # the plugin's extra code is timed this many times per round (median)


def build_bench(size, device, batch, seed, family=None):
    """The :class:`~benchmarks.cost_bench.Bench` of a size (of ``family``, default ALBEF's), with a progress
    line."""
    t_build = time.perf_counter()
    bench = Bench(size, batch, device, seed=seed, family=family)
    log(f"{size}: built {len(bench.models)} variants in {time.perf_counter() - t_build:.1f} s "
        f"({bench.param_count['lavis'] / 1e6:.1f} M parameters with momentum copies, batch {batch}, "
        f"{bench.cfg.image_size} px)")
    return bench


def shuffled(variants, rng):
    """A copy of ``variants`` in ``rng``'s shuffled order."""
    order = list(variants)
    rng.shuffle(order)
    return order


def time_round(bench, order, step_seed):
    """One round: ``(seconds per variant, seconds of the plugin's extra code per variant but lavis)``, every
    variant stepped once in ``order``, then its extra code timed alone (median of :data:`EXTRA_REPEATS`)."""
    row = {v: step_seconds(bench, v, step_seed) for v in order}
    extra_row = {v: common.quantile([extra_seconds(bench, v, 9000) for _ in range(EXTRA_REPEATS)], 0.5)
                 for v in order if v != "lavis"}
    return row, extra_row


def time_rounds(bench, rng, warmup, repeats):
    """``(times, extra)``: per variant the step seconds of each measured round, and (but lavis) the seconds of the
    plugin's extra code alone; ``warmup`` rounds first, discarded."""
    variants = list(bench.models)
    times = {v: [] for v in variants}
    extra = {v: [] for v in variants if v != "lavis"}
    for r in range(warmup + repeats):
        row, extra_row = time_round(bench, shuffled(variants, rng), 1000 + r)
        measured = r >= warmup
        if measured:
            for v in variants:
                times[v].append(row[v])
            for v in extra:
                extra[v].append(extra_row[v])
        tag = f"round {r - warmup + 1}/{repeats}" if measured else f"warm-up {r + 1}/{warmup}"
        log(f"{bench.size} {tag}: " + ", ".join(f"{v} {row[v] * 1e3:.0f} ms" for v in variants) +
            "; plugin code alone " + ", ".join(f"{v} {extra_row[v] * 1e3:.2f} ms" for v in extra))
    return times, extra


def memory_rounds(bench, rng, memory_repeats):
    """Per variant the step memory in bytes of each of ``memory_repeats`` interleaved rounds."""
    variants = list(bench.models)
    mem = {v: [] for v in variants}
    for r in range(memory_repeats):
        for v in shuffled(variants, rng):
            mem[v].append(step_memory_bytes(bench, v, 5000 + r))
        log(f"{bench.size} memory {r + 1}/{memory_repeats}: " +
            ", ".join(f"{v} {mem[v][-1] / 2**20:.0f} MiB" for v in variants))
    return mem


def variant_entry(bench, v, times, extra, mem, saved):
    """The json-able result of variant ``v``: parameters, step times and their ratios to LAVIS's (paired by
    round), memory and its ratios to LAVIS's, the base-loss check and, but for lavis, the extra code alone."""
    lavis_step_mem = common.quantile(mem["lavis"], 0.5)
    step_mem = common.quantile(mem[v], 0.5)
    entry = {
        "latent": bench.family.latent_block(v),
        "parameters": bench.param_count[v],
        "model_bytes": bench.bytes[v],
        "step_ms": [t * 1e3 for t in times[v]],
        "step_ms_summary": common.summary([t * 1e3 for t in times[v]]),
        "time_ratio": common.summary([t / ref for t, ref in zip(times[v], times["lavis"])]),
        "step_memory_bytes": mem[v],
        "peak_memory_bytes": bench.bytes[v] + step_mem,
        "memory_ratio": (bench.bytes[v] + step_mem) / (lavis_step_mem + bench.bytes["lavis"]),
        "step_memory_ratio": step_mem / lavis_step_mem,
        "max_base_loss_diff_vs_lavis": bench.max_loss_diff[v],
        "extra_saved_for_backward_bytes": saved[v],
    }
    if v in extra:
        entry["extra_code_ms"] = common.summary([t * 1e3 for t in extra[v]])
        entry["extra_code_pct_of_lavis_step"] = common.quantile(
            [100.0 * e / ref for e, ref in zip(extra[v], times["lavis"])], 0.5)
    return entry


def measure_size(size, device, batch, warmup, repeats, memory_repeats, seed=0, family=None):
    """Part 1 for one size of a model family (a :class:`~benchmarks.cost_families.ModelFamily`, default ALBEF's):
    interleaved step times, the plugin's extra code alone (timed in every round, right after the steps), memory;
    returns a json-able dict."""
    bench = build_bench(size, device, batch, seed, family)
    order_rng = random.Random(seed)
    times, extra = time_rounds(bench, order_rng, warmup, repeats)
    mem = memory_rounds(bench, order_rng, memory_repeats)
    saved = {v: extra_saved_bytes(bench, v) for v in bench.models}
    out = {"batch": batch, "image_size": int(bench.cfg.image_size), "warmup_rounds": warmup, "rounds": repeats,
           "memory_repeats": memory_repeats,
           "variants": {v: variant_entry(bench, v, times, extra, mem, saved) for v in bench.models}}
    del bench
    gc.collect()
    common.release_free_memory()
    return out
