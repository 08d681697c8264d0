"""The shared part of the ALBEF downstream models with latent modality structures (paper Sec. 5, Table 4).

The models are ``albef_latent_vqa`` (:mod:`lavis_latent.models.albef_vqa`), ``albef_latent_nlvr``
(:mod:`lavis_latent.models.albef_nlvr`) and ``albef_latent_classification`` (SNLI-VE,
:mod:`lavis_latent.models.albef_classification`); this module holds their mixin ``LatentDownstreamMixin``, the
feature taps and their construction from a config; :mod:`lavis_latent.models.checkpoint_keys` reads checkpoints.

Each class subclasses LAVIS's own model, so forward passes, losses (with momentum distillation), ``predict`` /
``predict_answers`` and the answer ranking are LAVIS's. The plugin adds:

* model types ``tiny`` (offline, random init, local vocabulary) beside LAVIS's ``vqav2`` / ``nlvr`` / ``ve``, and
  offline construction of the full-size types (LAVIS's ``from_config`` fetches ``bert-base-uncased``);
* ``load_from_pretrained`` that starts any of them from an ``albef_latent_pretrain`` checkpoint (or ALBEF's
  original one) at any depth: the regularizer heads and the pretraining-only heads (``latent.*``,
  ``separation_m.*``, ``itm_head``, projections, queues) are dropped and reported, the VQA decoder is initialised
  from the fusion layers and the NLVR2 model duplicates each fusion layer for its two images, as ALBEF does;
* an optional ``latent:`` block that also regularizes the unimodal features during fine-tuning (see below);
* fixes for three LAVIS 1.0.2 traps: ``AlbefVQA.forward_decoder`` with ``use_distill: False`` (unbound
  ``logits_m``), ``AlbefNLVR.forward`` with ``use_distill: False`` (stacks ``None``), ``AlbefNLVR.load_from_pretrained``
  (unpacks one return value into two), and ``AlbefNLVR.share_cross_attention``'s hard-coded 6 layer pairs.

**The latent block downstream.** With no ``latent:`` block (the default, and the paper's protocol: fine-tune from a
regularized pretrained checkpoint) the model is LAVIS's, parameter for parameter. With one, the model gains ALBEF's
ITC projections ``vision_proj`` / ``text_proj`` (loaded from the pretraining checkpoint, so the regularizers keep
acting in the pretrained contrastive space), their momentum copies, a temperature buffer ``temp`` and the
configured heads, and adds the weighted regularizer losses to LAVIS's loss. The features are read from LAVIS's own
forward pass through forward hooks ("taps") on the last layer of each unimodal encoder: the ViT's final norm and
the last text-only BERT layer (``fusion_layer - 1``), so no encoder runs twice. The **augmented view** is the
momentum encoders' features, as in pretraining:

=================  ==========================================================================================
model              augmented view
=================  ==========================================================================================
VQA, SNLI-VE       LAVIS's momentum ViT and momentum text encoder, which its distillation runs anyway.
NLVR2              LAVIS's momentum ViT (distillation); the momentum text encoder, which LAVIS does not run
                   (its albef_nlvr.py:150 uses the online one), runs its text layers once without gradient.
``use_distill:``   there is no distillation, so the model keeps momentum copies of the ViT and text encoder
``False``          for the regularizers alone, updated every step with ``momentum``, and runs their unimodal
                   layers without gradient.
=================  ==========================================================================================

The image feature of an NLVR2 sample (two images, one statement) is the mean of the two images' [CLS] states.
Downstream texts are questions (VQA), statements that may be false (NLVR2) and hypotheses that may contradict the
image (SNLI-VE): the regularizers treat each (image, text) of a batch as a pair all the same.
"""
import contextlib

import torch
from lavis.models.vit import interpolate_pos_embed
from torch import nn

from lavis_latent.models.latent_itc import LatentItcMixin as LatentAlbefMixin
from lavis_latent.models.checkpoint_keys import TASK_HEAD_PREFIXES, read_checkpoint_state_dict, rename_text_keys
from lavis_latent.models.encoders import HUB_TOKENIZER, load_weights_from_config
from lavis_latent.regularizers import LatentStructure
from lavis_latent.regularizers.momentum import momentum_copy
from lavis_latent.regularizers.structure import parse_config

__all__ = ["LatentDownstreamMixin", "checked_num_classes"]


class _FirstCLSTap:
    """Forward hook recording the [CLS] state of a module's first output while ``recording`` (else idle)."""

    def __init__(self, module):
        self.value = None
        self.recording = False
        module.register_forward_hook(self)

    def __call__(self, module, inputs, output):
        if self.recording and self.value is None:
            hidden = output[0] if isinstance(output, tuple) else output
            self.value = hidden[:, 0, :]


class LatentDownstreamMixin(LatentAlbefMixin):
    """``LatentAlbefMixin`` for LAVIS's ALBEF fine-tuning models that have no ITC head (VQA, NLVR2, SNLI-VE).

    Keyword-only constructor arguments: ``tokenizer``, ``latent``, ``embed_dim`` and ``temp`` (the ITC projection
    width and temperature used by the regularizers; only with a ``latent:`` block). See the module docstring.
    """

    def __init__(self, *args, tokenizer=HUB_TOKENIZER, latent=None, embed_dim=256, temp=0.07, **kwargs):
        self._latent_embed_dim = embed_dim
        self._latent_temp = temp
        self._latent_momentum = kwargs.get("momentum", 0.995)
        # the downstream models' augmented view is always the momentum encoders' of the same input (README)
        super().__init__(*args, tokenizer=tokenizer, latent=latent, aug_view="momentum", **kwargs)

    #: ``max_txt_len`` when the config has none (LAVIS's default for the model class)
    default_max_txt_len = 40

    @classmethod
    def from_config(cls, cfg=None):
        """Build from a model config (the LAVIS class's keys, e.g. ``albef_vqa``'s, plus ``tokenizer``, ``latent``,
        ``embed_dim``, ``temp`` and ``vit_type: custom`` sizes); loads ``finetuned`` / ``pretrained`` as LAVIS
        does. The model's own parts come from ``_model_kwargs``."""
        tokenizer = cls.tokenizer_from_config(cfg)
        model = cls(**cls._model_kwargs(cfg, tokenizer), **_downstream_kwargs(cfg, cls.default_max_txt_len))
        load_weights_from_config(model, cfg)
        return model

    @classmethod
    def _model_kwargs(cls, cfg, tokenizer):
        """The model class's own constructor arguments (its encoders, decoder, ``num_classes``) from ``cfg``."""
        raise NotImplementedError(f"{cls.__name__} must define _model_kwargs(cfg, tokenizer)")

    @property
    def text_width(self):
        """Hidden size of the text encoder (BERT)."""
        return self.text_encoder.config.hidden_size

    def _build_latent(self, latent):
        """Regularizers, ITC projections (+ momentum copies), taps; nothing at all without a ``latent:`` block."""
        if not parse_config(latent):
            self.latent = LatentStructure.from_config(latent)
            self.separation_m = None
            self._taps = None
            return
        if not self.use_distill:  # momentum copies for the regularizers' augmented view alone
            self.visual_encoder_m = momentum_copy(self.visual_encoder)
            self.text_encoder_m = momentum_copy(self.text_encoder)
            self.momentum = self._latent_momentum
            self.model_pairs = [[self.visual_encoder, self.visual_encoder_m], [self.text_encoder, self.text_encoder_m]]
        self.vision_proj = nn.Linear(self.visual_encoder.vision_width, self._latent_embed_dim)
        self.text_proj = nn.Linear(self.text_width, self._latent_embed_dim)
        self.vision_proj_m = momentum_copy(self.vision_proj)
        self.text_proj_m = momentum_copy(self.text_proj)
        self.model_pairs += [[self.vision_proj, self.vision_proj_m], [self.text_proj, self.text_proj_m]]
        self.register_buffer("temp", torch.tensor(float(self._latent_temp)))
        super()._build_latent(latent)
        last_text = self.text_encoder.config.fusion_layer - 1
        self._taps = {
            "image": _FirstCLSTap(self.visual_encoder.norm),
            "image_m": _FirstCLSTap(self.visual_encoder_m.norm),
            "text": _FirstCLSTap(self.text_encoder.encoder.layer[last_text]),
            "text_m": _FirstCLSTap(self.text_encoder_m.encoder.layer[last_text]),
        }

    @contextlib.contextmanager
    def _recording(self):
        """Within the block the taps record the first [CLS] state their module outputs (cleared on entry)."""
        for tap in self._taps.values():
            tap.value, tap.recording = None, True
        try:
            yield self._taps
        finally:
            for tap in self._taps.values():
                tap.recording = False

    # ----- per-model hooks ---------------------------------------------------------------------------------------
    def _lavis_forward(self, samples, **kwargs):
        """LAVIS's forward of the model class (the mixin's own ``forward`` wraps it)."""
        return super(LatentAlbefMixin, self).forward(samples, **kwargs)

    def _latent_images(self, samples):
        """The image batch the ViT sees in one forward pass."""
        return samples["image"]

    def _pair_image_cls(self, image_cls):
        """Image [CLS] states per text of the batch (NLVR2 averages its two images)."""
        return image_cls

    def _latent_tokens(self, samples):
        """The tokenized texts of the batch (LAVIS's VQA and classification forwards leave them in ``samples``)."""
        tokens = samples.get("tokenized_text")
        if tokens is None:
            tokens = self.tokenizer(samples["text_input"], padding="longest", truncation=True,
                                    max_length=self.max_txt_len, return_tensors="pt").to(self.device)
        return tokens

    # ----- forward -----------------------------------------------------------------------------------------------
    def latent_views(self, samples):
        """[CLS] states ``(image, text, image_m, text_m)`` of the pass just recorded; runs the momentum unimodal
        encoders (no gradient) where LAVIS's forward did not."""
        taps = self._taps
        if taps["image_m"].value is None:
            with torch.no_grad():
                self.visual_encoder_m(self._latent_images(samples))
        if taps["text_m"].value is None:
            tokens = self._latent_tokens(samples)
            with torch.no_grad():
                self.text_encoder_m(tokens.input_ids, attention_mask=tokens.attention_mask, return_dict=True,
                                    mode="text")
        return (self._pair_image_cls(taps["image"].value), taps["text"].value,
                self._pair_image_cls(taps["image_m"].value), taps["text_m"].value)

    def forward(self, samples, **kwargs):
        """LAVIS's forward; in training with a ``latent:`` block its losses are added to ``loss`` and the output.

        Returns LAVIS's output (``AlbefOutput`` / ``AlbefOutputWithLogits``; NLVR2 and SNLI-VE with
        ``is_train=False``: LAVIS's ``{"predictions", "targets"}``) with extra ``loss_inmodal``, ``loss_sep``,
        ``loss_bridge``, ``loss_geo`` keys for the active regularizers.
        """
        if not self.latent.enabled or not kwargs.get("is_train", True):
            return self._lavis_forward(samples, **kwargs)
        if not self.use_distill:
            self._momentum_update()  # LAVIS updates the momentum copies only when it distils
        with self._recording():
            output = self._lavis_forward(samples, **kwargs)
            views = self.latent_views(samples)
        losses = self.latent_losses_from_cls(*views)
        return self._add_latent_losses(output, losses)

    # ----- checkpoints -------------------------------------------------------------------------------------------
    def _resync_momentum(self, msg):
        """Copy the online weights into each momentum module the checkpoint lacked (e.g. a new task head's, or all
        of them for a checkpoint saved without momentum encoders); momentum modules it had keep its weights."""
        if msg is None or not getattr(self, "model_pairs", None):
            return msg
        missing = set(msg.missing_keys)
        names = {id(module): name for name, module in self.named_modules()}
        with torch.no_grad():
            for online, momentum in self.model_pairs:
                prefix = names[id(momentum)]
                if any(f"{prefix}.{name}" in missing for name, _ in momentum.named_parameters()):
                    for p, p_m in zip(online.parameters(), momentum.parameters()):
                        p_m.copy_(p)
        return msg

    def convert_pretrained_state_dict(self, state_dict):
        """Map a pretraining checkpoint's keys onto this model (default: ``bert.`` text keys renamed)."""
        return rename_text_keys(state_dict)

    def load_from_pretrained(self, url_or_filename, **kwargs):
        """Initialise from a pretraining checkpoint (``albef_latent_pretrain``, ALBEF's, or an NLVR2 TA one).

        Keys are mapped by ``convert_pretrained_state_dict``; position embeddings are interpolated to this image
        size; task heads (``cls_head*``) and keys whose shape differs are dropped; the load is non-strict and
        logged by module (dropped keys, e.g. ``latent.*`` and ``separation_m.*`` regularizer heads, and new
        parameters); momentum copies are re-synchronised when the checkpoint had none.

        Returns:
            the ``load_state_dict`` message, with ``unexpected_keys`` including the dropped task heads and
            shape-mismatched keys.
        """
        state_dict = self.convert_pretrained_state_dict(read_checkpoint_state_dict(url_or_filename))
        for name in ("visual_encoder", "visual_encoder_m"):
            key = f"{name}.pos_embed"
            if key in state_dict and hasattr(self, name):
                state_dict[key] = interpolate_pos_embed(state_dict[key], getattr(self, name))
        own = self.state_dict()
        dropped = [k for k in state_dict if k.startswith(TASK_HEAD_PREFIXES)
                   or (k in own and state_dict[k].shape != own[k].shape)]
        for key in dropped:
            del state_dict[key]
        msg = self.load_state_dict(state_dict, strict=False)
        msg.unexpected_keys.extend(dropped)
        return self._resync_momentum(self._report_load(msg, url_or_filename))


def _downstream_kwargs(cfg, max_txt_len):
    """Constructor arguments shared by the three downstream models, with LAVIS's defaults."""
    return dict(
        use_distill=cfg.get("use_distill", True),
        momentum=cfg.get("momentum", 0.995),
        alpha=cfg.get("alpha", 0.4),
        max_txt_len=cfg.get("max_txt_len", max_txt_len),
        tokenizer=cfg.get("tokenizer", HUB_TOKENIZER),
        latent=cfg.get("latent", None),
        embed_dim=cfg.get("embed_dim", 256),
        temp=cfg.get("temp", 0.07),
    )


def checked_num_classes(cfg):
    """``model.num_classes``, checked (LAVIS asserts with a message that names no key)."""
    num_classes = cfg.get("num_classes", -1)
    if num_classes is None or num_classes < 2:
        raise ValueError(f"model.num_classes must be at least 2, got {num_classes!r}")
    return num_classes
