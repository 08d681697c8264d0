"""The paper's Figure 2 experiment: modality gap against retrieval recall as an alignment loss shrinks the gap.

The paper pretrains with ``L_Align = 1/<Z_T, Z_V>^2`` added at scales 1, 0.5 and 0 and finds that the gap moves
a lot while retrieval "barely changes" (Sec. 3.1). Here: the tiny ``clip_latent`` (plain CLIP loss,
``base_loss: clip``) on the embedded demo world, plus ``scale * alignment_loss`` (``lavis_latent.regularizers``),
several seeds per scale; measured on the test split: the mean paired distance (the paper's gap), the centroid
distance (Liang et al.'s), and retrieval R@1 both ways.

    python -m benchmarks.gap_vs_retrieval                 # ~6 min on 2 CPU cores
    python -m benchmarks.gap_vs_retrieval --device cuda

Writes ``gap_vs_retrieval.md``, ``.json`` and ``.png`` under ``--output-dir`` (default ``benchmarks/results``).
"""
import argparse
import os
import statistics
import sys
import time

import torch

from benchmarks import clip_world
from benchmarks.common import (command_line, log, machine_description, machine_info, pyplot, save_png, write_json,
                               write_text)
from benchmarks.demo_world import load_world
from lavis_latent.regularizers import alignment_loss


def parse_args(argv=None):
    """The command line's options (``argv``: a list of arguments, default ``sys.argv[1:]``)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scales", default="1,0.5,0.1,0.01,0",
                   help="comma-separated L_Align scales (paper: 1, 0.5, 0; 0.1 and 0.01 show the transition)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds")
    p.add_argument("--steps", type=int, default=200, help="training steps per run")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--info-gap", type=float, default=0.5, help="the demo world's information gap knob")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--output-dir", default=os.path.join("benchmarks", "results"))
    p.add_argument("--cache-root", default=os.environ.get("LAVIS_CACHE_ROOT", "cache"))
    p.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 2 scales, 5 steps")
    return p.parse_args(argv)


def run(args):
    """Train and evaluate one tiny CLIP per scale and seed; returns ``(runs, seconds, test images)``, a run being
    the gap measures, R@1 both ways and the final loss terms of one scale and seed."""
    if args.threads:
        torch.set_num_threads(args.threads)
    scales = [float(s) for s in args.scales.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.quick:
        scales, seeds, args.steps = scales[:2], seeds[:1], 5
    world = load_world(os.path.abspath(args.cache_root), seed=0, info_gap=args.info_gap)
    runs = []
    started = time.time()
    for scale in scales:
        for seed in seeds:
            extra = (lambda zv, zt, s=scale: s * alignment_loss(zv, zt)) if scale > 0 else None
            (model, terms), secs = clip_world.timed(
                clip_world.train_clip, world, base_loss="clip", steps=args.steps, batch_size=args.batch_size,
                seed=seed, extra_loss=extra, device=args.device)
            res = clip_world.evaluate_clip(model, world, device=args.device)
            row = {"scale": scale, "seed": seed, "seconds": secs, "final_losses": terms,
                   **{k: res[k] for k in ("txt_r1", "img_r1", "gap_paired_distance", "gap_centroid_distance",
                                          "gap_alignment", "gap_uniformity_image", "gap_uniformity_text")}}
            runs.append(row)
            log(f"scale {scale:g} seed {seed}: gap paired "
                  f"{row['gap_paired_distance']:.3f} centroid {row['gap_centroid_distance']:.3f}  "
                f"txt R@1 {row['txt_r1']:.1f} img R@1 {row['img_r1']:.1f}  ({secs:.0f}s)")
    return runs, time.time() - started, len(world.images["test"])


def summarise(runs):
    """Mean and standard deviation per scale (over seeds)."""
    out = []
    for scale in sorted({r["scale"] for r in runs}, reverse=True):
        rs = [r for r in runs if r["scale"] == scale]
        row = {"scale": scale, "n": len(rs)}
        for k in ("gap_paired_distance", "gap_centroid_distance", "gap_uniformity_image", "txt_r1", "img_r1"):
            vals = [r[k] for r in rs]
            row[k] = statistics.mean(vals)
            row[k + "_sd"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        out.append(row)
    return out


def table(summary):
    """The markdown table (one string) of :func:`summarise`'s rows: mean ± sd of the gaps and R@1 per scale."""
    head = ("| L_Align scale | runs | gap (mean paired distance) | gap (centroid distance) | image uniformity "
            "(0 = collapsed) | txt R@1 | img R@1 |")
    lines = [head, "|---|---|---|---|---|---|---|"]
    for r in summary:
        lines.append(f"| {r['scale']:g} | {r['n']} | {r['gap_paired_distance']:.3f} ± {r['gap_paired_distance_sd']:.3f}"
                     f" | {r['gap_centroid_distance']:.3f} ± {r['gap_centroid_distance_sd']:.3f}"
                     f" | {r['gap_uniformity_image']:.2f} ± {r['gap_uniformity_image_sd']:.2f}"
                     f" | {r['txt_r1']:.1f} ± {r['txt_r1_sd']:.1f} | {r['img_r1']:.1f} ± {r['img_r1_sd']:.1f} |")
    return "\n".join(lines)


def plot(runs, path):
    """Scatter R@1 (both ways) against the mean paired distance of every run, one marker per scale, to ``path``."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for scale, marker in zip(sorted({r["scale"] for r in runs}, reverse=True), "os^Dv"):
        rs = [r for r in runs if r["scale"] == scale]
        ax.scatter([r["gap_paired_distance"] for r in rs], [r["img_r1"] for r in rs], marker=marker,
                   label=f"scale {scale:g} (text->image)")
        ax.scatter([r["gap_paired_distance"] for r in rs], [r["txt_r1"] for r in rs], marker=marker,
                   facecolors="none", edgecolors="k", label=f"scale {scale:g} (image->text)")
    ax.set_xlabel("modality gap: mean paired distance ||z_v - z_t||")
    ax.set_ylabel("retrieval R@1 (%)")
    ax.set_title("Gap vs retrieval (paper Fig. 2 set-up, tiny CLIP, demo world)")
    ax.legend(fontsize=7)
    save_png(fig, path)


def main(argv=None):
    """Run the experiment and write ``gap_vs_retrieval.md`` / ``.json`` / ``.png``; returns the summary rows."""
    args = parse_args(argv)
    runs, seconds, num_test = run(args)
    summary = summarise(runs)
    md = table(summary)
    header = [
        "# Modality gap vs retrieval (the paper's Figure 2 experiment)",
        "",
        f"Machine: {machine_description(machine_info(args.device))}.",
        "",
        f"Command: `{command_line()}`; total {seconds / 60:.1f} min.",
        "",
        f"Tiny `clip_latent` (plain CLIP loss) + scale x L_Align on the demo world (info_gap {args.info_gap}), "
        f"{args.steps} steps at batch {args.batch_size}, seeds {args.seeds}; test split: "
        f"{num_test} "
        "images, 3 captions each. Mean ± standard deviation over seeds.",
        "",
    ]
    os.makedirs(args.output_dir, exist_ok=True)
    png = os.path.join(args.output_dir, "gap_vs_retrieval.png")
    plot(runs, png)
    write_text(os.path.join(args.output_dir, "gap_vs_retrieval.md"), header + [md])
    write_json(os.path.join(args.output_dir, "gap_vs_retrieval.json"),
               {"args": vars(args), "machine": machine_info(args.device), "runs": runs, "summary": summary,
                "seconds": seconds})
    print("\n" + md)
    print(f"\nwrote {args.output_dir}/gap_vs_retrieval.{{md,json,png}} in {seconds / 60:.1f} min", flush=True)
    return summary


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
