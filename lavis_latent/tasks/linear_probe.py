"""``linear_probe``: a logistic-regression probe on frozen image features (the CLIP paper's protocol).

Run config::

    probe_features: image_embeds        # image_embeds (encoder output, CLIP's choice) | image_embeds_proj |
                                        # image_embeds_proj+ind ([z, z^i]; models with separation heads)
    probe_c_grid: [0.001, ..., 1000]    # inverse L2 strength C of LogisticRegression, chosen on validation
    probe_max_iter: 1000
    probe_standardize: true             # z-score features with the fitting set's mean / std
    probe_train_split: train
    probe_val_split: val                # C is chosen there; absent (or evaluated itself): a seeded 20 % of train
    probe_holdout: 0.2
    topk: [1, 3, 5]

For each evaluated split the task extracts frozen features of the train split, the validation split and the
evaluated split (every split with the evaluated split's ``vis_processor``, i.e. without augmentation; sharded across
ranks under ``torchrun``), fits scikit-learn's multinomial ``LogisticRegression`` (lbfgs) for every C of the grid
on train, keeps the C with the best validation top-1 (the smallest such C on ties), refits on the whole train split
when C was chosen on a held-out part of it, and reports the evaluated split's top-k accuracy (percent),
``probe_C`` and ``probe_val_top1``; ``agg_metrics`` = top-1. The datasets come from ``build_datasets`` (kept on the
task); the runner's loader of the evaluated split only tells which dataset and split are being evaluated. The
probe itself is :func:`lavis_latent.tasks.linear_probe_fit.fit_linear_probe`.
"""
import json
import os

from lavis.common.registry import registry
from lavis.tasks.base_task import BaseTask

from lavis_latent.regularizers.distributed import world_info
from lavis_latent.tasks.classification_base import ClassificationEvalMixin, list_or_none, parse_topk, run_value
from lavis_latent.tasks.features import extract_dataset_features, get_vis_processor, parse_probe_features
from lavis_latent.tasks.linear_probe_fit import DEFAULT_C_GRID, fit_linear_probe
from lavis_latent.tasks.topk import DEFAULT_TOPK, headline_accuracy

__all__ = ["LinearProbeTask"]


@registry.register_task("linear_probe")
class LinearProbeTask(ClassificationEvalMixin, BaseTask):
    """Logistic-regression probe on frozen image features (see the module docstring for the run keys)."""

    def __init__(self, probe_features="image_embeds", c_grid=DEFAULT_C_GRID, max_iter=1000, standardize=True,
                 train_split="train", val_split="val", holdout=0.2, topk=DEFAULT_TOPK, seed=0, batch_size=64,
                 num_workers=0):
        super().__init__()
        self.probe_features = str(probe_features)
        self.fields = parse_probe_features(probe_features)
        self.c_grid = [float(c) for c in c_grid]
        self.max_iter = int(max_iter)
        self.standardize = bool(standardize)
        self.train_split, self.val_split = str(train_split), (str(val_split) if val_split else None)
        self.holdout = float(holdout)
        if not 0 < self.holdout < 1:
            raise ValueError(f"run.probe_holdout must be in (0, 1), got {holdout}")
        self.topk = parse_topk(topk)
        self.seed = int(seed)
        self.batch_size, self.num_workers = int(batch_size), int(num_workers)
        self.datasets = {}

    @classmethod
    def setup_task(cls, cfg=None, **kwargs):
        """From a LAVIS ``Config``: ``run.probe_*`` keys, ``run.topk``, ``run.seed``, ``run.batch_size_eval``,
        ``run.num_workers``."""
        run = cfg.run_cfg if cfg is not None else None
        return cls(probe_features=run_value(run, "probe_features", "image_embeds"),
                   c_grid=list_or_none(run_value(run, "probe_c_grid", None)) or DEFAULT_C_GRID,
                   max_iter=run_value(run, "probe_max_iter", 1000),
                   standardize=run_value(run, "probe_standardize", True),
                   train_split=run_value(run, "probe_train_split", "train"),
                   val_split=run_value(run, "probe_val_split", "val"),
                   holdout=run_value(run, "probe_holdout", 0.2), topk=run_value(run, "topk", DEFAULT_TOPK),
                   seed=run_value(run, "seed", 0), batch_size=run_value(run, "batch_size_eval", 64),
                   num_workers=run_value(run, "num_workers", 0))

    def _locate(self, dataset):
        """``(name, split)`` of the built dataset that the runner's loader iterates."""
        for name, splits in self.datasets.items():
            for split, ds in splits.items():
                if ds is dataset:
                    return name, split
        raise ValueError("linear_probe: the evaluated loader's dataset is not one that this task built; build the "
                         "datasets with this task's build_datasets (the runner does)")

    def _probe_splits(self, dataset):
        """``(split, {split: dataset})`` of the evaluated dataset, checked: not the probe's training split, and
        built alongside that training split."""
        name, split = self._locate(dataset)
        splits = self.datasets[name]
        if split == self.train_split:
            raise ValueError(f"linear_probe: split {split!r} is the probe's training split; evaluate a held-out split "
                             "(run.test_splits / valid_splits)")
        if self.train_split not in splits:
            raise ValueError(f"linear_probe needs the {self.train_split!r} split of datasets.{name}: add it to "
                             f"datasets.{name}.build_info.splits (built: {', '.join(splits)})")
        return split, splits

    def evaluation(self, model, data_loader, cuda_enabled=True):
        """Extract features of train, validation and the evaluated split, fit the probe (main process) and return
        ``{"split", "fit": fit_linear_probe result, "targets", "instance_ids", "feature_dim", "num_train"}`` on the
        main process, ``None`` elsewhere."""
        split, splits = self._probe_splits(data_loader.dataset)
        evaluated = splits[split]
        kw = dict(fields=self.fields, batch_size=self.batch_size, num_workers=self.num_workers,
                  vis_processor=get_vis_processor(evaluated))
        x_train, y_train = extract_dataset_features(model, splits[self.train_split], **kw)
        x_val = y_val = None
        if self.val_split and self.val_split in splits and self.val_split != split:
            x_val, y_val = extract_dataset_features(model, splits[self.val_split], **kw)
        x_test, y_test = extract_dataset_features(model, evaluated, **kw)
        if world_info()[0] != 0:
            return None
        fit = fit_linear_probe(x_train, y_train, x_test, y_test, x_val, y_val, c_grid=self.c_grid,
                               max_iter=self.max_iter, standardize=self.standardize, holdout=self.holdout,
                               seed=self.seed, topk=self.topk)
        ids = [evaluated.annotation[i].get("instance_id", i) if hasattr(evaluated, "annotation") else i
               for i in range(len(evaluated))]
        return {"split": split, "fit": fit, "targets": y_test, "instance_ids": ids, "feature_dim": x_train.shape[1],
                "num_train": len(y_train)}

    def after_evaluation(self, val_result, split_name, epoch, **kwargs):
        """Write ``result/<split>_epoch<epoch>.json`` (per-image ranked predictions) and
        ``result/<split>_epoch<epoch>_probe.json`` (C grid scores, chosen C), append the metrics to evaluate.txt and
        return them: ``top1``/``top3``/``top5`` (percent), ``agg_metrics`` = top-1, ``probe_C``, ``probe_val_top1``,
        ``probe_val_from_train`` (1 when C was chosen on a held-out part of train), ``probe_converged``,
        ``feature_dim``, ``num_train``, ``num_samples``."""
        if val_result is None or world_info()[0] != 0:
            return None
        fit = val_result["fit"]
        result_dir = registry.get_path("result_dir")
        rows = [{"instance_id": iid, "target": int(t), "prediction": int(p[0]), "topk": [int(c) for c in p]}
                for iid, t, p in zip(val_result["instance_ids"], val_result["targets"], fit["predictions"])]
        with open(os.path.join(result_dir, f"{split_name}_epoch{epoch}.json"), "w") as f:
            json.dump(rows, f)
        metrics = {f"top{k}": v for k, v in fit["top"].items()}
        metrics.update({
            "agg_metrics": headline_accuracy(fit["top"]),
            "probe_C": fit["C"], "probe_val_top1": fit["val_top1"],
            "probe_val_from_train": int(fit["val_source"] == "train_holdout"),
            "probe_converged": int(fit["converged"]), "feature_dim": int(val_result["feature_dim"]),
            "num_train": int(val_result["num_train"]), "num_samples": len(rows),
        })
        with open(os.path.join(result_dir, f"{split_name}_epoch{epoch}_probe.json"), "w") as f:
            json.dump({"probe_features": self.probe_features, "val_source": fit["val_source"],
                       "val_top1_by_C": {repr(c): v for c, v in fit["val_top1_by_C"].items()},
                       "metrics": metrics}, f, indent=1)
        self.log_metrics(split_name, metrics)
        return metrics
