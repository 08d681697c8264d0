"""Image classification datasets: any ImageFolder tree, and CIFAR-10 / CIFAR-100 read from torchvision's on-disk
format. Items are ``{"image": Tensor [3, H, W], "label": int, "image_id", "instance_id": str}`` and each dataset
has ``classnames`` (``list[str]``, index = label)."""
import os
import pickle

import numpy as np
from lavis.datasets.datasets.base_dataset import BaseDataset
from lavis.datasets.datasets.imagefolder_dataset import ImageFolderDataset
from PIL import Image


def folder_classnames(folder_names):
    """Readable class names from ImageFolder class folder names: ``_`` -> space (``"maple_tree"`` -> ``"maple
    tree"``)."""
    return [name.replace("_", " ") for name in folder_names]


class ImageFolderClassificationDataset(ImageFolderDataset):
    """LAVIS's ``ImageFolderDataset`` over ``vis_root/<class>/<image>``, with class names and relative image ids.

    Args:
        vis_processor: image transform (PIL -> Tensor [3, H, W]).
        vis_root: the split folder (absolute).
        classnames: ``list[str]`` in the sorted order of the class folders, or ``None`` for the folder names with
            ``_`` -> space.

    Items: ``{"image": Tensor, "label": int, "image_id": "<class>/<file>", "instance_id": str}``.
    """

    def __init__(self, vis_processor, vis_root, classnames=None, **kwargs):
        vis_root = os.path.abspath(vis_root)
        super().__init__(vis_processor=vis_processor, vis_root=vis_root, classnames=[])
        self.folder_names = list(self.inner_dataset.classes)
        if classnames:
            classnames = [str(c) for c in classnames]
            if len(classnames) != len(self.folder_names):
                raise ValueError(
                    f"{len(classnames)} class names given (build_info.classnames) but {vis_root} has "
                    f"{len(self.folder_names)} class folders ({', '.join(self.folder_names[:10])}"
                    f"{' ...' if len(self.folder_names) > 10 else ''}); give one name per folder, in sorted "
                    "folder order")
            self.classnames = classnames
        else:
            self.classnames = folder_classnames(self.folder_names)
        for ann in self.annotation:  # LAVIS keeps the joined path; relative ids are portable in result files
            ann["image"] = os.path.relpath(ann["image"], vis_root)
            ann["image_id"] = ann["image"]


def cifar_folder(root, variant):
    """The folder holding the CIFAR python files: ``root/<torchvision base folder>`` or ``root`` itself."""
    from torchvision.datasets import CIFAR10, CIFAR100

    tv = {"cifar10": CIFAR10, "cifar100": CIFAR100}[variant]
    nested = os.path.join(root, tv.base_folder)
    if os.path.isdir(nested):
        return nested, tv
    if os.path.isfile(os.path.join(root, tv.meta["filename"])):
        return root, tv
    return nested, tv


def cifar_download_hint(variant, root):
    """How to put CIFAR where the builder looks (a sentence for error messages)."""
    tv_name = {"cifar10": "CIFAR10", "cifar100": "CIFAR100"}[variant]
    url = {"cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
           "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"}[variant]
    return (f"Download the {tv_name.replace('CIFAR', 'CIFAR-')} python version into {root} "
            f"(torchvision.datasets.{tv_name}(root={root!r}, download=True) on a machine with network, or extract "
            f"{url} there), or set datasets.{variant}.build_info.images.storage to the folder that holds it.")


def read_cifar(root, variant="cifar10", train=False):
    """Read torchvision's on-disk CIFAR format (pickled batches) without downloading or checking md5 sums.

    Args:
        root: the folder holding ``cifar-10-batches-py/`` / ``cifar-100-python/`` (torchvision's ``root``), or that
            folder itself.
        variant: ``"cifar10"`` or ``"cifar100"`` (fine labels).
        train: the training batches, else the test batch.

    Returns:
        ``(images uint8 [N, 32, 32, 3], labels int64 [N], classnames list[str])``; class names from the meta file
        with ``_`` -> space.

    Raises:
        FileNotFoundError: naming the missing file and how to get the data.
    """
    folder, tv = cifar_folder(root, variant)
    files = [name for name, _ in (tv.train_list if train else tv.test_list)]
    needed = [tv.meta["filename"]] + files
    for name in needed:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{variant}: {path} not found (need {', '.join(needed)} in {folder}). "
                                    + cifar_download_hint(variant, root))
    with open(os.path.join(folder, tv.meta["filename"]), "rb") as f:
        meta = pickle.load(f, encoding="latin1")
    classnames = folder_classnames(meta[tv.meta["key"]])
    data, labels = [], []
    for name in files:
        with open(os.path.join(folder, name), "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        data.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.extend(entry["labels"] if "labels" in entry else entry["fine_labels"])
    images = np.ascontiguousarray(np.concatenate(data).transpose(0, 2, 3, 1))
    return images, np.asarray(labels, dtype=np.int64), classnames


class CIFARDataset(BaseDataset):
    """CIFAR-10 / CIFAR-100 from torchvision's on-disk format (see :func:`read_cifar`), held in memory as uint8.

    Items: ``{"image": Tensor, "label": int, "image_id": int (index in the split), "instance_id": str}``.
    """

    def __init__(self, vis_processor, vis_root, variant="cifar10", split="test", **kwargs):
        super().__init__(vis_processor=vis_processor, vis_root=vis_root, ann_paths=[])
        self.images, labels, self.classnames = read_cifar(vis_root, variant, train=split == "train")
        self.annotation = [{"label": int(y), "image_id": i} for i, y in enumerate(labels)]
        self._add_instance_ids()

    def __getitem__(self, index):
        ann = self.annotation[index]
        image = self.vis_processor(Image.fromarray(self.images[index]))
        return {"image": image, "label": ann["label"], "image_id": ann["image_id"], "instance_id": ann["instance_id"]}
