"""``python -m lavis_latent.demo``: the embedded, offline end-to-end run (``make demo``).

For each variant (baseline and the regularized ones), it pretrains a tiny ALBEF on the embedded data with
``projects/demo/albef_pretrain[_<variant>].yaml``, fine-tunes it for retrieval from the last pretraining checkpoint
with ``projects/demo/albef_retrieval[_<variant>].yaml``, evaluates on the test split, and prints one table:
retrieval R@1/5/10 both ways, the modality-gap measures, and each pretraining loss term's final epoch average.
Every run goes through LAVIS's task, builders and runner (``lavis_latent.train``), so each leaves LAVIS's
``log.txt``, ``evaluate.txt`` and checkpoints in its output folder.
"""
import argparse
import glob
import json
import os
import sys
import time

from lavis_latent.common.paths import PACKAGE_ROOT

VARIANTS = ("baseline", "fs", "bb", "gc", "all")
DEFAULT_PROJECTS = os.path.join(os.path.dirname(PACKAGE_ROOT), "projects", "demo")


def variant_config(projects_dir, stage, variant):
    """Path of the demo yaml for ``stage`` (``albef_pretrain`` / ``albef_retrieval``) and ``variant``."""
    name = f"{stage}.yaml" if variant == "baseline" else f"{stage}_{variant}.yaml"
    path = os.path.join(projects_dir, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No demo config {path}: run from the repository root or pass --projects-dir")
    return path


def last_checkpoint(output_dir):
    """The newest ``checkpoint_<epoch>.pth`` under a run's output folder."""
    found = glob.glob(os.path.join(output_dir, "checkpoint_*.pth"))
    numbered = [p for p in found if os.path.basename(p)[len("checkpoint_") : -len(".pth")].isdigit()]
    if not numbered:
        raise FileNotFoundError(f"pretraining wrote no checkpoint under {output_dir}")
    return max(numbered, key=lambda p: int(os.path.basename(p)[len("checkpoint_") : -len(".pth")]))


def run_variant(variant, projects_dir, output_root, extra_options=()):
    """Pretrain, fine-tune and test one variant; returns a row of the demo table (dict)."""
    from lavis_latent import train

    started = time.time()
    out = os.path.join(output_root, variant)
    options = ["run.output_dir=" + os.path.join(out, "pretrain"), *extra_options]
    pretrain = train.main(["--cfg-path", variant_config(projects_dir, "albef_pretrain", variant), "--options", *options])
    ckpt = last_checkpoint(str(pretrain.output_dir))
    options = ["run.output_dir=" + os.path.join(out, "retrieval"), "model.pretrained=" + ckpt, *extra_options]
    finetune = train.main(["--cfg-path", variant_config(projects_dir, "albef_retrieval", variant), "--options", *options])
    test = (finetune.last_test_logs or {}).get("test") or {}
    losses = {k: float(v) for k, v in (pretrain.last_train_stats or {}).items() if k.startswith("loss")}
    return {"variant": variant, "test": test, "pretrain_losses": losses, "seconds": time.time() - started,
            "pretrain_dir": str(pretrain.output_dir), "retrieval_dir": str(finetune.output_dir)}


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


def parse_args(argv=None):
    """Command line of the demo."""
    parser = argparse.ArgumentParser(description="Embedded offline demo: pretrain, fine-tune, evaluate retrieval.")
    parser.add_argument("--variants", default="baseline,fs,bb,gc,all",
                        help=f"comma-separated subset of {','.join(VARIANTS)}")
    parser.add_argument("--output-dir", default="output/demo", help="where runs write (relative to the cwd)")
    parser.add_argument("--projects-dir", default=DEFAULT_PROJECTS, help="folder of the demo yaml files")
    parser.add_argument("--options", nargs="+", default=[], help="key=value overrides applied to every run")
    return parser.parse_args(argv)


def main(argv=None):
    """Run the demo and print its table; returns the rows."""
    args = parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    output_root = os.path.abspath(args.output_dir)
    rows = []
    for variant in variants:
        print(f"\n=== lavis-latent demo: variant {variant} ===", flush=True)
        rows.append(run_variant(variant, args.projects_dir, output_root, args.options))
    table = format_table(rows)
    os.makedirs(output_root, exist_ok=True)
    with open(os.path.join(output_root, "demo_table.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(output_root, "demo_results.json"), "w") as f:
        json.dump(rows, f, indent=2)
    print("\nRetrieval on the embedded test split (tiny ALBEF, pretrain + fine-tune per variant):\n", flush=True)
    print(table)
    print(f"\nRuns, logs and checkpoints under {output_root}", flush=True)
    return rows


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
