"""Datasets of the plugin: the embedded demo world and its LAVIS builders.

Importing this package registers the builders ``demo_retrieval``, ``demo_caption``, ``demo_vqa``, ``demo_nlvr`` and
``demo_snli_ve`` in LAVIS's registry (see :mod:`lavis_latent.datasets.builders`); :func:`generate` writes the demo
world itself (see :mod:`lavis_latent.datasets.demo_data`).
"""
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
from lavis_latent.datasets.builders import (  # noqa: F401  (registration side effect)
    DEMO_BUILDERS,
    DemoCaptionBuilder,
    DemoNLVRBuilder,
    DemoRetrievalBuilder,
    DemoSNLIVEBuilder,
    DemoVQABuilder,
    check_annotation_files,
    check_stock_dataset_files,
    generator_settings,
)
from lavis_latent.datasets.text_assignment import TextAssignmentDataset  # noqa: F401
# registers cifar10, cifar100, image_folder, digits and digits_caption
from lavis_latent.datasets.classification import (  # noqa: F401
    CLASSIFICATION_BUILDERS,
    DIGIT_WORDS,
    generate_digits,
    prepare_stock_classification_config,
)

__all__ = [
    "SHARED", "IMAGE_ONLY", "TEXT_ONLY", "VALUES", "generate", "layout_paths", "load_metadata", "attribute_labels",
    "active_attributes", "world_params", "render_scene", "check_annotation_files", "generator_settings",
    "DEMO_BUILDERS", "DemoRetrievalBuilder", "DemoCaptionBuilder", "DemoVQABuilder", "DemoNLVRBuilder",
    "DemoSNLIVEBuilder", "check_stock_dataset_files", "TextAssignmentDataset",
    "CLASSIFICATION_BUILDERS", "DIGIT_WORDS", "generate_digits", "prepare_stock_classification_config",
]
