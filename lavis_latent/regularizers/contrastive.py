"""Base contrastive loss L_Con of the paper (Sec. 4; CLIP cross-modal + CODIS/CyCLIP in-modal terms).

Conventions (all features are expected L2-normalised, shape [N, D]; nothing is re-normalised here):

* Logits are ``<a, b> / temperature``; ``temperature`` is tau (ALBEF's ``temp``), not CLIP's ``logit_scale``
  (pass ``1 / logit_scale.exp()`` for a CLIP-style scale).
* In-modal terms (V2V, T2T) score ``z_v`` against the augmented view: logits ``z_v @ z_v_aug.T / tau`` with the
  diagonal as positives, so the negatives in the denominator are the *augmented* features of the other samples.
  This is the form of CyCLIP's code (``image_embeds @ augmented_image_embeds.T``), which the paper says it used.
  The paper's printed L_V2V has the augmented positive ``<z_Vj, z^a_Vj>`` in the numerator but the
  *non-augmented* ``<z_Vj, z_Vk>`` in the denominator (whose k = j term is then ``<z_Vj, z_Vj>``, not the
  positive); we do not implement that printed variant.
* Each term is a mean over the rows (queries) of a cross-entropy, as printed (the 1/N sum).
* ``gather=True``: every rank scores its local rows against the keys of all ranks (labels offset by
  ``rank * N``), with gradient through the gather (see :func:`gather_features`). Averaging the per-rank losses
  (and DDP's averaging of gradients) then reproduces the single-process loss on the global batch.
"""
from __future__ import annotations

from typing import Dict, Optional, Union

import torch
import torch.nn.functional as F

from ._checks import cast, check_ids, check_views, check_temperature, compute_dtype, no_autocast
from .distributed import gather_features, world_info

__all__ = ["contrastive_loss", "contrastive_terms", "info_nce", "gather_ids", "global_keys"]

Temperature = Union[float, torch.Tensor]


def info_nce(query: torch.Tensor, keys: torch.Tensor, temperature: torch.Tensor, offset: int = 0,
             query_ids: Optional[torch.Tensor] = None, key_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
    """InfoNCE of N queries [N, D] against M keys [M, D] (no validation, no casting).

    Without ids: ``-1/N sum_j log softmax_k(<query_j, keys_k> / tau)[j + offset]`` (key ``j + offset`` is the
    positive of query j). With ``query_ids`` [N] and ``key_ids`` [M]: every key with the query's id is a positive,
    with the target spread evenly over them, ``-1/N sum_j sum_{k: id_k = id_j} log softmax_k(...) / P_j`` where
    ``P_j`` counts those keys (LAVIS's ``AlbefRetrieval`` ITC targets, ``sim_targets``). With all ids distinct this
    is the id-free loss.
    """
    logits = query @ keys.t() / temperature
    if query_ids is None:
        labels = torch.arange(query.shape[0], device=query.device) + offset
        return F.cross_entropy(logits, labels)
    positives = (query_ids[:, None] == key_ids[None, :]).to(logits.dtype)
    targets = positives / positives.sum(dim=1, keepdim=True)
    return -(F.log_softmax(logits, dim=1) * targets).sum(dim=1).mean()


def gather_ids(ids: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """Sample ids [N] concatenated over all ranks in rank order (no gradient), or unchanged on one process."""
    if ids is None:
        return None
    rank, world = world_info()
    if world == 1:
        return ids
    out = [torch.empty_like(ids) for _ in range(world)]
    torch.distributed.all_gather(out, ids.contiguous())
    return torch.cat(out)


def global_keys(gather: bool, ids: Optional[torch.Tensor], *keys: Optional[torch.Tensor]):
    """The contrastive keys of the global batch: ``(label offset, keys, key ids)``.

    With ``gather`` and more than one rank: ``(rank * N, keys gathered over all ranks with gradient, ids gathered)``
    (see :func:`gather_features`); otherwise ``(0, keys, ids)`` unchanged. ``None`` keys stay ``None``; N is the
    rows of the first key given.
    """
    rank, world = world_info()
    if not gather or world == 1:
        return 0, keys, ids
    n = next(k.shape[0] for k in keys if k is not None)
    return rank * n, gather_features(*keys), gather_ids(ids)


@no_autocast
def contrastive_terms(
    z_v: torch.Tensor,
    z_t: torch.Tensor,
    z_v_aug: Optional[torch.Tensor] = None,
    z_t_aug: Optional[torch.Tensor] = None,
    temperature: Temperature = 0.07,
    gather: bool = False,
    cross_modal: bool = True,
    sample_ids: Optional[torch.Tensor] = None,
) -> Dict[str, torch.Tensor]:
    """The individual InfoNCE terms of L_Con (paper Sec. 4), unweighted.

    Args:
        z_v, z_t: image / text features [N, D] (paired row by row), L2-normalised.
        z_v_aug, z_t_aug: features of the augmented views [N, D] (both or neither). For ALBEF these are the
            momentum encoder's features (the paper's choice), usually computed without gradient.
        temperature: tau > 0, a float or a scalar tensor (e.g. a learnable, clamped ``temp``).
        gather: score local rows against the keys gathered from all ranks (see module docstring).
        cross_modal: compute V2T and T2V (set False to get only the in-modal terms).
        sample_ids: optional [N] integer ids (LAVIS's ``image_id``): rows with the same id are positives of each
            other in every term (multi-positive targets, as LAVIS's retrieval ITC), so a batch holding several
            captions of one image has no false negatives. With ``gather`` the ids are gathered with the keys.
            None: row j's only positive is row j (the paper's form).

    Returns:
        dict with ``"v2t"``, ``"t2v"`` (if ``cross_modal``) and ``"v2v"``, ``"t2t"`` (if aug views are given):
        ``L_V2T = -1/N sum_j log( e^{<z_Vj, z_Tj>/tau} / sum_k e^{<z_Vj, z_Tk>/tau} )``, T2V symmetric,
        ``L_V2V = -1/N sum_j log( e^{<z_Vj, z^a_Vj>/tau} / sum_k e^{<z_Vj, z^a_Vk>/tau} )`` (CyCLIP-code form,
        see module docstring), T2T symmetric. Scalars in float32 (float64 for float64 inputs).
    """
    check_views(z_v, z_t, z_v_aug, z_t_aug)
    dtype = compute_dtype(z_v, z_t, z_v_aug, z_t_aug)
    zv, zt, zva, zta = cast(dtype, z_v, z_t, z_v_aug, z_t_aug)
    tau = check_temperature(temperature, dtype, zv.device)
    ids = check_ids("sample_ids", sample_ids, zv.shape[0], zv.device)

    # gather only the keys that are used (each gather is a collective)
    offset, (kv, kt, kva, kta), key_ids = global_keys(
        gather, ids, *((zv, zt) if cross_modal else (None, None)), zva, zta)

    out: Dict[str, torch.Tensor] = {}
    if cross_modal:
        out["v2t"] = info_nce(zv, kt, tau, offset, ids, key_ids)
        out["t2v"] = info_nce(zt, kv, tau, offset, ids, key_ids)
    if zva is not None:
        out["v2v"] = info_nce(zv, kva, tau, offset, ids, key_ids)
        out["t2t"] = info_nce(zt, kta, tau, offset, ids, key_ids)
    return out


def contrastive_loss(
    z_v: torch.Tensor,
    z_t: torch.Tensor,
    z_v_aug: Optional[torch.Tensor] = None,
    z_t_aug: Optional[torch.Tensor] = None,
    temperature: Temperature = 0.07,
    gather: bool = False,
    sample_ids: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Paper's L_Con (Sec. 4): ``1/4 (L_V2T + L_T2V + L_V2V + L_T2T)``; plain CLIP ``1/2 (L_V2T + L_T2V)`` without aug.

    Args:
        z_v, z_t: L2-normalised image / text features [N, D], row j of each is a positive pair.
        z_v_aug, z_t_aug: L2-normalised features of the augmented image / text [N, D]; both or neither.
        temperature: tau > 0 (float or scalar tensor, may be learnable); logits are ``<a, b> / tau``.
        gather: use the global batch (all ranks) as negatives: local rows vs gathered columns, labels offset by
            ``rank * N`` (open_clip ``local_loss=True``); a no-op without an initialized process group.
        sample_ids: optional [N] integer ids; rows with one id are positives of each other (see
            :func:`contrastive_terms`).

    Returns:
        Scalar loss, float32 (float64 for float64 inputs; fp16/bf16 inputs are computed in float32).

    In-modal terms use ``z_v @ z_v_aug.T / tau`` (negatives = other samples' augmented features), as CyCLIP's
    code; the printed L_V2V's denominator uses non-augmented ``z_Vk`` (see the module docstring).
    Identical to CyCLIP's ``--inmodal`` loss ``(crossmodal + inmodal) / 2``.

    Raises:
        ValueError: non-2-D inputs, mismatched shapes (both shapes named), only one aug view, temperature <= 0.
    """
    terms = contrastive_terms(z_v, z_t, z_v_aug, z_t_aug, temperature, gather, sample_ids=sample_ids)
    return sum(terms.values()) / len(terms)
