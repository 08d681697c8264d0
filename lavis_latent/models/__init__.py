"""LAVIS models of the plugin (registered on import)."""
from lavis_latent.models.albef_latent import AlbefLatentPretrain, AlbefLatentRetrieval, LatentAlbefMixin

__all__ = ["AlbefLatentPretrain", "AlbefLatentRetrieval", "LatentAlbefMixin"]
