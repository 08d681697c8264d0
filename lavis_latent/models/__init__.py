"""LAVIS models of the plugin (registered on import)."""
from lavis_latent.models.albef_latent import AlbefLatentPretrain, AlbefLatentRetrieval, LatentAlbefMixin
from lavis_latent.models.clip_latent import ClipLatent, ClipLatentOutput, ClipLatentOutputFeatures
from lavis_latent.models.albef_downstream import (
    AlbefLatentClassification,
    AlbefLatentNLVR,
    AlbefLatentVQA,
    LatentDownstreamMixin,
)

__all__ = ["AlbefLatentPretrain", "AlbefLatentRetrieval", "LatentAlbefMixin", "AlbefLatentVQA", "AlbefLatentNLVR",
           "AlbefLatentClassification", "LatentDownstreamMixin", "ClipLatent", "ClipLatentOutput",
           "ClipLatentOutputFeatures"]
