"""``python -m lavis_latent.demo``: the embedded, offline end-to-end run (``make demo``).

Two frameworks (``--frameworks albef,clip``, both by default). ALBEF: for each variant (baseline and the
regularized ones), it pretrains a tiny ALBEF on the embedded data with
``projects/demo/albef_pretrain[_<variant>].yaml``, fine-tunes it for retrieval from the last pretraining checkpoint
with ``projects/demo/albef_retrieval[_<variant>].yaml``, evaluates on the test split, and prints one table:
retrieval R@1/5/10 both ways, the modality-gap measures, and each pretraining loss term's final epoch average.
Every run goes through LAVIS's task, builders and runner (``lavis_latent.train``), so each leaves LAVIS's
``log.txt``, ``evaluate.txt`` and checkpoints in its output folder.

``--tasks`` adds the paper's other downstream tasks (Table 4), each fine-tuned from the same pretraining checkpoint
and tested on the embedded test split: ``vqa`` (``albef_vqa[_<variant>].yaml``, VQA accuracy), ``nlvr``
(ALBEF's text-assignment step ``albef_nlvr_ta.yaml``, then ``albef_nlvr[_<variant>].yaml``, accuracy) and
``snli_ve`` (``albef_snli_ve[_<variant>].yaml``, accuracy); ``--tasks all`` runs the four and prints a second,
Table-4-like table (retrieval R@1, VQA, NLVR2 and SNLI-VE accuracy per variant).

CLIP (:mod:`lavis_latent.demo_clip`): for ``--clip-variants`` (``baseline`` = plain CLIP, ``inmodal`` = the paper's
base loss, ``fs``, ``bb``, ``gc``; plus the ``untrained`` row: the random initialisation), a tiny two-tower model
is pretrained on the embedded digits captions and evaluated by zero-shot classification and a linear probe on the
digits test split: a Table-1-like and a Table-3-like table.
"""
import argparse
import json
import os
import sys
import time

from lavis_latent import demo_clip
from lavis_latent.common.paths import PACKAGE_ROOT
from lavis_latent.runners.state import last_checkpoint

VARIANTS = ("baseline", "fs", "bb", "gc", "all")
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


def finetune_task(task, variant, projects_dir, out, ckpt, extra_options=()):
    """Fine-tune and test one downstream task (``vqa``, ``nlvr``, ``snli_ve``) from a pretraining checkpoint.

    NLVR2 first runs ALBEF's text-assignment step (``albef_nlvr_ta.yaml``) from ``ckpt`` and fine-tunes from its
    checkpoint. Returns ``{"test": LAVIS's test metrics, "dir": output folder, "seconds": wall time}``.
    """
    from lavis_latent import train

    started = time.time()
    if task == "nlvr":
        ta_yaml = os.path.join(projects_dir, "albef_nlvr_ta.yaml")
        if not os.path.isfile(ta_yaml):
            raise FileNotFoundError(f"No demo config {ta_yaml}: run from the repository root or pass --projects-dir")
        options = ["run.output_dir=" + os.path.join(out, "nlvr_ta"), "model.pretrained=" + ckpt, *extra_options]
        ta = train.main(["--cfg-path", ta_yaml, "--options", *options])
        ckpt = last_checkpoint(str(ta.output_dir))
    options = ["run.output_dir=" + os.path.join(out, task), "model.pretrained=" + ckpt, *extra_options]
    runner = train.main(["--cfg-path", variant_config(projects_dir, f"albef_{task}", variant), "--options", *options])
    return {"test": (runner.last_test_logs or {}).get("test") or {}, "dir": str(runner.output_dir),
            "seconds": time.time() - started}


def run_variant(variant, projects_dir, output_root, extra_options=(), tasks=("retrieval",)):
    """Pretrain one variant, fine-tune and test each of ``tasks`` from its checkpoint; returns a row of the demo
    tables (dict; downstream tasks under ``downstream``)."""
    from lavis_latent import train

    started = time.time()
    out = os.path.join(output_root, variant)
    options = ["run.output_dir=" + os.path.join(out, "pretrain"), *extra_options]
    pretrain = train.main(["--cfg-path", variant_config(projects_dir, "albef_pretrain", variant), "--options", *options])
    ckpt = last_checkpoint(str(pretrain.output_dir))
    losses = {k: float(v) for k, v in (pretrain.last_train_stats or {}).items() if k.startswith("loss")}
    row = {"variant": variant, "test": {}, "pretrain_losses": losses, "pretrain_dir": str(pretrain.output_dir)}
    if "retrieval" in tasks:
        options = ["run.output_dir=" + os.path.join(out, "retrieval"), "model.pretrained=" + ckpt, *extra_options]
        finetune = train.main(["--cfg-path", variant_config(projects_dir, "albef_retrieval", variant),
                               "--options", *options])
        row["test"] = (finetune.last_test_logs or {}).get("test") or {}
        row["retrieval_dir"] = str(finetune.output_dir)
    downstream = [t for t in tasks if t != "retrieval"]
    if downstream:
        row["downstream"] = {t: finetune_task(t, variant, projects_dir, out, ckpt, extra_options) for t in downstream}
    row["seconds"] = time.time() - started
    return row


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
    parser = argparse.ArgumentParser(description="Embedded offline demo: pretrain, fine-tune, evaluate retrieval.")
    parser.add_argument("--frameworks", default="albef,clip", help="comma-separated subset of albef,clip")
    parser.add_argument("--variants", default="baseline,fs,bb,gc,all",
                        help=f"ALBEF: comma-separated subset of {','.join(VARIANTS)}")
    parser.add_argument("--clip-variants", default=demo_clip.RANDOM_INIT + "," + ",".join(demo_clip.VARIANTS),
                        help=f"CLIP: comma-separated subset of {demo_clip.RANDOM_INIT!r},{','.join(demo_clip.VARIANTS)}")
    parser.add_argument("--output-dir", default="output/demo", help="where runs write (relative to the cwd)")
    parser.add_argument("--projects-dir", default=DEFAULT_PROJECTS, help="folder of the demo yaml files")
    parser.add_argument("--options", nargs="+", default=[], help="key=value overrides applied to every run")
    parser.add_argument("--tasks", default="retrieval",
                        help=f"ALBEF: comma-separated subset of {','.join(TASKS)}, or all (fine-tuned from each variant's "
                             "pretraining checkpoint)")
    return parser.parse_args(argv)


def _names(value, valid, what):
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in names if v not in valid]
    if unknown:
        raise SystemExit(f"unknown {what} {unknown}; choose from {', '.join(valid)}")
    return names


def main(argv=None):
    """Run the demo and print its tables; returns the rows (ALBEF rows, then CLIP rows with ``framework: clip``)."""
    args = parse_args(argv)
    frameworks = _names(args.frameworks, ("albef", "clip"), "framework(s)")
    variants = _names(args.variants, VARIANTS, "variant(s)") if "albef" in frameworks else []
    clip_variants = (_names(args.clip_variants, (demo_clip.RANDOM_INIT, *demo_clip.VARIANTS), "CLIP variant(s)")
                     if "clip" in frameworks else [])
    tasks = parse_tasks(args.tasks)
    output_root = os.path.abspath(args.output_dir)
    rows = []
    for variant in variants:
        print(f"\n=== lavis-latent demo: ALBEF variant {variant} ===", flush=True)
        rows.append(run_variant(variant, args.projects_dir, output_root, args.options, tasks=tasks))
    clip_rows = []
    for variant in clip_variants:
        print(f"\n=== lavis-latent demo: CLIP variant {variant} ===", flush=True)
        clip_rows.append(dict(demo_clip.run_variant(variant, args.projects_dir, output_root, args.options),
                              framework="clip"))
    tables = []
    if rows and "retrieval" in tasks:
        tables.append(("Retrieval on the embedded test split (tiny ALBEF, pretrain + fine-tune per variant):",
                       format_table(rows)))
    if rows and any(t != "retrieval" for t in tasks):
        tables.append(("Downstream tasks on the embedded test split, each fine-tuned from the variant's pretraining "
                       "checkpoint (accuracy %; the paper's Table 4 protocol):", format_downstream_table(rows, tasks)))
    if clip_rows:
        zero_shot, probe = demo_clip.format_tables(clip_rows)
        tables.append(("Zero-shot classification of the digits test split (450 images, 10 classes; tiny CLIP pretrained "
                       "on the digits captions per variant; top-k %; the paper's Table 1 protocol):", zero_shot))
        tables.append(("Linear probe on frozen image-encoder features (digits; logistic regression, C chosen on the val "
                       "split; top-k %; the paper's Table 3 protocol):", probe))
    os.makedirs(output_root, exist_ok=True)
    with open(os.path.join(output_root, "demo_table.md"), "w") as f:
        f.write("\n\n".join(title + "\n\n" + table for title, table in tables) + "\n")
    with open(os.path.join(output_root, "demo_results.json"), "w") as f:
        json.dump(rows + clip_rows, f, indent=2)
    for title, table in tables:
        print(f"\n{title}\n", flush=True)
        print(table)
    print(f"\nRuns, logs and checkpoints under {output_root}", flush=True)
    return rows + clip_rows


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
