"""What every evaluation-suite builder shares (:mod:`lavis_latent.datasets.eval_datasets`): the dataset class of
(path, label) lists, the builder base that checks the files before building and the error hint naming the path,
the config key and where the data comes from."""
import os
from typing import List

from lavis.datasets.datasets.base_dataset import BaseDataset
from PIL import Image

from lavis_latent.datasets.classification_builders import ClassificationBuilder

_IMAGE_EXT = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".webp")


def image_files(folder):
    return sorted(e.name for e in os.scandir(folder) if e.is_file() and e.name.lower().endswith(_IMAGE_EXT))


class ListReader:
    """``(PIL image, label)`` by index from ``(path, label)`` items, or from ``(index, label)`` into a uint8 array
    [N, H, W, 3]."""

    def __init__(self, items, array=None):
        self.items, self.array = list(items), array

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        src, label = self.items[i]
        image = Image.fromarray(self.array[src]) if self.array is not None else Image.open(src)
        return image, int(label)


class EvalClassificationDataset(BaseDataset):
    """A classification split read by ``reader`` (``reader[i]`` -> ``(PIL image, label)``: a torchvision dataset or
    :class:`ListReader`).

    Items: ``{"image": Tensor, "label": int, "image_id": int, "instance_id": str}``; ``classnames`` (index = label)
    and ``class_subset`` (``None``, or the label indices the split's images can have: zero-shot scores only those).
    """

    def __init__(self, vis_processor, reader, classnames, class_subset=None):
        super().__init__(vis_processor=vis_processor, vis_root="", ann_paths=[])
        self.reader = reader
        self.classnames = list(classnames)
        self.class_subset = None if class_subset is None else [int(i) for i in class_subset]
        self.annotation = [{"image_id": i} for i in range(len(reader))]
        self._add_instance_ids()

    def __getitem__(self, index):
        image, label = self.reader[index]
        ann = self.annotation[index]
        return {"image": self.vis_processor(image.convert("RGB")), "label": int(label), "image_id": ann["image_id"],
                "instance_id": ann["instance_id"]}


def torchvision_class(name):
    import torchvision.datasets

    return getattr(torchvision.datasets, name)


def readable_names(names):
    return [str(n).replace("_", " ") for n in names]


class EvalDatasetBuilder(ClassificationBuilder):
    """A dataset read from its own files under ``build_info.images.storage`` (torchvision's ``root``)."""

    train_dataset_cls = eval_dataset_cls = EvalClassificationDataset
    #: where the data comes from (a sentence for error messages)
    source = ""

    def required(self, split) -> List[str]:
        """Paths (relative to the storage) that split ``split`` needs; a trailing ``/``: a folder."""
        raise NotImplementedError

    def read(self, split):
        """``(reader, classnames, class_subset)`` of one split."""
        raise NotImplementedError

    def missing_message(self, path, split, what="not found"):
        root = self.storage()
        return (f"{self.name}: {path} {what} (split {split!r}). The builder reads the dataset under "
                f"datasets.{self.name}.build_info.images.storage = {root} (relative paths are joined to LAVIS's "
                f"cache_root; set it with --options datasets.{self.name}.build_info.images.storage=<dir>). "
                f"{self.source}")

    def check_files(self):
        root = self.storage()
        for split in self.splits():
            for rel in self.required(split):
                path = os.path.join(root, rel)
                ok = os.path.isdir(path) if rel.endswith("/") else os.path.isfile(path)
                if not ok:
                    raise FileNotFoundError(self.missing_message(path.rstrip("/"), split))
            self.check_split(root, split)

    def check_split(self, root, split):
        """Further completeness checks of a split (class folders ...)."""

    def make_dataset(self, split, vis_processor):
        reader, classnames, subset = self.read(split)
        return self.eval_dataset_cls(vis_processor=vis_processor, reader=reader, classnames=classnames,
                                     class_subset=subset)


def data_hint(what, tv=None, url=None, extra=""):
    parts = [f"{what}:"]
    if tv:
        parts.append(f"torchvision.datasets.{tv}(root=<storage>, download=True) on a machine with network writes "
                     "this layout")
    if url:
        parts.append(("or" if tv else "download") + f" {url} into <storage>, extracting archives there")
    return " ".join(parts) + ("." if not extra else f"; {extra}")
