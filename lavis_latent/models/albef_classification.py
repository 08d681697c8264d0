"""``albef_latent_classification``: LAVIS's ALBEF classification model (SNLI-VE) with the plugin's checkpoint
mapping and optional regularizers.

See :mod:`lavis_latent.models.albef_downstream` for what the downstream models share (the ``latent:`` block, the
feature taps, loading a pretraining checkpoint).
"""
from lavis.common.registry import registry
from lavis.models.albef_models.albef_classification import AlbefClassification

from lavis_latent.models.dummy_inputs import classification_batch, vit_image_size
from lavis_latent.common.paths import config_path
from lavis_latent.models.albef_downstream import LatentDownstreamMixin, checked_num_classes
from lavis_latent.models.encoders import build_text_encoder, build_vision_encoder

__all__ = ["AlbefLatentClassification"]


@registry.register_model("albef_latent_classification")
class AlbefLatentClassification(LatentDownstreamMixin, AlbefClassification):
    """LAVIS's ``AlbefClassification`` (an MLP head on the fusion [CLS]; SNLI-VE) plus the plugin's checkpoint
    mapping and optional regularizers.

    Model types: ``ve`` (LAVIS's SNLI-VE fine-tuned checkpoint; ``load_finetuned: False`` starts from ALBEF's
    pretrained one) and ``tiny``.

    Usage:
        >>> import lavis_latent
        >>> from lavis.models import load_model_and_preprocess
        >>> model, vis, txt = load_model_and_preprocess("albef_latent_classification", "tiny")
    """

    PRETRAINED_MODEL_CONFIG_DICT = {
        "ve": config_path("models", "albef_latent_classification_ve.yaml"),
        "tiny": config_path("models", "albef_latent_classification_tiny.yaml"),
    }
    default_max_txt_len = 40

    def dummy_inputs(self, n=2, seed=0):
        """A small random SNLI-VE training batch (labels below the head's classes)."""
        return classification_batch(n, vit_image_size(self.visual_encoder), seed,
                                    num_classes=self.cls_head[-1].out_features)

    @classmethod
    def _model_kwargs(cls, cfg, tokenizer):
        """The ViT, the text encoder and ``num_classes`` (LAVIS's ``albef_classification`` keys and
        ``vit_type: custom`` sizes)."""
        return dict(
            image_encoder=build_vision_encoder(cfg, from_pretrained=False),
            text_encoder=build_text_encoder(cfg, vocab_size=len(tokenizer)),
            num_classes=checked_num_classes(cfg),
        )
