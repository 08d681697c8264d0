"""What the two classification tasks (``zero_shot_classification``, ``linear_probe``) share: reading their run
config, building their datasets, refusing to train, and writing result files and ``evaluate.txt``."""
import json
import logging
import os

from lavis.common.registry import registry

from lavis_latent.common.run_config import run_value  # noqa: F401  (re-exported: the tasks import it here)
from lavis_latent.datasets.classification import prepare_stock_classification_config
from lavis_latent.regularizers.distributed import world_info
from lavis_latent.tasks.features import wait_for_all_ranks
from lavis_latent.tasks.topk import DEFAULT_TOPK

__all__ = ["ClassificationEvalMixin", "run_value", "list_or_none", "parse_topk"]


def list_or_none(value):
    """A run-config value that may be one item or several, as a list: a str gives ``[value]``, any other
    iterable ``list(value)``; None stays None (unset: the caller falls back to its default)."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    return list(value)


def parse_topk(value):
    """``run.topk`` (a list of k; None: 1, 3, 5) as the sorted list of distinct k, each at least 1."""
    ks = sorted({int(k) for k in (list_or_none(value) or DEFAULT_TOPK)})
    if not ks or ks[0] < 1:
        raise ValueError(f"run.topk must be positive integers, got {value}")
    return ks


class ClassificationEvalMixin:
    """Shared parts of the two tasks: dataset building (with LAVIS's ``imagenet`` made safe), no training, a
    model ``before_evaluation`` hook that tolerates plain ``nn.Module`` s, result files and ``evaluate.txt``."""

    def build_datasets(self, cfg):
        """``{name: {split: dataset}}`` as LAVIS builds them (LAVIS's ``imagenet`` config checked and its storage
        made absolute first); kept on the task as ``self.datasets`` for the linear probe."""
        datasets_config = cfg.datasets_cfg
        if not datasets_config:
            raise ValueError("no datasets configured: add e.g. datasets: {digits: {}}")
        datasets = {}
        for name in datasets_config:
            prepare_stock_classification_config(name, datasets_config[name])
            builder_cls = registry.get_builder_class(name)
            if builder_cls is None:
                raise ValueError(f"unknown dataset builder {name!r}")
            datasets[name] = builder_cls(datasets_config[name]).build_datasets()
        self.datasets = datasets
        return datasets

    def before_evaluation(self, model, dataset, **kwargs):
        """The model's ``before_evaluation`` when it has one (LAVIS models do)."""
        hook = getattr(model, "before_evaluation", None)
        if hook is not None:
            hook(dataset=dataset, task_type=type(self))

    def train_step(self, model, samples):
        """Refuses: these tasks only evaluate frozen models (``RuntimeError`` saying how to evaluate)."""
        raise RuntimeError(f"{type(self).__name__} only evaluates frozen models: set run.evaluate: True (or use "
                           "lavis_latent.evaluate) and leave run.train_splits empty")

    @staticmethod
    def save_rows(rows, result_dir, filename, key="instance_id"):
        """LAVIS's ``save_result`` (per-rank files merged on the main process) with a set-based de-duplication by
        ``key`` (LAVIS's list lookup is quadratic: minutes for ImageNet's 50k images). Returns the merged file."""
        rank, world = world_info()
        rank_file = os.path.join(result_dir, f"{filename}_rank{rank}.json")
        final_file = os.path.join(result_dir, f"{filename}.json")
        with open(rank_file, "w") as f:
            json.dump(rows, f)
        wait_for_all_ranks()
        if rank == 0:
            merged, seen = [], set()
            for r in range(world):
                with open(os.path.join(result_dir, f"{filename}_rank{r}.json")) as f:
                    for row in json.load(f):
                        if row[key] not in seen:
                            seen.add(row[key])
                            merged.append(row)
            with open(final_file, "w") as f:
                json.dump(merged, f)
            logging.info("result file saved to %s", final_file)
        return final_file

    @staticmethod
    def log_metrics(split_name, metrics):
        """Append ``{split: metrics}`` to ``<output_dir>/evaluate.txt`` (as LAVIS's tasks do) and log them."""
        with open(os.path.join(registry.get_path("output_dir"), "evaluate.txt"), "a") as f:
            f.write(json.dumps({split_name: metrics}) + "\n")
        logging.info("%s: %s", split_name, metrics)
