"""In-process runs of the tiny ALBEF (``albef_latent_pretrain``) on the embedded demo world, for the evidence
benchmark.

A run pretrains LAVIS's registered ``albef_latent_pretrain`` (``tiny`` type, built by ``from_config``; ITC + ITM +
MLM, plus the configured regularizers) with the plugin's paired-view processors (``paired_image_train`` over
LAVIS's ``clip_image_train``, ``eda_caption``) in :func:`benchmarks.clip_world.fit`'s loop, then measures on the
test split from ALBEF's unimodal ITC features (``vision_proj`` / ``text_proj`` of the [CLS] states, the features the
regularizers act on): retrieval ranked by ITC similarity (no ITM re-ranking), zero-shot, probes, modality gap; with
separation, the probes also see ``[z, z^i]`` (its heads on the [CLS] states).

The demo's settings (``projects/demo/albef_pretrain*.yaml``) at benchmark length: momentum 0.95, queue 64, AdamW
lr 1e-3, weight decay 0.02, batch 16; LAVIS's distillation weight ramps up over the first quarter of the steps
(the demo's 2 of 8 epochs).
"""
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F

from benchmarks import clip_world
from benchmarks.common import build_registered_model
from benchmarks.demo_world import flat_captions
from benchmarks.world_measures import evaluate_features

DEMO_SETTINGS = {"momentum": 0.95, "queue_size": 64}


def build_model(latent: Optional[dict] = None, **overrides):
    """The tiny ``albef_latent_pretrain`` from its default yaml with the demo's settings, ``latent`` and
    ``overrides``."""
    return build_registered_model("albef_latent_pretrain", DEMO_SETTINGS, {"latent": latent or {}}, overrides)


def processors(image_size: int = 64):
    """The demo's paired-view training processors and the matching eval ones."""
    vis_train = clip_world.processor("paired_image_train", view={"name": "clip_image_train", "image_size": image_size},
                                     image_size=image_size, flip=False)
    return (vis_train, clip_world.processor("eda_caption"), *clip_world.eval_processors(image_size))


def train_albef(world, latent: Optional[dict] = None, steps: int = 200, batch_size: int = 16, lr: float = 1e-3,
                weight_decay: float = 0.02, seed: int = 0, image_size: int = 64, device: str = "cpu"):
    """Pretrain a tiny ALBEF on ``world``'s train split; returns ``(model, last loss terms)``."""
    torch.manual_seed(seed)
    model = build_model(latent).to(device)
    vis_train, txt_train, _, _ = processors(image_size)
    per_epoch = max(1, steps // 8)
    terms = clip_world.fit(model, world, vis_train, txt_train, steps=steps, batch_size=batch_size, lr=lr,
                           weight_decay=weight_decay, seed=seed, device=device,
                           batch_extras=lambda step: {"epoch": step // per_epoch, "iters": step % per_epoch,
                                                      "num_iters_per_epoch": per_epoch})
    return model, terms


@torch.no_grad()
def encode_texts(model, texts: List[str], txt_eval) -> Dict[str, torch.Tensor]:
    """``{"z_t", "e_t", "zi_t"}`` of captions: the ITC feature, the [CLS] state, the separation feature (or None)."""
    tokens = model.tokenizer([txt_eval(t) for t in texts], padding="longest", truncation=True,
                             max_length=model.max_txt_len, return_tensors="pt").to(model.device)
    cls = model._text_cls(tokens)
    heads = model.latent.separation
    return {"z_t": F.normalize(model.text_proj(cls), dim=-1).cpu(), "e_t": cls.cpu(),
            "zi_t": None if heads is None else F.normalize(heads.text_proj(cls), dim=-1).cpu()}


@torch.no_grad()
def encode(model, world, split: str, image_size: int = 64, batch_size: int = 128) -> Dict[str, torch.Tensor]:
    """Features of a split in :func:`benchmarks.clip_world.encode`'s layout, from ALBEF's unimodal encoders."""
    _, _, vis_eval, txt_eval = processors(image_size)
    heads = model.latent.separation
    out = {k: [] for k in ("z_v", "e_v", "zi_v", "z_t", "e_t", "zi_t")}
    imgs = world.images[split]
    for i in range(0, len(imgs), batch_size):
        x = torch.stack([vis_eval(im) for im in imgs[i : i + batch_size]]).to(model.device)
        cls = model.visual_encoder.forward_features(x)[:, 0, :]
        out["z_v"].append(F.normalize(model.vision_proj(cls), dim=-1).cpu())
        out["e_v"].append(cls.cpu())
        if heads is not None:
            out["zi_v"].append(F.normalize(heads.image_proj(cls), dim=-1).cpu())
    texts, txt2img = flat_captions(world, split)
    for i in range(0, len(texts), batch_size):
        for k, v in encode_texts(model, texts[i : i + batch_size], txt_eval).items():
            if v is not None:
                out[k].append(v)
    return clip_world.concat_features(out, txt2img)


@torch.no_grad()
def evaluate_albef(model, world, image_size: int = 64, control_seed: int = 0) -> dict:
    """:func:`benchmarks.world_measures.evaluate_features` on ALBEF's ITC features of the train and test splits."""
    model.eval()
    tr, te = encode(model, world, "train", image_size), encode(model, world, "test", image_size)
    _, _, _, txt_eval = processors(image_size)
    return evaluate_features(tr, te, world, lambda texts: encode_texts(model, texts, txt_eval)["z_t"], control_seed)
