"""Evaluation metrics of latent modality structure (pure torch; scikit-learn optional)."""
from .gap import linear_separability, modality_gap

__all__ = ["modality_gap", "linear_separability"]
