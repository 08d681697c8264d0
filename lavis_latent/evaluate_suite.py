"""``python -m lavis_latent.evaluate_suite``: a checkpoint on a whole evaluation suite of the paper, one row per
checkpoint in a paper-style table (markdown and json).

    python -m lavis_latent.evaluate_suite --suite shifts --checkpoints clip=<ckpt> gc=<ckpt> --output-dir D
    python -m lavis_latent.evaluate_suite --suite probes --checkpoints fs=<ckpt> --output-dir D
    python -m lavis_latent.evaluate_suite --suite dtd svhn imagenet_a --checkpoints fs=<ckpt> --output-dir D

Suites: ``shifts`` (the paper's Table 2: zero-shot top-1/3/5 on ImageNet-V2, -Sketch, -A, -R; the configs
``projects/clip/zs_<dataset>.yaml``) and ``probes`` (Table 3: linear-probe top-1 on CyCLIP's 14 datasets;
``projects/clip/linprobe_<dataset>.yaml``); ``--suite`` also takes dataset names, in any mix. Each
(checkpoint, dataset) is one ``lavis_latent.evaluate`` run (its output under ``D/runs/<name>/<config>/``) with
``model.finetuned=<ckpt>``; ``--options`` are passed to every run (e.g. ``run.batch_size_eval=128``,
``run.probe_features=image_embeds_proj+ind``; an option ``datasets.<name>.*`` only to the runs of that dataset, e.g.
``datasets.imagenet.build_info.images.storage=/data/imagenet``), ``--image-size`` sets every dataset's
processors, ``--prompts ensemble`` uses CLIP's 80 ImageNet prompts for the shifts (default: the configs' single
prompt). ``--config-dir`` takes another folder of such configs (LAVIS picks a model's default yaml from the config's
``model.model_type``, not from ``--options model.model_type=...``: another model type needs its own configs).

Before any model is built, every dataset of the run is checked (a missing or incomplete dataset stops the command
with one error naming each path looked for, the config key that sets it and where the data comes from), and every
checkpoint file must exist. The tables ``D/shifts.{md,json}`` and ``D/probes.{md,json}`` are merged with what is
already there: a checkpoint's row is updated dataset by dataset, other rows are kept, so several variants' rows sit
side by side as in the paper (rows in the order they were first added).
"""
import argparse
import json
import os
import sys
from argparse import Namespace

from lavis.common.registry import registry

import lavis_latent  # noqa: F401  (registers the plugin)
from lavis_latent.common.config_check import check_run_config, load_run_config
from lavis_latent.common.console import run_quietly

__all__ = ["SUITES", "SHIFT_COLUMNS", "PROBE_COLUMNS", "resolve_datasets", "check_suite_data", "merge_results",
           "render_markdown", "main"]

#: Table 2 (dataset, column label), the paper's order
SHIFT_COLUMNS = (("imagenet_v2", "INV2"), ("imagenet_sketch", "Sketch"), ("imagenet_a", "IN-A"),
                 ("imagenet_r", "IN-R"))
#: Table 3 (dataset, column label), the paper's order
PROBE_COLUMNS = (("caltech101", "Caltech101"), ("svhn", "SVHN"), ("stl10", "STL10"), ("cifar10", "CIFAR10"),
                 ("cifar100", "CIFAR100"), ("dtd", "DTD"), ("fgvc_aircraft", "FGVCAircraft"),
                 ("oxford_pets", "OxfordPets"), ("rendered_sst2", "SST2"), ("food101", "Food101"),
                 ("gtsrb", "GTSRB"), ("stanford_cars", "StanfordCars"), ("flowers102", "Flowers102"),
                 ("imagenet", "ImageNet1K"))
SUITES = {"shifts": [d for d, _ in SHIFT_COLUMNS], "probes": [d for d, _ in PROBE_COLUMNS]}
#: the config of each suite's datasets, under the configs folder
CONFIG_NAME = {"shifts": "zs_{}.yaml", "probes": "linprobe_{}.yaml"}
SHIFT_TOPK = (1, 3, 5)
DEFAULT_CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "projects", "clip")


class SuiteError(Exception):
    """A suite run that cannot start (unknown dataset, missing checkpoint or data); the message says what to do."""


def resolve_datasets(names):
    """``{suite: [datasets]}`` from suite and dataset names (each dataset once, in its table's order)."""
    wanted = set()
    for name in names:
        for part in str(name).split(","):
            part = part.strip()
            if not part:
                continue
            if part in SUITES:
                wanted.update(SUITES[part])
            elif any(part in ds for ds in SUITES.values()):
                wanted.add(part)
            else:
                raise SuiteError(f"--suite {part!r}: not a suite ({', '.join(SUITES)}) nor one of their datasets "
                                 f"({', '.join(d for ds in SUITES.values() for d in ds)})")
    out = {suite: [d for d in ds if d in wanted] for suite, ds in SUITES.items()}
    return {k: v for k, v in out.items() if v}


def parse_checkpoints(items):
    """``name=path`` items -> ``{name: absolute path}`` (each file must exist)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise SuiteError(f"--checkpoints takes name=path items, got {item!r}")
        name, path = item.split("=", 1)
        if not name or name in out:
            raise SuiteError(f"--checkpoints: empty or repeated name in {item!r}")
        path = os.path.abspath(os.path.expanduser(path))
        if not os.path.isfile(path):
            raise SuiteError(f"--checkpoints {name}: checkpoint file {path} not found")
        out[name] = path
    return out


def run_options(suite, dataset, args):
    """The ``--options`` of one run besides the checkpoint and output folder."""
    opts = []
    if args.image_size:
        opts += [f"datasets.{dataset}.vis_processor.{w}.image_size={int(args.image_size)}" for w in ("train", "eval")]
    if suite == "shifts" and args.prompts == "ensemble":
        opts.append("run.prompt_set=imagenet1k")
    return opts + [o for o in (args.options or []) if not o.startswith("datasets.")
                   or o.startswith(f"datasets.{dataset}.")]


def config_file(suite, dataset, config_dir):
    path = os.path.join(config_dir, CONFIG_NAME[suite].format(dataset))
    if not os.path.isfile(path):
        raise SuiteError(f"config {path} not found (--config-dir; python projects/generate.py writes them)")
    return path


def check_suite_data(plan, args):
    """Check every dataset of ``plan`` (``{suite: [datasets]}``) as its builder will read it, before any model is
    built; raises :class:`SuiteError` listing every problem (path, config key, where the data comes from)."""
    from lavis.common.config import Config

    from lavis_latent.datasets.classification import prepare_stock_classification_config

    problems = []
    for suite, datasets in plan.items():
        for dataset in datasets:
            path = config_file(suite, dataset, args.config_dir)
            options = run_options(suite, dataset, args)
            check_run_config(load_run_config(path, options))
            cfg = Config(Namespace(cfg_path=path, options=options))
            for name in cfg.datasets_cfg:
                ds_cfg = cfg.datasets_cfg[name]
                try:
                    prepare_stock_classification_config(name, ds_cfg)
                    builder = registry.get_builder_class(name)(ds_cfg)
                    if hasattr(builder, "check_files"):
                        builder.check_files()
                except (FileNotFoundError, ValueError) as err:
                    problems.append(f"- {dataset} ({os.path.relpath(path)}): {err}")
    if problems:
        raise SuiteError("the suite cannot run, datasets are missing or incomplete (nothing was evaluated):\n"
                         + "\n".join(problems))


def _table_path(output_dir, suite, ext):
    return os.path.join(output_dir, f"{suite}.{ext}")


def load_table(output_dir, suite):
    """The suite's json table in ``output_dir`` (``{"suite", "rows": [{"name", "checkpoint", "results"}]}``), or
    an empty one."""
    path = _table_path(output_dir, suite, "json")
    if os.path.isfile(path):
        with open(path) as f:
            return json.load(f)
    return {"suite": suite, "rows": []}


def merge_results(table, name, checkpoint, results):
    """Put ``results`` (``{dataset: metrics}``) into the row ``name`` (created at the end when new; its other
    datasets kept); returns the table."""
    for row in table["rows"]:
        if row["name"] == name:
            row["checkpoint"] = checkpoint
            row["results"].update(results)
            break
    else:
        table["rows"].append({"name": name, "checkpoint": checkpoint, "results": dict(results)})
    return table


def _cell(metrics, key):
    value = (metrics or {}).get(key)
    return "-" if value is None else f"{float(value):.2f}"


def render_markdown(table):
    """The paper-style markdown table of a suite: Table 2 (top-1/3/5 per shift) or Table 3 (top-1 per dataset and
    the average over the 14, shown once a row has all of them)."""
    suite = table["suite"]
    if suite == "shifts":
        header = ["Method"] + [f"{label} T{k}" if k == 1 else f"T{k}" for _, label in SHIFT_COLUMNS for k in SHIFT_TOPK]
        title = "Zero-shot top-k (%) on natural distribution shifts (the paper's Table 2)"
    else:
        header = ["Method"] + [label for _, label in PROBE_COLUMNS] + ["Avg"]
        title = "Linear-probe top-1 (%) (the paper's Table 3)"
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table["rows"]:
        res = row["results"]
        if suite == "shifts":
            cells = [_cell(res.get(d), f"top{k}") for d, _ in SHIFT_COLUMNS for k in SHIFT_TOPK]
        else:
            cells = [_cell(res.get(d), "top1") for d, _ in PROBE_COLUMNS]
            tops = [res[d]["top1"] for d, _ in PROBE_COLUMNS if d in res]
            cells.append(f"{sum(tops) / len(tops):.2f}" if len(tops) == len(PROBE_COLUMNS) else "-")
        lines.append("| " + " | ".join([row["name"]] + cells) + " |")
    lines += ["", "Checkpoints: " + "; ".join(f"{r['name']} = {r['checkpoint']}" for r in table["rows"]), ""]
    return "\n".join(lines)


def write_table(output_dir, table):
    """Write ``<suite>.json`` and ``<suite>.md``; returns their paths."""
    os.makedirs(output_dir, exist_ok=True)
    paths = []
    for ext, text in (("json", json.dumps(table, indent=1)), ("md", render_markdown(table))):
        path = _table_path(output_dir, table["suite"], ext)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
        paths.append(path)
    return paths


def _test_split(cfg_path):
    splits = list(load_run_config(cfg_path).run.get("test_splits") or [])
    if len(splits) != 1:
        raise SuiteError(f"{cfg_path}: run.test_splits must name one split, got {splits}")
    return splits[0]


def _keep(metrics):
    return {k: (float(v) if isinstance(v, float) else v) for k, v in metrics.items()
            if isinstance(v, (int, float, str)) and not isinstance(v, bool)}


def evaluate_one(suite, dataset, name, checkpoint, args):
    """One ``lavis_latent.evaluate`` run, with the quiet console (LAVIS's output in the run folder's ``console.log``,
    one progress bar; ``--verbose``: LAVIS's output instead); returns the test split's metrics."""
    cfg_path = config_file(suite, dataset, args.config_dir)
    out = os.path.join(os.path.abspath(args.output_dir), "runs", name, os.path.splitext(os.path.basename(cfg_path))[0])
    options = [f"model.finetuned={checkpoint}", "model.load_finetuned=True", *run_options(suite, dataset, args)]
    _, results = run_quietly("evaluate", cfg_path, out, options, desc=f"{name}: {dataset}", verbose=args.verbose)
    split = _test_split(cfg_path)
    if not results or split not in results or results[split] is None:
        raise RuntimeError(f"{dataset}: the run returned no metrics for split {split!r}")
    return _keep(results[split])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--suite", nargs="+", required=True,
                        help="shifts | probes | dataset names (any mix; commas also separate)")
    parser.add_argument("--checkpoints", nargs="+", required=True, metavar="NAME=PATH",
                        help="one row per checkpoint: its name in the table and its file")
    parser.add_argument("--output-dir", required=True, help="where the tables (and the runs) go; merged on rerun")
    parser.add_argument("--config-dir", default=DEFAULT_CONFIG_DIR,
                        help="the folder of zs_<dataset>.yaml / linprobe_<dataset>.yaml (default: projects/clip)")
    parser.add_argument("--prompts", choices=("single", "ensemble"), default="single",
                        help="shifts: the configs' single prompt, or CLIP's 80 ImageNet prompts")
    parser.add_argument("--image-size", type=int, default=None, help="every dataset's processors' image_size")
    parser.add_argument("--options", nargs="+", default=[], help="key=value overrides for every run")
    parser.add_argument("--verbose", action="store_true",
                        help="LAVIS's console output instead of one progress bar per run")
    return parser.parse_args(argv)


def main(argv=None):
    """Run the suite; returns ``{suite: table}``. Exit status 2 with a message when it cannot start."""
    args = parse_args(argv)
    plan = resolve_datasets(args.suite)
    checkpoints = parse_checkpoints(args.checkpoints)
    check_suite_data(plan, args)
    tables = {}
    for suite, datasets in plan.items():
        table = load_table(args.output_dir, suite)
        for name, ckpt in checkpoints.items():
            for dataset in datasets:
                metrics = evaluate_one(suite, dataset, name, ckpt, args)
                merge_results(table, name, ckpt, {dataset: metrics})
                write_table(args.output_dir, table)  # after every run: an interrupted suite keeps what it did
        tables[suite] = table
        for path in write_table(args.output_dir, table):
            print(f"wrote {path}", flush=True)
    return tables


def _cli():
    try:
        main()
    except SuiteError as err:
        print(f"evaluate_suite: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    _cli()
