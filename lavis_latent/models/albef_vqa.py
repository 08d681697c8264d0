"""``albef_latent_vqa``: LAVIS's ALBEF VQA model with the plugin's checkpoint mapping and optional regularizers.

See :mod:`lavis_latent.models.albef_downstream` for what the downstream models share (the ``latent:`` block, the
feature taps, loading a pretraining checkpoint).
"""
import copy

from lavis.common.registry import registry
from lavis.models.albef_models.albef_vqa import AlbefVQA
from lavis.models.med import BertLMHeadModel

from lavis_latent.models.dummy_inputs import vit_image_size, vqa_batch
from lavis_latent.common.paths import config_path
from lavis_latent.models.albef_downstream import LatentDownstreamMixin
from lavis_latent.models.checkpoint_keys import rename_text_keys, text_layer_keys
from lavis_latent.models.encoders import build_text_encoder, build_vision_encoder

__all__ = ["AlbefLatentVQA", "decoder_config"]


def decoder_config(text_config):
    """The VQA answer decoder's BERT config: the fusion layers' depth, cross-attention to the question states."""
    config = copy.deepcopy(text_config)
    config.num_hidden_layers = text_config.num_hidden_layers - text_config.fusion_layer
    config.fusion_layer = 0
    config.encoder_width = text_config.hidden_size
    return config


@registry.register_model("albef_latent_vqa")
class AlbefLatentVQA(LatentDownstreamMixin, AlbefVQA):
    """LAVIS's ``AlbefVQA`` (answer generation with a BERT decoder, ranking over an answer list) plus the plugin's
    checkpoint mapping and optional regularizers.

    Model types: ``vqav2`` (LAVIS's fine-tuned checkpoint; ``load_finetuned: False`` starts from ALBEF's
    pretrained one) and ``tiny`` (offline, random init). The decoder has as many layers as the encoder has fusion
    layers (LAVIS hard-codes 6) and cross-attends to the question states (``encoder_width`` = text width).

    Usage:
        >>> import lavis_latent
        >>> from lavis.models import load_model_and_preprocess
        >>> model, vis, txt = load_model_and_preprocess("albef_latent_vqa", "tiny")
    """

    PRETRAINED_MODEL_CONFIG_DICT = {
        "vqav2": config_path("models", "albef_latent_vqa_vqav2.yaml"),
        "tiny": config_path("models", "albef_latent_vqa_tiny.yaml"),
    }
    default_max_txt_len = 25

    def dummy_inputs(self, n=2, seed=0):
        """A small random VQA training batch (:func:`~lavis_latent.models.dummy_inputs.vqa_batch`)."""
        return vqa_batch(n, vit_image_size(self.visual_encoder), seed)

    @classmethod
    def _model_kwargs(cls, cfg, tokenizer):
        """The text encoder, the ViT and the answer decoder (built in that order, as LAVIS's ``albef_vqa`` keys
        and ``vit_type: custom`` sizes say)."""
        text_encoder = build_text_encoder(cfg, vocab_size=len(tokenizer))
        return dict(
            image_encoder=build_vision_encoder(cfg, from_pretrained=False),
            text_encoder=text_encoder,
            text_decoder=BertLMHeadModel(config=decoder_config(text_encoder.config)),
        )

    def forward_decoder(self, samples, encoder_out, **kwargs):
        """LAVIS's ``forward_decoder``; with ``use_distill: False`` the plain LM loss (LAVIS raises
        ``UnboundLocalError``: its albef_vqa.py:215 reads ``logits_m``, set only when distilling)."""
        if self.use_distill:
            return super().forward_decoder(samples, encoder_out, **kwargs)
        answers = self.tokenizer(samples["answer"], padding="longest", return_tensors="pt").to(self.device)
        answer_targets = answers.input_ids.masked_fill(answers.input_ids == self.tokenizer.pad_token_id, -100)
        question_output, _ = encoder_out
        question = samples["tokenized_text"]
        repeats = [b for b, n in enumerate(samples["n_answers"].tolist()) for _ in range(n)]
        question_states = question_output.last_hidden_state[repeats]
        question_atts = question.attention_mask[repeats]
        answer_output = self.text_decoder(
            answers.input_ids,
            attention_mask=answers.attention_mask,
            encoder_hidden_states=question_states,
            encoder_attention_mask=question_atts,
            labels=answer_targets,
            return_dict=True,
            reduction="none",
        )
        loss = (samples["weight"] * answer_output.loss).sum() / samples["image"].size(0)
        return loss, answer_output, answer_targets

    def convert_pretrained_state_dict(self, state_dict):
        """As LAVIS's ``AlbefVQA.load_from_pretrained`` at any depth: the text encoder keeps every layer, the
        decoder (and its momentum copy) takes the embeddings, the fusion layers (layer ``fusion_layer + i`` ->
        decoder layer ``i``) and the MLM head. A checkpoint that already has a decoder keeps it."""
        out = rename_text_keys(state_dict)
        if any(k.startswith("text_decoder") for k in state_dict):
            return out
        fusion = self.text_encoder.config.fusion_layer
        for key, (encoder, layer, rest) in text_layer_keys(state_dict).items():
            decoder = encoder.replace("text_encoder", "text_decoder")
            if layer is None:
                target = f"{decoder}.{rest}" if rest.startswith("cls.") else f"{decoder}.bert.{rest}"
            elif layer >= fusion:
                target = f"{decoder}.bert.encoder.layer.{layer - fusion}.{rest}"
            else:
                continue
            out[target] = state_dict[key]
        return out
