"""ALBEF and BLIP parts of ``benchmarks.quality``: the demo pipeline (LAVIS's runner, ``projects/demo``) per model
and seed (``--frameworks albef`` / ``blip``; BLIP: retrieval only).

Rows: ``baseline`` (ALBEF as LAVIS has it), ``inmodal`` (ALBEF + the in-modal V2V/T2T terms, the paper's base
loss up to a factor, see ``LatentStructure``) and ``fs`` / ``bb`` / ``gc`` at each weight on top of the demo's
variant configs (``latent.<name>.weight`` overridden; the in-modal term is not added to them, as in the demo). Each
run pretrains on the embedded data and fine-tunes each task from the pretraining checkpoint, as ``lavis_latent.demo``
does; the seed is ``run.seed``.
"""
import os
import time

from benchmarks.common import command_line, log, machine_description, markdown_table, write_json, write_text
from benchmarks.quality_common import METHODS, cell
from lavis_latent import demo

TASK_KEYS = {"retrieval": [("txt_r1", "txt R@1"), ("img_r1", "img R@1"), ("gap_centroid_distance", "gap centroid")],
             "vqa": [("vqa", "VQA acc")], "nlvr": [("nlvr", "NLVR2 acc")], "snli_ve": [("snli_ve", "SNLI-VE acc")]}


def albef_configs(weights):
    """``[(row name, demo variant, extra --options)]``."""
    rows = [("baseline", "baseline", []), ("inmodal", "inmodal", [])]
    for short, name in METHODS.items():
        for w in weights:
            rows.append((f"{short} w={w:g}", short, [f"model.latent.{name}.weight={w}"]))
    return rows


def one_run(name, variant, options, seed, tasks, out_root, verbose=False, model="albef"):
    """Pretrain + fine-tune one row for one seed with the demo's configs of ``model``; returns the flat metrics."""
    out = os.path.join(out_root, name.replace(" ", "_").replace("=", ""), f"seed{seed}")
    started = time.time()
    row = demo.run_variant(variant, demo.DEFAULT_PROJECTS, out, [*options, f"run.seed={seed}"], tasks=tasks,
                           verbose=verbose, model=model)
    res = {"seed": seed, "seconds": time.time() - started}
    res.update({k: row["test"].get(k, float("nan")) for k in ("txt_r1", "img_r1", "gap_centroid_distance")})
    for task in tasks:
        if task != "retrieval":
            res[task] = demo.task_accuracy(task, row["downstream"][task]["test"])
    log(f"{model.upper()} {name:10s} seed {seed}: " + " ".join(f"{k}={v:.2f}" for k, v in res.items() if k not in ("seed",)))
    return res


def run(args, weights, seeds, info, model="albef"):
    """Run the grid of ``model`` (``albef`` or ``blip``) and write ``quality_<model>.md`` / ``.json`` (with
    ``--albef-tag T``: ``quality_<model>_T.*``, one part of a grid split across processes; merge with
    ``--render-albef``)."""
    tasks = demo.parse_tasks(args.albef_tasks)
    if model != "albef" and tasks != ["retrieval"]:
        raise SystemExit(f"--albef-tasks {args.albef_tasks}: {model} runs retrieval only")
    out_root = os.path.abspath(os.path.join("output", "benchmarks", f"quality_{model}"))
    started = time.time()
    results = {}
    for name, variant, options in albef_configs(weights):
        for seed in seeds:
            row = one_run(name, variant, options, seed, tasks, out_root, args.verbose, model)
            results.setdefault(name, []).append(row)
    report = {"command": command_line(), "args": vars(args), "machine": info, "tasks": tasks, "results": results,
              "minutes": (time.time() - started) / 60, "model": model}
    stem = f"quality_{model}" + (f"_{args.albef_tag}" if args.albef_tag else "")
    write_json(os.path.join(args.output_dir, stem + ".json"), report)
    lines = render([report], args.output_dir, stem)
    print("\n".join(lines), flush=True)
    return results


def render(reports, output_dir, stem="quality_albef"):
    """Write ``<stem>.md`` from one or more reports (parts of one grid run side by side: their runs are pooled
    per row) and return the markdown lines."""
    tasks = reports[0]["tasks"]
    results = {}
    for rep in reports:
        for name, runs in rep["results"].items():
            results.setdefault(name, []).extend(runs)
    keys = [kt for t in tasks for kt in TASK_KEYS[t]]
    lines = markdown_table(["model", "runs"] + [t for _, t in keys],
                           [[name, len(runs)] + [cell(runs, key) for key, _ in keys] for name, runs in results.items()])
    seeds = sorted({r["seed"] for runs in results.values() for r in runs})
    commands = "; ".join(f"`{rep['command']}` ({rep['minutes']:.1f} min)" for rep in reports)
    model = reports[0].get("model", "albef").upper()
    text = [f"# Quality: tiny {model} on the embedded demo world (LAVIS runner, demo configs)", "",
            f"Machine: {machine_description(reports[0]['machine'])}.", "",
            f"Command{'s, run side by side' if len(reports) > 1 else ''}: {commands}.", "",
            f"Seeds {', '.join(map(str, seeds))}; tasks {', '.join(tasks)}; each run pretrains 8 epochs on 400 images "
            "(batch 16) with the demo's pretraining config of its variant and fine-tunes each task from that "
            "checkpoint (projects/demo/*.yaml; `inmodal` = the baseline configs with `latent.inmodal.weight: 1`). "
            "Mean ± standard deviation over seeds. Retrieval: 50 test images x 3 captions (chance R@1 2 %).",
            "", *lines]
    write_text(os.path.join(output_dir, stem + ".md"), text)
    return lines
