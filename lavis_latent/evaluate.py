"""``python -m lavis_latent.evaluate --cfg-path X.yaml [--options k=v ...]``: LAVIS's ``evaluate.py``, for the plugin.

Same flow as ``lavis_latent.train`` but ends in ``runner.evaluate(skip_reload=True)`` on the config's test splits.
"""
from lavis_latent.train import build_run, get_runner_class, parse_args


def main(argv=None):
    """Evaluate the configured model on ``run.test_splits``; returns ``(runner, results by split)``."""
    cfg, job_id, task, datasets, model = build_run(parse_args(argv, description="Evaluation"))
    runner = get_runner_class(cfg)(cfg=cfg, job_id=job_id, task=task, model=model, datasets=datasets)
    return runner, runner.evaluate(skip_reload=True)


if __name__ == "__main__":
    main()
