"""The linear-probe datasets of the paper's Table 3 (CyCLIP's 14; CIFAR-10/100 and ImageNet have builders of their
own), as LAVIS builders reading each dataset's own files (:mod:`lavis_latent.datasets.eval_datasets`)."""
import os

import numpy as np

from lavis_latent.datasets.eval_base import (
    EvalDatasetBuilder,
    ListReader,
    data_hint,
    image_files,
    readable_names,
    torchvision_class,
)
from lavis_latent.datasets.eval_names import clip_classnames
from lavis_latent.datasets.plugin_builder import register_plugin_builder


@register_plugin_builder("caltech101")
class Caltech101Builder(EvalDatasetBuilder):
    """Caltech-101 in torchvision's layout, all 102 folders (``BACKGROUND_Google`` included, as CLIP's 102 class
    names); no official split: per class, a seeded ``build_info.train_per_class`` (30) images train, the rest test
    (at least one test image per class)."""

    allowed_splits = ("train", "test")
    source = data_hint("Caltech-101", "Caltech101", "https://data.caltech.edu/records/mzrjq-6wc02 (caltech-101.zip)",
                   "its 101_ObjectCategories/ folder goes to <storage>/caltech101/101_ObjectCategories")

    def _folder(self):
        return os.path.join(self.storage(), "caltech101", "101_ObjectCategories")

    def required(self, split):
        return ["caltech101/101_ObjectCategories/"]

    def check_split(self, root, split):
        n = len([d for d in os.scandir(self._folder()) if d.is_dir()])
        names = clip_classnames("caltech101")
        if n != len(names):
            raise FileNotFoundError(self.missing_message(self._folder(), split, f"has {n} category folders, not "
                                                         f"{len(names)} (incomplete)"))

    def read(self, split):
        folder = self._folder()
        per_class = int(self.config.build_info.get("train_per_class", 30))
        rng = np.random.default_rng(int(self.config.build_info.get("split_seed", 0)))
        items = []
        for label, cat in enumerate(sorted(d.name for d in os.scandir(folder) if d.is_dir())):
            files = image_files(os.path.join(folder, cat))
            order = rng.permutation(len(files))
            k = min(per_class, len(files) - 1)
            chosen = sorted(order[:k]) if split == "train" else sorted(order[k:])
            items += [(os.path.join(folder, cat, files[i]), label) for i in chosen]
        return ListReader(items), clip_classnames("caltech101"), None


class _TorchvisionBuilder(EvalDatasetBuilder):
    """A torchvision dataset class constructed with ``download=False`` (after this builder's own file check)."""

    tv_name = None
    tv_split = {}  # our split name -> torchvision's

    def tv_dataset(self, split):
        return torchvision_class(self.tv_name)(self.storage(), split=self.tv_split.get(split, split), download=False)

    def names(self, ds):
        return readable_names(ds.classes)

    def read(self, split):
        ds = self.tv_dataset(split)
        return ds, self.names(ds), None


@register_plugin_builder("dtd")
class DTDBuilder(_TorchvisionBuilder):
    """Describable Textures, partition ``build_info.partition`` (1)."""

    allowed_splits = ("train", "val", "test")
    tv_name = "DTD"
    source = data_hint("DTD", "DTD", "https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz",
                   "the archive's dtd/ folder goes to <storage>/dtd/dtd")

    def _partition(self):
        return int(self.config.build_info.get("partition", 1))

    def required(self, split):
        return ["dtd/dtd/images/", f"dtd/dtd/labels/{split}{self._partition()}.txt"]

    def tv_dataset(self, split):
        return torchvision_class("DTD")(self.storage(), split=split, partition=self._partition(), download=False)


@register_plugin_builder("fgvc_aircraft")
class FGVCAircraftBuilder(_TorchvisionBuilder):
    """FGVC Aircraft, 100 variants."""

    allowed_splits = ("train", "val", "trainval", "test")
    tv_name = "FGVCAircraft"
    source = data_hint("FGVC Aircraft", "FGVCAircraft",
                   "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz")

    def required(self, split):
        d = "fgvc-aircraft-2013b/data/"
        return [d + "images/", d + "variants.txt", d + f"images_variant_{split}.txt"]

    def names(self, ds):
        return list(ds.classes)


@register_plugin_builder("flowers102")
class Flowers102Builder(EvalDatasetBuilder):
    """Oxford Flowers-102, torchvision's layout read without torchvision's md5 check of the two .mat files."""

    allowed_splits = ("train", "val", "test")
    source = data_hint("Flowers-102", "Flowers102", "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/ (102flowers.tgz, "
                   "imagelabels.mat, setid.mat)", "they go to <storage>/flowers-102/{jpg/,imagelabels.mat,setid.mat}")

    def required(self, split):
        return ["flowers-102/jpg/", "flowers-102/imagelabels.mat", "flowers-102/setid.mat"]

    def read(self, split):
        from scipy.io import loadmat

        base = os.path.join(self.storage(), "flowers-102")
        ids = loadmat(os.path.join(base, "setid.mat"))[{"train": "trnid", "val": "valid", "test": "tstid"}[split]]
        labels = loadmat(os.path.join(base, "imagelabels.mat"))["labels"].reshape(-1)
        items = [(os.path.join(base, "jpg", f"image_{int(i):05d}.jpg"), int(labels[int(i) - 1]) - 1)
                 for i in np.asarray(ids).reshape(-1)]
        return ListReader(items), clip_classnames("flowers"), None


@register_plugin_builder("food101")
class Food101Builder(_TorchvisionBuilder):
    """Food-101."""

    allowed_splits = ("train", "test")
    tv_name = "Food101"
    source = data_hint("Food-101", "Food101", "http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz")

    def required(self, split):
        return ["food-101/images/", f"food-101/meta/{split}.json"]


@register_plugin_builder("gtsrb")
class GTSRBBuilder(_TorchvisionBuilder):
    """German Traffic Sign Recognition Benchmark, 43 classes (CLIP's names)."""

    allowed_splits = ("train", "test")
    tv_name = "GTSRB"
    source = data_hint("GTSRB", "GTSRB", "https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/ "
                   "(GTSRB-Training_fixed.zip, GTSRB_Final_Test_Images.zip, GTSRB_Final_Test_GT.zip)",
                   "torchvision extracts them into <storage>/gtsrb")

    def required(self, split):
        if split == "train":
            return ["gtsrb/GTSRB/Training/"]
        return ["gtsrb/GTSRB/Final_Test/Images/", "gtsrb/GT-final_test.csv"]

    def names(self, ds):
        return clip_classnames("gtsrb")


@register_plugin_builder("oxford_pets")
class OxfordPetsBuilder(_TorchvisionBuilder):
    """Oxford-IIIT Pet, 37 breeds (CLIP's names)."""

    allowed_splits = ("trainval", "test")
    tv_name = "OxfordIIITPet"
    source = data_hint("Oxford-IIIT Pet", "OxfordIIITPet", "https://www.robots.ox.ac.uk/~vgg/data/pets/ (images.tar.gz, "
                   "annotations.tar.gz)", "both go to <storage>/oxford-iiit-pet")

    def required(self, split):
        return ["oxford-iiit-pet/images/", f"oxford-iiit-pet/annotations/{split}.txt"]

    def names(self, ds):
        return clip_classnames("pets")


@register_plugin_builder("rendered_sst2")
class RenderedSST2Builder(_TorchvisionBuilder):
    """Rendered SST2 (OpenAI's), classes ``negative`` / ``positive``."""

    allowed_splits = ("train", "val", "test")
    tv_name = "RenderedSST2"
    source = data_hint("Rendered SST2", "RenderedSST2", "https://openaipublic.azureedge.net/clip/data/rendered-sst2.tgz")

    def required(self, split):
        folder = {"val": "valid"}.get(split, split)
        return [f"rendered-sst2/{folder}/negative/", f"rendered-sst2/{folder}/positive/"]


@register_plugin_builder("stanford_cars")
class StanfordCarsBuilder(_TorchvisionBuilder):
    """Stanford Cars, 196 classes (names from the devkit's cars_meta.mat)."""

    allowed_splits = ("train", "test")
    tv_name = "StanfordCars"
    source = data_hint("Stanford Cars", None, None, "torchvision no longer downloads it (the original site is gone): "
                   "put the car_devkit (devkit/cars_meta.mat, devkit/cars_train_annos.mat), cars_train/, cars_test/ "
                   "and cars_test_annos_withlabels.mat (e.g. from the Kaggle mirror 'jessicali9530/stanford-cars-"
                   "dataset') under <storage>/stanford_cars")

    def required(self, split):
        if split == "train":
            return ["stanford_cars/devkit/cars_meta.mat", "stanford_cars/devkit/cars_train_annos.mat",
                    "stanford_cars/cars_train/"]
        return ["stanford_cars/devkit/cars_meta.mat", "stanford_cars/cars_test_annos_withlabels.mat",
                "stanford_cars/cars_test/"]

    def names(self, ds):
        return [str(c) for c in ds.classes]


@register_plugin_builder("stl10")
class STL10Builder(EvalDatasetBuilder):
    """STL-10 (labelled train / test), torchvision's binary layout read without its md5 check."""

    allowed_splits = ("train", "test")
    source = data_hint("STL-10", "STL10", "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz")

    def required(self, split):
        return [f"stl10_binary/{split}_X.bin", f"stl10_binary/{split}_y.bin", "stl10_binary/class_names.txt"]

    def read(self, split):
        base = os.path.join(self.storage(), "stl10_binary")
        raw = np.fromfile(os.path.join(base, f"{split}_X.bin"), dtype=np.uint8)
        if raw.size % (3 * 96 * 96):
            raise FileNotFoundError(self.missing_message(os.path.join(base, f"{split}_X.bin"), split,
                                                         "is truncated (not a whole number of 96x96 images)"))
        # torchvision: reshape (N, 3, 96, 96) then transpose (0, 1, 3, 2) (the images are stored column-major)
        images = np.ascontiguousarray(raw.reshape(-1, 3, 96, 96).transpose(0, 3, 2, 1))
        labels = np.fromfile(os.path.join(base, f"{split}_y.bin"), dtype=np.uint8).astype(np.int64) - 1
        with open(os.path.join(base, "class_names.txt")) as f:
            names = [line.strip() for line in f if line.strip()]
        return ListReader(list(zip(range(len(labels)), labels)), images), names, None


@register_plugin_builder("svhn")
class SVHNBuilder(EvalDatasetBuilder):
    """SVHN (cropped digits, train / test), torchvision's .mat files read without its md5 check; label 10 -> 0."""

    allowed_splits = ("train", "test")
    source = data_hint("SVHN", "SVHN", "http://ufldl.stanford.edu/housenumbers/{train,test}_32x32.mat")

    def required(self, split):
        return [f"{split}_32x32.mat"]

    def read(self, split):
        from scipy.io import loadmat

        mat = loadmat(os.path.join(self.storage(), f"{split}_32x32.mat"))
        images = np.ascontiguousarray(np.transpose(mat["X"], (3, 0, 1, 2)))
        labels = mat["y"].astype(np.int64).reshape(-1)
        labels[labels == 10] = 0
        return ListReader(list(zip(range(len(labels)), labels)), images), clip_classnames("svhn"), None
