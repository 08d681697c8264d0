"""What each regularizer buys: quality on the embedded data against fair references, several seeds, a gap sweep.

CLIP part (default; in-process, the tiny ``clip_latent`` on the demo world, see ``benchmarks/clip_world.py``):

* references: ``untrained`` (the random initialisation: what the probes get for free), ``plain`` (CLIP's
  1/2 (V2T + T2V), ``base_loss: clip``), ``inmodal`` (the paper's base loss L_Con = 1/4 (V2T + T2V + V2V + T2T),
  ``base_loss: paper``) and ``control`` (the ``inmodal`` model probed on ``[z, c]`` with ``c`` an untrained
  projection head as wide as separation's, so extra dimensions are not mistaken for structure);
* methods on top of ``inmodal``: ``fs`` (separation), ``bb`` (bridge), ``gc`` (geometric consistency), each at
  ``--weights`` (default 0.1 and 1.0), ``--seeds`` (default 3);
* metrics on the test split: retrieval R@1 both ways, zero-shot top-1 on shape and colour, linear probes of the
  shared, image-only (from image features) and text-only (from text features) attributes on ``z`` and on
  ``[z, z^i]`` (separation) / ``[z, c]`` (control and every other model), the modality gap;
* the information-gap sweep: the same at ``--sweep-gaps`` (how many modality-specific attributes each modality
  has, see ``lavis_latent.datasets.demo_data``), weight ``--sweep-weight``, for inmodal and each method.

ALBEF part (``--frameworks albef``; ``blip`` runs the same grid on BLIP, retrieval only; through LAVIS's runner with the demo configs, ``lavis_latent.demo``): baseline,
inmodal and each method at ``--weights``, per seed, pretraining then fine-tuning each of ``--albef-tasks``
(retrieval R@1, VQA, NLVR2, SNLI-VE accuracy). About 4 min per run and task on 2 cores: hours for the full grid.

    python -m benchmarks.quality                       # CLIP grid + gap sweep, ~17 min alone on 2 CPU cores
    python -m benchmarks.quality --frameworks albef --seeds 0 --weights 1.0 --albef-tasks retrieval

Writes ``quality.md``, ``quality.json`` and ``quality.png`` (and ``quality_albef.*``) under ``--output-dir``.
"""
import argparse
import json
import os
import sys
import time

import torch

from benchmarks import clip_world
from benchmarks.demo_world import load_world
from benchmarks.common import (command_line, log, machine_description, machine_info, markdown_table, pyplot, save_png,
                               write_json, write_text)
from benchmarks.quality_common import METHODS, cell, mean_sd
from benchmarks.world_measures import add_plus_views

METRICS = [  # (key in the run result, column title)
    ("txt_r1", "txt R@1"),
    ("img_r1", "img R@1"),
    ("zs_shape", "ZS shape"),
    ("zs_color", "ZS colour"),
    ("probe_shared[z]", "probe shared z"),
    ("probe_image_only[z]", "probe img-only z"),
    ("probe_image_only[z+]", "probe img-only [z,+]"),
    ("probe_text_only[z]", "probe txt-only z"),
    ("probe_text_only[z+]", "probe txt-only [z,+]"),
    ("gap_centroid_distance", "gap centroid"),
    ("gap_paired_distance", "gap paired"),
]


def parse_args(argv=None):
    """The command line's options (``argv``: a list of arguments, default ``sys.argv[1:]``)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frameworks", default="clip", help="comma-separated: clip, albef, blip")
    p.add_argument("--weights", default="0.1,1.0", help="regularizer weights to compare")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--info-gap", type=float, default=0.5, help="the demo world's information gap for the main grid")
    p.add_argument("--sweep-gaps", default="1.0",
                   help="further info_gap values for the sweep ('' to skip; 0.25 leaves one image-only attribute, "
                        "the background, which every model probes at 100 %%)")
    p.add_argument("--sweep-weight", type=float, default=1.0)
    p.add_argument("--sweep-seeds", default="0,1", help="seeds of the sweep")
    p.add_argument("--steps", type=int, default=150, help="CLIP training steps per run")
    p.add_argument("--batch-size", type=int, default=32, help="CLIP batch (geometric's 1/N double sum grows with it)")
    p.add_argument("--albef-tasks", default="retrieval", help="ALBEF: comma-separated retrieval,vqa,nlvr,snli_ve")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--verbose", action="store_true", help="ALBEF: LAVIS's console output instead of progress bars")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--output-dir", default=os.path.join("benchmarks", "results"))
    p.add_argument("--cache-root", default=os.environ.get("LAVIS_CACHE_ROOT", "cache"))
    p.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 1 weight, 5 steps, no sweep")
    p.add_argument("--render", metavar="JSON", help="only redraw quality.md / .png from a saved quality.json")
    p.add_argument("--albef-tag", default="", help="ALBEF: name this part of a grid split across processes")
    p.add_argument("--render-albef", metavar="JSON", nargs="+",
                   help="only write quality_albef.md from saved ALBEF jsons (parts run side by side are pooled)")
    return p.parse_args(argv)


def _floats(text):
    return [float(x) for x in text.split(",") if x.strip()]


def _ints(text):
    return [int(x) for x in text.split(",") if x.strip()]


def clip_configs(weights):
    """``[(row name, base_loss, latent block)]`` of the CLIP grid (the control is probed from the inmodal runs)."""
    rows = [("untrained", "paper", {}), ("plain", "clip", {}), ("inmodal", "paper", {})]
    for short, name in METHODS.items():
        for w in weights:
            rows.append((f"{short} w={w:g}", "paper", {name: {"weight": w}}))
    return rows


def clip_run(world, name, base_loss, latent, seed, args):
    """Train and evaluate one CLIP configuration; returns the metrics (and the control's, for ``inmodal``)."""
    steps = 0 if name == "untrained" else args.steps
    (model, terms), secs = clip_world.timed(clip_world.train_clip, world, base_loss=base_loss, latent=latent,
                                            steps=steps, batch_size=args.batch_size, seed=seed,
                                            device=args.device)
    res = add_plus_views(clip_world.evaluate_clip(model, world, control_seed=seed, device=args.device))
    res.update({"seed": seed, "seconds": secs, "final_losses": terms})
    log(f"info_gap {world.metadata['params']['info_gap']:g} {name:10s} seed {seed}: txt R@1 {res['txt_r1']:5.1f} "
        f"img R@1 {res['img_r1']:5.1f} img-only probe z {res['probe_image_only[z]']:5.1f} "
        f"[z,+] {res['probe_image_only[z+]']:5.1f}  gap {res['gap_centroid_distance']:.3f}  ({secs:.0f}s)")
    return res


def clip_grid(world, configs, seeds, args):
    """All runs of ``configs`` x ``seeds`` on one world: ``{row name: [result per seed]}`` (plus ``control``)."""
    results = {}
    for name, base_loss, latent in configs:
        for seed in seeds:
            res = clip_run(world, name, base_loss, latent, seed, args)
            results.setdefault(name, []).append(res)
            if name == "inmodal":  # the same-size control: the inmodal model probed on [z, untrained head]
                ctrl = dict(res)
                for key in list(res):
                    if key.endswith("[z+ctrl]"):
                        ctrl[key.rsplit("[", 1)[0] + "[z+]"] = res[key]
                results.setdefault("control", []).append(ctrl)
    order = [c[0] for c in configs]
    if "inmodal" in order:
        order.insert(order.index("inmodal") + 1, "control")
    return {k: results[k] for k in order if k in results}


def _cells(name, runs, metrics):
    """A row's cells of ``metrics``: the ``inmodal`` row's ``[z,+]`` cells are the control row's (``(control)``)."""
    return ["(control)" if name == "inmodal" and key.endswith("[z+]") else cell(runs, key) for key, _ in metrics]


def grid_table(results, metrics=METRICS):
    """The main grid (model -> runs) as a markdown table of ``metrics`` (mean ± sd over seeds), one string."""
    rows = [[name] + _cells(name, runs, metrics) for name, runs in results.items()]
    return "\n".join(markdown_table(["model"] + [title for _, title in metrics], rows))


def sweep_table(sweep):
    """info_gap -> model -> runs, as one table of the image-only / text-only probes ([z,+]) and R@1."""
    keys = [("probe_image_only[z+]", "img-only probe [z,+]"), ("probe_text_only[z+]", "txt-only probe [z,+]"),
            ("probe_image_only[z]", "img-only probe z"), ("img_r1", "img R@1"), ("txt_r1", "txt R@1"),
            ("gap_centroid_distance", "gap centroid")]
    rows = [[f"{gap:g}", name] + _cells(name, runs, keys) for gap in sorted(sweep) for name, runs in sweep[gap].items()]
    return "\n".join(markdown_table(["info_gap", "model"] + [t for _, t in keys], rows))


def plot_sweep(sweep, path):
    """Image-only and text-only probes on [z,+] and text->image R@1 of each model against the information gap."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    gaps = sorted(sweep)
    names = list(next(iter(sweep.values())))
    panels = ((axes[0], "probe_image_only[z+]", "image-only probe on [z, +] (%)"),
              (axes[1], "probe_text_only[z+]", "text-only probe on [z, +] (%)"),
              (axes[2], "img_r1", "text->image R@1 (%)"))
    for ax, key, title in panels:
        for name in names:
            if (name == "inmodal" and key.endswith("[z+]")) or (name == "control" and not key.endswith("[z+]")):
                continue  # the control is the inmodal model: one line each
            ms, sds = zip(*(mean_sd([r[key] for r in sweep[g].get(name, [])]) for g in gaps))
            ax.errorbar(gaps, ms, yerr=sds, marker="o", capsize=3, label=name)
        ax.set_xlabel("info_gap (share of modality-specific facts)")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    save_png(fig, path)


def clip_part(args, weights, seeds):
    """The CLIP grid at ``--info-gap`` and the information-gap sweep: ``(grid, {info_gap: grid of the sweep})``,
    the main grid's inmodal, control and ``--sweep-weight`` rows standing for its own gap in the sweep."""
    cache_root = os.path.abspath(args.cache_root)
    world = load_world(cache_root, seed=0, info_gap=args.info_gap)
    log(f"CLIP grid at info_gap {args.info_gap}: {len(clip_configs(weights))} configurations x {len(seeds)} seeds, "
        f"{args.steps} steps at batch {args.batch_size}")
    grid = clip_grid(world, clip_configs(weights), seeds, args)
    sweep = {args.info_gap: {k: v for k, v in grid.items() if k in ("inmodal", "control") or
                             k.endswith(f"w={args.sweep_weight:g}")}}
    sweep_seeds = _ints(args.sweep_seeds)
    sweep_configs = [c for c in clip_configs([args.sweep_weight]) if c[0] not in ("plain", "untrained")]
    for gap in _floats(args.sweep_gaps):
        w = load_world(cache_root, seed=0, info_gap=gap)
        log(f"sweep: info_gap {gap} ({len(sweep_configs)} configurations x {len(sweep_seeds)} seeds)")
        sweep[gap] = clip_grid(w, sweep_configs, sweep_seeds, args)
    return grid, sweep


def render_clip(report, output_dir):
    """Write ``quality.md`` (and ``quality.png`` when there is a sweep) from a report dict (``quality.json``'s
    content); returns the markdown lines. ``--render`` calls it on a saved json, so the tables can be redrawn
    without rerunning."""
    args, grid = report["args"], report["grid"]
    sweep = {float(k): v for k, v in report["sweep"].items()}
    text = [
        "# Quality: what each regularizer buys (tiny CLIP two-tower on the embedded demo world)",
        "",
        f"Machine: {machine_description(report['machine'])}.",
        "",
        f"Command: `{report['command']}`; {report['minutes']:.1f} min.",
        "",
        f"Each run: tiny `clip_latent` trained {args['steps']} steps at batch {args['batch_size']} (AdamW, lr 1e-3, "
        "cosine) on 400 images x 3 captions of the demo world; tested on its 50 test images x 3 captions. Mean ± "
        f"standard deviation over seeds {args['seeds']}. Geometric consistency's weight is at batch "
        f"{args['batch_size']} (its 1/N double sum grows linearly with the batch). `[z,+]`: `[z, z^i]` for "
        "separation (fs), `[z, c]` for every other row, with `c` an untrained projection head of the same width "
        "(the same-size control); the `control` row is the inmodal model probed on `[z, c]`. Probes: logistic "
        "regression on standardised features, train split -> test split, accuracy % averaged over the active "
        "attributes of the group (image-only and shared from image features, text-only from text features; chance "
        "25-33 %). ZS: zero-shot top-1 on shape (4 classes, prompt \"a {shape}\") and colour (6, \"a {colour} "
        "shape\"). `untrained`: the random initialisation, what the probes get for free.",
        "",
        f"## Main grid (info_gap {args['info_gap']:g})",
        "",
        grid_table(grid),
    ]
    if len(sweep) > 1:
        text += ["", f"## Information-gap sweep (weight {args['sweep_weight']:g}, seeds {args['sweep_seeds']}; "
                     f"info_gap {args['info_gap']:g} uses the main grid's seeds)", "", sweep_table(sweep), "",
                 "![quality sweep](quality.png)"]
        plot_sweep(sweep, os.path.join(output_dir, "quality.png"))
    write_text(os.path.join(output_dir, "quality.md"), text)
    return text


def main(argv=None):
    """Run the ``--frameworks`` parts and write their reports, or only re-render saved ones; returns True."""
    args = parse_args(argv)
    if args.render_albef:
        from benchmarks import quality_albef

        reports = []
        for path in args.render_albef:
            with open(path) as f:
                reports.append(json.load(f))
        print("\n".join(quality_albef.render(reports, os.path.dirname(os.path.abspath(args.render_albef[0])))))
        return True
    if args.render:
        with open(args.render) as f:
            report = json.load(f)
        print("\n".join(render_clip(report, os.path.dirname(os.path.abspath(args.render)))), flush=True)
        return True
    if args.threads:
        torch.set_num_threads(args.threads)
    frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    unknown = set(frameworks) - {"clip", "albef", "blip"}
    if unknown:
        raise SystemExit(f"unknown framework(s) {sorted(unknown)}; choose from clip, albef, blip")
    weights, seeds = _floats(args.weights), _ints(args.seeds)
    if args.quick:
        weights, seeds, args.steps, args.sweep_gaps = weights[-1:], seeds[:1], 5, ""
    started = time.time()
    info = machine_info(args.device)
    if "clip" in frameworks:
        grid, sweep = clip_part(args, weights, seeds)
        report = {"command": command_line(), "args": vars(args), "machine": info, "grid": grid,
                  "sweep": {str(k): v for k, v in sweep.items()}, "minutes": (time.time() - started) / 60}
        write_json(os.path.join(args.output_dir, "quality.json"), report)
        text = render_clip(report, args.output_dir)
        print("\n".join(text[8:]), flush=True)
    for model in ("albef", "blip"):
        if model in frameworks:
            from benchmarks import quality_albef

            quality_albef.run(args, weights, seeds, info, model)
    log(f"done in {(time.time() - started) / 60:.1f} min")
    return True


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
