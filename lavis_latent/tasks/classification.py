"""Zero-shot classification and linear probes on frozen image features (the CLIP paper's two protocols).

This module gathers the public names of the two tasks, which live in:

* :mod:`lavis_latent.tasks.zero_shot`: ``zero_shot_classification`` (class-name prompts; its run keys);
* :mod:`lavis_latent.tasks.linear_probe`: ``linear_probe`` (its run keys), fitted by
  :mod:`lavis_latent.tasks.linear_probe_fit` (scikit-learn);
* :mod:`lavis_latent.tasks.features`: frozen features from ``extract_features``, whole datasets, all ranks;
* :mod:`lavis_latent.tasks.topk`: top-k predictions and accuracies;
* :mod:`lavis_latent.tasks.classification_base`: what both tasks share (run config, datasets, result files).

Both tasks work with any model that has LAVIS's feature-extractor method
``model.extract_features(samples, mode="image" | "text")`` returning a ``BlipOutputFeatures``-like object:
``clip_latent`` ([N, E] / [N, D] fields) as well as LAVIS's ALBEF / BLIP feature extractors, whose fields are
[N, L, D] token sequences (token 0, the [CLS] token, is used). Datasets: any builder whose datasets return
``{"image", "label", "instance_id"}`` and have ``classnames`` (``cifar10``, ``cifar100``, ``image_folder``,
``digits``, LAVIS's ``imagenet``: see :mod:`lavis_latent.datasets.classification`).
"""
from lavis_latent.tasks.classification_base import ClassificationEvalMixin
from lavis_latent.tasks.features import (
    PROBE_FEATURES,
    extract_dataset_features,
    feature_field,
    image_features,
    model_device,
    parse_probe_features,
    pooled,
)
from lavis_latent.tasks.linear_probe import LinearProbeTask
from lavis_latent.tasks.linear_probe_fit import DEFAULT_C_GRID, fit_linear_probe
from lavis_latent.tasks.topk import DEFAULT_TOPK, topk_accuracy, topk_predictions
from lavis_latent.tasks.zero_shot import (
    DEFAULT_PROMPT,
    ZeroShotClassificationTask,
    class_text_embeddings,
    dataset_classnames,
    expand_prompts,
)

__all__ = ["ZeroShotClassificationTask", "LinearProbeTask", "ClassificationEvalMixin", "DEFAULT_PROMPT",
           "DEFAULT_TOPK", "DEFAULT_C_GRID", "PROBE_FEATURES", "pooled", "model_device", "feature_field",
           "parse_probe_features", "image_features", "expand_prompts", "class_text_embeddings", "topk_predictions",
           "topk_accuracy", "dataset_classnames", "extract_dataset_features", "fit_linear_probe"]
