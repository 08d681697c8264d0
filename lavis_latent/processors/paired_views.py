"""``PairedViews`` and the paired-view image processor of the two-tower model (``clip_latent``).

The CLIP experiments of the paper (Sec. 4) need, for every image-caption pair, an *augmented* view of both: "random
augmentation such as flipping and cropping" for the image and EDA (Wei & Zou, 2019) for the caption. The training
processors produce both views at once, as a ``PairedViews(view, aug)`` namedtuple, so LAVIS's own dataset classes
and collate function carry them unchanged: torch's ``default_collate`` rebuilds a namedtuple field by field, so a
batch holds ``PairedViews(view=Tensor[N, 3, H, W], aug=Tensor[N, 3, H, W])`` under ``"image"`` and
``PairedViews(view=list[str], aug=list[str])`` under ``"text_input"``. ``ClipLatent.forward`` accepts exactly that.

Note: LAVIS's ``prepare_sample`` / ``move_to_cuda`` only moves tensors found in dicts and lists, not in tuples, so the
tensors of a ``PairedViews`` stay on the CPU until the model moves them (``ClipLatent`` does).
"""
import collections

import torch

from lavis.common.registry import registry
from lavis.processors.blip_processors import BlipImageBaseProcessor
from lavis.processors.clip_processors import _convert_to_rgb
from omegaconf import OmegaConf
from torchvision import transforms
from torchvision.transforms.functional import InterpolationMode

__all__ = ["PairedViews", "ClipLatentImageTrainProcessor", "PairedImageTrainProcessor", "unpack_views", "batch_views",
           "batch_sample_ids"]

#: ``view``: the original (mildly transformed) sample; ``aug``: its augmented view.
PairedViews = collections.namedtuple("PairedViews", ["view", "aug"])


def unpack_views(value):
    """``(view, aug)`` of a ``PairedViews`` (or any 2-field namedtuple named so), ``(value, None)`` otherwise."""
    if isinstance(value, PairedViews) or (isinstance(value, tuple) and hasattr(value, "_fields")
                                          and tuple(value._fields) == PairedViews._fields):
        return value.view, value.aug
    return value, None


def batch_views(samples, key, aug_key):
    """``(view, aug)`` of a batch: from ``samples[key]`` (a value or ``PairedViews``) and/or ``samples[aug_key]``
    (the augmented view given separately); ``aug`` is None where the batch has none. Both at once is an error."""
    if key not in samples:
        raise KeyError(f"the batch has no {key!r} (keys: {sorted(samples)})")
    view, aug = unpack_views(samples[key])
    if samples.get(aug_key) is not None:
        if aug is not None:
            raise ValueError(f"the batch has augmented views both in samples[{key!r}] (PairedViews) and in "
                             f"samples[{aug_key!r}]: give one of them")
        aug = samples[aug_key]
    return view, aug


def batch_sample_ids(samples):
    """``samples["image_id"]`` as a [N] integer tensor (captions of one image share it), or None where absent."""
    ids = samples.get("image_id")
    return ids.view(-1) if torch.is_tensor(ids) and not ids.is_floating_point() else None


def _check_scale(name, lo, hi):
    lo, hi = float(lo), float(hi)
    if not 0.0 < lo <= hi <= 1.0:
        raise ValueError(f"{name}: need 0 < min <= max <= 1 (fractions of the image area), got ({lo}, {hi})")
    return lo, hi


def _crop_flip(image_size, scale, flip, normalize):
    """Random resized crop (``scale`` of the area, bicubic) + optional horizontal flip, RGB, tensor, normalised."""
    aug = [transforms.RandomResizedCrop(image_size, scale=scale, interpolation=InterpolationMode.BICUBIC)]
    if flip:
        aug.append(transforms.RandomHorizontalFlip(p=0.5))
    return transforms.Compose(aug + [_convert_to_rgb, transforms.ToTensor(), normalize])


@registry.register_processor("clip_latent_image_train")
class ClipLatentImageTrainProcessor(BlipImageBaseProcessor):
    """Training image processor of ``clip_latent``: returns ``PairedViews(view, aug)``, two [3, S, S] tensors.

    * ``view``: LAVIS's ``clip_image_train`` transform (random resized crop of scale ``[view_min_scale,
      view_max_scale]``, default 0.9-1, bicubic, RGB, CLIP normalisation): the mild train view the plain CLIP
      baseline sees.
    * ``aug``: the paper's augmentation of the same image: a random resized crop of scale ``[min_scale, max_scale]``
      (default 0.5-1) then a horizontal flip with probability 0.5 (``flip: True``), same normalisation.

    Both draw from torch's global RNG, as LAVIS's own processors do (each DataLoader worker's torch RNG is seeded by
    the DataLoader from the run seed, so a run with a fixed ``run.seed`` is reproducible).

    Config keys: ``image_size`` (224), ``min_scale`` (0.5), ``max_scale`` (1.0), ``flip`` (True),
    ``view_min_scale`` (0.9), ``view_max_scale`` (1.0), ``mean``, ``std`` (CLIP's, as ``clip_image_train``).
    Caveat: a flip mirrors left and right; if captions name positions ("on the left"), set ``flip: False``.
    """

    def __init__(self, image_size=224, mean=None, std=None, min_scale=0.5, max_scale=1.0, flip=True,
                 view_min_scale=0.9, view_max_scale=1.0):
        super().__init__(mean=mean, std=std)
        self.image_size = int(image_size)
        view_scale = _check_scale("view_min_scale/view_max_scale", view_min_scale, view_max_scale)
        aug_scale = _check_scale("min_scale/max_scale", min_scale, max_scale)
        self.flip = bool(flip)
        self.view_transform = transforms.Compose([
            transforms.RandomResizedCrop(self.image_size, scale=view_scale, interpolation=InterpolationMode.BICUBIC),
            _convert_to_rgb,
            transforms.ToTensor(),
            self.normalize,
        ])
        self.aug_transform = _crop_flip(self.image_size, aug_scale, self.flip, self.normalize)

    def __call__(self, item):
        """``PairedViews(view [3, S, S], aug [3, S, S])`` of a PIL image (S = ``image_size``)."""
        return PairedViews(self.view_transform(item), self.aug_transform(item))

    @classmethod
    def from_config(cls, cfg=None):
        """Build from a processor config (see the class docstring for the keys)."""
        if cfg is None:
            cfg = OmegaConf.create()
        return cls(
            image_size=cfg.get("image_size", 224),
            mean=cfg.get("mean", None),
            std=cfg.get("std", None),
            min_scale=cfg.get("min_scale", 0.5),
            max_scale=cfg.get("max_scale", 1.0),
            flip=cfg.get("flip", True),
            view_min_scale=cfg.get("view_min_scale", 0.9),
            view_max_scale=cfg.get("view_max_scale", 1.0),
        )


def _named_processor(key, cfg):
    """A registered LAVIS processor built from ``cfg`` (a mapping with ``name``), for ``paired_image_train.<key>``."""
    name = cfg.get("name") if hasattr(cfg, "get") else None
    cls = registry.get_processor_class(name) if name else None
    if cls is None:
        valid = ", ".join(sorted(registry.list_processors()))
        raise ValueError(f"paired_image_train: '{key}.name' must name a registered processor, got {name!r} "
                         f"(registered: {valid})")
    return cls.from_config(OmegaConf.create(dict(cfg)))


@registry.register_processor("paired_image_train")
class PairedImageTrainProcessor(BlipImageBaseProcessor):
    """Training image processor for any model with an augmented view (ALBEF's ``aug_view: data``):
    ``PairedViews(view, aug)`` of a PIL image.

    * ``view``: the processor named by the ``view`` config (any registered LAVIS processor, e.g.
      ``{name: blip_image_train, image_size: 256}``; default: ``blip_image_train`` at ``image_size``), i.e. exactly
      what the plain model is trained on.
    * ``aug``: the processor named by the ``aug`` config if given; else the paper's "random augmentation such as
      flipping and cropping": a random resized crop of scale ``[min_scale, max_scale]`` (0.5-1) at ``image_size``,
      a horizontal flip with probability 0.5 (``flip: True``), normalised with ``mean`` / ``std``.

    Config keys: ``view``, ``aug``, ``image_size`` (384, as blip_image_train), ``min_scale``, ``max_scale``,
    ``flip``, ``mean``, ``std``. Both views must come out the same size (the model stacks them).
    """

    def __init__(self, view, aug=None, image_size=384, mean=None, std=None, min_scale=0.5, max_scale=1.0,
                 flip=True):
        super().__init__(mean=mean, std=std)
        self.view_processor = view
        self.aug_processor = aug or _crop_flip(int(image_size), _check_scale("min_scale/max_scale", min_scale,
                                                                            max_scale), bool(flip), self.normalize)

    def __call__(self, item):
        """``PairedViews(view [3, S, S], aug [3, S, S])`` of a PIL image."""
        return PairedViews(self.view_processor(item), self.aug_processor(item))

    @classmethod
    def from_config(cls, cfg=None):
        """Build from a processor config (see the class docstring for the keys)."""
        if cfg is None:
            cfg = OmegaConf.create()
        image_size = cfg.get("image_size", 384)
        view_cfg = cfg.get("view", None) or {"name": "blip_image_train", "image_size": image_size}
        aug_cfg = cfg.get("aug", None)
        return cls(
            view=_named_processor("view", view_cfg),
            aug=_named_processor("aug", aug_cfg) if aug_cfg else None,
            image_size=image_size,
            mean=cfg.get("mean", None),
            std=cfg.get("std", None),
            min_scale=cfg.get("min_scale", 0.5),
            max_scale=cfg.get("max_scale", 1.0),
            flip=cfg.get("flip", True),
        )
