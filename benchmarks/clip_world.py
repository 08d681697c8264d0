"""In-process runs of the tiny ``clip_latent`` on the embedded demo world, shared by ``quality.py`` and
``gap_vs_retrieval.py``.

A run trains LAVIS's registered ``clip_latent`` (``tiny`` type, built by ``from_config``) with the plugin's own
paired-view processors (``clip_latent_image_train``, ``eda_caption``) on the demo world's training images and
captions, then measures on the test split:

* retrieval R@1 both ways (every caption against every image, cosine of the projected features);
* zero-shot top-1 on the shared attributes ``shape`` and ``color`` (prompts "a {shape}" / "a {colour} shape");
* linear-probe accuracy (scikit-learn logistic regression, trained on the train split, tested on the test split)
  of each *active* attribute: shared and image-only ones from the image features, text-only ones from the text
  features; each on the projected feature ``z``, and on ``[z, z^i]`` (with separation heads) or ``[z, c]`` (the
  same-size control: ``c`` an untrained, seeded projection head of the same width);
* the modality-gap measures of ``lavis_latent.metrics.modality_gap``.

The loop is a plain AdamW loop (no LAVIS runner): it is the benchmark's inner loop, run dozens of times, and the
runner's per-run set-up (output folders, logging, checkpoints) would dominate at this size. The model, processors,
losses and data are the plugin's own.
"""
import math
import os
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from PIL import Image

import lavis_latent  # noqa: F401  (registers the model and processors)
from lavis.common.registry import registry
from lavis_latent.datasets import demo_data
from lavis_latent.metrics import modality_gap

ZERO_SHOT = {"shape": "a {}", "color": "a {} shape"}


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


def processors(image_size: int = 64, seed: int = 0):
    """The plugin's training processors (paired views) and LAVIS's eval ones, at ``image_size``."""
    get = registry.get_processor_class
    vis_train = get("clip_latent_image_train").from_config(OmegaConf.create({"image_size": image_size}))
    txt_train = get("eda_caption").from_config(OmegaConf.create({"seed": seed}))
    vis_eval = get("clip_image_eval").from_config(OmegaConf.create({"image_size": image_size}))
    txt_eval = get("blip_caption").from_config(OmegaConf.create({}))
    return vis_train, txt_train, vis_eval, txt_eval


def build_model(base_loss: str = "paper", latent: Optional[dict] = None, **overrides):
    """The tiny ``clip_latent`` from its default yaml, with ``base_loss``, ``latent`` and other keys overridden."""
    cls = registry.get_model_class("clip_latent")
    cfg = OmegaConf.load(cls.default_config_path("tiny")).model
    cfg = OmegaConf.merge(cfg, {"base_loss": base_loss, "latent": latent or {}}, overrides)
    return cls.from_config(cfg)


def _collate(samples):
    from torch.utils.data import default_collate

    return default_collate(samples)


def train_clip(
    world: World,
    base_loss: str = "paper",
    latent: Optional[dict] = None,
    steps: int = 200,
    batch_size: int = 32,
    lr: float = 1e-3,
    weight_decay: float = 0.1,
    seed: int = 0,
    image_size: int = 64,
    extra_loss: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = None,
    device: str = "cpu",
    log_every: int = 0,
):
    """Train a tiny ``clip_latent`` on ``world``'s train split; returns ``(model, last loss terms)``.

    See :func:`fit` for the loop. ``extra_loss(z_v, z_t)`` (e.g. the Figure-2 alignment loss) is added on the
    normalised projected features of the original views when given.
    """
    torch.manual_seed(seed)
    model = build_model(base_loss, latent).to(device)
    vis_train, txt_train, _, _ = processors(image_size, seed)

    def loss_fn(out):
        if extra_loss is None:
            return out["loss"]
        extra = extra_loss(out["image_feat"], out["text_feat"])
        out["loss_extra"] = extra
        return out["loss"] + extra

    terms = fit(model, world, vis_train, txt_train, steps=steps, batch_size=batch_size, lr=lr,
                weight_decay=weight_decay, seed=seed, device=device, log_every=log_every, loss_fn=loss_fn)
    return model, terms


def fit(model, world: World, vis_train, txt_train, steps: int, batch_size: int, lr: float, weight_decay: float,
        seed: int, device: str = "cpu", log_every: int = 0, loss_fn: Optional[Callable] = None,
        batch_extras: Optional[Callable[[int], dict]] = None) -> Dict[str, float]:
    """The benchmarks' training loop (AdamW, 10 % linear warm-up then cosine): each step draws ``batch_size``
    distinct training images and one of each image's captions (seeded by ``seed``), passes them through the
    processors and ``model.forward`` (with ``image_id``, plus ``batch_extras(step)``), and steps on
    ``loss_fn(output)`` (default ``output["loss"]``). Leaves the model in eval mode; returns the last step's
    ``loss*`` terms as floats."""
    rng = random.Random(seed)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    n = len(world.images["train"])
    terms = {}
    for step in range(steps):
        warm = max(1, steps // 10)
        step_lr = (lr * (step + 1) / warm if step < warm
                   else lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm))))
        for g in optim.param_groups:
            g["lr"] = step_lr
        idx = rng.sample(range(n), min(batch_size, n))
        batch = [{"image": vis_train(world.images["train"][i]), "image_id": i,
                  "text_input": txt_train(rng.choice(world.captions["train"][i]))} for i in idx]
        samples = _collate(batch)
        image = samples["image"]  # a tensor, or PairedViews of tensors from the paired-view processors
        samples["image"] = image.to(device) if torch.is_tensor(image) else type(image)(*(t.to(device) for t in image))
        if batch_extras is not None:
            samples.update(batch_extras(step))
        out = model(samples)
        loss = out["loss"] if loss_fn is None else loss_fn(out)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        terms = {k: float(v.detach()) for k, v in out.items() if k.startswith("loss") and torch.is_tensor(v)}
        if log_every and (step + 1) % log_every == 0:
            print(f"    step {step + 1}/{steps} " + " ".join(f"{k}={v:.3f}" for k, v in terms.items()), flush=True)
    model.eval()
    return terms


@torch.no_grad()
def encode(model, world: World, split: str, image_size: int = 64, batch_size: int = 128, device: str = "cpu"):
    """Features of a split: image [N, ...] and caption (all captions, flattened, with their image index) outputs of
    ``extract_features`` as a dict of CPU tensors: ``z_v``, ``e_v`` (encoder), ``zi_v`` (independent or None),
    ``z_t``, ``e_t``, ``zi_t``, ``txt2img``."""
    _, _, vis_eval, txt_eval = processors(image_size)
    out = {k: [] for k in ("z_v", "e_v", "zi_v", "z_t", "e_t", "zi_t")}
    imgs = world.images[split]
    for i in range(0, len(imgs), batch_size):
        x = torch.stack([vis_eval(im) for im in imgs[i : i + batch_size]]).to(device)
        f = model.extract_features({"image": x}, mode="image")
        out["z_v"].append(f.image_embeds_proj.cpu())
        out["e_v"].append(f.image_embeds.cpu())
        if getattr(f, "image_embeds_ind", None) is not None:
            out["zi_v"].append(f.image_embeds_ind.cpu())
    texts, txt2img = [], []
    for j, caps in enumerate(world.captions[split]):
        texts += [txt_eval(c) for c in caps]
        txt2img += [j] * len(caps)
    for i in range(0, len(texts), batch_size):
        f = model.extract_features({"text_input": texts[i : i + batch_size]}, mode="text")
        out["z_t"].append(f.text_embeds_proj.cpu())
        out["e_t"].append(f.text_embeds.cpu())
        if getattr(f, "text_embeds_ind", None) is not None:
            out["zi_t"].append(f.text_embeds_ind.cpu())
    feats = {k: (torch.cat(v) if v else None) for k, v in out.items()}
    feats["txt2img"] = torch.tensor(txt2img)
    return feats


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


@torch.no_grad()
def evaluate_clip(model, world: World, image_size: int = 64, control_seed: int = 0, device: str = "cpu") -> dict:
    """Retrieval, zero-shot, probes and modality gap of a trained model on ``world`` (see the module docstring)."""
    tr = encode(model, world, "train", image_size, device=device)
    te = encode(model, world, "test", image_size, device=device)
    _, _, _, txt_eval = processors(image_size)

    def encode_texts(texts):
        f = model.extract_features({"text_input": [txt_eval(t) for t in texts]}, mode="text")
        return f.text_embeds_proj.cpu()

    return evaluate_features(tr, te, world, encode_texts, control_seed)


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


def timed(fn, *args, **kwargs):
    """``(result, seconds)`` of one call."""
    start = time.time()
    result = fn(*args, **kwargs)
    return result, time.time() - start
