"""In-process runs of the tiny ``clip_latent`` on the embedded demo world, shared by ``quality.py``,
``gap_vs_retrieval.py`` and ``evidence.py``.

A run trains LAVIS's registered ``clip_latent`` (``tiny`` type, built by ``from_config``) with the plugin's own
paired-view processors (``clip_latent_image_train``, ``eda_caption``) on the demo world's training images and
captions, then measures on the test split what :mod:`benchmarks.world_measures` describes (retrieval, zero-shot,
linear probes, modality gap).

The loop is a plain AdamW loop (no LAVIS runner): it is the benchmark's inner loop, run dozens of times, and the
runner's per-run set-up (output folders, logging, checkpoints) would dominate at this size. The model, processors,
losses and data are the plugin's own.
"""
import math
import random
import time
from typing import Callable, Dict, List, Optional

import torch
from omegaconf import OmegaConf

from benchmarks.common import build_registered_model, plugin_registry
from benchmarks.demo_world import World, flat_captions
from benchmarks.world_measures import evaluate_features


def processor(name: str, **cfg):
    """The registered processor ``name`` built by its ``from_config`` from the keys ``cfg``."""
    return plugin_registry().get_processor_class(name).from_config(OmegaConf.create(cfg))


def eval_processors(image_size: int = 64):
    """LAVIS's eval processors at ``image_size``: ``(clip_image_eval, blip_caption)``."""
    return processor("clip_image_eval", image_size=image_size), processor("blip_caption")


def processors(image_size: int = 64, seed: int = 0):
    """The plugin's training processors (paired views) and LAVIS's eval ones, at ``image_size``."""
    vis_train = processor("clip_latent_image_train", image_size=image_size)
    return (vis_train, processor("eda_caption", seed=seed), *eval_processors(image_size))


def build_model(base_loss: str = "paper", latent: Optional[dict] = None, **overrides):
    """The tiny ``clip_latent`` from its default yaml, with ``base_loss``, ``latent`` and other keys overridden."""
    return build_registered_model("clip_latent", {"base_loss": base_loss, "latent": latent or {}}, overrides)


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
    captions, txt2img = flat_captions(world, split)
    texts = [txt_eval(c) for c in captions]
    for i in range(0, len(texts), batch_size):
        f = model.extract_features({"text_input": texts[i : i + batch_size]}, mode="text")
        out["z_t"].append(f.text_embeds_proj.cpu())
        out["e_t"].append(f.text_embeds.cpu())
        if getattr(f, "text_embeds_ind", None) is not None:
            out["zi_t"].append(f.text_embeds_ind.cpu())
    return concat_features(out, txt2img)


def concat_features(parts: Dict[str, list], txt2img: List[int]) -> Dict[str, Optional[torch.Tensor]]:
    """The batches of each feature in ``parts`` concatenated (None where a feature has none), plus ``txt2img``."""
    feats = {k: (torch.cat(v) if v else None) for k, v in parts.items()}
    feats["txt2img"] = torch.tensor(txt2img)
    return feats


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


def timed(fn, *args, **kwargs):
    """``(result, seconds)`` of one call."""
    start = time.time()
    result = fn(*args, **kwargs)
    return result, time.time() - start
