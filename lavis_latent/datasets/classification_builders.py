"""The plugin's classification builders (``image_folder``, ``digits``, ``cifar10``, ``cifar100``) and the
captioned digits (``digits_caption``); see :mod:`lavis_latent.datasets.classification` for the table."""
import os

from lavis.datasets.builders.base_dataset_builder import BaseDatasetBuilder

from lavis_latent.datasets.builders import COCOCapBuilder, DemoBuilderMixin
from lavis_latent.datasets.classification_datasets import (
    CIFARDataset,
    ImageFolderClassificationDataset,
    cifar_download_hint,
    cifar_folder,
)
from lavis_latent.datasets.digits import digits_params, generate_digits
from lavis_latent.datasets.generation import GeneratedDataMixin
from lavis_latent.datasets.plugin_builder import PluginBuilderMixin, register_plugin_builder
from lavis_latent.datasets.storage import resolve_storage


class DigitsGeneratorMixin(GeneratedDataMixin):
    """``prepare_demo_data`` that writes the digits data (instead of the demo world) when the builder's storage
    paths lie under ``build_info.generator.root``."""

    generated_what = "digits data"
    generator_params = staticmethod(digits_params)
    generate_data = staticmethod(generate_digits)


class ClassificationBuilder(PluginBuilderMixin, BaseDatasetBuilder):
    """Base of the plugin's classification builders: ``build_info.splits`` + ``build_info.images.storage``, checked
    files, the ``train`` vis processor for the train split and the ``eval`` one for the others."""

    allowed_splits = None  # None: any split name

    def splits(self):
        """The configured split names (``build_info.splits``), checked against :attr:`allowed_splits`."""
        splits = list(self.config.build_info.get("splits") or [])
        if not splits:
            raise ValueError(f"datasets.{self.name}.build_info.splits is empty: name the splits to build")
        if self.allowed_splits is not None:
            bad = [s for s in splits if s not in self.allowed_splits]
            if bad:
                raise ValueError(f"datasets.{self.name}.build_info.splits: {bad} not available; {self.name} has "
                                 f"{', '.join(self.allowed_splits)} (the linear probe holds out part of train when "
                                 "there is no val split)")
        return splits

    def storage(self):
        """The image root (``build_info.images.storage``) as an absolute path (relative = under ``cache_root``)."""
        vis = self.config.build_info.get(self.data_type)
        storage = vis.get("storage") if vis is not None else None
        if not storage:
            raise ValueError(f"datasets.{self.name}.build_info.{self.data_type}.storage is not set: "
                             "the folder that holds the data")
        return resolve_storage(storage)

    def check_files(self):
        """Raise ``FileNotFoundError`` naming what is missing and where the data goes."""
        raise NotImplementedError

    def make_dataset(self, split, vis_processor):
        """The dataset of one split."""
        raise NotImplementedError

    def _download_data(self):  # LAVIS: main process only, before build()
        self.check_files()

    def build(self):
        """``{split: dataset}`` for every configured split (files checked first)."""
        self.check_files()
        self.build_processors()
        datasets = {}
        for split in self.splits():
            proc = self.vis_processors["train" if split == "train" else "eval"]
            if proc is None:
                raise ValueError(f"datasets.{self.name}.vis_processor."
                                 f"{'train' if split == 'train' else 'eval'} is not set (split {split!r})")
            datasets[split] = self.make_dataset(split, proc)
        return datasets


def _classnames_from_config(value, name):
    """``build_info.classnames``: a list, a path to a text file (one name per line), or None."""
    if value is None:
        return None
    if isinstance(value, str):
        path = resolve_storage(value)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"datasets.{name}.build_info.classnames: file {path} not found (a text file with "
                                    "one class name per line, in sorted class-folder order, or a yaml list)")
        with open(path) as f:
            return [line.strip() for line in f if line.strip()]
    return [str(c) for c in value]


@register_plugin_builder("image_folder")
class ImageFolderBuilder(ClassificationBuilder):
    """Any torchvision ImageFolder tree, one folder per split: ``<storage>/<split>/<class>/<image>``."""

    train_dataset_cls = eval_dataset_cls = ImageFolderClassificationDataset

    def _hint(self, root):
        return (f"Put one folder per split under {root} ({root}/<split>/<class name>/<image>, e.g. "
                f"{root}/test/golden_retriever/0001.jpg; class names are the folder names with _ -> space unless "
                f"build_info.classnames lists them) and set datasets.{self.name}.build_info.images.storage to that "
                "root (relative paths are joined to LAVIS's cache_root).")

    def check_files(self):
        """The image root and each split folder must exist, and each split folder must hold class folders."""
        root = self.storage()
        if not os.path.isdir(root):
            raise FileNotFoundError(f"{self.name}: image root {root} not found. " + self._hint(root))
        for split in self.splits():
            folder = os.path.join(root, split)
            if not os.path.isdir(folder):
                raise FileNotFoundError(f"{self.name}: split folder {folder} not found (split {split!r} of "
                                        f"build_info.splits). " + self._hint(root))
            classes = sorted(d.name for d in os.scandir(folder) if d.is_dir())
            if not classes:
                raise FileNotFoundError(f"{self.name}: {folder} has no class folders. " + self._hint(root))

    def make_dataset(self, split, vis_processor):
        """The split folder as an :class:`ImageFolderClassificationDataset` (class names from the config if given)."""
        classnames = _classnames_from_config(self.config.build_info.get("classnames"), self.name)
        return self.eval_dataset_cls(vis_processor=vis_processor, vis_root=os.path.join(self.storage(), split),
                                     classnames=classnames)


@register_plugin_builder("digits")
class DigitsBuilder(DigitsGeneratorMixin, ImageFolderBuilder):
    """scikit-learn's handwritten digits in the ImageFolder layout, generated under ``cache_root`` on first use
    (``build_info.generator``); class names ``zero`` ... ``nine``."""

    def _download_data(self):
        self.prepare_demo_data()
        self.check_files()

    def _hint(self, root):
        return ("The digits are generated into build_info.generator.root when build_info.generator.enabled is true "
                "and build_info.images.storage lies under that root; otherwise point the storage at an existing "
                "<root>/<split>/<class>/ tree. " + super()._hint(root))


class _CIFARBuilder(ClassificationBuilder):
    variant = None
    allowed_splits = ("train", "test")
    train_dataset_cls = eval_dataset_cls = CIFARDataset

    def check_files(self):
        """The meta file and the batches of the configured splits must be in the CIFAR folder."""
        root = self.storage()
        folder, tv = cifar_folder(root, self.variant)
        names = [tv.meta["filename"]]
        splits = self.splits()
        if "train" in splits:
            names += [n for n, _ in tv.train_list]
        if any(s != "train" for s in splits):
            names += [n for n, _ in tv.test_list]
        for name in names:
            path = os.path.join(folder, name)
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"{self.variant}: {path} not found (config key datasets.{self.name}.build_info.images.storage = "
                    f"{root}). " + cifar_download_hint(self.variant, root))

    def make_dataset(self, split, vis_processor):
        """One split (``train`` or ``test``) as a :class:`CIFARDataset`."""
        return self.eval_dataset_cls(vis_processor=vis_processor, vis_root=self.storage(), variant=self.variant,
                                     split=split)


@register_plugin_builder("cifar10")
class CIFAR10Builder(_CIFARBuilder):
    """CIFAR-10 (torchvision's ``cifar-10-batches-py`` under ``build_info.images.storage``): train 50k, test 10k."""

    variant = "cifar10"


@register_plugin_builder("cifar100")
class CIFAR100Builder(_CIFARBuilder):
    """CIFAR-100, fine labels (torchvision's ``cifar-100-python`` under ``build_info.images.storage``)."""

    variant = "cifar100"


@register_plugin_builder("digits_caption")
class DigitsCaptionBuilder(DigitsGeneratorMixin, DemoBuilderMixin, COCOCapBuilder):
    """The digit images with captions (LAVIS's ``coco_caption`` format and dataset classes), for pretraining
    (``image_text_pretrain`` / ``latent_pretrain``); generated on first use like ``digits``."""


CLASSIFICATION_BUILDERS = {cls.name: cls for cls in (ImageFolderBuilder, DigitsBuilder, CIFAR10Builder,
                                                     CIFAR100Builder)}
