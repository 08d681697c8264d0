"""``python -m lavis_latent.evaluate --cfg-path X.yaml [--plot] [--options k=v ...]``: LAVIS's ``evaluate.py``, for
the plugin.

Same flow as ``lavis_latent.train`` but ends in ``runner.evaluate(skip_reload=True)`` on the config's test splits.
``--plot`` (a task with paired image/text features: ``latent_retrieval``, image-caption pairs, and
``zero_shot_classification``, each image with its class prompt) sets ``run.plot_gap=True``, so each
test split's modality gap is drawn to ``gap_<split>.png`` in the run's output folder; the paths are printed.
"""
import argparse
import sys

from lavis.common.registry import registry

from lavis_latent.common.config_check import ConfigError, check_run_config, load_run_config
from lavis_latent.train import build_run, get_runner_class, parse_args

DESCRIPTION = ("Evaluation. --plot: also draw each test split's modality gap (PCA of the paired image and text "
               "features) to gap_<split>.png in the output folder (tasks with paired features: latent_retrieval, "
               "zero_shot_classification).")


def _split_plot_flag(argv):
    """``(plot, the other arguments)``: ``--plot`` is this entry point's own flag; the rest are LAVIS's."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--plot", action="store_true")
    known, rest = pre.parse_known_args(sys.argv[1:] if argv is None else list(argv))
    return known.plot, rest


def plotting_tasks():
    """The registered task names that can draw the modality gap (``plots_gap``), sorted."""
    return sorted(name for name, cls in registry.mapping["task_name_mapping"].items()
                  if getattr(cls, "plots_gap", False))


def check_plot_task(cfg):
    """Raise ``ConfigError`` unless the config's ``run.task`` has paired features to draw (before anything is
    built)."""
    task = cfg.run.get("task")
    if not getattr(registry.get_task_class(task), "plots_gap", False):
        raise ConfigError(
            f"--plot draws the modality gap of paired image and text features, but run.task {task!r} has none to "
            f"draw; tasks that support it: {', '.join(plotting_tasks())} (e.g. projects/demo/albef_retrieval.yaml). "
            "Run without --plot for this config.")


def main(argv=None):
    """Evaluate the configured model on ``run.test_splits``; returns ``(runner, results by split)``.

    With ``--plot`` the pictures written are printed and kept in ``runner.task.gap_plots``."""
    plot, rest = _split_plot_flag(argv)
    args = parse_args(rest, description=DESCRIPTION)
    if plot:
        args.options = list(args.options or []) + ["run.plot_gap=True"]
        cfg = load_run_config(args.cfg_path, args.options)
        check_run_config(cfg)
        check_plot_task(cfg)
    cfg, job_id, task, datasets, model = build_run(args)
    runner = get_runner_class(cfg)(cfg=cfg, job_id=job_id, task=task, model=model, datasets=datasets)
    results = runner.evaluate(skip_reload=True)
    if plot:
        for path in getattr(runner.task, "gap_plots", ()):
            print(f"modality-gap picture: {path}", flush=True)
    return runner, results


if __name__ == "__main__":
    main()
