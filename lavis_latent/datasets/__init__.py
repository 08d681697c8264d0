"""Datasets of the plugin: the embedded demo world and its LAVIS builders.

Importing this package registers the builders ``demo_retrieval``, ``demo_caption``, ``demo_vqa``, ``demo_nlvr`` and
``demo_snli_ve`` in LAVIS's registry (see :mod:`lavis_latent.datasets.builders`); :func:`generate` writes the demo
world itself (see :mod:`lavis_latent.datasets.demo_data`). Importing it also registers the classification builders
``image_folder``, ``digits``, ``digits_caption``, ``cifar10`` and ``cifar100`` (see
:mod:`lavis_latent.datasets.classification`), and the paper's evaluation datasets (Table 2's ImageNet shifts,
Table 3's linear-probe datasets; see :mod:`lavis_latent.datasets.eval_datasets`).

Modules (each imports its siblings, never this package):

* the demo world: ``demo_data`` (entry points), ``world`` (attributes, parameters), ``world_layout`` (file names),
  ``scenes`` (sampling, drawing), ``world_text`` (sentences), ``world_writers`` (one writer per file format);
* the digits: ``digits`` (generator); ``generated_files`` (manifest and atomic swap, shared by both generators);
* builders: ``plugin_builder`` (registration, default yaml), ``generation`` (builders whose data a generator
  writes), ``builders`` (demo builders), ``classification_builders``, ``classification_datasets``,
  ``classification`` (re-exports), ``imagenet`` and ``stock_datasets`` (LAVIS's own builders' traps);
* files and checks: ``storage`` (paths under ``cache_root``), ``config_files`` (files a builder config names),
  ``annotation_checks``, ``image_reading`` and ``checks`` (the checked build of ``run.skip_bad_images``);
* ``text_assignment``: ALBEF's text-assignment data for NLVR2.
"""
from lavis_latent.datasets.builders import (  # noqa: F401  (registration side effect)
    DEMO_BUILDERS,
    DemoCaptionBuilder,
    DemoNLVRBuilder,
    DemoRetrievalBuilder,
    DemoSNLIVEBuilder,
    DemoVQABuilder,
)
# registers cifar10, cifar100, image_folder, digits and digits_caption
from lavis_latent.datasets.classification import (  # noqa: F401
    CLASSIFICATION_BUILDERS,
    DIGIT_WORDS,
    generate_digits,
    prepare_stock_classification_config,
)
from lavis_latent.datasets.config_files import check_annotation_files  # noqa: F401
# registers the paper's evaluation datasets (Table 2 shifts, Table 3 probes): caltech101, dtd, ..., imagenet_r
from lavis_latent.datasets.eval_datasets import EVAL_BUILDERS  # noqa: F401
from lavis_latent.datasets.demo_data import (  # noqa: F401
    IMAGE_ONLY,
    SHARED,
    TEXT_ONLY,
    VALUES,
    active_attributes,
    attribute_labels,
    generate,
    layout_paths,
    load_metadata,
    render_scene,
    world_params,
)
from lavis_latent.datasets.generation import generator_settings  # noqa: F401
from lavis_latent.datasets.stock_datasets import check_stock_dataset_files  # noqa: F401
from lavis_latent.datasets.text_assignment import TextAssignmentDataset  # noqa: F401

__all__ = [
    "SHARED", "IMAGE_ONLY", "TEXT_ONLY", "VALUES", "generate", "layout_paths", "load_metadata", "attribute_labels",
    "active_attributes", "world_params", "render_scene", "check_annotation_files", "generator_settings",
    "DEMO_BUILDERS", "DemoRetrievalBuilder", "DemoCaptionBuilder", "DemoVQABuilder", "DemoNLVRBuilder",
    "DemoSNLIVEBuilder", "check_stock_dataset_files", "TextAssignmentDataset",
    "CLASSIFICATION_BUILDERS", "DIGIT_WORDS", "generate_digits", "prepare_stock_classification_config",
    "EVAL_BUILDERS",
]
