"""The variants of one size for ``benchmarks.cost``, sharing one pristine copy of the weights.

Every variant's online encoders are the same module objects, and every parameter is re-tied to the pristine
weights after each step (LAVIS's momentum update re-allocates the momentum weights, which would otherwise drift);
the buffers (queues) are reset to their pristine values. That keeps the variants on the same weights, step after
step, and six full-size models within a few GB. The models are those of a model family
(:mod:`benchmarks.cost_families`: ALBEF's or BLIP's).
"""
import math

import torch

from benchmarks.cost_families import family as model_family
from benchmarks.cost_models import build_batches, model_bytes

#: ALBEF's base losses (each family's are its ``base_losses``)
BASE_LOSSES = model_family().base_losses


def pristine_weights(models):
    """``(params, buffers)``: name -> tensor of the pristine weights: LAVIS's state dict (parameters shared, buffers
    cloned) plus the first model's tensor of every parameter LAVIS lacks (the separation heads).

    ``state_dict(keep_vars=True)`` also lists tied weights, e.g. the MLM decoder = the word embeddings.
    """
    params, buffers = {}, {}
    for k, t in models["lavis"].state_dict(keep_vars=True).items():
        if isinstance(t, torch.nn.Parameter):
            params[k] = t.data
        else:
            buffers[k] = t.detach().clone()
    lavis_keys = set(params) | set(buffers)
    for m in models.values():
        for k, p in m.named_parameters():
            if k not in lavis_keys:  # latent.separation.*, separation_m.*
                params.setdefault(k, p.data)
    return params, buffers


def check_state_keys(variant, model, lavis_keys):
    """Raise if ``model``'s state-dict keys differ from LAVIS's ``lavis_keys`` beyond the plugin's own heads."""
    keys = set(model.state_dict())
    missing = lavis_keys - keys
    extra = {k for k in keys - lavis_keys if not k.startswith(("latent.", "separation_m."))}
    if missing or extra:
        raise RuntimeError(f"{variant}: state-dict keys differ from LAVIS's: missing {sorted(missing)[:5]}, "
                           f"unexpected {sorted(extra)[:5]}")


class Bench:
    """The variants of one size of a model family (a :class:`~benchmarks.cost_families.ModelFamily`, default
    ALBEF's; ``variants`` default the family's), sharing one pristine copy of the weights and one batch (see the
    module docstring); the measurements are in :mod:`benchmarks.cost_timing` and :mod:`benchmarks.cost_memory`."""

    def __init__(self, size, batch, device, variants=None, seed=0, family=None):
        self.family = model_family() if family is None else family
        variants = self.family.variants if variants is None else variants
        if "lavis" not in variants:
            raise ValueError("the variants must include 'lavis' (the reference)")
        self.size, self.batch, self.device = size, batch, torch.device(device)
        self.cfg = self.family.model_config(size)
        self.models = self.family.build_variants(self.cfg, size, batch, variants, seed, self.device)
        self.params, self.buffers = pristine_weights(self.models)
        lavis_keys = set(self.models["lavis"].state_dict())
        for v, m in self.models.items():
            check_state_keys(v, m, lavis_keys)
            self.restore(m)  # = load_state_dict(pristine, strict=True) without copying: parameters are tied
        self.param_count = {v: sum(p.numel() for p in m.parameters()) for v, m in self.models.items()}
        self.bytes = {v: model_bytes(m) for v, m in self.models.items()}
        # LAVIS's model and the momentum-view variants get the plain batch, the data-view ones both views
        self.samples, self.aug, self.paired_samples = build_batches(batch, self.cfg.image_size, seed, self.device)
        self.reference_losses = {}  # seed -> LAVIS's base losses (ALBEF: itc, itm, mlm; BLIP: itc, itm, lm)
        self.max_loss_diff = {v: 0.0 for v in self.models}
        self._cls = None

    def batch_of(self, variant):
        """The batch a variant trains on: with the second view where it uses the data's augmented view."""
        model = self.models[variant]
        if getattr(model, "aug_view", None) == "data" and model.latent.enabled:
            return self.paired_samples
        return self.samples

    def restore(self, model):
        """Re-tie every parameter to the pristine weights and reset the buffers (queues) to their pristine values."""
        with torch.no_grad():
            for k, p in model.named_parameters():
                if p.data.data_ptr() != self.params[k].data_ptr():
                    p.data = self.params[k]
            for k, b in model.named_buffers():
                b.copy_(self.buffers[k])

    def untie_momentum(self, model):
        """Give ``model`` its own copy of the weights that LAVIS's momentum update re-allocates (frozen ones), as a
        model in real training owns them (used for the memory step; :meth:`restore` ties them again)."""
        for p in model.parameters():
            if not p.requires_grad:
                p.data = p.data.clone()

    def clear_grads(self, model):
        """Set every gradient of ``model`` to None."""
        for p in model.parameters():
            p.grad = None

    def record_base_losses(self, variant, seed, out):
        """Check a step's base losses (the family's: ALBEF's ITC / ITM / MLM, BLIP's ITC / ITM / LM) are finite;
        keep LAVIS's per seed and, for the other variants, the largest difference from LAVIS's at the same seed."""
        losses = tuple(out[k].detach().item() for k in self.family.base_losses)
        if not all(math.isfinite(x) for x in losses):
            raise RuntimeError(f"{variant}: non-finite loss {losses}")
        ref = self.reference_losses.get(seed)
        if variant == "lavis":
            self.reference_losses[seed] = losses
        elif ref is not None:
            self.max_loss_diff[variant] = max(self.max_loss_diff[variant], max(abs(a - b) for a, b in zip(losses, ref)))

    def cls_features(self, seed):
        """LAVIS's [CLS] features of the plain batch ``[image, text, image_m, text_m]`` (computed once, RNG seeded
        by ``seed``, without gradients), on which the plugin's extra code is measured alone."""
        if self._cls is None:
            with torch.no_grad():
                torch.manual_seed(seed)
                inter = self.models["lavis"](self.samples).intermediate_output
                self._cls = [t[:, 0, :].detach().clone() for t in (inter.image_embeds, inter.text_embeds,
                                                                    inter.image_embeds_m, inter.text_embeds_m)]
            self.restore(self.models["lavis"])
        return self._cls
