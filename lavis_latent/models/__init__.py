"""LAVIS models of the plugin (registered on import)."""
from lavis_latent.models.latent_itc import LatentItcMixin
from lavis_latent.models.albef_latent import AlbefLatentPretrain, AlbefLatentRetrieval, LatentAlbefMixin
from lavis_latent.models.blip_latent import BlipLatentPretrain, BlipLatentRetrieval
from lavis_latent.models.clip_latent import ClipLatent, ClipLatentOutput, ClipLatentOutputFeatures
from lavis_latent.models.albef_downstream import LatentDownstreamMixin
from lavis_latent.models.albef_vqa import AlbefLatentVQA
from lavis_latent.models.albef_nlvr import AlbefLatentNLVR
from lavis_latent.models.albef_classification import AlbefLatentClassification

__all__ = ["AlbefLatentPretrain", "AlbefLatentRetrieval", "LatentAlbefMixin", "LatentItcMixin", "BlipLatentPretrain",
           "BlipLatentRetrieval", "AlbefLatentVQA", "AlbefLatentNLVR", "AlbefLatentClassification",
           "LatentDownstreamMixin", "ClipLatent", "ClipLatentOutput", "ClipLatentOutputFeatures"]
