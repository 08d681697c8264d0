"""The CLIP part of ``python -m lavis_latent.demo``: tiny two-tower pretraining, zero-shot and linear probe.

For each variant (``baseline`` = plain CLIP, ``inmodal`` = the paper's base loss L_Con, and ``fs`` / ``bb`` / ``gc``
on top of it) it pretrains the tiny ``clip_latent`` on the embedded digits captions
(``projects/demo/clip_pretrain[_<variant>].yaml``), then evaluates the last checkpoint by zero-shot classification
(``clip_zs_digits.yaml``: prompt "a photo of the digit {}.", top-1/3/5) and by a linear probe on frozen encoder
features (``clip_linprobe_digits.yaml``) on the digits test split. The row ``untrained`` evaluates the untrained
model, so the tables show what pretraining adds. Every run goes through LAVIS's task, builders and runner.
"""
import os
import time

from lavis_latent.common.console import run_quietly

VARIANTS = ("baseline", "inmodal", "fs", "bb", "gc")
RANDOM_INIT = "untrained"


def _config(projects_dir, name):
    path = os.path.join(projects_dir, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No demo config {path}: run from the repository root or pass --projects-dir")
    return path


def pretrain_config(projects_dir, variant):
    """Path of ``clip_pretrain[_<variant>].yaml``."""
    return _config(projects_dir, "clip_pretrain.yaml" if variant == "baseline" else f"clip_pretrain_{variant}.yaml")


def evaluate_checkpoint(projects_dir, out, ckpt, extra_options=(), verbose=False, variant="", linear_probe=True):
    """Zero-shot (with the image/class-prompt gap and its picture) and, with ``linear_probe``, linear-probe test
    metrics of a checkpoint (``None``: the random initialisation). Returns ``{"zero_shot": metrics, "plot": PNG path
    or None[, "linear_probe": metrics]}``."""
    weights = ["model.load_finetuned=True", "model.finetuned=" + ckpt] if ckpt else []
    runner, res = run_quietly("evaluate", _config(projects_dir, "clip_zs_digits.yaml"), os.path.join(out, "zero_shot"),
                              [*weights, "run.plot_gap=True", *extra_options], desc=f"CLIP {variant}: zero-shot",
                              verbose=verbose)
    from lavis_latent.metrics.gap_plot import written_split_plot

    results = {"zero_shot": (res or {}).get("test") or {}, "plot": written_split_plot(str(runner.output_dir))}
    if linear_probe:
        _, res = run_quietly("evaluate", _config(projects_dir, "clip_linprobe_digits.yaml"),
                             os.path.join(out, "linear_probe"), [*weights, *extra_options],
                             desc=f"CLIP {variant}: linear probe", verbose=verbose)
        results["linear_probe"] = (res or {}).get("test") or {}
    return results


def run_variant(variant, projects_dir, output_root, extra_options=(), verbose=False, linear_probe=True):
    """Pretrain one variant (none for ``untrained``) and evaluate it (zero-shot; the linear probe too with
    ``linear_probe``); returns a row of the CLIP tables."""
    from lavis_latent.runners.state import last_checkpoint

    started = time.time()
    out = os.path.join(output_root, "clip", variant.replace(" ", "_"))
    row = {"variant": variant, "pretrain_losses": {}}
    ckpt = None
    if variant != RANDOM_INIT:
        pretrain = run_quietly("train", pretrain_config(projects_dir, variant), os.path.join(out, "pretrain"),
                               extra_options, desc=f"CLIP {variant}: pretrain", verbose=verbose)
        ckpt = last_checkpoint(str(pretrain.output_dir))
        row["pretrain_losses"] = {k: float(v) for k, v in (pretrain.last_train_stats or {}).items()
                                  if k.startswith("loss")}
        row["pretrain_dir"] = str(pretrain.output_dir)
    row.update(evaluate_checkpoint(projects_dir, out, ckpt, extra_options, verbose, variant, linear_probe))
    row["seconds"] = time.time() - started
    return row


def _cell(metrics, key, scale=1.0, fmt="{:.1f}"):
    value = metrics.get(key)
    return "-" if value is None else fmt.format(float(value) * scale)


def format_tables(rows):
    """Markdown tables: zero-shot top-1/3/5 with the image/class-prompt gap (Table 1 style) and, for the rows that
    have one, linear-probe top-1/3 (Table 3 style; ``None`` when no row has)."""
    loss_keys = sorted({k for r in rows for k in r["pretrain_losses"]}, key=lambda k: (k != "loss", k))
    head = ["variant", "top-1", "top-3", "top-5", "gap centroid", "gap paired"]
    head += [k.replace("loss_", "") for k in loss_keys] + ["time s"]
    zs = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        m = r["zero_shot"]
        cells = [r["variant"], _cell(m, "top1"), _cell(m, "top3"), _cell(m, "top5"),
                 _cell(m, "gap_centroid_distance", fmt="{:.3f}"), _cell(m, "gap_paired_distance", fmt="{:.3f}")]
        cells += [_cell(r["pretrain_losses"], k, fmt="{:.3f}") for k in loss_keys]
        cells.append(f"{r['seconds']:.0f}")
        zs.append("| " + " | ".join(cells) + " |")
    probed = [r for r in rows if "linear_probe" in r]
    if not probed:
        return "\n".join(zs), None
    head = ["variant", "top-1", "top-3", "C (chosen on val)"]
    lp = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in probed:
        m = r["linear_probe"]
        lp.append("| " + " | ".join([r["variant"], _cell(m, "top1"), _cell(m, "top3"),
                                     _cell(m, "probe_C", fmt="{:g}")]) + " |")
    return "\n".join(zs), "\n".join(lp)
