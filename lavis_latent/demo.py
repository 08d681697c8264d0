"""``python -m lavis_latent.demo``: the embedded, offline end-to-end run (``make demo``).

The default is the compact run (about 3 minutes on 2 cores): the CLIP part below, zero-shot only, for the untrained
model, plain CLIP, the paper's base loss and each regularizer, with the gap between each image and its class prompt
and its picture. ``--full`` runs the full study:

ALBEF and BLIP (``--frameworks albef,blip,clip``, all three by default): for each variant (baseline and the
regularized ones), it pretrains the tiny model on the embedded data with
``projects/demo/<albef|blip>_pretrain[_<variant>].yaml``, fine-tunes it for retrieval from the last pretraining
checkpoint with ``<albef|blip>_retrieval[_<variant>].yaml``, evaluates on the test split, and prints one table per
model: retrieval R@1/5/10 both ways, the modality-gap measures, and each pretraining loss term's final epoch average.
Every run goes through LAVIS's task, builders and runner (``lavis_latent.train``), so each leaves LAVIS's
``log.txt``, ``evaluate.txt`` and checkpoints in its output folder (and the quiet console's ``console.log``).

``--tasks`` (ALBEF) adds the paper's other downstream tasks (Table 4), each fine-tuned from the same pretraining
checkpoint and tested on the embedded test split: ``vqa`` (``albef_vqa[_<variant>].yaml``, VQA accuracy), ``nlvr``
(ALBEF's text-assignment step ``albef_nlvr_ta.yaml``, then ``albef_nlvr[_<variant>].yaml``, accuracy) and
``snli_ve`` (``albef_snli_ve[_<variant>].yaml``, accuracy); ``--tasks all`` runs the four and prints a second,
Table-4-like table (retrieval R@1, VQA, NLVR2 and SNLI-VE accuracy per variant).

CLIP (:mod:`lavis_latent.demo_clip`): for ``--clip-variants`` (``baseline`` = plain CLIP, ``inmodal`` = the paper's
base loss, ``fs``, ``bb``, ``gc``; plus the ``untrained`` row: the random initialisation), a tiny two-tower model
is pretrained on the embedded digits captions and evaluated by zero-shot classification and (``--full``) a linear
probe on the digits test split: a Table-1-like and a Table-3-like table.
"""
import argparse
import functools
import json
import os
import sys
import time

from lavis_latent import demo_clip
from lavis_latent.common.console import run_quietly
from lavis_latent.common.paths import PACKAGE_ROOT
from lavis_latent.runners.state import last_checkpoint

VARIANTS = ("baseline", "fs", "bb", "gc", "all")
FRAMEWORKS = ("albef", "blip", "clip")
#: the compact run (the default): the CLIP variants, zero-shot only
QUICK_CLIP_VARIANTS = (demo_clip.RANDOM_INIT, "baseline", "inmodal", "fs", "bb", "gc")
TASKS = ("retrieval", "vqa", "nlvr", "snli_ve")
TASK_TITLES = {"vqa": "VQA acc", "nlvr": "NLVR2 acc", "snli_ve": "SNLI-VE acc"}
DEFAULT_PROJECTS = os.path.join(os.path.dirname(PACKAGE_ROOT), "projects", "demo")


def variant_config(projects_dir, stage, variant):
    """Path of the demo yaml for ``stage`` (``albef_pretrain`` / ``albef_retrieval``) and ``variant``."""
    name = f"{stage}.yaml" if variant == "baseline" else f"{stage}_{variant}.yaml"
    path = os.path.join(projects_dir, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No demo config {path}: run from the repository root or pass --projects-dir")
    return path


def finetune_task(task, variant, projects_dir, out, ckpt, extra_options=(), verbose=False):
    """Fine-tune and test one downstream task (``vqa``, ``nlvr``, ``snli_ve``) from a pretraining checkpoint.

    NLVR2 first runs ALBEF's text-assignment step (``albef_nlvr_ta.yaml``) from ``ckpt`` and fine-tunes from its
    checkpoint. Returns ``{"test": LAVIS's test metrics, "dir": output folder, "seconds": wall time}``.
    """
    started = time.time()
    if task == "nlvr":
        ta_yaml = os.path.join(projects_dir, "albef_nlvr_ta.yaml")
        if not os.path.isfile(ta_yaml):
            raise FileNotFoundError(f"No demo config {ta_yaml}: run from the repository root or pass --projects-dir")
        ta = run_quietly("train", ta_yaml, os.path.join(out, "nlvr_ta"), ["model.pretrained=" + ckpt, *extra_options],
                         desc=f"ALBEF {variant}: NLVR2 text assignment", verbose=verbose)
        ckpt = last_checkpoint(str(ta.output_dir))
    runner = run_quietly("train", variant_config(projects_dir, f"albef_{task}", variant), os.path.join(out, task),
                         ["model.pretrained=" + ckpt, *extra_options], desc=f"ALBEF {variant}: {task}", verbose=verbose)
    return {"test": (runner.last_test_logs or {}).get("test") or {}, "dir": str(runner.output_dir),
            "seconds": time.time() - started}


def pretrain_losses(runner):
    """The last training epoch's ``loss*`` averages of a runner, as floats."""
    return {k: float(v) for k, v in (runner.last_train_stats or {}).items() if k.startswith("loss")}


def run_variant(variant, projects_dir, output_root, extra_options=(), tasks=("retrieval",), verbose=False,
                model="albef"):
    """Pretrain one variant of ``model`` (``albef`` or ``blip``: ``projects/demo/<model>_pretrain[_<variant>].yaml``),
    fine-tune and test each of ``tasks`` from its checkpoint (BLIP: retrieval only); returns a row of the demo tables
    (dict; downstream tasks under ``downstream``; ``plot``: the test split's modality-gap PNG)."""
    downstream = [t for t in tasks if t != "retrieval"]
    if model != "albef" and downstream:
        raise ValueError(f"the demo fine-tunes {', '.join(downstream)} for ALBEF only; {model} runs retrieval")
    started = time.time()
    name = model.upper()
    out = os.path.join(output_root, variant) if model == "albef" else os.path.join(output_root, model, variant)
    pretrain = run_quietly("train", variant_config(projects_dir, f"{model}_pretrain", variant),
                           os.path.join(out, "pretrain"), extra_options, desc=f"{name} {variant}: pretrain",
                           verbose=verbose)
    ckpt = last_checkpoint(str(pretrain.output_dir))
    row = {"variant": variant, "test": {}, "pretrain_losses": pretrain_losses(pretrain),
           "pretrain_dir": str(pretrain.output_dir), "framework": model}
    if "retrieval" in tasks:
        finetune = run_quietly("train", variant_config(projects_dir, f"{model}_retrieval", variant),
                               os.path.join(out, "retrieval"),
                               ["model.pretrained=" + ckpt, "run.plot_gap=True", *extra_options],
                               desc=f"{name} {variant}: retrieval fine-tune", verbose=verbose)
        row["test"] = (finetune.last_test_logs or {}).get("test") or {}
        row["retrieval_dir"] = str(finetune.output_dir)
        row["plot"] = gap_plot_path(finetune)
    if downstream:
        row["downstream"] = {t: finetune_task(t, variant, projects_dir, out, ckpt, extra_options, verbose)
                             for t in downstream}
    row["seconds"] = time.time() - started
    return row


def gap_plot_path(runner, split="test"):
    """The modality-gap PNG a run wrote for ``split`` (``run.plot_gap``), or None."""
    from lavis_latent.metrics.gap_plot import written_split_plot

    return written_split_plot(str(runner.output_dir), split)


def format_table(rows):
    """The demo table as markdown: recall, modality gap and final pretraining loss terms per variant."""
    loss_keys = sorted({k for r in rows for k in r["pretrain_losses"]}, key=lambda k: (k != "loss", k))
    head = ["variant", "txt R@1", "R@5", "R@10", "img R@1", "R@5", "R@10", "gap centroid", "gap paired"]
    head += [k.replace("loss_", "") if k != "loss" else "loss" for k in loss_keys] + ["time s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        t = r["test"]
        cells = [r["variant"]] + [f"{t.get(k, float('nan')):.1f}" for k in
                                  ("txt_r1", "txt_r5", "txt_r10", "img_r1", "img_r5", "img_r10")]
        cells += [f"{t.get('gap_centroid_distance', float('nan')):.3f}", f"{t.get('gap_paired_distance', float('nan')):.3f}"]
        cells += [f"{r['pretrain_losses'][k]:.3f}" if k in r["pretrain_losses"] else "-" for k in loss_keys]
        cells.append(f"{r['seconds']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def task_accuracy(task, test):
    """A downstream task's test accuracy in % (LAVIS reports VQA accuracy in %, classification as a fraction)."""
    if task == "vqa":
        return test.get("agg_metrics", float("nan"))
    return 100.0 * test.get("acc", float("nan"))


def format_downstream_table(rows, tasks):
    """The Table-4-like table as markdown: retrieval R@1 and the downstream accuracies (%) per variant."""
    head = ["variant"]
    if "retrieval" in tasks:
        head += ["txt R@1", "img R@1"]
    head += [TASK_TITLES[t] for t in tasks if t != "retrieval"] + ["time s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["variant"]]
        if "retrieval" in tasks:
            cells += [f"{r['test'].get(k, float('nan')):.1f}" for k in ("txt_r1", "img_r1")]
        cells += [f"{task_accuracy(t, r['downstream'][t]['test']):.1f}" for t in tasks if t != "retrieval"]
        cells.append(f"{r['seconds']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_tasks(value):
    """``--tasks``: a comma-separated subset of :data:`TASKS`, or ``all``; returned in :data:`TASKS` order."""
    names = [t.strip() for t in value.split(",") if t.strip()]
    if "all" in names:
        return list(TASKS)
    unknown = [t for t in names if t not in TASKS]
    if unknown or not names:
        raise SystemExit(f"unknown task(s) {unknown or value!r}; choose from {', '.join(TASKS)} or all")
    return [t for t in TASKS if t in names]


def parse_args(argv=None):
    """Command line of the demo."""
    parser = argparse.ArgumentParser(
        description="Embedded offline demo. Default: the compact run (about 4 min on 2 cores): the tiny CLIP "
                    "two-tower model pretrained per variant, zero-shot accuracy and the modality gap, with pictures. "
                    "--full: the full study (ALBEF pretrain + fine-tune per variant, and CLIP with linear probes).")
    parser.add_argument("--full", action="store_true", help="the full study (about 15-40 minutes)")
    parser.add_argument("--verbose", action="store_true",
                        help="show LAVIS's console output (run parameters, per-iteration logs) instead of progress bars")
    parser.add_argument("--frameworks", default=None,
                        help="with --full: comma-separated subset of albef,blip,clip (default: all three; the compact "
                             "run is CLIP)")
    parser.add_argument("--variants", default=None,
                        help=f"with --full: ALBEF and BLIP, comma-separated subset of {','.join(VARIANTS)} (default: "
                             "all)")
    parser.add_argument("--clip-variants", default=None,
                        help=f"CLIP: comma-separated subset of {demo_clip.RANDOM_INIT!r},{','.join(demo_clip.VARIANTS)} "
                             "(default: all)")
    parser.add_argument("--tasks", default=None,
                        help=f"with --full: ALBEF, comma-separated subset of {','.join(TASKS)}, or all (fine-tuned "
                             "from each variant's pretraining checkpoint; default: retrieval)")
    parser.add_argument("--output-dir", default="output/demo", help="where runs write (relative to the cwd)")
    parser.add_argument("--projects-dir", default=DEFAULT_PROJECTS, help="folder of the demo yaml files")
    parser.add_argument("--options", nargs="+", default=[], help="key=value overrides applied to every run")
    args = parser.parse_args(argv)
    if not args.full:
        needs_full = [f"--{k}" for k in ("frameworks", "variants", "tasks") if getattr(args, k) is not None]
        if needs_full:
            parser.error(f"{', '.join(needs_full)} belong to the full study: add --full (the compact run is CLIP "
                         "pretraining and zero-shot only)")
    return args


def _names(value, valid, what):
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in names if v not in valid]
    if unknown:
        raise SystemExit(f"unknown {what} {unknown}; choose from {', '.join(valid)}")
    return names


def _minutes(seconds):
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def run_plan(plan):
    """Run ``plan`` (a list of ``(label, function)``) in order, printing ``[i/n] label`` with an estimate of the
    time left before each and a one-line summary after it; returns the functions' results."""
    results, started = [], time.time()
    for i, (label, run) in enumerate(plan):
        left = f" (about {_minutes((time.time() - started) / i * (len(plan) - i))} left)" if i else ""
        print(f"[{i + 1}/{len(plan)}] {label}{left}", flush=True)
        results.append(run())
        print("      " + summary_line(results[-1]), flush=True)
    return results


def summary_line(row):
    """One line on a finished variant: retrieval R@1 and the paired gap (ALBEF) or zero-shot top-1 (CLIP)."""
    nan = float("nan")
    t = row.get("test") or {}
    if "txt_r1" in t:
        text = f"txt R@1 {t['txt_r1']:.1f}, img R@1 {t['img_r1']:.1f}"
    elif "zero_shot" in row:
        t = row["zero_shot"]
        text = f"zero-shot top-1 {float(t.get('top1', nan)):.1f}"
    else:
        text = ""
    gap = (f", gap centroid {t.get('gap_centroid_distance', nan):.3f}, paired {t.get('gap_paired_distance', nan):.3f}"
           if "gap_paired_distance" in t else "")
    return f"{row['variant']}: {text}{gap} ({row['seconds']:.0f} s)"


def _retrieval_tables(rows, blip_rows, tasks):
    tables = []
    for name, these in (("ALBEF", rows), ("BLIP", blip_rows)):
        if these and "retrieval" in tasks:
            tables.append((f"Retrieval on the embedded test split (tiny {name}, pretrain + fine-tune per variant; 50 "
                           "images, 150 captions, one seed):", format_table(these)))
    if rows and any(t != "retrieval" for t in tasks):
        tables.append(("Downstream tasks on the embedded test split, each fine-tuned from the variant's pretraining "
                       "checkpoint (accuracy %; the paper's Table 4 protocol):", format_downstream_table(rows, tasks)))
    return tables


def _clip_tables(clip_rows, quick):
    if not clip_rows:
        return []
    zero_shot, probe = demo_clip.format_tables(clip_rows)
    what = "a smoke run: one seed, 4 epochs" if quick else "the paper's Table 1 protocol"
    tables = [("Zero-shot classification of the digits test split (450 images, 10 classes; tiny CLIP pretrained on "
               f"the digits captions per variant; top-k %; gap: each image against its class prompt; {what}):",
               zero_shot)]
    if probe:
        tables.append(("Linear probe on frozen image-encoder features (digits; logistic regression, C chosen on the val "
                       "split; top-k %; the paper's Table 3 protocol):", probe))
    return tables


def combined_picture(rows, path):
    """One PNG with every row's gap picture side by side (titled by variant); its path, or None if no row has one."""
    from lavis_latent.metrics.gap_plot import combine_panels

    panels = [(r["variant"], r["plot"]) for r in rows if r.get("plot")]
    if not panels:
        return None
    return combine_panels([p for _, p in panels], path, titles=[name for name, _ in panels], ncols=3)


def main(argv=None):
    """Run the demo and print its tables; returns the rows (ALBEF, BLIP, then CLIP rows; ``framework`` says which)."""
    args = parse_args(argv)
    quick = not args.full
    frameworks = ["clip"] if quick else _names(args.frameworks or ",".join(FRAMEWORKS), FRAMEWORKS, "framework(s)")
    variants = _names(args.variants or ",".join(VARIANTS), VARIANTS, "variant(s)")
    blip_variants = variants if "blip" in frameworks else []
    variants = variants if "albef" in frameworks else []
    default_clip = ",".join(QUICK_CLIP_VARIANTS if quick else (demo_clip.RANDOM_INIT, *demo_clip.VARIANTS))
    clip_variants = (_names(args.clip_variants or default_clip, (demo_clip.RANDOM_INIT, *demo_clip.VARIANTS),
                            "CLIP variant(s)") if "clip" in frameworks else [])
    tasks = parse_tasks(args.tasks or "retrieval")
    output_root = os.path.abspath(args.output_dir)
    common = dict(projects_dir=args.projects_dir, output_root=output_root, extra_options=args.options,
                  verbose=args.verbose)
    if blip_variants and any(t != "retrieval" for t in tasks):
        raise SystemExit("--tasks other than retrieval are ALBEF's: add --frameworks albef (or albef,clip)")
    plan = [(f"ALBEF {v}: pretrain, {' + '.join(tasks)}", functools.partial(run_variant, v, tasks=tasks, **common))
            for v in variants]
    plan += [(f"BLIP {v}: pretrain, retrieval", functools.partial(run_variant, v, model="blip", **common))
             for v in blip_variants]
    clip_what = "zero-shot" if quick else "zero-shot + linear probe"
    plan += [(f"CLIP {v}: {'' if v == demo_clip.RANDOM_INIT else 'pretrain, '}{clip_what}",
              functools.partial(demo_clip.run_variant, v, linear_probe=not quick, **common)) for v in clip_variants]
    print(f"lavis-latent demo, {'the full study' if args.full else 'compact run (--full: the full study)'}: "
          f"{len(plan)} runs. LAVIS's logs: console.log in each run's folder under {output_root}"
          + (" and the console" if args.verbose else ""), flush=True)
    results = run_plan(plan)
    rows, blip_rows = results[:len(variants)], results[len(variants):len(variants) + len(blip_variants)]
    clip_rows = [dict(r, framework="clip") for r in results[len(variants) + len(blip_variants):]]
    tables = _retrieval_tables(rows, blip_rows, tasks) + _clip_tables(clip_rows, quick)
    os.makedirs(output_root, exist_ok=True)
    pictures = [combined_picture(r, os.path.join(output_root, f"gap_{name}.png"))
                for name, r in (("albef", rows), ("blip", blip_rows), ("clip", clip_rows))]
    with open(os.path.join(output_root, "demo_table.md"), "w") as f:
        f.write("\n\n".join(title + "\n\n" + table for title, table in tables) + "\n")
    with open(os.path.join(output_root, "demo_results.json"), "w") as f:
        json.dump(rows + blip_rows + clip_rows, f, indent=2)
    for title, table in tables:
        print(f"\n{title}\n", flush=True)
        print(table)
    for picture in filter(None, pictures):
        print(f"\nModality gap per variant (test split, 2-D PCA of both modalities, pairs joined): {picture}",
              flush=True)
    print(f"Tables: {os.path.join(output_root, 'demo_table.md')}; runs, logs and checkpoints under {output_root}",
          flush=True)
    return rows + blip_rows + clip_rows


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
