"""Zero-shot classification and linear probes on frozen image features (the CLIP paper's two protocols).

Both tasks work with any model that has LAVIS's feature-extractor method
``model.extract_features(samples, mode="image" | "text")`` returning a ``BlipOutputFeatures``-like object:
``clip_latent`` ([N, E] / [N, D] fields) as well as LAVIS's ALBEF / BLIP feature extractors, whose fields are
[N, L, D] token sequences (token 0, the [CLS] token, is used). Datasets: any builder whose datasets return
``{"image", "label", "instance_id"}`` and have ``classnames`` (``cifar10``, ``cifar100``, ``image_folder``,
``digits``, LAVIS's ``imagenet``: see :mod:`lavis_latent.datasets.classification`).

``zero_shot_classification`` (run config)::

    prompt: "a photo of the {}."        # one template ({} = class name); default
    prompts: ["a photo of the {}.", "a drawing of the {}."]   # or an ensemble (wins over prompt)
    topk: [1, 3, 5]                     # reported accuracies (k > number of classes is skipped)
    text_batch_size: 256                # prompts per text forward pass

Each class's text embedding is the mean of the L2-normalised ``text_embeds_proj`` of its prompts, renormalised (as
CLIP's prompt ensembling); each image (``image_embeds_proj``, normalised) goes to the class of highest cosine
similarity. Reports ``top1``/``top3``/``top5`` accuracy in percent per evaluated split, ``agg_metrics`` = top-1;
the per-image predictions go to ``result/<split>_epoch<e>.json`` and the metrics to ``evaluate.txt`` (and, through
the runner, to log.txt as ``<split>_top1`` ...).

``linear_probe`` (run config)::

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
task); the runner's loader of the evaluated split only tells which dataset and split are being evaluated.
"""
import json
import logging
import math
import os
import warnings

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from lavis.common.dist_utils import get_rank, get_world_size, is_dist_avail_and_initialized, is_main_process
from lavis.common.logger import MetricLogger
from lavis.common.registry import registry
from lavis.tasks.base_task import BaseTask
from torch.utils.data import DataLoader, Subset
from torch.utils.data.dataloader import default_collate

from lavis_latent.datasets.classification import prepare_stock_classification_config

DEFAULT_PROMPT = "a photo of the {}."
DEFAULT_TOPK = (1, 3, 5)
DEFAULT_C_GRID = tuple(float(c) for c in np.logspace(-3, 3, 13))  # 1e-3 ... 1e3, half-decade steps
PROBE_FEATURES = ("image_embeds", "image_embeds_proj", "image_embeds_proj+ind")


# ---------------------------------------------------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------------------------------------------------
def _field(features, name):
    value = getattr(features, name, None)
    if value is None and isinstance(features, dict):
        value = features.get(name)
    return value


def pooled(x):
    """A feature field as [N, D]: [N, D] stays, a token sequence [N, L, D] gives token 0 (ALBEF / BLIP [CLS])."""
    if x.dim() == 3:
        return x[:, 0]
    if x.dim() != 2:
        raise ValueError(f"expected features of shape [N, D] or [N, L, D], got {tuple(x.shape)}")
    return x


def model_device(model):
    """The device of the model's first parameter or buffer (CPU for a model with neither)."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def feature_field(model, samples, mode, name):
    """``model.extract_features(samples, mode)``'s field ``name`` as [N, D] (token 0 of [N, L, D]).

    Raises:
        TypeError: the model has no ``extract_features``.
        ValueError: the field is missing or None (the message names the model and the field).
    """
    if not hasattr(model, "extract_features"):
        raise TypeError(f"{type(model).__name__} has no extract_features(samples, mode): zero-shot classification and "
                        "linear probes need a feature extractor (clip_latent, or LAVIS's albef/blip_feature_extractor)")
    features = model.extract_features(samples, mode=mode)
    value = _field(features, name)
    if value is None:
        hint = (" (the separation heads' independent features: only a model with model.latent.separation has "
                "them; use probe_features: image_embeds_proj or image_embeds)") if name.endswith("_ind") else ""
        raise ValueError(f"{type(model).__name__}.extract_features(mode={mode!r}) returned no {name}{hint}")
    return pooled(value)


def parse_probe_features(spec):
    """``probe_features`` -> list of ``extract_features`` field names to concatenate.

    ``"image_embeds"``, ``"image_embeds_proj"``, or ``"+"``-joined names; a short part after the first (``proj``,
    ``ind``) means ``image_embeds_<part>``: ``"image_embeds_proj+ind"`` -> ``["image_embeds_proj",
    "image_embeds_ind"]`` (the paper's [z, z^i]).
    """
    parts = [p.strip() for p in str(spec).split("+") if p.strip()]
    if not parts:
        raise ValueError(f"run.probe_features is empty; use one of {', '.join(PROBE_FEATURES)}")
    names = [parts[0]] + [p if p.startswith("image_") else f"image_embeds_{p}" for p in parts[1:]]
    for n in names:
        if not n.startswith("image_embeds"):
            raise ValueError(f"run.probe_features={spec!r}: {n!r} is not an image feature field "
                             f"(image_embeds, image_embeds_proj, image_embeds_ind); e.g. {', '.join(PROBE_FEATURES)}")
    return names


@torch.no_grad()
def image_features(model, images, fields=("image_embeds_proj",), normalize=False):
    """Image features of a batch: the ``fields`` of ``extract_features(mode="image")`` concatenated, [N, sum D].

    Args:
        model: a model with ``extract_features``.
        images: Tensor [N, 3, H, W] (moved to the model's device).
        fields: feature field names (each [N, D] or [N, L, D] -> token 0).
        normalize: L2-normalise each field before concatenating.
    """
    samples = {"image": images.to(model_device(model))}
    if len(fields) == 1:
        x = feature_field(model, samples, "image", fields[0])
        return F.normalize(x, dim=-1) if normalize else x
    features = model.extract_features(samples, mode="image")
    out = []
    for name in fields:
        value = _field(features, name)
        if value is None:
            feature_field(model, samples, "image", name)  # raises with the explanation
        value = pooled(value)
        out.append(F.normalize(value, dim=-1) if normalize else value)
    return torch.cat(out, dim=-1)


def expand_prompts(classnames, templates):
    """``[template.format(c) for c in classnames for t in templates]`` (class-major), checking the templates."""
    templates = list(templates)
    if not templates:
        raise ValueError("no prompt templates: set run.prompt or run.prompts")
    for t in templates:
        if "{}" not in t:
            raise ValueError(f"prompt template {t!r} has no '{{}}' where the class name goes")
    return [t.format(c) for c in classnames for t in templates]


@torch.no_grad()
def class_text_embeddings(model, classnames, templates=(DEFAULT_PROMPT,), batch_size=256):
    """Zero-shot classifier weights: one L2-normalised text embedding per class, [C, E].

    Each class's prompts (``template.format(classname)`` for every template) are encoded with
    ``extract_features(mode="text")`` (``text_embeds_proj``, token 0 of a sequence), L2-normalised, averaged over
    the templates and renormalised (CLIP's prompt ensembling; a single template is just its normalised embedding).

    Args:
        model: a model with ``extract_features``.
        classnames: list of C class names.
        templates: list of T templates with ``{}``.
        batch_size: prompts per forward pass.
    """
    prompts = expand_prompts(classnames, templates)
    chunks = []
    for start in range(0, len(prompts), batch_size):
        text = prompts[start:start + batch_size]
        z = feature_field(model, {"text_input": text}, "text", "text_embeds_proj").float()
        chunks.append(F.normalize(z, dim=-1))
    z = torch.cat(chunks).view(len(classnames), len(list(templates)), -1)
    return F.normalize(z.mean(dim=1), dim=-1)


def topk_predictions(scores, k):
    """Indices [N, min(k, C)] of the highest scores per row, best first."""
    return scores.topk(min(int(k), scores.size(1)), dim=1).indices


def topk_accuracy(topk_indices, targets, ks=DEFAULT_TOPK):
    """Top-k accuracies in percent from ranked predictions.

    Args:
        topk_indices: int array-like [N, K] of predicted classes, best first (K >= max of the kept ks).
        targets: int array-like [N].
        ks: the k to report; k > K (more than the number of classes) is skipped.

    Returns:
        ``{k: accuracy in percent}``.
    """
    topk_indices = np.asarray(topk_indices)
    targets = np.asarray(targets)
    if len(targets) == 0:
        raise ValueError("no samples to score")
    hits = topk_indices == targets[:, None]
    return {int(k): float(100.0 * hits[:, :k].any(axis=1).mean()) for k in ks if k <= topk_indices.shape[1]}


def dataset_classnames(dataset):
    """``dataset.classnames`` (through wrappers with ``.dataset``), or a ``ValueError`` saying it is needed."""
    d = dataset
    for _ in range(8):
        names = getattr(d, "classnames", None)
        if names:
            return list(names)
        d = getattr(d, "dataset", None)
        if d is None:
            break
    raise ValueError(f"{type(dataset).__name__} has no classnames: zero-shot classification needs a classification "
                     "dataset (cifar10, cifar100, image_folder, digits, imagenet)")


def _set_vis_processor(dataset, proc):
    """Set ``vis_processor`` on the innermost dataset that has one; returns the previous processor (or None)."""
    d = dataset
    for _ in range(8):
        if "vis_processor" in vars(d):
            old = d.vis_processor
            d.vis_processor = proc
            return old
        d = getattr(d, "dataset", None)
        if d is None:
            return None
    return None


def _get_vis_processor(dataset):
    d = dataset
    for _ in range(8):
        if "vis_processor" in vars(d):
            return d.vis_processor
        d = getattr(d, "dataset", None)
        if d is None:
            return None
    return None


def _gather(obj):
    """Every rank's ``obj`` in rank order (a one-element list without a multi-process group)."""
    if not is_dist_avail_and_initialized() or get_world_size() == 1:
        return [obj]
    out = [None] * get_world_size()
    dist.all_gather_object(out, obj)
    return out


@torch.no_grad()
def extract_dataset_features(model, dataset, fields, batch_size=64, num_workers=0, vis_processor=None):
    """Frozen image features and labels of a whole classification dataset, in dataset order.

    Under a multi-process group each rank extracts a strided shard (``rank::world_size``) and the shards are
    gathered, so every rank returns the full arrays.

    Args:
        model: a model with ``extract_features`` (used as is: the caller sets eval mode).
        dataset: items ``{"image": Tensor [3, H, W], "label": int}``; ``collater`` used when present.
        fields: ``extract_features`` field names, concatenated (see :func:`parse_probe_features`).
        batch_size, num_workers: of the plain (unshuffled) DataLoader.
        vis_processor: if given, used instead of the dataset's own during extraction (restored afterwards).

    Returns:
        ``(features float32 [N, D], labels int64 [N])`` numpy arrays.
    """
    rank, world = (get_rank(), get_world_size()) if is_dist_avail_and_initialized() else (0, 1)
    indices = list(range(rank, len(dataset), world))
    collate = getattr(dataset, "collater", None) or default_collate
    old = _set_vis_processor(dataset, vis_processor) if vis_processor is not None else None
    try:
        loader = DataLoader(Subset(dataset, indices), batch_size=batch_size, shuffle=False, num_workers=num_workers,
                            collate_fn=collate)
        feats, labels = [], []
        for samples in loader:
            feats.append(image_features(model, samples["image"], fields).float().cpu())
            labels.append(torch.as_tensor(samples["label"]).long().cpu())
    finally:
        if vis_processor is not None:
            _set_vis_processor(dataset, old)
    x = torch.cat(feats).numpy() if feats else np.zeros((0, 0), np.float32)
    y = torch.cat(labels).numpy() if labels else np.zeros((0,), np.int64)
    shards = _gather((indices, x, y))
    if len(shards) == 1:
        return x, y
    n = len(dataset)
    dim = next(s[1].shape[1] for s in shards if len(s[0]))
    X, Y = np.zeros((n, dim), np.float32), np.zeros((n,), np.int64)
    for idx, xs, ys in shards:
        if len(idx):
            X[idx], Y[idx] = xs, ys
    return X, Y


# ---------------------------------------------------------------------------------------------------------------------
# Linear probe (scikit-learn)
# ---------------------------------------------------------------------------------------------------------------------
def _logistic_regression(C, max_iter, seed, warm_start=False):
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as err:
        raise ImportError("linear_probe needs scikit-learn: pip install 'lavis-latent[probe]'") from err
    # lbfgs fits the multinomial (softmax) model for more than two classes (sklearn's default; multi_class was
    # removed in scikit-learn 1.7)
    return LogisticRegression(C=C, solver="lbfgs", max_iter=max_iter, random_state=seed, warm_start=warm_start)


def _ranked(clf, X, k):
    scores = clf.decision_function(X)
    if scores.ndim == 1:  # two classes: a single margin for classes_[1]
        scores = np.stack([-scores, scores], axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return clf.classes_[order]


def _scaler(X, standardize):
    if not standardize:
        return lambda a: a
    mean, std = X.mean(axis=0), X.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    return lambda a: (a - mean) / std


def fit_linear_probe(x_train, y_train, x_test, y_test, x_val=None, y_val=None, c_grid=DEFAULT_C_GRID,
                     max_iter=1000, standardize=True, holdout=0.2, seed=0, topk=DEFAULT_TOPK):
    """Logistic-regression probe with C chosen on validation data; test top-k accuracy.

    Args:
        x_train, y_train: training features [N, D] and labels [N].
        x_test, y_test: evaluated split [M, D], [M].
        x_val, y_val: validation split; ``None``: a seeded, stratified ``holdout`` fraction of train is held out to
            choose C, then the probe is refit on the whole train split.
        c_grid: candidate inverse regularisation strengths (tried in increasing order, warm-started).
        max_iter: lbfgs iterations per fit.
        standardize: z-score features with the fitting set's mean / std.
        holdout: fraction of train held out when there is no validation split.
        seed: seed of the holdout split (and of the solver).
        topk: reported k (k > number of classes skipped).

    Returns:
        dict: ``C`` (chosen), ``val_top1`` (its validation accuracy, percent), ``val_top1_by_C`` ({C: percent}),
        ``val_source`` (``"val"`` or ``"train_holdout"``), ``top`` ({k: test accuracy percent}), ``predictions``
        (int [M, K] ranked test classes), ``converged`` (False when some fit hit ``max_iter``), ``classifier``.
    """
    from sklearn.exceptions import ConvergenceWarning

    x_train, y_train = np.asarray(x_train, np.float64), np.asarray(y_train)
    x_test, y_test = np.asarray(x_test, np.float64), np.asarray(y_test)
    if len(np.unique(y_train)) < 2:
        raise ValueError("the linear probe needs at least two classes in the train split")
    c_grid = sorted(float(c) for c in c_grid)
    if not c_grid or any(c <= 0 or not math.isfinite(c) for c in c_grid):
        raise ValueError(f"run.probe_c_grid must be positive finite numbers, got {c_grid}")

    if x_val is None:
        from sklearn.model_selection import train_test_split

        _, counts = np.unique(y_train, return_counts=True)
        stratify = y_train if counts.min() >= 2 else None
        fit_x, sel_x, fit_y, sel_y = train_test_split(x_train, y_train, test_size=holdout, random_state=seed,
                                                      stratify=stratify)
        source = "train_holdout"
    else:
        fit_x, fit_y, sel_x, sel_y = x_train, y_train, np.asarray(x_val, np.float64), np.asarray(y_val)
        source = "val"

    converged = True
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        scale = _scaler(fit_x, standardize)
        fx, sx = scale(fit_x), scale(sel_x)
        clf = _logistic_regression(c_grid[0], max_iter, seed, warm_start=True)
        by_c, best = {}, None
        for c in c_grid:
            clf.set_params(C=c)
            clf.fit(fx, fit_y)
            acc = float(100.0 * (clf.predict(sx) == sel_y).mean())
            by_c[c] = acc
            if best is None or acc > by_c[best]:
                best = c
        if source == "train_holdout":  # refit on the whole train split with the chosen C
            scale = _scaler(x_train, standardize)
            clf = _logistic_regression(best, max_iter, seed).fit(scale(x_train), y_train)
        else:
            clf = _logistic_regression(best, max_iter, seed).fit(fx, fit_y)
        converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    if not converged:
        logging.warning("linear probe: lbfgs did not converge in %d iterations for some C (raise run.probe_max_iter, "
                        "or keep run.probe_standardize: true)", max_iter)
    kmax = min(max(topk), len(clf.classes_))
    ranked = _ranked(clf, scale(x_test), kmax)
    return {"C": best, "val_top1": by_c[best], "val_top1_by_C": by_c, "val_source": source,
            "top": topk_accuracy(ranked, y_test, topk), "predictions": ranked, "converged": converged,
            "classifier": clf}


# ---------------------------------------------------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------------------------------------------------
def _run_get(run_cfg, key, default):
    value = run_cfg.get(key, default) if run_cfg is not None and hasattr(run_cfg, "get") else default
    return default if value is None else value


def _as_list(value):
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    return list(value)


def _parse_topk(value):
    ks = sorted({int(k) for k in (_as_list(value) or DEFAULT_TOPK)})
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
        raise RuntimeError(f"{type(self).__name__} only evaluates frozen models: set run.evaluate: True (or use "
                           "lavis_latent.evaluate) and leave run.train_splits empty")

    @staticmethod
    def save_rows(rows, result_dir, filename, key="instance_id"):
        """LAVIS's ``save_result`` (per-rank files merged on the main process) with a set-based de-duplication by
        ``key`` (LAVIS's list lookup is quadratic: minutes for ImageNet's 50k images). Returns the merged file."""
        rank_file = os.path.join(result_dir, f"{filename}_rank{get_rank()}.json")
        final_file = os.path.join(result_dir, f"{filename}.json")
        with open(rank_file, "w") as f:
            json.dump(rows, f)
        if is_dist_avail_and_initialized():
            dist.barrier()
        if is_main_process():
            merged, seen = [], set()
            for r in range(get_world_size()):
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


@registry.register_task("zero_shot_classification")
class ZeroShotClassificationTask(ClassificationEvalMixin, BaseTask):
    """Zero-shot image classification from class-name prompts (see the module docstring for the run keys)."""

    def __init__(self, templates=(DEFAULT_PROMPT,), topk=DEFAULT_TOPK, text_batch_size=256):
        super().__init__()
        self.templates = list(templates)
        expand_prompts(["x"], self.templates)  # validates the templates
        self.topk = _parse_topk(topk)
        self.text_batch_size = int(text_batch_size)
        self.datasets = {}
        self.num_classes = None

    @classmethod
    def setup_task(cls, cfg=None, **kwargs):
        """From a LAVIS ``Config``: ``run.prompts`` (list) or ``run.prompt`` (str), ``run.topk``,
        ``run.text_batch_size``."""
        run = cfg.run_cfg if cfg is not None else None
        templates = _as_list(_run_get(run, "prompts", None)) or [str(_run_get(run, "prompt", DEFAULT_PROMPT))]
        return cls(templates=templates, topk=_run_get(run, "topk", DEFAULT_TOPK),
                   text_batch_size=_run_get(run, "text_batch_size", 256))

    def evaluation(self, model, data_loader, cuda_enabled=True):
        """Rank every image of the loader's dataset against the class prompts.

        Returns a list of ``{"instance_id", "target", "prediction", "topk": [classes, best first]}`` (this rank's
        samples; merged in ``after_evaluation``).
        """
        classnames = dataset_classnames(data_loader.dataset)
        self.num_classes = len(classnames)
        device = model_device(model)
        class_embeds = class_text_embeddings(model, classnames, self.templates, self.text_batch_size).to(device)
        kmax = min(max(self.topk), len(classnames))
        metric_logger = MetricLogger(delimiter="  ")
        results, counter = [], 0
        with torch.no_grad():
            for samples in metric_logger.log_every(data_loader, 10, "Zero-shot"):
                z = image_features(model, samples["image"], ("image_embeds_proj",), normalize=True).float()
                top = topk_predictions(z @ class_embeds.t(), kmax).cpu().tolist()
                targets = torch.as_tensor(samples["label"]).tolist()
                ids = samples.get("instance_id")
                if ids is None:
                    ids = list(range(counter, counter + len(targets)))
                counter += len(targets)
                for iid, tgt, ranked in zip(ids, targets, top):
                    iid = iid.item() if torch.is_tensor(iid) else iid
                    results.append({"instance_id": iid, "target": int(tgt), "prediction": int(ranked[0]),
                                    "topk": [int(c) for c in ranked]})
        if is_dist_avail_and_initialized():
            dist.barrier()
        return results

    def after_evaluation(self, val_result, split_name, epoch, **kwargs):
        """Merge the ranks' predictions into ``result/<split>_epoch<epoch>.json`` and return the metrics (main
        process; ``None`` elsewhere): ``top1``/``top3``/``top5`` (percent), ``agg_metrics`` = top-1,
        ``num_samples``, ``num_classes``."""
        result_file = self.save_rows(val_result, registry.get_path("result_dir"), f"{split_name}_epoch{epoch}")
        if not is_main_process():
            return None
        with open(result_file) as f:
            rows = json.load(f)
        width = max(len(r["topk"]) for r in rows)
        ranked = np.array([r["topk"] + [-1] * (width - len(r["topk"])) for r in rows])
        acc = topk_accuracy(ranked, [r["target"] for r in rows], self.topk)
        metrics = {f"top{k}": v for k, v in acc.items()}
        metrics.update({"agg_metrics": acc[1] if 1 in acc else acc[min(acc)], "num_samples": len(rows),
                        "num_classes": self.num_classes})
        self.log_metrics(split_name, metrics)
        return metrics


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
        self.topk = _parse_topk(topk)
        self.seed = int(seed)
        self.batch_size, self.num_workers = int(batch_size), int(num_workers)
        self.datasets = {}

    @classmethod
    def setup_task(cls, cfg=None, **kwargs):
        """From a LAVIS ``Config``: ``run.probe_*`` keys, ``run.topk``, ``run.seed``, ``run.batch_size_eval``,
        ``run.num_workers``."""
        run = cfg.run_cfg if cfg is not None else None
        return cls(probe_features=_run_get(run, "probe_features", "image_embeds"),
                   c_grid=_as_list(_run_get(run, "probe_c_grid", None)) or DEFAULT_C_GRID,
                   max_iter=_run_get(run, "probe_max_iter", 1000),
                   standardize=_run_get(run, "probe_standardize", True),
                   train_split=_run_get(run, "probe_train_split", "train"),
                   val_split=_run_get(run, "probe_val_split", "val"),
                   holdout=_run_get(run, "probe_holdout", 0.2), topk=_run_get(run, "topk", DEFAULT_TOPK),
                   seed=_run_get(run, "seed", 0), batch_size=_run_get(run, "batch_size_eval", 64),
                   num_workers=_run_get(run, "num_workers", 0))

    def _locate(self, dataset):
        """``(name, split)`` of the built dataset that the runner's loader iterates."""
        for name, splits in self.datasets.items():
            for split, ds in splits.items():
                if ds is dataset:
                    return name, split
        raise ValueError("linear_probe: the evaluated loader's dataset is not one that this task built; build the "
                         "datasets with this task's build_datasets (the runner does)")

    def evaluation(self, model, data_loader, cuda_enabled=True):
        """Extract features of train, validation and the evaluated split, fit the probe (main process) and return
        ``{"split", "fit": fit_linear_probe result, "targets", "instance_ids", "feature_dim", "num_train"}`` on the
        main process, ``None`` elsewhere."""
        name, split = self._locate(data_loader.dataset)
        splits = self.datasets[name]
        if split == self.train_split:
            raise ValueError(f"linear_probe: split {split!r} is the probe's training split; evaluate a held-out split "
                             "(run.test_splits / valid_splits)")
        if self.train_split not in splits:
            raise ValueError(f"linear_probe needs the {self.train_split!r} split of datasets.{name}: add it to "
                             f"datasets.{name}.build_info.splits (built: {', '.join(splits)})")
        evaluated = splits[split]
        proc = _get_vis_processor(evaluated)
        kw = dict(fields=self.fields, batch_size=self.batch_size, num_workers=self.num_workers, vis_processor=proc)
        x_train, y_train = extract_dataset_features(model, splits[self.train_split], **kw)
        x_val = y_val = None
        if self.val_split and self.val_split in splits and self.val_split != split:
            x_val, y_val = extract_dataset_features(model, splits[self.val_split], **kw)
        x_test, y_test = extract_dataset_features(model, evaluated, **kw)
        if not is_main_process():
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
        if val_result is None or not is_main_process():
            return None
        fit = val_result["fit"]
        result_dir = registry.get_path("result_dir")
        rows = [{"instance_id": iid, "target": int(t), "prediction": int(p[0]), "topk": [int(c) for c in p]}
                for iid, t, p in zip(val_result["instance_ids"], val_result["targets"], fit["predictions"])]
        with open(os.path.join(result_dir, f"{split_name}_epoch{epoch}.json"), "w") as f:
            json.dump(rows, f)
        metrics = {f"top{k}": v for k, v in fit["top"].items()}
        metrics.update({
            "agg_metrics": fit["top"][1] if 1 in fit["top"] else fit["top"][min(fit["top"])],
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
