"""Image classification datasets for zero-shot classification and linear probes, as LAVIS builders.

=================  ==========================================================  =================================
builder name       data                                                        splits (``build_info.splits``)
=================  ==========================================================  =================================
``cifar10``        torchvision's CIFAR-10 python files (``cifar-10-batches-py``)  ``train``, ``test``
``cifar100``       torchvision's CIFAR-100 python files (``cifar-100-python``)    ``train``, ``test``
``image_folder``   any ``<storage>/<split>/<class>/<image>`` tree (torchvision    any folder names
                   ImageFolder layout); class names = folder names, ``_`` ->
                   space, or ``build_info.classnames``
``digits``         scikit-learn's bundled handwritten digits (1,797 8x8          ``train``, ``val``, ``test``
                   images), written as 64 px JPEGs in the ImageFolder layout     (60 / 15 / 25 %, stratified)
                   on first use; class names ``zero`` ... ``nine``
``digits_caption`` the same digit images with captions, for pretraining          ``train``, ``val``, ``test``
                   (LAVIS's ``coco_caption`` format and dataset classes)
``imagenet``       LAVIS's own builder (``<storage>/<split>/<wnid>/*.JPEG``,      ``train``, ``val``
                   LAVIS's CLIP-style readable class names); not re-registered
=================  ==========================================================  =================================

Every classification dataset returns ``{"image": Tensor [3, H, W], "label": int, "image_id", "instance_id": str}``
and has ``classnames`` (``list[str]``, index = label). Every builder checks its files when it builds and raises
``FileNotFoundError`` naming the missing path and where to put the data. The default yaml of each builder lies in
``lavis_latent/configs/datasets/<name>/defaults.yaml``; relative storage paths are joined to LAVIS's ``cache_root``.

LAVIS's ``imagenet`` builder works offline when its image folder exists, with three traps that
:func:`prepare_stock_classification_config` (called by the plugin's classification tasks) closes before it builds:
a relative ``storage`` is not joined to ``cache_root`` by that builder and breaks every image path, its default
config declares no processors (PIL images would reach the collate function), and a missing folder surfaces as a
torchvision error that does not say where ImageNet goes.

The parts live in sibling modules: the digits generator in :mod:`~lavis_latent.datasets.digits`, the dataset
classes in :mod:`~lavis_latent.datasets.classification_datasets`, the builders in
:mod:`~lavis_latent.datasets.classification_builders` and the ImageNet fixes in
:mod:`~lavis_latent.datasets.imagenet`. This module re-exports their names (and importing it registers the builders).
"""
from lavis_latent.datasets.classification_builders import (
    CLASSIFICATION_BUILDERS,
    CIFAR10Builder,
    CIFAR100Builder,
    ClassificationBuilder,
    DigitsBuilder,
    DigitsCaptionBuilder,
    DigitsGeneratorMixin,
    ImageFolderBuilder,
)
from lavis_latent.datasets.classification_datasets import (
    CIFARDataset,
    ImageFolderClassificationDataset,
    cifar_download_hint,
    cifar_folder,
    folder_classnames,
    read_cifar,
)
from lavis_latent.datasets.digits import (
    DIGIT_CAPTION_TEMPLATES,
    DIGIT_WORDS,
    DIGITS_DEFAULTS,
    DIGITS_FORMAT_VERSION,
    DIGITS_SPLITS,
    digit_captions,
    digits_layout,
    digits_params,
    generate_digits,
    load_digit_arrays,
    render_digit,
    stratified_split,
)
from lavis_latent.datasets.imagenet import prepare_stock_classification_config

__all__ = [
    "CLASSIFICATION_BUILDERS", "CIFAR10Builder", "CIFAR100Builder", "ClassificationBuilder", "DigitsBuilder",
    "DigitsCaptionBuilder", "DigitsGeneratorMixin", "ImageFolderBuilder", "CIFARDataset",
    "ImageFolderClassificationDataset", "cifar_download_hint", "cifar_folder", "folder_classnames", "read_cifar",
    "DIGIT_CAPTION_TEMPLATES", "DIGIT_WORDS", "DIGITS_DEFAULTS", "DIGITS_FORMAT_VERSION", "DIGITS_SPLITS",
    "digit_captions", "digits_layout", "digits_params", "generate_digits", "load_digit_arrays", "render_digit",
    "stratified_split", "prepare_stock_classification_config",
]
