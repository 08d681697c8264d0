"""The natural-distribution-shift datasets of the paper's Table 2 (ImageNet-V2, -Sketch, -A, -R), as LAVIS builders
reading each dataset's own folders; A and R carry their 200-class subset
(:mod:`lavis_latent.datasets.eval_datasets`)."""
import functools
import os
from typing import List, Optional, Sequence

from lavis_latent.datasets.eval_base import EvalDatasetBuilder, ListReader, data_hint, image_files
from lavis_latent.datasets.eval_names import (
    SUBSET_WNIDS,
    clip_benchmark_data,
    clip_classnames,
    imagenet_wnids,
    wnid_indices,
)
from lavis_latent.datasets.plugin_builder import register_plugin_builder


class _ImageNetShiftBuilder(EvalDatasetBuilder):
    """An ImageNet test set in one folder per class; labels are ImageNet indices, names CLIP's 1000."""

    allowed_splits = ("test",)
    folder = None

    def required(self, split):
        return [self.folder + "/"]

    def class_folders(self):
        base = os.path.join(self.storage(), self.folder)
        return sorted(d.name for d in os.scandir(base) if d.is_dir())

    def expected_folders(self) -> Sequence[str]:
        raise NotImplementedError

    def folder_label(self, name) -> int:
        raise NotImplementedError

    def subset(self) -> Optional[List[int]]:
        return None

    def check_split(self, root, split):
        base = os.path.join(root, self.folder)
        have = set(self.class_folders())
        missing = [f for f in self.expected_folders() if f not in have]
        if missing:
            raise FileNotFoundError(self.missing_message(base, split, f"lacks {len(missing)} of its "
                                                         f"{len(self.expected_folders())} class folders (e.g. "
                                                         f"{', '.join(missing[:3])}): incomplete"))

    def read(self, split):
        base = os.path.join(self.storage(), self.folder)
        items = []
        for name in self.expected_folders():
            label = self.folder_label(name)
            items += [(os.path.join(base, name, f), label) for f in image_files(os.path.join(base, name))]
        if not items:
            raise FileNotFoundError(self.missing_message(base, split, "holds no images"))
        return ListReader(items), clip_classnames("imagenet1k"), self.subset()


@register_plugin_builder("imagenet_v2")
class ImageNetV2Builder(_ImageNetShiftBuilder):
    """ImageNet-V2 (matched frequency): folders ``0`` ... ``999`` are ImageNet class indices."""

    folder = "imagenetv2-matched-frequency-format-val"
    source = data_hint("ImageNet-V2", None, "https://huggingface.co/datasets/vaishaal/ImageNetV2/resolve/main/"
                   "imagenetv2-matched-frequency.tar.gz")

    def expected_folders(self):
        return [str(i) for i in range(1000)]

    def folder_label(self, name):
        return int(name)


@register_plugin_builder("imagenet_sketch")
class ImageNetSketchBuilder(_ImageNetShiftBuilder):
    """ImageNet-Sketch: 1000 wnid folders."""

    folder = "sketch"
    source = data_hint("ImageNet-Sketch", None, "ImageNet-Sketch.zip (https://github.com/HaohanWang/ImageNet-Sketch; "
                   "also on Kaggle and the Hugging Face hub as imagenet_sketch)", "its sketch/ folder goes to "
                   "<storage>/sketch")

    def expected_folders(self):
        return imagenet_wnids()

    def folder_label(self, name):
        return self._index[name]

    @functools.cached_property
    def _index(self):
        return {w: i for i, w in enumerate(imagenet_wnids())}


class _SubsetBuilder(ImageNetSketchBuilder):
    """ImageNet-A / -R: 200 wnid folders (``build_info.wnids`` overrides the official list)."""

    def expected_folders(self):
        wnids = self.config.build_info.get("wnids")
        return sorted(str(w) for w in wnids) if wnids else list(clip_benchmark_data()[SUBSET_WNIDS[self.name]])

    def subset(self):
        return sorted(wnid_indices(self.expected_folders()))

    def check_split(self, root, split):
        super().check_split(root, split)
        extra = sorted(set(self.class_folders()) - set(self.expected_folders()))
        if extra:
            raise ValueError(f"{self.name}: {os.path.join(root, self.folder)} has class folders outside its "
                             f"{len(self.expected_folders())}-class subset: {', '.join(extra[:5])}")


@register_plugin_builder("imagenet_a")
class ImageNetABuilder(_SubsetBuilder):
    """ImageNet-A (natural adversarial examples), 200 classes."""

    folder = "imagenet-a"
    source = data_hint("ImageNet-A", None, "https://people.eecs.berkeley.edu/~hendrycks/imagenet-a.tar")


@register_plugin_builder("imagenet_r")
class ImageNetRBuilder(_SubsetBuilder):
    """ImageNet-R (renditions), 200 classes."""

    folder = "imagenet-r"
    source = data_hint("ImageNet-R", None, "https://people.eecs.berkeley.edu/~hendrycks/imagenet-r.tar")
