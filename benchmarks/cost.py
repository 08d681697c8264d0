"""What each latent-structure regularizer costs, measured side by side against LAVIS's own ALBEF or BLIP (issue 8,
part 1; issue 16: BLIP).

Part 1, training step. ``--model albef`` (default): ``albef_latent_pretrain`` with no ``latent:`` block (``none``)
and with the latent blocks of ``projects/albef_{fs,bb,gc,all}.yaml`` is timed against LAVIS's own ``AlbefPretrain``
(``lavis``; LAVIS's class, only ``init_tokenizer`` overridden to load the plugin's local vocabulary). ``--model
blip``: ``blip_latent_pretrain`` with the latent blocks of ``projects/blip/pretrain_{fs,bb,gc,all}.yaml`` against
LAVIS's own ``BlipPretrain`` (its image encoder, text encoder and LM decoder shared by every variant; ``full`` is
BLIP base, the local vocabulary padded to its 30524 tokens). What differs between the two is one
:class:`~benchmarks.cost_families.ModelFamily`; everything below is the same. On the same weights and batches:

* one process; every variant shares the same weight tensors (a pristine copy, re-tied after every step, so LAVIS's
  momentum update, which re-allocates the momentum weights, cannot make them drift; the online encoders are the same
  module objects, which is what keeps six full-size models within a few GB); queue buffers are reset after
  every step; the RNG is re-seeded before each variant's step, so MLM masking and ITM negative sampling are
  identical (checked: the ITC / ITM / MLM (BLIP: LM) losses of every variant equal LAVIS's, step by step);
* a step is forward + backward (``loss.backward()``), gradients set to None before it, **no optimizer step** (the
  optimizer's cost is proportional to the parameter count, which the separation heads change by < 0.5 %);
* rounds: each round runs every variant once, in a shuffled order; warm-up rounds are discarded; the ratio to LAVIS
  is taken within each round (paired, so load drift on a shared machine cancels) and summarised by its median and
  inter-quartile range;
* memory: after the timed rounds, steps per variant (interleaved; tiny 3, full 2 repeats; median) with the
  model owning its momentum weights as in real training. CPU: glibc's free heap is returned to the OS
  (``malloc_trim``), the kernel's peak-RSS mark is reset (``/proc/self/clear_refs``), and the step's memory is the
  peak RSS during the step minus the RSS before it (activations, gradients, temporaries; page granularity; other
  threads of this process would count too, there are none). CUDA: ``max_memory_allocated`` during the step minus
  ``memory_allocated`` before it. The reported peak memory is the model's own bytes (parameters + buffers, counted
  exactly) plus that step memory, so the ratio to LAVIS compares like with like on both devices;
* the plugin's extra code alone: what ``albef_latent_pretrain`` adds to LAVIS's step (two checks in ``forward``;
  with a ``latent:`` block ``latent_losses_from_cls`` forward + backward on the step's own [CLS] features and the
  separation heads' momentum update), timed alone, as a percentage of LAVIS's step: a low-noise estimate of the
  overhead that the end-to-end ratio measures with the machine's noise.

Part 2, each loss alone as the batch grows (N = 64 ... 4096, D = 256, forward + backward, median of repeats), with a
log-log plot and O(N), O(N^2) guide lines. Not run for BLIP unless ``--scaling-ns`` asks (random features: it does
not depend on the model).

Output: ``cost.md``, ``cost.json``, ``cost_scaling.png`` (ALBEF); ``cost_blip.md``, ``cost_blip.json`` (BLIP).

Targets (issues 8 and 12, the same for both families; :data:`~benchmarks.cost_report.TARGETS`): ``none`` <= 1 % over
LAVIS, ``bb@momentum`` <= 2 %, ``bb`` and ``all`` (the data's second view) <= 25 % (time).

    python -m benchmarks.cost                       # default: tiny + full, ~10 min on 2 CPU cores
    python -m benchmarks.cost --quick               # smoke run, seconds
    python -m benchmarks.cost --model blip          # BLIP: tiny + full, no part 2
    python -m benchmarks.cost --sizes full --device cuda --repeats 20
"""
import argparse
import json
import os
import sys
import time

if __package__ in (None, ""):  # python benchmarks/cost.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import offline_environment  # noqa: E402

offline_environment(TOKENIZERS_PARALLELISM="false")

import torch  # noqa: E402

from benchmarks import common  # noqa: E402
from benchmarks.common import log  # noqa: E402
from benchmarks.cost_families import DEFAULT_FAMILY, FAMILIES  # noqa: E402
from benchmarks.cost_families import family as model_family  # noqa: E402
from benchmarks.cost_models import REPO_ROOT, VARIANTS, split_variant  # noqa: E402
from benchmarks.cost_report import TARGETS, make_notes, markdown, pct, verdicts  # noqa: E402
from benchmarks.cost_scaling import SCALING_D, SCALING_NS, measure_scaling, plot_scaling  # noqa: E402
from benchmarks.cost_size import QUICK, SIZES, measure_size  # noqa: E402

__all__ = ["FAMILIES", "TARGETS", "VARIANTS", "main", "parse_args", "split_variant"]

MEMORY_METHODS = {
    "cuda": "CUDA max_memory_allocated minus memory_allocated before the step",
    "cpu": "CPU: peak RSS during the step (VmHWM after resetting it via /proc/self/clear_refs) "
           "minus the RSS before it, after malloc_trim",
}


def choose_threads(arg):
    """``auto``: 2 intra-op threads if the 1-minute load average is below 0.5, else 1 (a shared 2-core machine)."""
    if arg != "auto":
        return int(arg)
    load = common.load_average()
    return min(2, os.cpu_count() or 1) if load is not None and load[0] < 0.5 else 1


def parse_args(argv=None):
    """The command line's options (``argv``: a list of arguments, default ``sys.argv[1:]``)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.cost", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=sorted(FAMILIES), default=DEFAULT_FAMILY,
                   help="model family: albef (LAVIS's AlbefPretrain vs albef_latent_pretrain; cost.*) or blip "
                        "(LAVIS's BlipPretrain vs blip_latent_pretrain; cost_blip.*) (default albef)")
    p.add_argument("--sizes", default="tiny,full", help="comma list of tiny, full (default: tiny,full)")
    p.add_argument("--repeats", type=int, default=None,
                   help="measured rounds per size (default: tiny 40, full 5; --quick 2)")
    p.add_argument("--batch-size", type=int, default=None, help="batch for every size (default: tiny 16, full 2)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--threads", default="auto",
                   help="torch intra-op threads; auto = 2 if the load average is below 0.5, else 1")
    p.add_argument("--scaling-ns", default=None,
                   help="batch sizes for the loss-alone scaling (empty: skip; default: "
                        + ",".join(str(n) for n in SCALING_NS) + " for albef, none for blip)")
    p.add_argument("--scaling-repeats", type=int, default=None, help="repeats per N (default 5; --quick 2)")
    p.add_argument("--output-dir", default=os.path.join(REPO_ROOT, "benchmarks", "results"),
                   help="where cost.md, cost.json and cost_scaling.png go (blip: cost_blip.*) (default: "
                        "benchmarks/results of the repo)")
    p.add_argument("--render", metavar="JSON", default=None,
                   help="measure nothing: rewrite the markdown (and the json's notes) of an earlier run's cost.json")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: tiny only, batch 4, 2 rounds, scaling at N=64,128 (albef)")
    return p.parse_args(argv)


def render_saved(path):
    """``--render``: measure nothing; rewrite the markdown (``cost.md``, BLIP's ``cost_blip.md``) next to the saved
    json at ``path`` and the json's notes (the same measurements); returns the report."""
    with open(path) as f:
        report = json.load(f)
    report["notes"] = make_notes(report)
    md = model_family(report.get("model")).output_files(os.path.dirname(os.path.abspath(path)))["md"]
    common.write_text(md, markdown(report))
    common.write_json(path, report)  # the same measurements, notes regenerated
    log(f"wrote {md} from {path}")
    return report


def run_plan(args, family):
    """``(sizes, scaling batch sizes, scaling repeats)`` of the command line (``--quick``: tiny, N = 64, 128 where
    the family runs part 2 by default or ``--scaling-ns`` asks for it)."""
    sizes = [s for s in args.sizes.split(",") if s]
    if args.quick:
        sizes = ["tiny"]
    for s in sizes:
        if s not in SIZES:
            raise SystemExit(f"--sizes: unknown size {s!r} (choose from {', '.join(SIZES)})")
    if args.scaling_ns is None:
        ns = list(SCALING_NS) if family.scaling else []
    else:
        ns = [int(n) for n in args.scaling_ns.split(",") if n]
    if args.quick and (family.scaling or ns):
        ns = [64, 128]
    return sizes, ns, args.scaling_repeats or (2 if args.quick else 5)


def size_params(args, size):
    """``measure_size``'s ``batch``, ``warmup``, ``repeats`` and ``memory_repeats`` of a size: its defaults
    (``--quick``'s for every size), ``--repeats`` and ``--batch-size`` overriding them."""
    p = dict(QUICK if args.quick else SIZES[size])
    if args.repeats is not None:
        p["repeats"] = args.repeats
    if args.batch_size is not None:
        p["batch"] = args.batch_size
    return p


def output_files(output_dir, family=None):
    """The paths of ``cost.md``, ``cost.json`` and ``cost_scaling.png`` (of the family named ``family``, default
    ALBEF; BLIP's: ``cost_blip.*``) under ``output_dir`` (created)."""
    return model_family(family).output_files(output_dir)


def build_report(argv, context, steps, ns, scaling, files, family=None):
    """The json-able report of a run of ``family`` (default ALBEF's): ``context`` (machine, threads, device, load at
    start) and the measurements, with the verdicts and the notes."""
    family = model_family() if family is None else family
    device = context["device"]
    report = {} if family.name == DEFAULT_FAMILY else {"model": family.name}  # ALBEF's json as before: no key
    report.update({
        "command": common.command_line("benchmarks.cost", argv),
        "machine": context["machine"],
        "threads": context["threads"],
        "device": str(device),
        "load_start": context["load_start"],
        "load_end": common.load_average(),
        "memory_method": MEMORY_METHODS["cuda" if device.type == "cuda" else "cpu"],
        "step": "forward + backward, no optimizer step",
        "targets": TARGETS,
        "steps": steps,
        "verdicts": [dict(zip(("size", "variant", "target", "median", "q1", "q3", "verdict"), row))
                     for row in verdicts(steps)],
        "scaling_ns": ns,
        "scaling_d": SCALING_D,
        "scaling": scaling,
        "files": files,
    })
    report["notes"] = make_notes(report)
    return report


def write_report(report, files):
    """Write ``cost.json`` and ``cost.md`` and log the verdicts and the files."""
    common.write_json(files["json"], report)
    common.write_text(files["md"], markdown(report))
    for row in report["verdicts"]:
        log(f"target {row['size']} {row['variant']}: {pct(row['median'])} [IQR {pct(row['q1'])}, {pct(row['q3'])}]"
            f" vs <= {pct(row['target'])}: {row['verdict']}")
    log(f"wrote {files['md']}, {files['json']}" + (f", {files['png']}" if report["scaling"] else ""))
    log(f"total {report['total_seconds']:.0f} s")


def setup(args):
    """Check the device, set torch's threads; returns the run's context: device, threads, load at start, machine."""
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    threads = choose_threads(args.threads)
    load_start = common.load_average()
    torch.set_num_threads(threads)
    return {"device": device, "threads": threads, "load_start": load_start}


def main(argv=None):
    """Measure parts 1 and 2 of ``--model``'s family and write ``cost.md``, ``cost.json`` and ``cost_scaling.png``
    (BLIP: ``cost_blip.*``) (or only ``--render`` a saved run); returns the report."""
    args = parse_args(argv)
    if args.render:
        return render_saved(args.render)
    t_start = time.perf_counter()
    family = model_family(args.model)
    context = setup(args)
    sizes, ns, scaling_repeats = run_plan(args, family)
    context["machine"] = common.machine_info(context["device"])
    log(f"{common.machine_description(context['machine'])}; model {family.name}; sizes {sizes}; "
        f"threads {context['threads']}")
    files = family.output_files(args.output_dir)
    steps = {size: measure_size(size, context["device"], family=family, **size_params(args, size))
             for size in sizes}
    scaling = measure_scaling(ns, SCALING_D, scaling_repeats, context["device"]) if ns else {}
    report = build_report(argv, context, steps, ns, scaling, files, family)
    if scaling:
        plot_scaling(scaling, ns, files["png"])
    report["total_seconds"] = time.perf_counter() - t_start
    write_report(report, files)
    return report


if __name__ == "__main__":
    main()
