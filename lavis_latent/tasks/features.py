"""Frozen features for the classification tasks: reading ``extract_features`` fields, whole datasets, all ranks.

Any model with LAVIS's feature-extractor method ``model.extract_features(samples, mode="image" | "text")`` returning
a ``BlipOutputFeatures``-like object works: ``clip_latent`` ([N, E] / [N, D] fields) as well as LAVIS's ALBEF / BLIP
feature extractors, whose fields are [N, L, D] token sequences (token 0, the [CLS] token, is used).
"""
import contextlib

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from torch.utils.data.dataloader import default_collate

from lavis_latent.regularizers.distributed import world_info

__all__ = ["PROBE_FEATURES", "pooled", "model_device", "feature_field", "parse_probe_features", "image_features",
           "get_vis_processor", "extract_dataset_features", "all_ranks", "wait_for_all_ranks"]

PROBE_FEATURES = ("image_embeds", "image_embeds_proj", "image_embeds_proj+ind")
#: how many ``.dataset`` wrappers (``Subset``, ``ConcatDataset`` parts, ...) are looked through
_WRAPPER_DEPTH = 8


def _field(features, name):
    """Field ``name`` of an ``extract_features`` output (an object or a dict), None when absent."""
    value = getattr(features, name, None)
    if value is None and isinstance(features, dict):
        value = features.get(name)
    return value


def pooled(x):
    """A feature field as [N, D]: [N, D] stays, a token sequence [N, L, D] gives token 0 (ALBEF / BLIP [CLS])."""
    if x.dim() == 3:
        return x[:, 0]
    if x.dim() != 2:
        raise ValueError(f"expected features of shape [N, D] or [N, L, D], got {tuple(x.shape)}")
    return x


def model_device(model):
    """The device of the model's first parameter or buffer (CPU for a model with neither)."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def feature_field(model, samples, mode, name):
    """``model.extract_features(samples, mode)``'s field ``name`` as [N, D] (token 0 of [N, L, D]).

    Raises:
        TypeError: the model has no ``extract_features``.
        ValueError: the field is missing or None (the message names the model and the field).
    """
    if not hasattr(model, "extract_features"):
        raise TypeError(f"{type(model).__name__} has no extract_features(samples, mode): zero-shot classification and "
                        "linear probes need a feature extractor (clip_latent, or LAVIS's albef/blip_feature_extractor)")
    features = model.extract_features(samples, mode=mode)
    value = _field(features, name)
    if value is None:
        hint = (" (the separation heads' independent features: only a model with model.latent.separation has "
                "them; use probe_features: image_embeds_proj or image_embeds)") if name.endswith("_ind") else ""
        raise ValueError(f"{type(model).__name__}.extract_features(mode={mode!r}) returned no {name}{hint}")
    return pooled(value)


def parse_probe_features(spec):
    """``probe_features`` -> list of ``extract_features`` field names to concatenate.

    ``"image_embeds"``, ``"image_embeds_proj"``, or ``"+"``-joined names; a short part after the first (``proj``,
    ``ind``) means ``image_embeds_<part>``: ``"image_embeds_proj+ind"`` -> ``["image_embeds_proj",
    "image_embeds_ind"]`` (the paper's [z, z^i]).
    """
    parts = [p.strip() for p in str(spec).split("+") if p.strip()]
    if not parts:
        raise ValueError(f"run.probe_features is empty; use one of {', '.join(PROBE_FEATURES)}")
    names = [parts[0]] + [p if p.startswith("image_") else f"image_embeds_{p}" for p in parts[1:]]
    for n in names:
        if not n.startswith("image_embeds"):
            raise ValueError(f"run.probe_features={spec!r}: {n!r} is not an image feature field "
                             f"(image_embeds, image_embeds_proj, image_embeds_ind); e.g. {', '.join(PROBE_FEATURES)}")
    return names


@torch.no_grad()
def image_features(model, images, fields=("image_embeds_proj",), normalize=False):
    """Image features of a batch: the ``fields`` of ``extract_features(mode="image")`` concatenated, [N, sum D].

    Args:
        model: a model with ``extract_features``.
        images: Tensor [N, 3, H, W] (moved to the model's device).
        fields: feature field names (each [N, D] or [N, L, D] -> token 0).
        normalize: L2-normalise each field before concatenating.
    """
    samples = {"image": images.to(model_device(model))}
    if len(fields) == 1:
        x = feature_field(model, samples, "image", fields[0])
        return F.normalize(x, dim=-1) if normalize else x
    features = model.extract_features(samples, mode="image")
    out = []
    for name in fields:
        value = _field(features, name)
        if value is None:
            feature_field(model, samples, "image", name)  # raises with the explanation
        value = pooled(value)
        out.append(F.normalize(value, dim=-1) if normalize else value)
    return torch.cat(out, dim=-1)


# ----- datasets --------------------------------------------------------------------------------------------------
def _vis_processor_holder(dataset):
    """The first dataset along the ``.dataset`` chain (``dataset`` itself first) that has its own
    ``vis_processor`` attribute, or None."""
    d = dataset
    for _ in range(_WRAPPER_DEPTH):
        if "vis_processor" in vars(d):
            return d
        d = getattr(d, "dataset", None)
        if d is None:
            return None
    return None


def get_vis_processor(dataset):
    """The ``vis_processor`` of ``dataset`` or of a dataset it wraps (see ``_vis_processor_holder``), or None."""
    holder = _vis_processor_holder(dataset)
    return None if holder is None else holder.vis_processor


@contextlib.contextmanager
def _vis_processor_swapped(dataset, vis_processor):
    """Within the block ``dataset`` (or the dataset it wraps) uses ``vis_processor`` (None: its own)."""
    holder = _vis_processor_holder(dataset) if vis_processor is not None else None
    if holder is None:
        yield
        return
    old, holder.vis_processor = holder.vis_processor, vis_processor
    try:
        yield
    finally:
        holder.vis_processor = old


def _extract_in_order(model, dataset, fields, batch_size, num_workers, collate):
    """``(features float32 [n, D], labels int64 [n])`` numpy arrays of ``dataset``, in its order."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=collate)
    feats, labels = [], []
    for samples in loader:
        feats.append(image_features(model, samples["image"], fields).float().cpu())
        labels.append(torch.as_tensor(samples["label"]).long().cpu())
    x = torch.cat(feats).numpy() if feats else np.zeros((0, 0), np.float32)
    y = torch.cat(labels).numpy() if labels else np.zeros((0,), np.int64)
    return x, y


def _merge_shards(shards, n):
    """The full ``(features [n, D], labels [n])`` from every rank's ``(indices, features, labels)``."""
    dim = next(s[1].shape[1] for s in shards if len(s[0]))
    X, Y = np.zeros((n, dim), np.float32), np.zeros((n,), np.int64)
    for idx, xs, ys in shards:
        if len(idx):
            X[idx], Y[idx] = xs, ys
    return X, Y


@torch.no_grad()
def extract_dataset_features(model, dataset, fields, batch_size=64, num_workers=0, vis_processor=None):
    """Frozen image features and labels of a whole classification dataset, in dataset order.

    Under a multi-process group each rank extracts a strided shard (``rank::world_size``) and the shards are
    gathered, so every rank returns the full arrays.

    Args:
        model: a model with ``extract_features`` (used as is: the caller sets eval mode).
        dataset: items ``{"image": Tensor [3, H, W], "label": int}``; ``collater`` used when present.
        fields: ``extract_features`` field names, concatenated (see :func:`parse_probe_features`).
        batch_size, num_workers: of the plain (unshuffled) DataLoader.
        vis_processor: if given, used instead of the dataset's own during extraction (restored afterwards).

    Returns:
        ``(features float32 [N, D], labels int64 [N])`` numpy arrays.
    """
    rank, world = world_info()
    indices = list(range(rank, len(dataset), world))
    collate = getattr(dataset, "collater", None) or default_collate
    with _vis_processor_swapped(dataset, vis_processor):
        x, y = _extract_in_order(model, Subset(dataset, indices), fields, batch_size, num_workers, collate)
    shards = all_ranks((indices, x, y))
    if len(shards) == 1:
        return x, y
    return _merge_shards(shards, len(dataset))


# ----- ranks -----------------------------------------------------------------------------------------------------
def all_ranks(obj):
    """Every rank's ``obj`` in rank order (a one-element list without a multi-process group)."""
    _, world = world_info()
    if world == 1:
        return [obj]
    out = [None] * world
    dist.all_gather_object(out, obj)
    return out


def wait_for_all_ranks():
    """A barrier across the process group; nothing without a multi-process group."""
    if world_info()[1] > 1:
        dist.barrier()
