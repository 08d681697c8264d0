"""ALBEF's augmented views and bridge forms on the embedded world (issue 12): plain ALBEF against each demo variant
at its defaults, and the paper-literal options, per seed, through the demo pipeline (LAVIS's runner: pretraining
from scratch, then retrieval fine-tuning from its last checkpoint).

    python -m benchmarks.albef_views --runs baseline:42,bb:42,all:42 --out output/benchmarks/albef_views
    python -m benchmarks.albef_views --runs "bb-literal:42=model.latent.bridge.form=literal"   # options after '='
    python -m benchmarks.albef_views --render output/benchmarks/albef_views/results.jsonl

Each finished run appends one json line to ``<out>/results.jsonl``; a run already there is skipped, so two
processes given different ``--runs`` can share one folder. ``--render`` writes ``albef_views.md`` and
``albef_views.json`` (per-run rows; the mean and the range over seeds per name) under ``--output-dir``.
"""
import argparse
import json
import os
import statistics
import sys
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import markdown_table, offline_environment, write_json, write_text  # noqa: E402

offline_environment()

METRICS = [("txt_r1", "txt R@1", 1), ("img_r1", "img R@1", 1), ("gap_centroid_distance", "gap centroid", 3),
           ("gap_paired_distance", "gap paired", 3)]


def parse_runs(text):
    """``"name:seed[=opt,opt],..."`` -> ``[(name, demo variant, seed, options)]``; the variant is the name up to a
    ``-`` (``bb-literal`` runs the ``bb`` configs with the options)."""
    runs = []
    for item in filter(None, (s.strip() for s in text.split(";" if "=" in text else ","))):
        head, _, opts = item.partition("=")
        name, _, seed = head.partition(":")
        options = [o for o in opts.split(",") if o] if opts else []
        runs.append((name, name.split("-")[0], int(seed), options))
    return runs


def done(path):
    """``{(name, seed)}`` already in a results file."""
    if not os.path.isfile(path):
        return set()
    with open(path) as f:
        return {(r["name"], r["seed"]) for r in map(json.loads, filter(str.strip, f))}


def run(runs, out_root, verbose=False):
    """Run each ``(name, demo variant, seed, options)`` of ``runs`` not yet in ``<out_root>/results.jsonl`` through
    the demo pipeline (one torch thread) and append its test metrics and pretraining losses there."""
    import torch

    from lavis_latent import demo

    torch.set_num_threads(1)
    results = os.path.join(out_root, "results.jsonl")
    for name, variant, seed, options in runs:
        if (name, seed) in done(results):
            continue
        started = time.time()
        row = demo.run_variant(variant, demo.DEFAULT_PROJECTS, os.path.join(out_root, f"{name}_s{seed}"),
                               [*options, f"run.seed={seed}"], verbose=verbose)
        res = {"name": name, "seed": seed, "options": options, "seconds": time.time() - started,
               "test": {k: v for k, v in row["test"].items() if isinstance(v, (int, float))},
               "pretrain_losses": row["pretrain_losses"]}
        with open(results, "a") as f:
            f.write(json.dumps(res) + "\n")


def render(path, output_dir):
    """Write ``albef_views.md`` / ``.json`` under ``output_dir`` from the results file ``path``: per name the mean
    [min, max] over its seeds of each metric; prints the markdown."""
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    by_name = {}
    for r in rows:
        by_name.setdefault(r["name"], []).append(r)
    head = ["run", "seeds"] + [t for _, t, _ in METRICS] + ["pretrain loss_itc"]
    body, summary = [], {}
    for name, runs in by_name.items():
        runs.sort(key=lambda r: r["seed"])
        cells = [name, ", ".join(str(r["seed"]) for r in runs)]
        summary[name] = {}
        for key, _, digits in METRICS + [("loss_itc", "", 2)]:
            vals = [(r["pretrain_losses"] if key == "loss_itc" else r["test"]).get(key, float("nan")) for r in runs]
            summary[name][key] = vals
            spread = f" [{min(vals):.{digits}f}, {max(vals):.{digits}f}]" if len(vals) > 1 else ""
            cells.append(f"{statistics.mean(vals):.{digits}f}{spread}")
        body.append(cells)
    text = ["# ALBEF: augmented views and bridge forms (tiny ALBEF, embedded world, demo configs)", "",
            "Each run pretrains from scratch (8 epochs, 400 images) and fine-tunes retrieval (4 epochs) with the demo "
            "configs of its variant, one torch thread; retrieval on 50 test images x 3 captions (chance R@1 2 %). "
            "Mean over the seeds [min, max].", ""] + markdown_table(head, body)
    write_text(os.path.join(output_dir, "albef_views.md"), text)
    write_json(os.path.join(output_dir, "albef_views.json"), {"runs": rows, "per_name": summary})
    print("\n".join(text))


def main(argv=None):
    """The command line: run the ``--runs`` missing from ``--out`` and render them, or only ``--render``."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.albef_views", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", default="baseline:42,bb:42,all:42,baseline:0,bb:0,all:0,baseline:1,bb:1,all:1",
                   help="name:seed items, comma-separated (or ';'-separated with '=options')")
    p.add_argument("--out", default=os.path.join("output", "benchmarks", "albef_views"))
    p.add_argument("--verbose", action="store_true", help="LAVIS's console output instead of progress bars")
    p.add_argument("--render", metavar="JSONL", default=None, help="only write the tables from a results file")
    p.add_argument("--output-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = p.parse_args(argv)
    if args.render:
        return render(args.render, args.output_dir)
    os.makedirs(args.out, exist_ok=True)
    run(parse_runs(args.runs), args.out, args.verbose)
    return render(os.path.join(args.out, "results.jsonl"), args.output_dir)


if __name__ == "__main__":
    main()
