"""The latent-structure regularizers on LAVIS models with ALBEF's ITC structure: ALBEF and BLIP (paper Sec. 4).

Such a model (LAVIS's ``AlbefPretrain`` / ``AlbefRetrieval`` / ``BlipPretrain`` / ``BlipRetrieval``) computes its
image-text contrastive (ITC) features as ``normalize(vision_proj(image [CLS]))`` / ``normalize(text_proj(text
[CLS]))`` of unimodal encoders, keeps momentum (EMA) copies of the encoders and projections (``model_pairs``) and
queues of momentum features, and returns the unimodal hidden states in its ``intermediate_output`` (``image_embeds``,
``text_embeds``, ``image_embeds_m``, ``text_embeds_m``). :class:`LatentItcMixin` adds to any of them:

* an optional ``latent:`` block (see ``lavis_latent.regularizers.LatentStructure``) whose regularizers act on the
  normalised ITC features (``vision_proj`` / ``text_proj`` of the [CLS] tokens);
* ``aug_view``, where the augmented view ``z^a`` comes from:

  - ``data`` (default): a second view of every sample from the data pipeline (``PairedViews`` from the
    ``paired_image_train`` / ``clip_latent_image_train`` and ``eda_caption`` processors: a random resized crop (+
    flip) of the image, an EDA copy of the caption), encoded by the *momentum* encoders (no gradient, no extra
    online pass: one more forward of the momentum ViT and text encoder). LAVIS's ITC distillation keeps reading
    the momentum features of the original input.
  - ``momentum`` (the paper's literal reading, "augmented features are obtained with additional momentum
    encoders"): the momentum features of the *same* input, read from LAVIS's ``intermediate_output`` (no extra
    pass). They differ from the online features only by the EMA lag (at step 0 not at all), so the in-modal
    positives are nearly the queries themselves.

  Measured on the embedded world (README, "Augmented views in ALBEF"), the data view is the default.
* the default bridge form ``online`` (the online image feature placed on the bridge from ``z^a_V`` to ``z_T``);
  ``bridge.form: literal`` is the paper's, which cannot be satisfied when ``z^a_V`` is a momentum feature (see
  ``LatentStructure``);
* sample ids: ``image_id`` of the batch, where present, makes the captions of one image positives of each other in
  the in-modal and L^i_Con terms, as LAVIS's retrieval ITC does;
* a batch in which ITM has no negative to draw trains without ITM for that step instead of crashing.

With no ``latent:`` block the forward pass is LAVIS's, bit for bit. Where the model families differ, the mixin has
hooks: ``prepare_tokenizer`` (BLIP adds its ``[DEC]`` / ``[ENC]`` tokens; ``tokenizer_from_config`` and
``init_tokenizer`` apply it), ``itm_negatives`` and ``_itm_negative_ids`` (where LAVIS's ITM draws its hard
negatives from). The rest reads what both families share: ``intermediate_output.image_embeds`` / ``text_embeds`` /
``*_m``, ``vision_proj`` / ``text_proj`` (+ ``_m``), ``model_pairs``, ``temp``, and the text encoder's
``mode="text"``; LAVIS's output (``AlbefOutput`` / ``BlipOutput``, both ``ModelOutput``) takes the new keys.
"""
import collections
import logging

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from lavis_latent.models.dummy_inputs import image_text_batch, vit_image_size
from lavis_latent.models.encoders import HUB_TOKENIZER, load_tokenizer
from lavis_latent.processors.paired_views import batch_sample_ids, batch_views
from lavis_latent.regularizers import LatentStructure
from lavis_latent.regularizers.momentum import momentum_copy

__all__ = ["LatentItcMixin", "FirstWhenNoCandidate", "key_groups", "latent_kwargs", "AUG_VIEWS",
           "ITC_LATENT_DEFAULTS"]

#: where the augmented view comes from (see the module docstring)
AUG_VIEWS = ("data", "momentum")
#: the momentum-encoder models' own defaults for the regularizers' sub-keys (a config's values win)
ITC_LATENT_DEFAULTS = {"bridge": {"form": "online"}}
AUG_VIEW_HINT = (
    "Give the training data a second view: vis_processor train name 'paired_image_train' (view: LAVIS's "
    "processor of your choice; aug: random resized crop + flip) or 'clip_latent_image_train', and text_processor "
    "train name 'eda_caption' (they return PairedViews(view, aug)), or put 'image_aug' and 'text_input_aug' into "
    "the batch. Or set model.aug_view: momentum (the paper's literal reading: the momentum features of the same "
    "input)."
)


def key_groups(keys):
    """``"prefix (n), ..."``: state-dict keys counted by module (first name, two for the text encoders)."""
    counts = collections.Counter()
    for key in keys:
        parts = key.split(".")
        depth = 2 if parts[0] in ("text_encoder", "text_encoder_m", "text_decoder", "text_decoder_m", "latent") else 1
        counts[".".join(parts[:depth])] += 1
    return ", ".join(f"{name} ({n})" for name, n in sorted(counts.items()))


def latent_kwargs(cfg):
    """The mixin's constructor arguments from a model config: ``tokenizer``, ``latent`` and ``aug_view``."""
    return dict(
        tokenizer=cfg.get("tokenizer", HUB_TOKENIZER),
        latent=cfg.get("latent", None),
        aug_view=cfg.get("aug_view", "data"),
    )


class FirstWhenNoCandidate(TorchFunctionMode):
    """Within the block, ``torch.multinomial`` on a row with no candidate (all-zero, or not finite) returns index 0
    instead of raising; every other call is unchanged.

    A torch function mode, so the change is local: it holds on this thread only, inside the ``with`` block, and
    ``torch.multinomial`` itself is never replaced (LAVIS's ITM draws its hard negatives with it, and a batch of one
    sample leaves it nothing to draw).
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.multinomial:
            weights, num_samples = args[0], (args[1] if len(args) > 1 else kwargs["num_samples"])
            if weights.dim() == 1 and not bool((torch.isfinite(weights).all() & (weights.sum() > 0)).item()):
                return torch.zeros(num_samples, dtype=torch.long, device=weights.device)
        return func(*args, **kwargs)


class LatentItcMixin:
    """Adds a configured ``LatentStructure`` to a LAVIS model with ALBEF's ITC structure (ALBEF, BLIP); put it
    before the LAVIS class in the bases.

    ``tokenizer``, ``latent`` and ``aug_view`` (``"data"`` or ``"momentum"``, see the module docstring) are
    keyword-only constructor arguments; everything else goes to LAVIS's class.
    """

    def __init__(self, *args, tokenizer=HUB_TOKENIZER, latent=None, aug_view="data", **kwargs):
        if aug_view not in AUG_VIEWS:
            raise ValueError(f"model.aug_view must be one of {', '.join(AUG_VIEWS)}, got {aug_view!r}")
        self.aug_view = aug_view
        self._ignored_aug_logged = False
        # LAVIS's __init__ calls self.init_tokenizer() before we could set anything afterwards.
        self._tokenizer_name = tokenizer
        super().__init__(*args, **kwargs)
        self._build_latent(latent)

    def dummy_inputs(self, n=2, seed=0):
        """A small random training batch (:mod:`lavis_latent.models.dummy_inputs`): n images at the ViT's resolution,
        captions and distinct ``image_id``; as paired views when the ``latent:`` block uses the data's second view
        (``aug_view: data``)."""
        paired = self.latent.enabled and self.aug_view == "data"
        return image_text_batch(n, vit_image_size(self.visual_encoder), seed, paired=paired)

    def _build_latent(self, latent):
        """Build ``self.latent`` (the configured regularizers) and the momentum copy of the separation heads."""
        self.latent = LatentStructure.from_config(
            latent,
            image_dim=self.visual_encoder.vision_width,
            text_dim=self.text_width,
            embed_dim=self.vision_proj.out_features,
            defaults=ITC_LATENT_DEFAULTS,
        )
        # Momentum copy of the separation heads: gives the augmented view's independent features.
        self.separation_m = None
        if self.latent.separation is not None:
            self.separation_m = momentum_copy(self.latent.separation)
            self.model_pairs.append([self.latent.separation, self.separation_m])

    def _resync_momentum(self, msg):
        """Re-copy momentum encoders from the loaded online weights when the checkpoint lacked them.

        LAVIS's runner saves checkpoints without parameters that need no gradient, i.e. without the momentum
        copies; loading such a checkpoint would leave them at their random initialisation.
        """
        momentum = {name for name, p in self.named_parameters() if not p.requires_grad}
        if msg is not None and momentum & set(msg.missing_keys):
            self.copy_params()
        return msg

    def _report_load(self, msg, source):
        """Log, grouped by module, the checkpoint keys this model did not use and the parameters it lacked."""
        if msg is None:
            return msg
        if msg.unexpected_keys:
            logging.info("%s: checkpoint keys not used by %s (dropped): %s", source, type(self).__name__,
                         key_groups(msg.unexpected_keys))
        if msg.missing_keys:
            logging.info("%s: parameters of %s not in the checkpoint (kept as initialised): %s", source,
                         type(self).__name__, key_groups(msg.missing_keys))
        return msg

    def load_from_pretrained(self, url_or_filename, **kwargs):
        """LAVIS's ``load_from_pretrained``, then momentum copies re-synchronised if the checkpoint had none."""
        msg = super().load_from_pretrained(url_or_filename, **kwargs)
        return self._resync_momentum(self._report_load(msg, url_or_filename))

    def load_checkpoint(self, url_or_filename):
        """LAVIS's ``load_checkpoint``, then momentum copies re-synchronised if the checkpoint had none."""
        return self._resync_momentum(self._report_load(super().load_checkpoint(url_or_filename), url_or_filename))

    @classmethod
    def prepare_tokenizer(cls, tokenizer):
        """Hook: the model family's changes to a freshly loaded ``BertTokenizer`` (ALBEF: none; BLIP adds its
        special tokens)."""
        return tokenizer

    @classmethod
    def tokenizer_from_config(cls, cfg):
        """The tokenizer a model config names (``model.tokenizer``: hub name, ``vocab.txt`` or a folder holding
        one; default LAVIS's ``bert-base-uncased``), with the family's changes; ``from_config`` sizes the text
        encoders with its ``len``."""
        return cls.prepare_tokenizer(load_tokenizer(cfg.get("tokenizer", HUB_TOKENIZER)))

    def init_tokenizer(self):
        """The tokenizer named by ``model.tokenizer`` (a local ``vocab.txt`` for tiny types, or a hub name), with
        the family's changes (:meth:`prepare_tokenizer`)."""
        return self.prepare_tokenizer(load_tokenizer(self._tokenizer_name))

    @property
    def text_width(self):
        """Hidden size of the text encoder (BERT)."""
        return self.text_proj.in_features

    def latent_losses(self, intermediate_output, aug=None, sample_ids=None):
        """Weighted regularizer losses for one batch, from LAVIS's ``intermediate_output``.

        Online features ``z = normalize(proj(cls))`` are recomputed from the [CLS] hidden states (two small
        linear layers, with gradient). The augmented view (no gradient): with ``aug = (images [N, 3, H, W],
        captions [N])`` its momentum-encoder features (``aug_view: data``); without, the momentum features of the
        same input that LAVIS's forward computed after its momentum update (``aug_view: momentum``).

        Args:
            sample_ids: optional [N] ids (``image_id``); rows with one id are positives in the in-modal terms.

        Returns:
            dict of scalar tensors ``loss_inmodal`` / ``loss_sep`` / ``loss_bridge`` / ``loss_geo`` (active ones).
        """
        out = intermediate_output
        if aug is None:
            image_cls_m, text_cls_m = out.image_embeds_m[:, 0, :], out.text_embeds_m[:, 0, :]
        else:
            image_cls_m, text_cls_m = self.momentum_cls(*aug)
        return self.latent_losses_from_cls(out.image_embeds[:, 0, :], out.text_embeds[:, 0, :],
                                           image_cls_m, text_cls_m, sample_ids=sample_ids)

    @torch.no_grad()
    def momentum_cls(self, images, captions):
        """[CLS] states ``(image [N, Dv], text [N, Dt])`` of the momentum unimodal encoders (no gradient) for a
        batch of images [N, 3, H, W] and N captions (the augmented view)."""
        image_cls = self.visual_encoder_m(images.to(self.device))[:, 0, :]
        tokens = self.tokenizer(list(captions), padding="longest", truncation=True, max_length=self.max_txt_len,
                                return_tensors="pt").to(self.device)
        return image_cls, self._text_cls(tokens, self.text_encoder_m)

    def latent_losses_from_cls(self, image_cls, text_cls, image_cls_m, text_cls_m, sample_ids=None):
        """Weighted regularizer losses from the [CLS] hidden states of the unimodal encoders.

        ``image_cls`` [N, Dv] and ``text_cls`` [N, Dt] are the online encoders' (with gradient); ``*_m`` the
        momentum encoders' (the augmented view). Projected with ``vision_proj`` / ``text_proj`` (momentum:
        ``*_proj_m``, no gradient) and L2-normalised, as the ITC features. ``sample_ids``: optional [N] ids.
        """
        z_v = F.normalize(self.vision_proj(image_cls), dim=-1)
        z_t = F.normalize(self.text_proj(text_cls), dim=-1)
        z_v_aug = F.normalize(self.vision_proj_m(image_cls_m), dim=-1).detach()
        z_t_aug = F.normalize(self.text_proj_m(text_cls_m), dim=-1).detach()
        return self.latent(
            z_v,
            z_t,
            z_v_aug,
            z_t_aug,
            temperature=self.temp,
            image_embeds=image_cls,
            text_embeds=text_cls,
            image_embeds_aug=image_cls_m,
            text_embeds_aug=text_cls_m,
            sep_heads_aug=self.separation_m,
            gather=True,
            sample_ids=sample_ids,
        )

    def _text_cls(self, text, encoder=None):
        """[CLS] hidden state [N, Dt] of the unimodal text encoder (``encoder``, default ``self.text_encoder``: an
        XBertEncoder, or BertForMaskedLM's ``bert``) in LAVIS's ``mode="text"`` (ALBEF: the text layers below
        ``fusion_layer``; BLIP: every layer without its cross-attention, as ``forward_text``)."""
        encoder = self.text_encoder if encoder is None else encoder
        encoder = getattr(encoder, "bert", encoder)
        output = encoder(text.input_ids, attention_mask=text.attention_mask, return_dict=True, mode="text")
        return output.last_hidden_state[:, 0, :]

    @torch.no_grad()
    def unimodal_features(self, data_loader, text_batch_size=256):
        """Normalised ITC features of a retrieval split: the images of ``data_loader`` and its ``dataset.text``.

        Returns:
            ``(z_v [num_images, D], z_t [num_texts, D])`` on the CPU, in the dataset's order.
        """
        texts = data_loader.dataset.text
        z_t = []
        for i in range(0, len(texts), text_batch_size):
            text = self.tokenizer(
                texts[i : i + text_batch_size], padding="max_length", truncation=True, max_length=35,
                return_tensors="pt",
            ).to(self.device)
            z_t.append(F.normalize(self.text_proj(self._text_cls(text)), dim=-1).cpu())
        z_v = []
        for samples in data_loader:
            image_cls = self.visual_encoder.forward_features(samples["image"].to(self.device))[:, 0, :]
            z_v.append(F.normalize(self.vision_proj(image_cls), dim=-1).cpu())
        return torch.cat(z_v), torch.cat(z_t)

    #: how LAVIS's ITM picks a hard negative for each sample: among the other samples of the batch
    #: (``"other_samples"``: AlbefPretrain, BlipPretrain), among samples with another ``image_id``
    #: (``"other_images"``: AlbefRetrieval, BlipRetrieval; the ids are :meth:`_itm_negative_ids`), or None (no ITM)
    itm_negatives = None

    def _itm_negative_ids(self, samples):
        """Hook: the ``image_id`` [M] of the samples LAVIS's ITM draws negatives from (``"other_images"``): this
        batch's; BLIP's ``negative_all_rank`` draws from every rank's batch."""
        return samples["image_id"].view(-1)

    def _itm_has_negatives(self, samples):
        """Whether LAVIS's ITM can draw a negative for every sample: False for a batch of one, or (retrieval) a
        batch whose captions all belong to one image, where ``torch.multinomial`` gets an all-zero (or NaN) row
        and raises."""
        if self.itm_negatives is None:
            return True
        if self.itm_negatives == "other_images":
            return torch.unique(self._itm_negative_ids(samples)).numel() >= 2
        return samples["image"].size(0) >= 2

    def _forward_without_itm_negatives(self, samples):
        """LAVIS's forward for a batch without any ITM negative: the "negative" is drawn as sample 0 (the sampler
        is told so for the rows with no candidate, see :class:`FirstWhenNoCandidate`) and ``loss_itm`` is zeroed,
        keeping its graph, so that every parameter still gets a (zero) gradient, as DDP requires. ITC, MLM / LM and
        the regularizers are unchanged."""
        with FirstWhenNoCandidate():
            output = super().forward(samples)
        itm = output.loss_itm
        output["loss"] = output.loss - itm + 0.0 * itm
        output["loss_itm"] = 0.0 * itm
        return output

    @staticmethod
    def _add_latent_losses(output, losses):
        """Put each weighted regularizer loss into LAVIS's ``output`` (an ``AlbefOutput`` / ``BlipOutput``, both
        ``ModelOutput``: new keys are accepted) and add it to ``output["loss"]``."""
        total = output.loss
        for name, value in losses.items():
            output[name] = value
            total = total + value
        output["loss"] = total
        return output

    def split_views(self, samples):
        """``(samples, aug)``: the batch as LAVIS's forward takes it (the ``view`` of each ``PairedViews``) and the
        augmented view ``(images, captions)`` the regularizers use, or None.

        The augmented view comes from ``PairedViews`` under ``"image"`` / ``"text_input"`` or from the keys
        ``"image_aug"`` / ``"text_input_aug"``. It is used when ``aug_view`` is ``data`` and a regularizer is active,
        and then required (a ``ValueError`` names the fix); otherwise it is dropped. Both at once is an error.
        """
        image, image_aug = batch_views(samples, "image", "image_aug")
        text, text_aug = batch_views(samples, "text_input", "text_input_aug")
        if image is not samples["image"] or text is not samples["text_input"] or "image_aug" in samples \
                or "text_input_aug" in samples:
            samples = {k: v for k, v in samples.items() if k not in ("image_aug", "text_input_aug")}
            samples["image"] = image.to(self.device)
            samples["text_input"] = text
        if not self.latent.enabled:
            return samples, None
        if self.aug_view == "momentum":
            if (image_aug is not None or text_aug is not None) and not self._ignored_aug_logged:
                logging.info("model.aug_view: momentum: the batch's augmented views are not used (the momentum "
                             "features of the same input are the augmented view)")
                self._ignored_aug_logged = True
            return samples, None
        if image_aug is None or text_aug is None:
            missing = [k for k, v in (("image_aug", image_aug), ("text_input_aug", text_aug)) if v is None]
            raise ValueError(f"model.aug_view: data needs an augmented view of every sample, but the batch has no "
                             f"{' / '.join(missing)}. " + AUG_VIEW_HINT)
        n = samples["image"].shape[0]
        if tuple(image_aug.shape) != tuple(samples["image"].shape) or len(text_aug) != n:
            raise ValueError(f"augmented views do not match the batch: images {tuple(samples['image'].shape)} vs "
                             f"augmented {tuple(image_aug.shape)}, {len(samples['text_input'])} captions vs "
                             f"{len(text_aug)} augmented captions")
        return samples, (image_aug, text_aug)

    #: ``samples["image_id"]`` as a [N] tensor, or None (``batch_sample_ids``)
    sample_ids = staticmethod(batch_sample_ids)

    def forward(self, samples):
        """LAVIS's forward; with a ``latent:`` block, its losses are added to ``loss`` and to the output.

        ``samples["image"]`` / ``samples["text_input"]`` may be ``PairedViews(view, aug)`` (the paired-view
        processors): LAVIS's losses see the ``view``; the regularizers' augmented view is the ``aug`` through the
        momentum encoders (``aug_view: data``, see :meth:`split_views`).

        A batch in which ITM has no negative to draw (batch size 1; retrieval: one image only) trains without the
        ITM loss for that step (``loss_itm`` = 0) instead of crashing in LAVIS's ``torch.multinomial``.

        Returns LAVIS's output (``AlbefOutput`` / ``BlipOutput``) with extra keys ``loss_inmodal``, ``loss_sep``,
        ``loss_bridge``, ``loss_geo`` for the active regularizers.
        """
        samples, aug = self.split_views(samples)
        if self._itm_has_negatives(samples):
            output = super().forward(samples)
        else:
            output = self._forward_without_itm_negatives(samples)
        if not self.latent.enabled:
            return output
        losses = self.latent_losses(output.intermediate_output, aug, self.sample_ids(samples))
        return self._add_latent_losses(output, losses)
