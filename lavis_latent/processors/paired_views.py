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

from lavis.common.registry import registry
from lavis.processors.blip_processors import BlipImageBaseProcessor
from lavis.processors.clip_processors import _convert_to_rgb
from omegaconf import OmegaConf
from torchvision import transforms
from torchvision.transforms.functional import InterpolationMode

__all__ = ["PairedViews", "ClipLatentImageTrainProcessor", "unpack_views"]

#: ``view``: the original (mildly transformed) sample; ``aug``: its augmented view.
PairedViews = collections.namedtuple("PairedViews", ["view", "aug"])


def unpack_views(value):
    """``(view, aug)`` of a ``PairedViews`` (or any 2-field namedtuple named so), ``(value, None)`` otherwise."""
    if isinstance(value, PairedViews) or (isinstance(value, tuple) and hasattr(value, "_fields")
                                          and tuple(value._fields) == PairedViews._fields):
        return value.view, value.aug
    return value, None


def _check_scale(name, lo, hi):
    lo, hi = float(lo), float(hi)
    if not 0.0 < lo <= hi <= 1.0:
        raise ValueError(f"{name}: need 0 < min <= max <= 1 (fractions of the image area), got ({lo}, {hi})")
    return lo, hi


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
        aug = [transforms.RandomResizedCrop(self.image_size, scale=aug_scale, interpolation=InterpolationMode.BICUBIC)]
        if self.flip:
            aug.append(transforms.RandomHorizontalFlip(p=0.5))
        self.aug_transform = transforms.Compose(aug + [_convert_to_rgb, transforms.ToTensor(), self.normalize])

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
