"""LatentStructure: the configured set of latent-structure regularizers and their weights (pure torch).

Config (the ``latent:`` block of a model config; a dict, an OmegaConf DictConfig, or None)::

    latent:
      inmodal:    {weight: 1.0}                          # V2V + T2T in-modal contrastive terms
      separation: {weight: 1.0, uniformity_t: 2.0}       # L_Sep (needs image_dim, text_dim, embed_dim)
      bridge:     {weight: 1.0, t: 0.25, form: literal}  # L_Br; t a number in [0, 1] or "uniform"; form below
      geometric:  {weight: 1.0, normalization: paper, gather: false}   # L_GC + L^a_GC, see geometric.py

Rules: an absent, None or empty block gives an empty structure (``enabled == False``; ``forward`` returns ``{}``),
so the model is the plain one. A listed regularizer whose value is None or ``{}`` is active with the defaults
(weight 1.0). ``weight: 0`` makes it inactive (not computed, not in ``names``; handy for ``--options`` overrides).
Unknown keys, negative/non-numeric weights, bad ``t`` / ``uniformity_t`` and missing dims are ``ValueError``\\ s
naming the key and the valid choices. ``separation`` also accepts ``uniformity_form`` ("wang_isola", the default,
or "printed", the paper's single-log form; see ``uniformity_loss``).

``bridge.form`` chooses which feature is placed on the bridge (the paper's Eq. 1 places the augmented image):

* ``literal`` (the paper): ``||z^a_V - mu(z_V, z_T, t)||^2``. Gradient reaches z^a_V if it carries one (CLIP:
  the augmented view goes through the towers) and z_V, z_T through the bridge mean. Where z^a_V is a detached
  momentum feature (ALBEF), the loss can only move the mean: it drags z_T towards the lagged image feature and
  pushes z_V *away* from z_T (mu lies between them), a chase the lagging target never ends; measured, it keeps
  ALBEF pretraining from scratch at chance ITC.
* ``online``: ``||z_V - mu(z^a_V, z_T, t)||^2``: the online image feature is placed on the bridge from the
  augmented view to the text. The two image views are exchangeable (both are random views of one image), so this
  is Eq. 1 with their roles swapped; the gradient reaches z_V (the point placed) and z_T (through mu), so the
  loss can be satisfied whether or not z^a_V carries gradient.

``geometric.normalization``: ``paper`` (1/N double sums, exact, grows with the batch) or ``mean``
(batch-invariant); ``geometric.gather``: the double sums over the global batch of all ranks (CyCLIP).

A model passes ``defaults`` to change the default of a sub-key for its own configs (ALBEF: ``bridge.form:
online``); what a config states always wins.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Dict, Mapping, Optional

import torch
import torch.nn as nn

from ._checks import check_positive
from .bridge import brownian_bridge_loss
from .contrastive import Temperature, contrastive_terms
from .geometric import GC_NORMALIZATIONS, geometric_consistency_loss
from .separation import UNIFORMITY_FORMS, FeatureSeparation

__all__ = ["LatentStructure", "REGULARIZERS", "UnknownKeyError", "parse_config"]

#: valid regularizers -> {sub-key: default}
REGULARIZERS: Dict[str, Dict[str, Any]] = {
    "inmodal": {"weight": 1.0},
    "separation": {"weight": 1.0, "uniformity_t": 2.0, "uniformity_form": "wang_isola"},
    "bridge": {"weight": 1.0, "t": 0.25, "form": "literal"},
    "geometric": {"weight": 1.0, "normalization": "paper", "gather": False},
}
#: valid values of the bridge's ``form``
BRIDGE_FORMS = ("literal", "online")
_PREFIX = "LatentStructure config"


class UnknownKeyError(ValueError):
    """A key of a ``latent:`` block that is not a regularizer or one of its sub-keys.

    Attributes: ``key`` (the unknown key), ``valid`` (the valid keys at that place), ``where`` (``"latent"`` or
    ``"latent.<regularizer>"``), so a caller can phrase its own message (suggestions, the full config path).
    """

    def __init__(self, message: str, key: str, valid, where: str):
        super().__init__(message)
        self.key, self.valid, self.where = key, valid, where


def _to_plain(cfg: Any, where: str) -> Optional[Dict[str, Any]]:
    """dict / Mapping / OmegaConf DictConfig (duck-typed, no omegaconf import) -> plain dict (one level)."""
    if cfg is None:
        return None
    if isinstance(cfg, Mapping) or (hasattr(cfg, "items") and hasattr(cfg, "keys")):
        return {str(k): v for k, v in cfg.items()}
    raise ValueError(f"{_PREFIX}: '{where}' must be a mapping (or empty), got {type(cfg).__name__}: {cfg!r}")


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _check_choice(where: str, value: Any, choices) -> Any:
    if isinstance(value, bool) or value not in choices:
        raise ValueError(f"{_PREFIX}: '{where}' must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


def _merge_defaults(defaults: Optional[Mapping[str, Mapping[str, Any]]]) -> Dict[str, Dict[str, Any]]:
    """REGULARIZERS with a model's own defaults laid over it (validated like a config)."""
    merged = {name: dict(spec) for name, spec in REGULARIZERS.items()}
    for name, sub in (defaults or {}).items():
        if name not in merged:
            raise ValueError(f"LatentStructure defaults: unknown regularizer {name!r} (valid: {', '.join(merged)})")
        for key, value in sub.items():
            if key not in merged[name] or key == "weight":
                raise ValueError(f"LatentStructure defaults: {name}.{key} is not a default a model may set")
            merged[name][key] = value
    return merged


def _check_bridge(spec: Dict[str, Any]) -> None:
    t = spec["t"]
    if isinstance(t, str):
        if t != "uniform":
            raise ValueError(f"{_PREFIX}: 'bridge.t' must be a number in [0, 1] or \"uniform\", got {t!r}")
    elif not _is_number(t) or not 0.0 <= float(t) <= 1.0:
        raise ValueError(f"{_PREFIX}: 'bridge.t' must be a number in [0, 1] or \"uniform\", got {t!r}")
    else:
        spec["t"] = float(t)
    _check_choice("bridge.form", spec["form"], BRIDGE_FORMS)


def _check_geometric(spec: Dict[str, Any]) -> None:
    _check_choice("geometric.normalization", spec["normalization"], GC_NORMALIZATIONS)
    if not isinstance(spec["gather"], bool):
        raise ValueError(f"{_PREFIX}: 'geometric.gather' must be true or false, got {spec['gather']!r}")


def _check_separation(spec: Dict[str, Any]) -> None:
    spec["uniformity_t"] = check_positive(f"{_PREFIX}: 'separation.uniformity_t'", spec["uniformity_t"])
    if spec["uniformity_form"] not in UNIFORMITY_FORMS:
        raise ValueError(f"{_PREFIX}: 'separation.uniformity_form' must be one of "
                         f"{', '.join(UNIFORMITY_FORMS)}, got {spec['uniformity_form']!r}")


#: sub-key checks per regularizer (they validate, and normalise numbers to float, in place)
_CHECKS = {"bridge": _check_bridge, "geometric": _check_geometric, "separation": _check_separation}


def parse_config(cfg: Any, defaults: Optional[Mapping[str, Mapping[str, Any]]] = None) -> Dict[str, Dict[str, Any]]:
    """Validate a ``latent:`` block; return ``{name: {sub-key: value}}`` for the *active* regularizers.

    ``defaults``: ``{regularizer: {sub-key: value}}`` that replace the package defaults (not the weights).
    """
    base = _merge_defaults(defaults)
    top = _to_plain(cfg, "latent")
    if not top:
        return {}
    valid_top = ", ".join(sorted(REGULARIZERS))
    active: Dict[str, Dict[str, Any]] = {}
    for name, sub in top.items():
        if name not in REGULARIZERS:
            raise UnknownKeyError(f"{_PREFIX}: unknown key '{name}' (valid keys: {valid_top})", name,
                                  list(REGULARIZERS), "latent")
        spec = dict(base[name])
        sub = _to_plain(sub, name) or {}
        valid_sub = ", ".join(sorted(REGULARIZERS[name]))
        for key, value in sub.items():
            if key not in spec:
                raise UnknownKeyError(f"{_PREFIX}: unknown key '{name}.{key}' (valid keys for '{name}': {valid_sub})",
                                      key, list(REGULARIZERS[name]), f"latent.{name}")
            spec[key] = value
        w = spec["weight"]
        if not _is_number(w) or not math.isfinite(float(w)) or float(w) < 0:
            raise ValueError(f"{_PREFIX}: '{name}.weight' must be a finite number >= 0, got {w!r}")
        spec["weight"] = float(w)
        _CHECKS.get(name, lambda spec: None)(spec)
        if spec["weight"] > 0:
            active[name] = spec
    return active


class LatentStructure(nn.Module):
    """The latent-structure regularizers named in a config, with weights; ``forward`` returns the weighted losses.

    Loss keys (only for active regularizers; each already multiplied by its weight, float32):

    * ``loss_inmodal = weight * 1/2 (L_V2V + L_T2T)`` (CyCLIP's ``inmodal`` term; ``contrastive_terms``). A model
      whose base loss is ``1/2 (L_V2T + L_T2V)`` (ALBEF's ITC, CLIP) then optimises ``base + loss_inmodal =
      2 * L_Con`` at weight 1, i.e. the paper's L_Con up to a factor 2 (CyCLIP's ``--inmodal`` total is exactly
      ``(crossmodal + inmodal) / 2``). Use weight 1 and halve the sum (or scale the other weights) to match L_Con
      exactly. Needs ``z_v_aug``, ``z_t_aug``.
    * ``loss_sep = weight * L_Sep`` (``FeatureSeparation.loss``); needs ``image_embeds``, ``text_embeds``.
    * ``loss_bridge = weight * L_Br``: ``form: literal`` ``||z^a_V - mu(z_V, z_T, t)||^2``, ``form: online``
      ``||z_V - mu(z^a_V, z_T, t)||^2`` (module docstring); needs ``z_v_aug``.
    * ``loss_geo = weight * (L_GC + L^a_GC)`` at the configured normalisation; uses the aug views if given (else
      L_GC only).
    """

    def __init__(self, cfg: Any = None, image_dim: Optional[int] = None, text_dim: Optional[int] = None,
                 embed_dim: Optional[int] = None, defaults: Optional[Mapping[str, Mapping[str, Any]]] = None):
        super().__init__()
        self._spec = parse_config(cfg, defaults)
        self.separation: Optional[FeatureSeparation] = None
        if "separation" in self._spec:
            dims = {"image_dim": image_dim, "text_dim": text_dim, "embed_dim": embed_dim}
            missing = [k for k, v in dims.items() if v is None]
            if missing:
                raise ValueError(f"{_PREFIX}: 'separation' needs image_dim, text_dim and embed_dim "
                                 f"(missing: {', '.join(missing)})")
            s = self._spec["separation"]
            self.separation = FeatureSeparation(image_dim, text_dim, embed_dim, uniformity_t=s["uniformity_t"],
                                                uniformity_form=s["uniformity_form"])

    @classmethod
    def from_config(cls, cfg: Any = None, image_dim: Optional[int] = None, text_dim: Optional[int] = None,
                    embed_dim: Optional[int] = None,
                    defaults: Optional[Mapping[str, Mapping[str, Any]]] = None) -> "LatentStructure":
        """Build from a ``latent:`` config block (dict, OmegaConf, or None); see the module docstring.

        ``image_dim``, ``text_dim`` (unnormalised encoder CLS widths) and ``embed_dim`` (the contrastive feature
        width) are needed only when ``separation`` is active. ``defaults``: a model's own sub-key defaults, e.g.
        ``{"bridge": {"form": "online"}}``.
        """
        return cls(cfg, image_dim=image_dim, text_dim=text_dim, embed_dim=embed_dim, defaults=defaults)

    @property
    def spec(self) -> Dict[str, Dict[str, Any]]:
        """The validated settings of the active regularizers, defaults filled in (a copy)."""
        return {n: dict(v) for n, v in self._spec.items()}

    @property
    def enabled(self) -> bool:
        return bool(self._spec)

    @property
    def names(self):
        """Active regularizers, in the order inmodal, separation, bridge, geometric."""
        return [n for n in REGULARIZERS if n in self._spec]

    @property
    def weights(self) -> Dict[str, float]:
        return {n: self._spec[n]["weight"] for n in self.names}

    @property
    def needs_aug(self) -> bool:
        """Whether an active regularizer uses the augmented views (inmodal, bridge; geometric can)."""
        return any(n in self._spec for n in ("inmodal", "bridge", "geometric"))

    def extra_repr(self) -> str:
        return ", ".join(f"{n}={self._spec[n]}" for n in self.names) or "empty"

    def forward(
        self,
        z_v: torch.Tensor,
        z_t: torch.Tensor,
        z_v_aug: Optional[torch.Tensor] = None,
        z_t_aug: Optional[torch.Tensor] = None,
        temperature: Temperature = 0.07,
        image_embeds: Optional[torch.Tensor] = None,
        text_embeds: Optional[torch.Tensor] = None,
        image_embeds_aug: Optional[torch.Tensor] = None,
        text_embeds_aug: Optional[torch.Tensor] = None,
        sep_heads_aug: Optional[FeatureSeparation] = None,
        gather: bool = False,
        generator: Optional[torch.Generator] = None,
        sample_ids: Optional[torch.Tensor] = None,
    ) -> Dict[str, torch.Tensor]:
        """Weighted losses of the active regularizers (see the class docstring for the keys).

        Args:
            z_v, z_t: [N, D] L2-normalised contrastive features (ALBEF: ``image_feat``, ``text_feat``).
            z_v_aug, z_t_aug: [N, D] augmented-view features (ALBEF: the momentum features ``image_feat_m``,
                ``text_feat_m``; CLIP: the features of the augmented image / EDA caption).
            temperature: tau of the in-modal contrastive terms (float or scalar tensor).
            image_embeds, text_embeds: [N, Dv], [N, Dt] unnormalised encoder CLS features, input of the
                separation heads (only needed for ``separation``).
            image_embeds_aug, text_embeds_aug: the augmented view's CLS features (ALBEF: momentum encoders'),
                mapped to the augmented independent features. If omitted, L^i_Con uses its printed literal
                form (no augmented view).
            sep_heads_aug: momentum copy of ``self.separation`` (``self.separation.momentum_copy()``). If given,
                the augmented independent features are ``sep_heads_aug(image_embeds_aug, text_embeds_aug)``
                under ``torch.no_grad()`` (ALBEF); if not, ``self.separation`` maps them with gradient (CLIP).
            gather: contrastive terms (inmodal, L^i_Con) against the global batch; geometric consistency too
                when its ``gather`` is set; the rest stays local.
            generator: RNG for ``bridge.t: uniform``.
            sample_ids: optional [N] integer ids (LAVIS's ``image_id``): in the in-modal terms and L^i_Con the
                rows with the same id are all positives (no false negatives between captions of one image).
        """
        out: Dict[str, torch.Tensor] = {}
        spec = self._spec
        if "inmodal" in spec:
            out["loss_inmodal"] = spec["inmodal"]["weight"] * self._inmodal(
                z_v, z_t, z_v_aug, z_t_aug, temperature, gather, sample_ids)
        if "separation" in spec:
            out["loss_sep"] = spec["separation"]["weight"] * self._separation(
                z_v, z_t, temperature, image_embeds, text_embeds, image_embeds_aug, text_embeds_aug, sep_heads_aug,
                gather, sample_ids)
        if "bridge" in spec:
            out["loss_bridge"] = spec["bridge"]["weight"] * self._bridge(z_v, z_t, z_v_aug, generator)
        if "geometric" in spec:
            out["loss_geo"] = spec["geometric"]["weight"] * self._geometric(z_v, z_t, z_v_aug, z_t_aug, gather)
        return out

    def _inmodal(self, z_v, z_t, z_v_aug, z_t_aug, temperature, gather, sample_ids) -> torch.Tensor:
        """Unweighted ``1/2 (L_V2V + L_T2T)``."""
        if z_v_aug is None or z_t_aug is None:
            raise ValueError("LatentStructure: 'inmodal' needs z_v_aug and z_t_aug")
        terms = contrastive_terms(z_v, z_t, z_v_aug, z_t_aug, temperature, gather, cross_modal=False,
                                  sample_ids=sample_ids)
        return 0.5 * (terms["v2v"] + terms["t2t"])

    def _separation(self, z_v, z_t, temperature, image_embeds, text_embeds, image_embeds_aug, text_embeds_aug,
                    sep_heads_aug, gather, sample_ids) -> torch.Tensor:
        """Unweighted L_Sep, the independent features computed here from the encoder features."""
        if image_embeds is None or text_embeds is None:
            raise ValueError("LatentStructure: 'separation' needs image_embeds and text_embeds "
                             "(the unnormalised encoder CLS features)")
        if (image_embeds_aug is None) != (text_embeds_aug is None):
            raise ValueError("LatentStructure: image_embeds_aug and text_embeds_aug must be given together")
        if image_embeds_aug is None and sep_heads_aug is not None:
            raise ValueError("LatentStructure: sep_heads_aug given without image_embeds_aug/text_embeds_aug")
        z_v_ind, z_t_ind = self.separation(image_embeds, text_embeds)
        z_v_ind_aug = z_t_ind_aug = None
        if image_embeds_aug is not None:
            if sep_heads_aug is not None:
                with torch.no_grad():
                    z_v_ind_aug, z_t_ind_aug = sep_heads_aug(image_embeds_aug, text_embeds_aug)
            else:
                z_v_ind_aug, z_t_ind_aug = self.separation(image_embeds_aug, text_embeds_aug)
        return self.separation.loss(z_v, z_t, z_v_ind, z_t_ind, z_v_ind_aug, z_t_ind_aug, temperature, gather,
                                    sample_ids)

    def _bridge(self, z_v, z_t, z_v_aug, generator) -> torch.Tensor:
        """Unweighted L_Br in the configured form."""
        if z_v_aug is None:
            raise ValueError("LatentStructure: 'bridge' needs z_v_aug")
        b = self._spec["bridge"]
        if b["form"] == "online":  # the online image feature placed on the bridge from z^a_V to z_T
            start, point = z_v_aug, z_v
        else:  # literal: the augmented image feature placed on the bridge from z_V to z_T
            start, point = z_v, z_v_aug
        return brownian_bridge_loss(start, z_t, point, t=b["t"], generator=generator)

    def _geometric(self, z_v, z_t, z_v_aug, z_t_aug, gather) -> torch.Tensor:
        """Unweighted L_GC (+ L^a_GC with the aug views) at the configured normalisation."""
        if (z_v_aug is None) != (z_t_aug is None):
            raise ValueError("LatentStructure: 'geometric' needs z_v_aug and z_t_aug together (or neither)")
        g = self._spec["geometric"]
        return geometric_consistency_loss(z_v, z_t, z_v_aug, z_t_aug, normalization=g["normalization"],
                                          gather=gather and g["gather"])
