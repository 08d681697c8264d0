"""Evidence that tells a gain from noise: every regularizer against its own base, on the same seeds and data, with
paired 95 % confidence intervals and a verdict per measure.

Both frameworks train in-process on one embedded world (``benchmarks/clip_world.py``, ``benchmarks/albef_world.py``;
2,000 training images x 3 captions, 1,000 test images x 3 captions):

* **CLIP** (tiny ``clip_latent``): the base is the paper's base loss ``L_Con`` (``inmodal``, ``base_loss: paper``);
  ``plain`` is CLIP's loss, compared with ``inmodal`` (what the in-modal terms do).
* **ALBEF** (tiny ``albef_latent_pretrain``, ITC + ITM + MLM, the demo's settings): the base is ALBEF with the
  in-modal term (``inmodal``); ``plain`` is LAVIS's ALBEF, compared with ``inmodal``.
* Each regularizer on top of the base at three weights: ``fs`` (separation), ``bb`` (bridge), ``gc`` (geometric
  consistency under ``normalization: paper``, whose 1/N double sums grow with the batch, so its weights are
  smaller) and ``gcm`` (geometric consistency under ``normalization: mean``).
* The information-gap knob (CLIP): the base and each regularizer at its middle weight at ``info_gap`` 0, 0.5, 1.

Measures (test split): retrieval R@1 / R@5 both ways where a hit is an item with the query's shared facts (shape,
colour, position: all a caption can say about an image, so about 14 test images are indistinguishable per caption),
zero-shot top-1 of shape and colour (prompt ensembles written like the captions), linear probes of the shared,
image-only and text-only facts on ``z`` and on ``[z, +]`` (``[z, z^i]`` for separation, ``[z, c]`` for every other
row: ``c`` an untrained head of the same width, the same-size control), and the modality gap (mean paired distance,
centroid distance). Every comparison is paired by seed (:mod:`benchmarks.paired`).

Runs are stored under a key of their exact configuration (:mod:`benchmarks.run_store`): a rerun computes only what
is missing, and processes sharing one ``--store`` split the work (``--workers 2`` starts two).

    python -m benchmarks.evidence --workers 2          # the full run (about 2 h 20 min on 2 cores)
    python -m benchmarks.evidence --quick              # a few minutes: a tiny grid, incl. the known-answer rows
    python -m benchmarks.evidence --render-only        # tables and plots from the stored runs

Writes ``evidence.md``, ``evidence.json`` and ``evidence.png`` under ``--output-dir``.
"""
import argparse
import os
import subprocess
import sys
import time
from dataclasses import replace

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import offline_environment  # noqa: E402

offline_environment()

from benchmarks.common import command_line, log  # noqa: E402
from benchmarks.evidence_grid import FULL, QUICK, Row, Settings, grid, run_order, spec, worlds  # noqa: E402
from benchmarks.evidence_report import readme_table, render, update_readme  # noqa: E402
from benchmarks.evidence_runs import compute, run_pending  # noqa: E402
from benchmarks.run_store import RunStore, run_key  # noqa: E402

__all__ = ["FULL", "QUICK", "Row", "Settings", "compute", "grid", "main", "parse_args", "readme_table", "render",
           "run_order", "run_pending", "settings_from", "spec", "update_readme"]


def parse_args(argv=None):
    """The command line's options (``argv``: a list of arguments, default ``sys.argv[1:]``)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.evidence", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="the tiny grid the tests run (a few minutes)")
    p.add_argument("--frameworks", default=None, help="comma-separated subset of clip,albef")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default: 5 full, 3 quick)")
    p.add_argument("--workers", type=int, default=1, help="processes sharing the work (one torch thread each)")
    p.add_argument("--store", default=None, help="folder of the run store (default output/benchmarks/evidence[_quick])")
    p.add_argument("--output-dir", default=None, help="default benchmarks/results (quick: <store>/results)")
    p.add_argument("--cache-root", default=os.environ.get("LAVIS_CACHE_ROOT", "cache"))
    p.add_argument("--render-only", action="store_true", help="only write the tables from the stored runs")
    p.add_argument("--readme", default=None, metavar="README.md",
                   help="also rewrite the verdict tables between <!-- evidence:NAME --> markers of this file")
    p.add_argument("--no-render", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def settings_from(args) -> Settings:
    """The benchmark's size (``FULL`` or ``--quick``'s ``QUICK``) with ``--frameworks`` and ``--seeds`` applied."""
    base = QUICK if args.quick else FULL
    s = replace(base)  # the fields below are reassigned, never mutated
    if args.frameworks:
        chosen = [f.strip() for f in args.frameworks.split(",") if f.strip()]
        unknown = sorted(set(chosen) - {"clip", "albef"})
        if unknown:
            raise SystemExit(f"unknown framework(s) {unknown}; choose from clip, albef")
        s.frameworks = chosen
    if args.seeds:
        s.seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    return s


def generate_worlds(settings: Settings, cache_root: str) -> None:
    """Generate every world the grid reads under ``cache_root`` (once, before any worker starts)."""
    from benchmarks.demo_world import load_world

    for run in {run_key(w): w for w in worlds(settings)}.values():
        load_world(cache_root, **run)


def run_workers(args, store_dir: str, cache_root: str) -> None:
    """Start ``--workers`` processes of this benchmark sharing the store (each computes what no other has claimed)
    and wait for them; exits if one fails."""
    worker = ["--store", store_dir, "--cache-root", cache_root, "--no-render"]
    worker += ["--quick"] if args.quick else []
    worker += [f"--{k}={v}" for k, v in (("frameworks", args.frameworks), ("seeds", args.seeds)) if v]
    procs = [subprocess.Popen([sys.executable, "-m", "benchmarks.evidence", *worker]) for _ in range(args.workers)]
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"a worker failed (exit codes {codes}); rerun to finish the missing runs")


def main(argv=None):
    """Compute the runs missing from the store (in this process or ``--workers``), then write ``evidence.md``,
    ``.json`` and ``.png`` (and the README's tables with ``--readme``); returns the report (None with
    ``--no-render``)."""
    args = parse_args(argv)
    settings = settings_from(args)
    store_dir = args.store or os.path.join("output", "benchmarks", "evidence_quick" if args.quick else "evidence")
    output_dir = args.output_dir or (os.path.join(store_dir, "results") if args.quick
                                     else os.path.join("benchmarks", "results"))
    store = RunStore(store_dir)
    cache_root = os.path.abspath(args.cache_root)
    started = time.time()
    if not args.render_only:
        generate_worlds(settings, cache_root)
        if args.workers > 1:
            run_workers(args, store_dir, cache_root)
        else:
            run_pending(settings, store, cache_root)
    if args.no_render:
        return None
    report = render(settings, store, output_dir, minutes=(time.time() - started) / 60 if not args.render_only
                    else None, command=command_line("benchmarks.evidence", argv))
    log(f"wrote {os.path.join(output_dir, 'evidence.md')}")
    if args.readme:
        log(f"updated {args.readme}: {', '.join(update_readme(report, args.readme)) or 'no evidence markers'}")
    return report


if __name__ == "__main__":
    main()
