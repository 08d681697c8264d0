"""One demo world in memory for the benchmarks: generated (if needed) under a cache root by
``lavis_latent.datasets.demo_data`` and loaded with its images (PIL), captions, ground truth and active attributes."""
import os
from dataclasses import dataclass, field
from typing import Dict, List

from PIL import Image

from lavis_latent.datasets import demo_data


@dataclass
class World:
    """One demo world in memory: images (PIL) and captions per split, the ground truth, the active attributes."""

    root: str
    metadata: dict
    images: Dict[str, List[Image.Image]] = field(default_factory=dict)
    captions: Dict[str, List[List[str]]] = field(default_factory=dict)
    records: Dict[str, List[dict]] = field(default_factory=dict)

    @property
    def active(self):
        """The active attributes per group (``shared``, ``image_only``, ``text_only``) from the metadata."""
        return self.metadata["active"]


def world_root(cache_root: str, seed: int = 0, info_gap: float = 0.5, num_train: int = 400, **params) -> str:
    """The folder of one demo world under ``cache_root``: one folder per parameter set, so worlds of different sizes
    never replace each other."""
    name = f"seed{seed}_gap{info_gap}"
    if num_train != 400 or params:
        name += "_" + "_".join(f"{k}{v}" for k, v in sorted(dict(params, num_train=num_train).items()))
    return os.path.join(cache_root, "lavis_latent_demo", name)


def load_world(cache_root: str, seed: int = 0, info_gap: float = 0.5, num_train: int = 400, **params) -> World:
    """Generate (if needed) and load the demo world ``seed``/``info_gap`` (and other ``demo_data.generate``
    parameters) under ``cache_root``. Generation holds a lock file, so processes sharing a cache take turns."""
    import fcntl

    root = world_root(cache_root, seed, info_gap, num_train, **params)
    os.makedirs(os.path.dirname(root), exist_ok=True)
    with open(root + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        paths = demo_data.generate(root, seed=seed, info_gap=info_gap, num_train=num_train, **params)
    meta = demo_data.load_metadata(root)
    world = World(root=root, metadata=meta)
    for split in demo_data.SPLITS:
        recs = [r for r in meta["images"] if r["split"] == split]
        world.records[split] = recs
        world.images[split] = [Image.open(os.path.join(paths["images"], r["image"])).convert("RGB") for r in recs]
        world.captions[split] = [list(r["captions"]) for r in recs]
    return world


def flat_captions(world: World, split: str):
    """``(captions, txt2img)``: every caption of ``split``, image by image, and the image index of each."""
    captions, txt2img = [], []
    for j, caps in enumerate(world.captions[split]):
        captions += caps
        txt2img += [j] * len(caps)
    return captions, txt2img
