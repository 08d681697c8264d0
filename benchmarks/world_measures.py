"""The measures of a model's features on a demo world (test split; probes trained on the train split):

* retrieval R@k both ways (every caption against every image, cosine of the projected features), per instance and
  per combination of shared facts;
* zero-shot top-1 on the shared attributes ``shape`` and ``color`` (prompts "a {shape}" / "a {colour} shape", and
  prompt ensembles written like the captions);
* linear-probe accuracy (scikit-learn logistic regression, trained on the train split, tested on the test split)
  of each *active* attribute: shared and image-only ones from the image features, text-only ones from the text
  features; each on the projected feature ``z``, and on ``[z, z^i]`` (with separation heads) or ``[z, c]`` (the
  same-size control: ``c`` an untrained, seeded projection head of the same width);
* the modality-gap measures of ``lavis_latent.metrics.modality_gap``.
"""
import math
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.demo_world import World
from lavis_latent.datasets import demo_data
from lavis_latent.metrics import modality_gap

ZERO_SHOT = {"shape": "a {}", "color": "a {} shape"}


def recall(z_v: torch.Tensor, z_t: torch.Tensor, txt2img: torch.Tensor, ks=(1, 5),
           image_class: Optional[torch.Tensor] = None) -> Dict[str, float]:
    """Retrieval R@k (%) by cosine similarity, LAVIS's naming: ``img_r{k}`` text->image, ``txt_r{k}`` image->text.

    Args:
        z_v: [I, D] image features; z_t: [T, D] caption features; txt2img: [T] the image index of each caption.
        image_class: optional [I] class of each image (e.g. its shared facts). Then also ``img_r{k}_shared`` /
            ``txt_r{k}_shared``: a hit is a retrieved item whose image has the query's class (the best a caption
            can do when several images share everything the caption says).
    """
    sim = z_t @ z_v.t()  # [T, I]
    n_img = z_v.size(0)
    out = {}
    for k in ks:
        top_img = sim.topk(min(k, n_img), dim=1).indices  # [T, k]
        top_txt = sim.topk(min(k, sim.size(0)), dim=0).indices.t()  # [I, k] caption indices
        out[f"img_r{k}"] = (top_img == txt2img[:, None]).any(1).double().mean().item() * 100
        out[f"txt_r{k}"] = (txt2img[top_txt] == torch.arange(n_img)[:, None]).any(1).double().mean().item() * 100
        if image_class is not None:
            cls_t = image_class[txt2img]
            out[f"img_r{k}_shared"] = (image_class[top_img] == cls_t[:, None]).any(1).double().mean().item() * 100
            out[f"txt_r{k}_shared"] = (cls_t[top_txt] == image_class[:, None]).any(1).double().mean().item() * 100
    return out


def probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, c: float = 1.0) -> float:
    """Linear-probe test accuracy (%): standardised features, multinomial logistic regression (C = ``c``)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(set(train_y.tolist())) < 2:
        return float("nan")
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
    clf.fit(train_x, train_y)
    return float((clf.predict(test_x) == test_y).mean() * 100)


def _labels(world: World, split: str, attr: str) -> np.ndarray:
    values = world.metadata["attributes"][attr]["values"]
    return np.array([values.index(r["attributes"][attr]) for r in world.records[split]])


def shared_class(world: World, split: str) -> torch.Tensor:
    """[I] index of each image's combination of shared facts (shape, colour, position) in ``split``."""
    attrs = world.metadata["attributes"]
    bases = [len(attrs[a]["values"]) for a in demo_data.SHARED]
    return torch.tensor([_mixed_radix([attrs[a]["values"].index(r["attributes"][a]) for a in demo_data.SHARED], bases)
                         for r in world.records[split]])


def _mixed_radix(digits, bases):
    value = 0
    for d, b in zip(digits, bases):
        value = value * b + d
    return value


def zero_shot_ensembles(world: World, z_v: torch.Tensor, encode_texts: Callable[[List[str]], torch.Tensor],
                        split: str = "test") -> Dict[str, float]:
    """Zero-shot top-1 (%) with prompt ensembles written like the captions: one prompt per combination of shared
    facts ("a red circle at the top"); a shape's (colour's) class embedding is the normalised mean over the other
    facts' prompts. ``zs_shape_ens``, ``zs_color_ens`` and ``zs_shared`` (the 72-way combination itself)."""
    values = {a: world.metadata["attributes"][a]["values"] for a in demo_data.SHARED}
    combos = [(s, c, p) for s in values["shape"] for c in values["color"] for p in values["position"]]
    prompts = [demo_data._article(f"a {c} {s} {demo_data._POSITION_PHRASE[p]}") for s, c, p in combos]
    emb = F.normalize(encode_texts(prompts).float(), dim=-1)  # [72, D], in mixed-radix order shape, colour, pos
    out = {"zs_shared": float(((z_v @ emb.t()).argmax(1) == shared_class(world, split)).double().mean() * 100)}
    for attr, index in (("shape", 0), ("color", 1)):
        cls_emb = torch.stack([F.normalize(emb[[i for i, c in enumerate(combos) if c[index] == v]].mean(0), dim=0)
                               for v in values[attr]])
        pred = (z_v @ cls_emb.t()).argmax(1).numpy()
        out[f"zs_{attr}_ens"] = float((pred == _labels(world, split, attr)).mean() * 100)
    return out


def evaluate_features(tr: dict, te: dict, world: World, encode_texts: Callable[[List[str]], torch.Tensor],
                      control_seed: int = 0) -> dict:
    """The measures of the module docstring from the train and test features of a model (dicts as :func:`encode`
    returns; ``zi_*`` may be None) and a function that encodes a list of prompts to [P, D] projected features.

    Keys: ``img_r1`` / ``txt_r1`` / ``*_r5`` (instance) and ``*_shared`` (shared-fact match) retrieval, ``gap_*``,
    ``zs_shape`` / ``zs_color`` (one prompt), ``zs_*_ens`` / ``zs_shared`` (ensembles), ``probe_<group>[<view>]``."""
    res = recall(te["z_v"], te["z_t"], te["txt2img"], ks=(1, 5), image_class=shared_class(world, "test"))
    gap = modality_gap(te["z_v"][te["txt2img"]], te["z_t"])
    res.update({f"gap_{k}": v for k, v in gap.items()})
    for attr, template in ZERO_SHOT.items():
        values = world.metadata["attributes"][attr]["values"]
        pred = (te["z_v"] @ encode_texts([template.format(v) for v in values]).t()).argmax(1).numpy()
        res[f"zs_{attr}"] = float((pred == _labels(world, "test", attr)).mean() * 100)
    res.update(zero_shot_ensembles(world, te["z_v"], encode_texts))
    # same-size control: an untrained projection of the encoder features, as wide as the separation heads
    gen = torch.Generator().manual_seed(control_seed)
    width = te["z_v"].size(1)

    def control(e):
        w = torch.randn(e.size(1), width, generator=gen) / math.sqrt(e.size(1))
        return lambda x: F.normalize(x @ w, dim=-1)

    ctrl_v, ctrl_t = control(tr["e_v"]), control(tr["e_t"])

    def views(feats, modality, ctrl):
        z, zi, e = feats[f"z_{modality}"], feats[f"zi_{modality}"], feats[f"e_{modality}"]
        out = {"z": z, "z+ctrl": torch.cat([z, ctrl(e)], 1)}
        if zi is not None:
            out["z+ind"] = torch.cat([z, zi], 1)
        return out

    img_tr, img_te = views(tr, "v", ctrl_v), views(te, "v", ctrl_v)
    # text features: one per image (its first caption) so labels align with images
    first_tr = _first_caption_index(tr["txt2img"])
    first_te = _first_caption_index(te["txt2img"])
    txt_tr = {k: v[first_tr] for k, v in views(tr, "t", ctrl_t).items()}
    txt_te = {k: v[first_te] for k, v in views(te, "t", ctrl_t).items()}
    active = world.active
    for group, attrs, (ftr, fte) in (("shared", active["shared"], (img_tr, img_te)),
                                     ("image_only", active["image_only"], (img_tr, img_te)),
                                     ("text_only", active["text_only"], (txt_tr, txt_te))):
        for view in ftr:
            accs = [probe(ftr[view].numpy(), _labels(world, "train", a), fte[view].numpy(), _labels(world, "test", a))
                    for a in attrs]
            res[f"probe_{group}[{view}]"] = float(np.mean(accs)) if accs else float("nan")
    return res


def add_plus_views(res: dict) -> dict:
    """Add ``probe_*[z+]`` to an :func:`evaluate_features` result: ``[z, z^i]`` where the model has separation heads,
    else ``[z, c]`` (the same-size control). Returns ``res``."""
    has_ind = any(k.endswith("[z+ind]") for k in res)
    for key in list(res):
        if key.endswith("[z+ind]") or (key.endswith("[z+ctrl]") and not has_ind):
            res[key.rsplit("[", 1)[0] + "[z+]"] = res[key]
    return res


def _first_caption_index(txt2img: torch.Tensor) -> torch.Tensor:
    seen, idx = set(), []
    for j, i in enumerate(txt2img.tolist()):
        if i not in seen:
            seen.add(i)
            idx.append(j)
    return torch.tensor(idx)
