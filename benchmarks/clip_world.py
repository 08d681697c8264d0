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


def load_world(cache_root: str, seed: int = 0, info_gap: float = 0.5, num_train: int = 400, **params) -> World:
    """Generate (if needed) and load the demo world ``seed``/``info_gap`` under ``cache_root``."""
    root = os.path.join(cache_root, "lavis_latent_demo", f"seed{seed}_gap{info_gap}")
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

    Each step draws ``batch_size`` distinct images and one of each image's captions (seeded), passes them through
    the paired-view processors and the model's ``forward``. ``extra_loss(z_v, z_t)`` (e.g. the Figure-2 alignment
    loss) is added on the normalised projected features of the original views when given.
    """
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = build_model(base_loss, latent).to(device)
    model.train()
    vis_train, txt_train, _, _ = processors(image_size, seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    n = len(world.images["train"])
    terms = {}
    for step in range(steps):
        warm = max(1, steps // 10)  # linear warm-up (10 %), then cosine
        step_lr = (lr * (step + 1) / warm if step < warm
                   else lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm))))
        for g in optim.param_groups:
            g["lr"] = step_lr
        idx = rng.sample(range(n), min(batch_size, n))
        batch = [{"image": vis_train(world.images["train"][i]),
                  "text_input": txt_train(rng.choice(world.captions["train"][i]))} for i in idx]
        samples = _collate(batch)
        samples["image"] = type(samples["image"])(*(t.to(device) for t in samples["image"]))
        out = model(samples)
        loss = out["loss"]
        if extra_loss is not None:
            extra = extra_loss(out["image_feat"], out["text_feat"])
            loss = loss + extra
            out["loss_extra"] = extra
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        terms = {k: float(v.detach()) for k, v in out.items() if k.startswith("loss") and torch.is_tensor(v)}
        if log_every and (step + 1) % log_every == 0:
            print(f"    step {step + 1}/{steps} " + " ".join(f"{k}={v:.3f}" for k, v in terms.items()), flush=True)
    model.eval()
    return model, terms


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


def recall_at_1(z_v: torch.Tensor, z_t: torch.Tensor, txt2img: torch.Tensor) -> Dict[str, float]:
    """Retrieval R@1 (%): text->image (each caption finds its image) and image->text (an image's top caption is one
    of its own), by cosine similarity."""
    sim = z_t @ z_v.t()  # [T, I]
    txt_r1 = (sim.argmax(1) == txt2img).double().mean().item() * 100
    img_r1 = (txt2img[sim.argmax(0)] == torch.arange(z_v.size(0))).double().mean().item() * 100
    return {"img_r1": txt_r1, "txt_r1": img_r1}  # LAVIS's naming: img_r1 = text->image, txt_r1 = image->text


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


@torch.no_grad()
def evaluate_clip(model, world: World, image_size: int = 64, control_seed: int = 0, device: str = "cpu") -> dict:
    """Retrieval, zero-shot, probes and modality gap of a trained model on ``world`` (see the module docstring)."""
    tr = encode(model, world, "train", image_size, device=device)
    te = encode(model, world, "test", image_size, device=device)
    res = dict(recall_at_1(te["z_v"], te["z_t"], te["txt2img"]))
    gap = modality_gap(te["z_v"][te["txt2img"]], te["z_t"])
    res.update({f"gap_{k}": v for k, v in gap.items()})
    # zero-shot on shared attributes
    _, _, _, txt_eval = processors(image_size)
    for attr, template in ZERO_SHOT.items():
        values = world.metadata["attributes"][attr]["values"]
        f = model.extract_features({"text_input": [txt_eval(template.format(v)) for v in values]}, mode="text")
        pred = (te["z_v"] @ f.text_embeds_proj.cpu().t()).argmax(1).numpy()
        res[f"zs_{attr}"] = float((pred == _labels(world, "test", attr)).mean() * 100)
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
