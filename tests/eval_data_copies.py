"""Tiny on-disk copies of the paper's evaluation datasets, each in the exact layout its builder (and, where one is
used, torchvision's dataset class) reads: a few 16 px images per class written with PIL, the annotation / split
files each format has (.txt, .json, .csv, .mat written with scipy, STL-10's raw binaries, CIFAR's pickles).

Every writer takes the storage root (what the builder's ``build_info.images.storage`` points at, torchvision's
``root``) and returns ``{split: number of images}``; class ``c`` is drawn as a flat colour ``_colour(c)`` so that a
probe can separate classes.
"""
import csv
import json
import os
import pickle

import numpy as np
from PIL import Image

SIZE = 16


def _colour(c, k=0):
    rng = np.random.default_rng(1000 * c + k)
    base = np.array([(37 * c) % 256, (91 * c + 60) % 256, (151 * c + 120) % 256], dtype=np.int64)
    return np.clip(base + rng.integers(-8, 8, 3), 0, 255).astype(np.uint8)


def _array(c, k=0):
    return np.broadcast_to(_colour(c, k), (SIZE, SIZE, 3)).copy()


def _img(path, c, k=0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(_array(c, k)).save(path)


def write_caltech101(root, per_class=3, n_classes=102):
    base = os.path.join(root, "caltech101", "101_ObjectCategories")
    for c in range(n_classes):
        for k in range(per_class):
            _img(os.path.join(base, f"cat{c:03d}", f"image_{k + 1:04d}.jpg"), c, k)


def write_dtd(root, classes=("banded", "blotchy", "braided"), per_split=2):
    base = os.path.join(root, "dtd", "dtd")
    for split in ("train", "val", "test"):
        lines = []
        for c, name in enumerate(classes):
            for k in range(per_split):
                fname = f"{name}_{split}_{k}.jpg"
                _img(os.path.join(base, "images", name, fname), c, k)
                lines.append(f"{name}/{fname}")
        os.makedirs(os.path.join(base, "labels"), exist_ok=True)
        with open(os.path.join(base, "labels", f"{split}1.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")


def write_fgvc_aircraft(root, variants=("707-320", "A300B4", "F-16A/B"), per_split=2):
    base = os.path.join(root, "fgvc-aircraft-2013b", "data")
    with open(os.path.join(_mk(base), "variants.txt"), "w") as f:
        f.write("\n".join(variants) + "\n")
    n = 0
    for split in ("train", "val", "test"):
        lines = []
        for c, name in enumerate(variants):
            for k in range(per_split):
                n += 1
                _img(os.path.join(base, "images", f"{n:07d}.jpg"), c, k)
                lines.append(f"{n:07d} {name}")
        with open(os.path.join(base, f"images_variant_{split}.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")


def _mk(path):
    os.makedirs(path, exist_ok=True)
    return path


def write_flowers102(root, n_classes=4, per_split=2):
    from scipy.io import savemat

    base = _mk(os.path.join(root, "flowers-102"))
    labels, ids = [], {"trnid": [], "valid": [], "tstid": []}
    for key in ids:
        for c in range(n_classes):
            for k in range(per_split):
                labels.append(c + 1)
                ids[key].append(len(labels))
                _img(os.path.join(base, "jpg", f"image_{len(labels):05d}.jpg"), c, k)
    savemat(os.path.join(base, "imagelabels.mat"), {"labels": np.array([labels])})
    savemat(os.path.join(base, "setid.mat"), {k: np.array([v]) for k, v in ids.items()})


def write_food101(root, classes=("apple_pie", "baby_back_ribs", "baklava"), per_split=2):
    base = os.path.join(root, "food-101")
    for split in ("train", "test"):
        meta = {}
        for c, name in enumerate(classes):
            meta[name] = []
            for k in range(per_split):
                _img(os.path.join(base, "images", name, f"{split}{k}.jpg"), c, k)
                meta[name].append(f"{name}/{split}{k}")
        with open(os.path.join(_mk(os.path.join(base, "meta")), f"{split}.json"), "w") as f:
            json.dump(meta, f)


def write_gtsrb(root, n_classes=43, per_split=2):
    base = os.path.join(root, "gtsrb")
    rows = []
    for c in range(n_classes):
        for k in range(per_split):
            _img(os.path.join(base, "GTSRB", "Training", f"{c:05d}", f"{c:05d}_{k:05d}.ppm"), c, k)
            name = f"{len(rows):05d}.ppm"
            _img(os.path.join(base, "GTSRB", "Final_Test", "Images", name), c, k + 5)
            rows.append({"Filename": name, "Width": SIZE, "Height": SIZE, "Roi.X1": 0, "Roi.Y1": 0, "Roi.X2": SIZE,
                         "Roi.Y2": SIZE, "ClassId": c})
    with open(os.path.join(base, "GT-final_test.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter=";")
        w.writeheader()
        w.writerows(rows)


PET_BREEDS = ("Abyssinian", "american_bulldog", "american_pit_bull_terrier")


def write_oxford_pets(root, per_split=2):
    """All 37 breeds would be CLIP's list; the builder takes the names from it by label, so 3 suffice here."""
    base = os.path.join(root, "oxford-iiit-pet")
    for split in ("trainval", "test"):
        lines = []
        for c, breed in enumerate(PET_BREEDS):
            for k in range(per_split):
                image_id = f"{breed}_{split}{k}"
                _img(os.path.join(base, "images", f"{image_id}.jpg"), c, k)
                lines.append(f"{image_id} {c + 1} {1 if breed[0].isupper() else 2} {c + 1}")
        with open(os.path.join(_mk(os.path.join(base, "annotations")), f"{split}.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")


def write_rendered_sst2(root, per_split=2):
    for folder in ("train", "valid", "test"):
        for c, name in enumerate(("negative", "positive")):
            for k in range(per_split):
                _img(os.path.join(root, "rendered-sst2", folder, name, f"{k}.png"), c, k)


def write_stanford_cars(root, classes=("AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Audi R8 Coupe 2012"),
                        per_split=2):
    from scipy.io import savemat

    base = os.path.join(root, "stanford_cars")
    dt = [("fname", "O"), ("class", "O")]
    for split, images, annos in (("train", "cars_train", "devkit/cars_train_annos.mat"),
                                 ("test", "cars_test", "cars_test_annos_withlabels.mat")):
        recs = []
        for c in range(len(classes)):
            for k in range(per_split):
                fname = f"{len(recs) + 1:05d}.jpg"
                _img(os.path.join(base, images, fname), c, k)
                recs.append((fname, c + 1))
        _mk(os.path.dirname(os.path.join(base, annos)))
        savemat(os.path.join(base, annos), {"annotations": np.array([recs], dtype=dt)})
    names = np.empty((1, len(classes)), dtype=object)
    names[0, :] = list(classes)
    savemat(os.path.join(base, "devkit", "cars_meta.mat"), {"class_names": names})


STL10_NAMES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")


def write_stl10(root, per_split=2):
    base = _mk(os.path.join(root, "stl10_binary"))
    for split in ("train", "test"):
        xs, ys = [], []
        for c in range(10):
            for k in range(per_split):
                img = np.broadcast_to(_colour(c, k), (96, 96, 3))
                xs.append(np.ascontiguousarray(img.transpose(2, 1, 0)))  # stored [3, W, H] (column-major)
                ys.append(c + 1)
        np.stack(xs).astype(np.uint8).tofile(os.path.join(base, f"{split}_X.bin"))
        np.array(ys, dtype=np.uint8).tofile(os.path.join(base, f"{split}_y.bin"))
    with open(os.path.join(base, "class_names.txt"), "w") as f:
        f.write("\n".join(STL10_NAMES) + "\n")


def write_svhn(root, per_split=2):
    from scipy.io import savemat

    _mk(root)
    for split in ("train", "test"):
        xs, ys = [], []
        for c in range(10):
            for k in range(per_split):
                xs.append(np.broadcast_to(_colour(c, k), (32, 32, 3)))
                ys.append(10 if c == 0 else c)
        savemat(os.path.join(root, f"{split}_32x32.mat"),
                {"X": np.stack(xs, axis=3).astype(np.uint8), "y": np.array(ys, dtype=np.uint8)[:, None]})


def write_cifar(root, variant="cifar10", per_split=2):
    n_classes = 10 if variant == "cifar10" else 100
    folder = _mk(os.path.join(root, "cifar-10-batches-py" if variant == "cifar10" else "cifar-100-python"))
    key = "labels" if variant == "cifar10" else "fine_labels"

    def batch(path, k0):
        labels = [c for c in range(n_classes) for _ in range(per_split)]
        data = np.stack([np.broadcast_to(_colour(c, k0 + i % per_split), (32, 32, 3)).transpose(2, 0, 1).reshape(-1)
                         for i, c in enumerate(labels)])
        with open(path, "wb") as f:
            pickle.dump({"data": data.astype(np.uint8), key: labels}, f)

    if variant == "cifar10":
        for i in range(1, 6):
            batch(os.path.join(folder, f"data_batch_{i}"), i)
        batch(os.path.join(folder, "test_batch"), 9)
        meta = {"label_names": [f"class_{c}" for c in range(n_classes)]}
        name = "batches.meta"
    else:
        batch(os.path.join(folder, "train"), 0)
        batch(os.path.join(folder, "test"), 9)
        meta = {"fine_label_names": [f"class_{c}" for c in range(n_classes)]}
        name = "meta"
    with open(os.path.join(folder, name), "wb") as f:
        pickle.dump(meta, f)


def write_class_folders(base, folders, labels, per_class=1, ext="jpg", k0=0):
    """``base/<folder>/<k>.<ext>`` for each folder (class ``labels[i]``'s colour)."""
    for folder, c in zip(folders, labels):
        for k in range(per_class):
            _img(os.path.join(base, folder, f"{k}.{ext}"), c % 997, k0 + k)


def write_imagenet(root, wnids, train_per_class=2):
    """LAVIS's imagenet layout: ``root/{train,val}/<wnid>/*.JPEG``."""
    idx = range(len(wnids))
    write_class_folders(os.path.join(root, "train"), wnids, idx, train_per_class, "JPEG")
    write_class_folders(os.path.join(root, "val"), wnids, idx, 1, "JPEG", k0=5)


WRITERS = {
    "caltech101": write_caltech101, "dtd": write_dtd, "fgvc_aircraft": write_fgvc_aircraft,
    "flowers102": write_flowers102, "food101": write_food101, "gtsrb": write_gtsrb, "oxford_pets": write_oxford_pets,
    "rendered_sst2": write_rendered_sst2, "stanford_cars": write_stanford_cars, "stl10": write_stl10,
}
