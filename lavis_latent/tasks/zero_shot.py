"""``zero_shot_classification``: zero-shot image classification from class-name prompts (the CLIP paper's protocol).

Run config::

    prompt: "a photo of the {}."        # one template ({} = class name); default
    prompts: ["a photo of the {}.", "a drawing of the {}."]   # or an ensemble (wins over prompt)
    prompt_set: imagenet1k              # or CLIP's templates of a dataset by name (imagenet1k: the 80 ImageNet
                                        # prompts; cifar10, food101, cars, ...: see eval_datasets.clip_templates);
                                        # wins over prompt, loses to prompts
    topk: [1, 3, 5]                     # reported accuracies (k > number of classes is skipped)
    text_batch_size: 256                # prompts per text forward pass
    plot_gap: False                     # also draw gap_<split>.png (below)

Each class's text embedding is the mean of the L2-normalised ``text_embeds_proj`` of its prompts, renormalised (as
CLIP's prompt ensembling); each image (``image_embeds_proj``, normalised) goes to the class of highest cosine
similarity. A dataset with ``class_subset`` (ImageNet-A / -R: the ImageNet indices of their 200 classes; labels
stay ImageNet indices) is scored on those classes only: the logits are restricted to the subset (only the subset's
class embeddings are computed, which gives the same ranking as masking the other logits) and predictions are
reported as ImageNet indices. Reports ``top1``/``top3``/``top5`` accuracy in percent per evaluated split,
``agg_metrics`` = top-1; the per-image predictions go to ``result/<split>_epoch<e>.json`` and the metrics to
``evaluate.txt`` (and, through the runner, to log.txt as ``<split>_top1`` ...). Models and datasets: see
:mod:`lavis_latent.tasks.classification`.

In a single process the metrics also carry the modality gap between each image and the class embedding of its true
label (``gap_*``: :func:`lavis_latent.metrics.modality_gap` on the pairs ``(z_v_i, w_{y_i})``, normalised
features), the zero-shot counterpart of the retrieval task's image-caption gap; with ``run.plot_gap: True`` it is
drawn to ``gap_<split>.png`` in the run's output folder. Under ``torchrun`` the gap is not computed (each rank holds
only its share of the features) and a line in the log says so.
"""
import json
import logging

import numpy as np
import torch
import torch.nn.functional as F
from lavis.common.logger import MetricLogger
from lavis.common.registry import registry
from lavis.tasks.base_task import BaseTask

from lavis_latent.metrics import modality_gap
from lavis_latent.regularizers.distributed import world_info
from lavis_latent.tasks.classification_base import ClassificationEvalMixin, list_or_none, parse_topk, run_value
from lavis_latent.tasks.features import feature_field, image_features, model_device, wait_for_all_ranks
from lavis_latent.tasks.gap_pictures import GapPictureMixin
from lavis_latent.tasks.topk import DEFAULT_TOPK, headline_accuracy, topk_accuracy, topk_predictions

__all__ = ["ZeroShotClassificationTask", "DEFAULT_PROMPT", "expand_prompts", "class_text_embeddings",
           "dataset_classnames", "dataset_class_subset"]

DEFAULT_PROMPT = "a photo of the {}."


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


def dataset_class_subset(dataset):
    """``dataset.class_subset`` (through wrappers with ``.dataset``): the label indices the zero-shot logits are
    restricted to, or None (all classes)."""
    d = dataset
    for _ in range(8):
        if getattr(d, "class_subset", None) is not None:
            return [int(i) for i in d.class_subset]
        d = getattr(d, "dataset", None)
        if d is None:
            break
    return None


def _prediction_rows(samples, top, first_id):
    """Result rows ``{"instance_id", "target", "prediction", "topk"}`` of one batch; ``top``: ranked classes per
    image; images without ``instance_id`` are numbered from ``first_id``."""
    targets = torch.as_tensor(samples["label"]).tolist()
    ids = samples.get("instance_id")
    if ids is None:
        ids = list(range(first_id, first_id + len(targets)))
    rows = []
    for iid, tgt, ranked in zip(ids, targets, top):
        iid = iid.item() if torch.is_tensor(iid) else iid
        rows.append({"instance_id": iid, "target": int(tgt), "prediction": int(ranked[0]),
                     "topk": [int(c) for c in ranked]})
    return rows


@registry.register_task("zero_shot_classification")
class ZeroShotClassificationTask(GapPictureMixin, ClassificationEvalMixin, BaseTask):
    """Zero-shot image classification from class-name prompts (see the module docstring for the run keys)."""


    def __init__(self, templates=(DEFAULT_PROMPT,), topk=DEFAULT_TOPK, text_batch_size=256, plot_gap=False):
        super().__init__()
        self.plot_gap = bool(plot_gap)
        self._gap_pairs = None
        self.templates = list(templates)
        expand_prompts(["x"], self.templates)  # validates the templates
        self.topk = parse_topk(topk)
        self.text_batch_size = int(text_batch_size)
        self.datasets = {}
        self.num_classes = None

    @classmethod
    def setup_task(cls, cfg=None, **kwargs):
        """From a LAVIS ``Config``: ``run.prompts`` (list), ``run.prompt_set`` or ``run.prompt`` (str), ``run.topk``,
        ``run.text_batch_size``, ``run.plot_gap``."""
        run = cfg.run_cfg if cfg is not None else None
        templates = list_or_none(run_value(run, "prompts", None))
        if not templates and run_value(run, "prompt_set", None):
            from lavis_latent.datasets.eval_datasets import clip_templates

            templates = clip_templates(str(run_value(run, "prompt_set", None)))
        templates = templates or [str(run_value(run, "prompt", DEFAULT_PROMPT))]
        return cls(templates=templates, topk=run_value(run, "topk", DEFAULT_TOPK),
                   text_batch_size=run_value(run, "text_batch_size", 256), plot_gap=run_value(run, "plot_gap", False))

    def evaluation(self, model, data_loader, cuda_enabled=True):
        """Rank every image of the loader's dataset against the class prompts.

        Returns a list of ``{"instance_id", "target", "prediction", "topk": [classes, best first]}`` (this rank's
        samples; merged in ``after_evaluation``).
        """
        classnames = dataset_classnames(data_loader.dataset)
        subset = dataset_class_subset(data_loader.dataset)
        if subset is not None:
            bad = [i for i in subset if not 0 <= i < len(classnames)]
            if bad or len(set(subset)) != len(subset):
                raise ValueError(f"class_subset {subset[:10]} ... is not a set of class indices < {len(classnames)}")
            classnames = [classnames[i] for i in subset]
        self.num_classes = len(classnames)
        device = model_device(model)
        class_embeds = class_text_embeddings(model, classnames, self.templates, self.text_batch_size).to(device)
        kmax = min(max(self.topk), len(classnames))
        # subset position -> full label index, and full label index -> subset position (-1: outside the subset)
        to_full = torch.as_tensor(subset if subset is not None else range(len(classnames)), dtype=torch.long)
        to_pos = torch.full((int(to_full.max()) + 1,), -1, dtype=torch.long)
        to_pos[to_full] = torch.arange(len(to_full))
        metric_logger = MetricLogger(delimiter="  ")
        results, counter, pairs = [], 0, []
        with torch.no_grad():
            for samples in metric_logger.log_every(data_loader, 10, "Zero-shot"):
                z = image_features(model, samples["image"], ("image_embeds_proj",), normalize=True).float()
                top = to_full[topk_predictions(z @ class_embeds.t(), kmax).cpu()].tolist()
                results.extend(_prediction_rows(samples, top, first_id=counter))
                counter += len(samples["label"])
                labels = torch.as_tensor(samples["label"]).cpu()
                pos = to_pos[labels.clamp(max=len(to_pos) - 1)].masked_fill(labels >= len(to_pos), -1)
                if (pos < 0).any():
                    raise ValueError(f"labels {sorted(set(labels[pos < 0].tolist()))[:10]} lie outside the "
                                     "dataset's class_subset")
                pairs.append((z.cpu(), class_embeds[pos.to(class_embeds.device)].cpu()))
        self._gap_pairs = (torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs])) if pairs else None
        wait_for_all_ranks()
        return results

    def after_evaluation(self, val_result, split_name, epoch, **kwargs):
        """Merge the ranks' predictions into ``result/<split>_epoch<epoch>.json`` and return the metrics (main
        process; ``None`` elsewhere): ``top1``/``top3``/``top5`` (percent), ``agg_metrics`` = top-1,
        ``num_samples``, ``num_classes``."""
        result_file = self.save_rows(val_result, registry.get_path("result_dir"), f"{split_name}_epoch{epoch}")
        if world_info()[0] != 0:
            return None
        with open(result_file) as f:
            rows = json.load(f)
        width = max(len(r["topk"]) for r in rows)
        ranked = np.array([r["topk"] + [-1] * (width - len(r["topk"])) for r in rows])
        acc = topk_accuracy(ranked, [r["target"] for r in rows], self.topk)
        metrics = {f"top{k}": v for k, v in acc.items()}
        metrics.update({"agg_metrics": headline_accuracy(acc), "num_samples": len(rows),
                        "num_classes": self.num_classes})
        metrics.update(self._image_class_gap(split_name))
        self.log_metrics(split_name, metrics)
        return metrics

    def _image_class_gap(self, split_name):
        """``gap_*`` of the (image, true-class embedding) pairs of the last evaluation, and its picture with
        ``plot_gap``; ``{}`` under torchrun (module docstring)."""
        pairs, self._gap_pairs = self._gap_pairs, None
        if pairs is None or pairs[0].size(0) < 2:
            return {}
        if world_info()[1] > 1:
            logging.info("zero-shot: the image/class-text gap is computed in single-process runs only")
            return {}
        gap = modality_gap(*pairs)
        if self.plot_gap:
            self.draw_gap(*pairs, split_name, f"zero-shot {split_name}: images and their class prompts", gap)
        return {f"gap_{k}": v for k, v in gap.items()}
