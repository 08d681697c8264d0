"""CLIP's class names, prompt templates and ImageNet's WordNet ids for the evaluation suites (Tables 2 and 3), as
CLIP_benchmark packages them (``configs/eval/clip_benchmark.json``, MIT licence; the source commit is recorded in the
file). The ImageNet variants use the 1000 ImageNet names (index = position of the WordNet id in the sorted list of
the 1000 ILSVRC-2012 wnids)."""
import functools
import json

from lavis_latent.common.paths import config_path

@functools.lru_cache(maxsize=1)
def clip_benchmark_data():
    """The packaged CLIP_benchmark tables: ``classnames``, ``templates``, ``imagenet_wnids``, ``imagenet_a_wnids``,
    ``imagenet_r_wnids`` and their ``source``."""
    with open(config_path("eval", "clip_benchmark.json"), encoding="utf-8") as f:
        return json.load(f)


def clip_templates(name):
    """CLIP's prompt templates of a dataset (CLIP_benchmark's key: ``imagenet1k`` = the 80 ImageNet prompts,
    ``cifar10``, ``food101``, ``cars``, ...), with ``{}`` where the class name goes."""
    table = clip_benchmark_data()["templates"]
    if name not in table:
        raise ValueError(f"unknown prompt set {name!r}; known: {', '.join(sorted(table))}")
    return [t.replace("{c}", "{}") for t in table[name]]


def clip_classnames(name):
    """CLIP's class names of a dataset as CLIP_benchmark lists them (``imagenet1k``, ``caltech101``, ``flowers``,
    ``gtsrb``, ``pets``, ``svhn``)."""
    return list(clip_benchmark_data()["classnames"][name])


def imagenet_wnids():
    """The 1000 ILSVRC-2012 WordNet ids, sorted (index = ImageNet class index)."""
    return list(clip_benchmark_data()["imagenet_wnids"])


def wnid_indices(wnids):
    """ImageNet class indices (0-999) of WordNet ids; ``ValueError`` naming any id that is not an ImageNet class."""
    index = {w: i for i, w in enumerate(imagenet_wnids())}
    unknown = [w for w in wnids if w not in index]
    if unknown:
        raise ValueError(f"not ImageNet-1k WordNet ids: {', '.join(unknown[:10])}")
    return [index[w] for w in wnids]


#: the official 200-class subsets (CLIP_benchmark's lists, the datasets' own)
SUBSET_WNIDS = {"imagenet_a": "imagenet_a_wnids", "imagenet_r": "imagenet_r_wnids"}
