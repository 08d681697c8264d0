"""``albef_latent_nlvr``: LAVIS's ALBEF NLVR2 model with the plugin's checkpoint mapping and optional regularizers.

See :mod:`lavis_latent.models.albef_downstream` for what the downstream models share (the ``latent:`` block, the
feature taps, loading a pretraining checkpoint).
"""
import copy

import torch
import torch.nn.functional as F
from lavis.common.registry import registry
from lavis.models.albef_models.albef_nlvr import AlbefNLVR
from lavis.models.albef_models.albef_outputs import AlbefIntermediateOutput, AlbefOutput
from lavis.models.med import BertModel

from lavis_latent.models.dummy_inputs import nlvr_batch, vit_image_size
from lavis_latent.common.paths import config_path
from lavis_latent.models.albef_downstream import LatentDownstreamMixin, checked_num_classes
from lavis_latent.models.checkpoint_keys import rename_text_keys, text_layer_keys
from lavis_latent.models.encoders import build_vision_encoder, load_med_config

__all__ = ["AlbefLatentNLVR", "nlvr_text_config"]


def nlvr_text_config(med_config):
    """NLVR2's text encoder config: the text layers, then each fusion layer twice (one per image; LAVIS: 18)."""
    config = copy.deepcopy(med_config)
    config.num_hidden_layers = med_config.fusion_layer + 2 * (med_config.num_hidden_layers - med_config.fusion_layer)
    return config


@registry.register_model("albef_latent_nlvr")
class AlbefLatentNLVR(LatentDownstreamMixin, AlbefNLVR):
    """LAVIS's ``AlbefNLVR`` (two images, one statement, a 2-way head on the fusion [CLS]) plus the plugin's
    checkpoint mapping and optional regularizers.

    Model types: ``nlvr`` (LAVIS's fine-tuned checkpoint; ``load_finetuned: False`` starts from ALBEF's
    text-assignment pretrained one) and ``tiny``. With ``num_classes: 3`` and the ``latent_text_assignment`` task
    it is ALBEF's text-assignment (TA) pre-training model (see ``lavis_latent.tasks.downstream``).

    Usage:
        >>> import lavis_latent
        >>> from lavis.models import load_model_and_preprocess
        >>> model, vis, txt = load_model_and_preprocess("albef_latent_nlvr", "tiny")
    """

    PRETRAINED_MODEL_CONFIG_DICT = {
        "nlvr": config_path("models", "albef_latent_nlvr_nlvr.yaml"),
        "tiny": config_path("models", "albef_latent_nlvr_tiny.yaml"),
    }
    default_max_txt_len = 40

    def dummy_inputs(self, n=2, seed=0):
        """A small random NLVR2 training batch (two images per statement; labels below the head's classes)."""
        return nlvr_batch(n, vit_image_size(self.visual_encoder), seed, num_classes=self.cls_head[-1].out_features)

    @classmethod
    def _model_kwargs(cls, cfg, tokenizer):
        """The ViT, the two-image text encoder (:func:`nlvr_text_config`) and ``num_classes`` (LAVIS's
        ``albef_nlvr`` keys and ``vit_type: custom`` sizes)."""
        text_config = nlvr_text_config(load_med_config(cfg, vocab_size=len(tokenizer)))
        return dict(
            image_encoder=build_vision_encoder(cfg, from_pretrained=False),
            text_encoder=BertModel(config=text_config, add_pooling_layer=False),
            num_classes=checked_num_classes(cfg),
        )

    def share_cross_attention(self, model):
        """Tie the cross-attention keys and values of each fusion layer pair (LAVIS's, from ``fusion_layer``
        instead of its hard-coded layers 6-17)."""
        fusion = model.config.fusion_layer
        for i in range((model.config.num_hidden_layers - fusion) // 2):
            modules_0 = model.layer[fusion + 2 * i].crossattention.self._modules
            modules_1 = model.layer[fusion + 2 * i + 1].crossattention.self._modules
            for name in modules_0:
                if "key" in name or "value" in name:
                    modules_0[name].weight = modules_1[name].weight
                    modules_0[name].bias = modules_1[name].bias

    def _lavis_forward(self, samples, is_train=True):
        """LAVIS's forward; with ``use_distill: False`` in training, its prediction and plain cross-entropy
        (LAVIS stacks the absent momentum embeddings, its albef_nlvr.py:187, and raises ``TypeError``)."""
        if self.use_distill or not is_train:
            return AlbefNLVR.forward(self, samples, is_train=is_train)
        output = AlbefNLVR.forward(self, samples, is_train=False)
        return AlbefOutput(loss=F.cross_entropy(output["predictions"], output["targets"]),
                           intermediate_output=AlbefIntermediateOutput())

    def _latent_images(self, samples):
        """Both images of each pair, as LAVIS's forward feeds them to the ViT (``image0`` then ``image1``)."""
        return torch.cat([samples["image0"], samples["image1"]], dim=0)

    def _pair_image_cls(self, image_cls):
        """The image feature of a pair: the mean of its two images' [CLS] states."""
        image0, image1 = image_cls.chunk(2, dim=0)
        return 0.5 * (image0 + image1)

    def convert_pretrained_state_dict(self, state_dict):
        """ALBEF's NLVR2 mapping: from a pretraining checkpoint (one fusion stack), each fusion layer ``f + i``
        initialises the pair ``f + 2i`` (first image) and ``f + 2i + 1`` (second image), for the online and the
        momentum encoder; a checkpoint with the two-image layout (TA pre-training, NLVR2) loads as it is."""
        keys = text_layer_keys(state_dict)
        fusion = self.text_encoder.config.fusion_layer
        pairs = (self.text_encoder.config.num_hidden_layers - fusion) // 2
        deepest = max((layer for _, layer, _ in keys.values() if layer is not None), default=-1)
        if deepest >= fusion + pairs:  # already the two-image layout
            return rename_text_keys(state_dict)
        out = {}
        for key, value in state_dict.items():
            encoder, layer, rest = keys.get(key, (None, None, None))
            if layer is None or layer < fusion:
                out.update(rename_text_keys({key: value}))
                continue
            for copy_index in (0, 1):
                out[f"{encoder}.encoder.layer.{fusion + 2 * (layer - fusion) + copy_index}.{rest}"] = value
        return out
