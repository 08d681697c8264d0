"""Data processors of the plugin (registered in LAVIS's registry on import).

* ``clip_latent_image_train``: ``PairedViews(view, aug)`` image views (``paired_views.py``).
* ``paired_image_train``: ``PairedViews(view, aug)`` with any LAVIS processor as the view (ALBEF, ``paired_views.py``).
* ``eda_caption``: ``PairedViews(caption, eda_caption)`` captions (``eda.py``).

Evaluation uses LAVIS's own ``clip_image_eval`` / ``blip_image_eval`` and ``blip_caption``.
"""
from lavis_latent.processors.eda import EdaCaptionProcessor, wordnet_available
from lavis_latent.processors.paired_views import (
    ClipLatentImageTrainProcessor,
    PairedImageTrainProcessor,
    PairedViews,
    unpack_views,
)

__all__ = ["PairedViews", "unpack_views", "ClipLatentImageTrainProcessor", "PairedImageTrainProcessor",
           "EdaCaptionProcessor", "wordnet_available"]
