"""What each latent-structure regularizer costs, measured side by side against LAVIS's own ALBEF (issue 8, part 1).

Part 1, training step. ``albef_latent_pretrain`` with no ``latent:`` block (``none``) and with the latent blocks of
``projects/albef_{fs,bb,gc,all}.yaml`` is timed against LAVIS's own ``AlbefPretrain`` (``lavis``; LAVIS's class,
only ``init_tokenizer`` overridden to load the plugin's local vocabulary) on the same weights and the same batches:

* one process; every variant shares the same weight tensors (a pristine copy, re-tied after every step, so LAVIS's
  momentum update, which re-allocates the momentum weights, cannot make them drift; the online encoders are the same
  module objects, which is what keeps six full-size models within a few GB); queue buffers are reset after
  every step; the RNG is re-seeded before each variant's step, so MLM masking and ITM negative sampling are
  identical (checked: the ITC / ITM / MLM losses of every variant equal LAVIS's, step by step);
* a step is forward + backward (``loss.backward()``), gradients set to None before it, **no optimizer step** (the
  optimizer's cost is proportional to the parameter count, which the separation heads change by < 0.5 %);
* rounds: each round runs every variant once, in a shuffled order; warm-up rounds are discarded; the ratio to LAVIS
  is taken within each round (paired, so load drift on a shared machine cancels) and summarised by its median and
  inter-quartile range;
* memory: after the timed rounds, steps per variant (interleaved; tiny 3, full 2 repeats; median) with the
  model owning its momentum weights as in real training. CPU: glibc's free heap is returned to the OS
  (``malloc_trim``), the kernel's peak-RSS mark is reset (``/proc/self/clear_refs``), and the step's memory is the
  peak RSS during the step minus the RSS before it (activations, gradients, temporaries; page granularity; other
  threads of this process would count too, there are none). CUDA: ``max_memory_allocated`` during the step minus
  ``memory_allocated`` before it. The reported peak memory is the model's own bytes (parameters + buffers, counted
  exactly) plus that step memory, so the ratio to LAVIS compares like with like on both devices;
* the plugin's extra code alone: what ``albef_latent_pretrain`` adds to LAVIS's step (two checks in ``forward``;
  with a ``latent:`` block ``latent_losses_from_cls`` forward + backward on the step's own [CLS] features and the
  separation heads' momentum update), timed alone, as a percentage of LAVIS's step: a low-noise estimate of the
  overhead that the end-to-end ratio measures with the machine's noise.

Part 2, each loss alone as the batch grows (N = 64 ... 4096, D = 256, forward + backward, median of repeats), with a
log-log plot and O(N), O(N^2) guide lines.

Targets (issue 8): ``none`` <= 1 % over LAVIS, ``bb`` and ``gc`` <= 5 %, ``fs`` <= 10 % (time; ``all`` has none).

    python -m benchmarks.cost                       # default: tiny + full, ~10 min on 2 CPU cores
    python -m benchmarks.cost --quick               # smoke run, seconds
    python -m benchmarks.cost --sizes full --device cuda --repeats 20
"""
import argparse
import gc
import math
import os
import random
import sys
import time

if __package__ in (None, ""):  # python benchmarks/cost.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from benchmarks import common  # noqa: E402
from benchmarks.common import log  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECTS_DIR = os.path.join(REPO_ROOT, "projects")

#: variant -> project yaml whose ``model.latent`` block it uses (``lavis`` and ``none`` have none)
PROJECT_YAML = {"fs": "albef_fs.yaml", "bb": "albef_bb.yaml", "gc": "albef_gc.yaml", "all": "albef_all.yaml"}
#: ``name`` uses the augmented view of the data (``aug_view: data``, ALBEF's default: one more momentum-encoder
#: forward on the second view); ``name@momentum`` the paper-literal view (momentum features of the same input)
VARIANTS = ("lavis", "none", "fs", "bb", "gc", "all", "bb@momentum", "all@momentum")
#: targets (issues 8 and 12): the step time of each variant at most this multiple of LAVIS's: the plugin without
#: a latent block 1 %, the literal view 2 % (bridge), the augmented view 25 %
TARGETS = {"none": 1.01, "bb@momentum": 1.02, "bb": 1.25, "all": 1.25}
BERT_BASE_VOCAB = 30522

#: per-size defaults; ``--repeats`` / ``--batch-size`` override repeats / batch for every size
SIZES = {
    "tiny": dict(batch=16, warmup=3, repeats=40, memory_repeats=3),
    "full": dict(batch=2, warmup=1, repeats=5, memory_repeats=2),
}
QUICK = dict(batch=4, warmup=1, repeats=2, memory_repeats=1)
EXTRA_REPEATS = 3  # the plugin's extra code is timed this many times per round (median)
SCALING_NS = (64, 128, 256, 512, 1024, 2048, 4096)
SCALING_D = 256
SCALING_ENCODER_WIDTH = 768  # input width of FeatureSeparation's heads (ALBEF base: ViT-B / BERT-base CLS)

CAPTIONS = [
    "a red circle at the top left of a plain background",
    "a blue square in the middle",
    "two green triangles near the bottom right corner",
    "a small yellow star drawn in the evening by alice",
    "a purple ring on a striped background",
    "an orange cross with a companion dot in the morning",
    "a large white heart on the left",
    "a black arrow pointing up, painted in paris",
]


# -- models ------------------------------------------------------------------------------------------------------
def split_variant(variant):
    """``(regularizer variant, aug_view)`` of a variant name: ``"bb@momentum"`` -> ``("bb", "momentum")``."""
    name, _, view = variant.partition("@")
    return name, view or "data"


def latent_block(variant):
    """The ``model.latent`` block of a variant: ``{}`` for ``lavis`` / ``none``, else its project yaml's."""
    from omegaconf import OmegaConf

    variant = split_variant(variant)[0]
    if variant in ("lavis", "none"):
        return {}
    block = OmegaConf.load(os.path.join(PROJECTS_DIR, PROJECT_YAML[variant])).model.latent
    return OmegaConf.to_container(block, resolve=True)


def model_config(size):
    """The model config of a size: ``tiny`` = the plugin's tiny type; ``full`` = the ``base`` type (ViT-B/16 + BERT
    base, LAVIS's ``med_config_albef.json``) offline: random init, 224 px, the local vocabulary for tokenizing."""
    from lavis.common.registry import registry
    from omegaconf import OmegaConf

    cls = registry.get_model_class("albef_latent_pretrain")
    if size == "tiny":
        return OmegaConf.load(cls.default_config_path("tiny")).model
    if size != "full":
        raise ValueError(f"unknown size {size!r}: choose tiny or full")
    cfg = OmegaConf.load(cls.default_config_path("base")).model
    tiny = OmegaConf.load(cls.default_config_path("tiny")).model
    cfg.update({"vit_from_pretrained": False, "text_from_pretrained": False, "image_size": 224,
                "load_pretrained": False, "pretrained": None, "tokenizer": tiny.tokenizer})
    return cfg


def lavis_reference_class(tokenizer):
    """LAVIS's ``AlbefPretrain`` with only ``init_tokenizer`` overridden (returns ``tokenizer``: no hub access)."""
    from lavis.models.albef_models.albef_pretrain import AlbefPretrain

    class LavisAlbefPretrain(AlbefPretrain):
        def init_tokenizer(self):
            return tokenizer

    return LavisAlbefPretrain


def model_bytes(model):
    """Bytes of a model's parameters and buffers (each storage counted once)."""
    seen, total = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        key = (t.device, t.data_ptr())
        if key not in seen:
            seen.add(key)
            total += t.numel() * t.element_size()
    return total


class Bench:
    """The variants of one size, sharing one pristine copy of the weights (see the module docstring)."""

    def __init__(self, size, batch, device, variants=VARIANTS, seed=0):
        import lavis_latent  # noqa: F401  (registers albef_latent_pretrain)
        from lavis.models.med import BertForMaskedLM
        from lavis_latent.models.albef_latent import AlbefLatentPretrain
        from lavis_latent.models.encoders import build_vision_encoder, load_med_config, load_tokenizer

        if "lavis" not in variants:
            raise ValueError("the variants must include 'lavis' (the reference)")
        self.size, self.batch, self.device = size, batch, torch.device(device)
        cfg = model_config(size)
        self.cfg = cfg
        tokenizer = load_tokenizer(cfg.tokenizer)
        vocab = len(tokenizer) if size == "tiny" else BERT_BASE_VOCAB
        torch.manual_seed(seed)
        image_encoder = build_vision_encoder(cfg, from_pretrained=False)
        text_encoder = BertForMaskedLM(config=load_med_config(cfg, vocab_size=vocab))
        kwargs = dict(queue_size=cfg.queue_size, embed_dim=cfg.embed_dim, mlm_mask_prob=cfg.mlm_mask_prob,
                      temp=cfg.temp, momentum=cfg.momentum, alpha=cfg.alpha, max_txt_len=cfg.max_txt_len)
        if cfg.queue_size % batch:
            raise ValueError(f"queue_size {cfg.queue_size} is not a multiple of the batch size {batch}")
        self.models = {}
        for v in variants:
            torch.manual_seed(seed + 1)  # same initialisation of the small heads in every variant
            if v == "lavis":
                m = lavis_reference_class(tokenizer)(image_encoder=image_encoder, text_encoder=text_encoder, **kwargs)
            else:
                m = AlbefLatentPretrain(image_encoder=image_encoder, text_encoder=text_encoder,
                                        tokenizer=cfg.tokenizer, latent=latent_block(v),
                                        aug_view=split_variant(v)[1], **kwargs)
            self.models[v] = m.to(self.device).train()
        # the pristine weights: LAVIS's state dict (params shared, buffers cloned) plus the first separation heads
        # (state_dict(keep_vars=True) also lists tied weights, e.g. the MLM decoder = the word embeddings)
        ref = self.models["lavis"]
        self.params, self.buffers = {}, {}
        for k, t in ref.state_dict(keep_vars=True).items():
            if isinstance(t, torch.nn.Parameter):
                self.params[k] = t.data
            else:
                self.buffers[k] = t.detach().clone()
        lavis_keys = set(self.params) | set(self.buffers)
        for v, m in self.models.items():
            for k, p in m.named_parameters():
                if k not in lavis_keys:  # latent.separation.*, separation_m.*
                    self.params.setdefault(k, p.data)
        for v, m in self.models.items():
            keys = set(m.state_dict())
            missing = lavis_keys - keys
            extra = {k for k in keys - lavis_keys if not k.startswith(("latent.", "separation_m."))}
            if missing or extra:
                raise RuntimeError(f"{v}: state-dict keys differ from LAVIS's: missing {sorted(missing)[:5]}, "
                                   f"unexpected {sorted(extra)[:5]}")
            self.restore(m)  # = load_state_dict(pristine, strict=True) without copying: parameters are tied
        self.param_count = {v: sum(p.numel() for p in m.parameters()) for v, m in self.models.items()}
        self.bytes = {v: model_bytes(m) for v, m in self.models.items()}
        g = torch.Generator().manual_seed(seed + 2)
        size_px = cfg.image_size
        self.samples = {
            "image": torch.randn(batch, 3, size_px, size_px, generator=g).to(self.device),
            "text_input": [CAPTIONS[i % len(CAPTIONS)] for i in range(batch)],
            "image_id": torch.arange(batch).to(self.device),
            "epoch": 0, "iters": 100, "num_iters_per_epoch": 100,  # distillation fully ramped up
        }
        # the same batch with a second view (another image tensor, reversed captions), as the paired-view
        # processors give it; LAVIS's model and the momentum-view variants get the plain batch
        from lavis_latent.processors import PairedViews

        aug_image = torch.randn(batch, 3, size_px, size_px, generator=g).to(self.device)
        self.aug = (aug_image, [" ".join(reversed(c.split())) for c in self.samples["text_input"]])
        self.paired_samples = dict(self.samples, image=PairedViews(self.samples["image"], self.aug[0]),
                                   text_input=PairedViews(self.samples["text_input"], self.aug[1]))
        self.reference_losses = {}  # seed -> LAVIS's (itc, itm, mlm)
        self.max_loss_diff = {v: 0.0 for v in self.models}

    def batch_of(self, variant):
        """The batch a variant trains on: with the second view where it uses the data's augmented view."""
        model = self.models[variant]
        if getattr(model, "aug_view", None) == "data" and model.latent.enabled:
            return self.paired_samples
        return self.samples

    def restore(self, model):
        """Re-tie every parameter to the pristine weights and reset the buffers (queues) to their pristine values."""
        with torch.no_grad():
            for k, p in model.named_parameters():
                if p.data.data_ptr() != self.params[k].data_ptr():
                    p.data = self.params[k]
            for k, b in model.named_buffers():
                b.copy_(self.buffers[k])

    def untie_momentum(self, model):
        """Give ``model`` its own copy of the weights that LAVIS's momentum update re-allocates (frozen ones), as a
        model in real training owns them (used for the memory step; :meth:`restore` ties them again)."""
        for p in model.parameters():
            if not p.requires_grad:
                p.data = p.data.clone()

    def step(self, variant, seed):
        """One training step (forward + backward) of ``variant`` with the RNG seeded by ``seed``; returns seconds.

        Also checks that the base losses (ITC, ITM, MLM) equal LAVIS's at the same seed.
        """
        model = self.models[variant]
        for p in model.parameters():
            p.grad = None
        torch.manual_seed(seed)
        common.synchronize(self.device)
        t0 = time.perf_counter()
        out = model(self.batch_of(variant))
        out.loss.backward()
        common.synchronize(self.device)
        seconds = time.perf_counter() - t0
        self._check_losses(variant, seed, out)
        del out
        for p in model.parameters():
            p.grad = None
        self.restore(model)
        return seconds

    def _check_losses(self, variant, seed, out):
        losses = tuple(out[k].detach().item() for k in ("loss_itc", "loss_itm", "loss_mlm"))
        if not all(math.isfinite(x) for x in losses):
            raise RuntimeError(f"{variant}: non-finite loss {losses}")
        ref = self.reference_losses.get(seed)
        if variant == "lavis":
            self.reference_losses[seed] = losses
        elif ref is not None:
            self.max_loss_diff[variant] = max(self.max_loss_diff[variant], max(abs(a - b) for a, b in zip(losses, ref)))

    def memory_step(self, variant, seed):
        """Bytes a training step of ``variant`` needs above what is resident before it (see the module docstring)."""
        model = self.models[variant]
        self.untie_momentum(model)
        for p in model.parameters():
            p.grad = None
        gc.collect()
        torch.manual_seed(seed)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            before = torch.cuda.memory_allocated(self.device)
            out = model(self.batch_of(variant))
            out.loss.backward()
            torch.cuda.synchronize(self.device)
            used = torch.cuda.max_memory_allocated(self.device) - before
        else:
            common.release_free_memory()
            before = common.rss_bytes()
            if before is None or not common.reset_peak_rss():
                raise RuntimeError("CPU memory needs Linux's /proc/self/status and /proc/self/clear_refs")
            out = model(self.batch_of(variant))
            out.loss.backward()
            used = common.peak_rss_bytes() - before
        del out
        for p in model.parameters():
            p.grad = None
        self.restore(model)
        return used

    def extra_time(self, variant, seed):
        """Seconds of the code the plugin adds to LAVIS's step, run alone on this batch: the forward's checks
        (``_itm_has_negatives``, ``latent.enabled``) and, with a ``latent:`` block, ``latent_losses_from_cls``
        forward + backward on the step's own [CLS] features plus the momentum update of the separation heads
        (LAVIS's ``_momentum_update`` on that pair only) and, with the data's augmented view, the momentum
        encoders' pass over the second view (``momentum_cls``). None for ``lavis``."""
        model = self.models[variant]
        if getattr(model, "latent", None) is None:
            return None
        if not hasattr(self, "_cls"):
            with torch.no_grad():
                torch.manual_seed(seed)
                inter = self.models["lavis"](self.samples).intermediate_output
                self._cls = [t[:, 0, :].detach().clone() for t in (inter.image_embeds, inter.text_embeds,
                                                                    inter.image_embeds_m, inter.text_embeds_m)]
            self.restore(self.models["lavis"])
        image_cls, text_cls = (t.clone().requires_grad_(True) for t in self._cls[:2])
        image_cls_m, text_cls_m = self._cls[2:]
        for p in model.parameters():
            p.grad = None
        common.synchronize(self.device)
        t0 = time.perf_counter()
        model._itm_has_negatives(self.samples)
        if model.latent.enabled:
            if model.separation_m is not None:
                pairs = model.model_pairs
                model.model_pairs = [[model.latent.separation, model.separation_m]]
                try:
                    with torch.no_grad():
                        model._momentum_update()
                finally:
                    model.model_pairs = pairs
            if self.batch_of(variant) is self.paired_samples:
                image_cls_m, text_cls_m = model.momentum_cls(*self.aug)
            losses = model.latent_losses_from_cls(image_cls, text_cls, image_cls_m, text_cls_m)
            sum(losses.values()).backward()
        common.synchronize(self.device)
        seconds = time.perf_counter() - t0
        for p in model.parameters():
            p.grad = None
        self.restore(model)
        return seconds


    def extra_saved_bytes(self, variant):
        """Bytes of the new tensors that the plugin's latent losses keep alive for backward on this batch (storages
        of the model's parameters and of the [CLS] features they read are excluded: those are resident anyway).
        0 without a ``latent:`` block; None for ``lavis``."""
        model = self.models[variant]
        if getattr(model, "latent", None) is None:
            return None
        if not model.latent.enabled:
            return 0
        self.extra_time(variant, 9000)  # makes sure self._cls exists
        image_cls, text_cls = (t.clone().requires_grad_(True) for t in self._cls[:2])
        image_cls_m, text_cls_m = self._cls[2:]
        inputs = (image_cls, text_cls, image_cls_m, text_cls_m)
        exclude = {t.untyped_storage().data_ptr() for t in list(model.parameters()) + list(inputs)}
        saved = {}

        def pack(t):
            storage = t.untyped_storage()
            if storage.data_ptr() not in exclude:
                saved[storage.data_ptr()] = storage.nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            losses = model.latent_losses_from_cls(*inputs)
        sum(losses.values()).backward()
        for p in model.parameters():
            p.grad = None
        self.restore(model)
        return sum(saved.values())


def measure_size(size, device, batch, warmup, repeats, memory_repeats, seed=0):
    """Part 1 for one size: interleaved step times, the plugin's extra code alone (timed in every round, right
    after the steps), memory; returns a json-able dict."""
    t_build = time.perf_counter()
    bench = Bench(size, batch, device, seed=seed)
    variants = list(bench.models)
    log(f"{size}: built {len(variants)} variants in {time.perf_counter() - t_build:.1f} s "
        f"({bench.param_count['lavis'] / 1e6:.1f} M parameters with momentum copies, batch {batch}, "
        f"{bench.cfg.image_size} px)")
    order_rng = random.Random(seed)
    times = {v: [] for v in variants}
    extra = {v: [] for v in variants if v != "lavis"}
    for r in range(warmup + repeats):
        order = variants[:]
        order_rng.shuffle(order)
        step_seed = 1000 + r
        row = {v: bench.step(v, step_seed) for v in order}
        extra_row = {v: common.quantile([bench.extra_time(v, 9000) for _ in range(EXTRA_REPEATS)], 0.5)
                     for v in order if v in extra}
        measured = r >= warmup
        if measured:
            for v in variants:
                times[v].append(row[v])
            for v in extra:
                extra[v].append(extra_row[v])
        tag = f"round {r - warmup + 1}/{repeats}" if measured else f"warm-up {r + 1}/{warmup}"
        log(f"{size} {tag}: " + ", ".join(f"{v} {row[v] * 1e3:.0f} ms" for v in variants) +
            "; plugin code alone " + ", ".join(f"{v} {extra_row[v] * 1e3:.2f} ms" for v in extra))

    mem = {v: [] for v in variants}
    for r in range(memory_repeats):
        order = variants[:]
        order_rng.shuffle(order)
        for v in order:
            mem[v].append(bench.memory_step(v, 5000 + r))
        log(f"{size} memory {r + 1}/{memory_repeats}: " +
            ", ".join(f"{v} {mem[v][-1] / 2**20:.0f} MiB" for v in variants))


    saved = {v: bench.extra_saved_bytes(v) for v in variants}
    lavis_mem = common.quantile(mem["lavis"], 0.5) + bench.bytes["lavis"]
    out = {"batch": batch, "image_size": int(bench.cfg.image_size), "warmup_rounds": warmup, "rounds": repeats,
           "memory_repeats": memory_repeats, "variants": {}}
    for v in variants:
        ratios = [t / ref for t, ref in zip(times[v], times["lavis"])]
        step_mem = common.quantile(mem[v], 0.5)
        entry = {
            "latent": latent_block(v),
            "parameters": bench.param_count[v],
            "model_bytes": bench.bytes[v],
            "step_ms": [t * 1e3 for t in times[v]],
            "step_ms_summary": common.summary([t * 1e3 for t in times[v]]),
            "time_ratio": common.summary(ratios),
            "step_memory_bytes": mem[v],
            "peak_memory_bytes": bench.bytes[v] + step_mem,
            "memory_ratio": (bench.bytes[v] + step_mem) / lavis_mem,
            "step_memory_ratio": step_mem / common.quantile(mem["lavis"], 0.5),
            "max_base_loss_diff_vs_lavis": bench.max_loss_diff[v],
            "extra_saved_for_backward_bytes": saved[v],
        }
        if v in extra:
            entry["extra_code_ms"] = common.summary([t * 1e3 for t in extra[v]])
            entry["extra_code_pct_of_lavis_step"] = common.quantile(
                [100.0 * e / ref for e, ref in zip(extra[v], times["lavis"])], 0.5)
        out["variants"][v] = entry
    del bench
    gc.collect()
    common.release_free_memory()
    return out


# -- part 2: each loss alone -------------------------------------------------------------------------------------
def loss_functions(d, width, device):
    """name -> callable(inputs) returning a scalar loss; inputs from :func:`loss_inputs`."""
    from lavis_latent.regularizers import (FeatureSeparation, brownian_bridge_loss, contrastive_loss,
                                           geometric_consistency_loss, orthogonal_loss, uniformity_loss)

    torch.manual_seed(0)
    heads = FeatureSeparation(width, width, d).to(device)
    heads_m = heads.momentum_copy()

    def separation(x):
        zvi, zti = heads(x["h_v"], x["h_t"])
        with torch.no_grad():
            zvia, ztia = heads_m(x["h_v_aug"], x["h_t_aug"])
        return heads.loss(x["z_v"], x["z_t"], zvi, zti, zvia, ztia)

    return {
        "contrastive (ITC: V2T+T2V)": lambda x: contrastive_loss(x["z_v"], x["z_t"]),
        "contrastive + in-modal (4 terms)": lambda x: contrastive_loss(x["z_v"], x["z_t"], x["z_v_aug"], x["z_t_aug"]),
        "brownian_bridge_loss": lambda x: brownian_bridge_loss(x["z_v"], x["z_t"], x["z_v_aug"]),
        "geometric_consistency_loss": lambda x: geometric_consistency_loss(x["z_v"], x["z_t"], x["z_v_aug"],
                                                                           x["z_t_aug"]),
        "FeatureSeparation.loss (with heads)": separation,
        "orthogonal_loss": lambda x: orthogonal_loss(x["z_v"], x["z_v_ind"]),
        "uniformity_loss": lambda x: uniformity_loss(x["z_v_ind"]),
    }


def loss_inputs(n, d, width, device, seed=0):
    """Random inputs of batch ``n``: unit features [n, d] (online ones need grad), encoder features [n, width]."""
    g = torch.Generator().manual_seed(seed)

    def unit(requires_grad):
        return F.normalize(torch.randn(n, d, generator=g), dim=-1).to(device).requires_grad_(requires_grad)

    def enc(requires_grad):
        return torch.randn(n, width, generator=g).to(device).requires_grad_(requires_grad)

    return {"z_v": unit(True), "z_t": unit(True), "z_v_aug": unit(False), "z_t_aug": unit(False),
            "z_v_ind": unit(True), "h_v": enc(True), "h_t": enc(True), "h_v_aug": enc(False),
            "h_t_aug": enc(False)}


def measure_scaling(ns, d, repeats, device, width=SCALING_ENCODER_WIDTH):
    """Part 2: forward + backward seconds of each loss alone at each batch size (median of ``repeats``, one
    warm-up; the losses interleaved within each repeat)."""
    device = torch.device(device)
    fns = loss_functions(d, width, device)
    out = {name: {} for name in fns}
    for n in ns:
        x = loss_inputs(n, d, width, device)
        samples = {name: [] for name in fns}
        for r in range(repeats + 1):
            for name, fn in fns.items():
                for t in x.values():
                    t.grad = None
                common.synchronize(device)
                t0 = time.perf_counter()
                fn(x).backward()
                common.synchronize(device)
                if r > 0:
                    samples[name].append(time.perf_counter() - t0)
        for name in fns:
            out[name][str(n)] = common.summary([s * 1e3 for s in samples[name]])
        log(f"scaling N={n}: " + ", ".join(f"{name.split(' ')[0]} {out[name][str(n)]['median']:.2f} ms"
                                          for name in fns))
        del x
    return out


def plot_scaling(scaling, ns, path):
    """Log-log plot of time vs N per loss, with O(N) and O(N^2) guide lines; returns ``path``."""
    plt = common.pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for name, per_n in scaling.items():
        ax.plot(ns, [per_n[str(n)]["median"] for n in ns], marker="o", label=name)
    big = max(max(per_n[str(ns[-1])]["median"] for per_n in scaling.values()), 1e-3)
    n_max = ns[-1]
    ax.plot(ns, [big * n / n_max for n in ns], "k:", lw=1, label="O(N) guide")
    ax.plot(ns, [big * (n / n_max) ** 2 for n in ns], "k--", lw=1, label="O(N$^2$) guide")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel(f"batch size N (D = {SCALING_D})")
    ax.set_ylabel("forward + backward time, ms (median)")
    ax.set_title("Cost of each loss alone")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return common.save_png(fig, path)


# -- report ------------------------------------------------------------------------------------------------------
def verdicts(results):
    """Rows ``(size, variant, target, median ratio, q1, q3, PASS|MISS)`` for the issue's targets."""
    rows = []
    for size, res in results.items():
        for v, limit in TARGETS.items():
            if v in res["variants"]:
                r = res["variants"][v]["time_ratio"]
                rows.append((size, v, limit, r["median"], r["q1"], r["q3"], "PASS" if r["median"] <= limit else "MISS"))
    return rows


def pct(ratio):
    """A ratio as a signed percentage over 1: 1.023 -> '+2.3 %'."""
    return f"{(ratio - 1) * 100:+.1f} %"


def small_pct(value):
    """A percentage that may be tiny: 2 significant digits below 0.01 %, else 3 decimals."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.2g} %" if abs(value) < 0.01 else f"{value:.3f} %"


def markdown(report):
    """The markdown report (list of lines) from the json-able ``report`` dict."""
    lines = ["# Cost of the latent-structure regularizers against LAVIS's ALBEF", "",
             f"Command: `{report['command']}`  ", f"Machine: {common.machine_description(report['machine'])}  ",
             f"Load average at start / end: {common.format_load(report['load_start'])} / "
             f"{common.format_load(report['load_end'])}; torch threads: {report['threads']}  ",
             f"Total run time: {report['total_seconds']:.0f} s", "",
             "Method: one process; every variant shares the same weights and batch; RNG re-seeded before each "
             "variant's step (the base ITC/ITM/MLM losses of every variant equal LAVIS's, checked each step); a step "
             "is forward + backward, no optimizer step; rounds in shuffled order, warm-up rounds dropped; ratio to "
             "LAVIS within each round, median [q1, q3] over rounds. Peak memory = model bytes + step memory "
             f"({report['memory_method']}). `lavis` is LAVIS's own `AlbefPretrain` (only `init_tokenizer` "
             "overridden for the local vocabulary); `none` is `albef_latent_pretrain` with no `latent:` block; "
             "`fs`/`bb`/`gc`/`all` use the `latent:` blocks of `projects/albef_*.yaml` with ALBEF's default augmented "
             "view (`aug_view: data`: a second view of the batch through the momentum encoders); `*@momentum` the "
             "paper-literal view (`aug_view: momentum`: the momentum features LAVIS's forward already computed).", ""]
    if report["steps"]:
        lines += ["## Targets (step time vs LAVIS)", ""]
        rows = [(s, v, f"<= {pct(lim)}", pct(m), f"[{pct(q1)}, {pct(q3)}]",
                 small_pct(report["steps"][s]["variants"][v].get("extra_code_pct_of_lavis_step")),
                 verdict)
                for s, v, lim, m, q1, q3, verdict in verdicts(report["steps"])]
        lines += common.markdown_table(["size", "variant", "target", "measured (median of paired ratios)", "IQR",
                                        "plugin code alone", "verdict"], rows)
        lines += [""]
    for size, res in report["steps"].items():
        lavis_ms = res["variants"]["lavis"]["step_ms_summary"]["median"]
        lines += [f"## {size}: batch {res['batch']}, {res['image_size']} px, {res['rounds']} rounds "
                  f"({res['warmup_rounds']} warm-up), LAVIS step {lavis_ms:.0f} ms (median)", ""]
        rows = []
        for v, e in res["variants"].items():
            tr = e["time_ratio"]
            iso = e.get("extra_code_pct_of_lavis_step")
            rows.append((v, f"{tr['median']:.3f}", f"[{tr['q1']:.3f}, {tr['q3']:.3f}]",
                         small_pct(iso),
                         "-" if e["extra_saved_for_backward_bytes"] is None
                         else f"{e['extra_saved_for_backward_bytes'] / 1024:.1f}",
                         f"{e['memory_ratio']:.3f}", f"{e['step_memory_ratio']:.3f}",
                         f"{e['peak_memory_bytes'] / 2**20:.0f}", f"{e['parameters'] / 1e6:.2f}",
                         f"{e['max_base_loss_diff_vs_lavis']:.1e}"))
        lines += common.markdown_table(
            ["variant", "time ratio", "IQR", "plugin code alone, % of LAVIS step",
             "plugin tensors saved for backward, KiB", "peak memory ratio",
             "step memory ratio", "peak MiB", "params M", "max base-loss diff"], rows)
        lines += [""]
    if report["scaling"]:
        ns = report["scaling_ns"]
        lines += [f"## Each loss alone: forward + backward, median ms (D = {SCALING_D})", ""]
        sl = slopes(report["scaling"], ns)
        rows = [[name] + [f"{per_n[str(n)]['median']:.3g}" for n in ns] + [f"{sl[name]:.2f}" if sl else "-"]
                for name, per_n in report["scaling"].items()]
        lines += common.markdown_table(["loss"] + [f"N={n}" for n in ns] + ["log-log slope (last two N)"], rows)
        lines += ["", f"![time vs N]({os.path.basename(report['files']['png'])})", ""]
    if report.get("notes"):
        lines += ["## Notes", ""] + report["notes"] + [""]
    return lines


def choose_threads(arg):
    """``auto``: 2 intra-op threads if the 1-minute load average is below 0.5, else 1 (a shared 2-core machine)."""
    if arg != "auto":
        return int(arg)
    load = common.load_average()
    return min(2, os.cpu_count() or 1) if load is not None and load[0] < 0.5 else 1


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.cost", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="tiny,full", help="comma list of tiny, full (default: tiny,full)")
    p.add_argument("--repeats", type=int, default=None,
                   help="measured rounds per size (default: tiny 40, full 5; --quick 2)")
    p.add_argument("--batch-size", type=int, default=None, help="batch for every size (default: tiny 16, full 2)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--threads", default="auto",
                   help="torch intra-op threads; auto = 2 if the load average is below 0.5, else 1")
    p.add_argument("--scaling-ns", default=",".join(str(n) for n in SCALING_NS),
                   help="batch sizes for the loss-alone scaling (empty: skip)")
    p.add_argument("--scaling-repeats", type=int, default=None, help="repeats per N (default 5; --quick 2)")
    p.add_argument("--output-dir", default=os.path.join(REPO_ROOT, "benchmarks", "results"),
                   help="where cost.md, cost.json and cost_scaling.png go (default: benchmarks/results of the repo)")
    p.add_argument("--render", metavar="JSON", default=None,
                   help="measure nothing: rewrite the markdown (and the json's notes) of an earlier run's cost.json")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: tiny only, batch 4, 2 rounds, scaling at N=64,128")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.render:
        import json

        with open(args.render) as f:
            report = json.load(f)
        report["notes"] = make_notes(report)
        md = os.path.join(os.path.dirname(os.path.abspath(args.render)), "cost.md")
        common.write_text(md, markdown(report))
        common.write_json(args.render, report)  # the same measurements, notes regenerated
        log(f"wrote {md} from {args.render}")
        return report
    t_start = time.perf_counter()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    threads = choose_threads(args.threads)
    load_start = common.load_average()
    torch.set_num_threads(threads)
    sizes = [s for s in args.sizes.split(",") if s]
    if args.quick:
        sizes = ["tiny"]
    for s in sizes:
        if s not in SIZES:
            raise SystemExit(f"--sizes: unknown size {s!r} (choose from {', '.join(SIZES)})")
    ns = [int(n) for n in args.scaling_ns.split(",") if n]
    if args.quick:
        ns = [64, 128]
    scaling_repeats = args.scaling_repeats or (2 if args.quick else 5)
    machine = common.machine_info(device)
    log(f"{common.machine_description(machine)}; sizes {sizes}; threads {threads}")
    os.makedirs(args.output_dir, exist_ok=True)
    files = {"md": os.path.join(args.output_dir, "cost.md"), "json": os.path.join(args.output_dir, "cost.json"),
             "png": os.path.join(args.output_dir, "cost_scaling.png")}

    steps = {}
    for size in sizes:
        p = dict(QUICK if args.quick else SIZES[size])
        if args.repeats is not None:
            p["repeats"] = args.repeats
        if args.batch_size is not None:
            p["batch"] = args.batch_size
        steps[size] = measure_size(size, device, p["batch"], p["warmup"], p["repeats"], p["memory_repeats"])
    scaling = measure_scaling(ns, SCALING_D, scaling_repeats, device) if ns else {}

    report = {
        "command": common.command_line("benchmarks.cost", argv),
        "machine": machine,
        "threads": threads,
        "device": str(device),
        "load_start": load_start,
        "load_end": common.load_average(),
        "memory_method": ("CUDA max_memory_allocated minus memory_allocated before the step" if device.type == "cuda"
                          else "CPU: peak RSS during the step (VmHWM after resetting it via /proc/self/clear_refs) "
                               "minus the RSS before it, after malloc_trim"),
        "step": "forward + backward, no optimizer step",
        "targets": TARGETS,
        "steps": steps,
        "verdicts": [dict(zip(("size", "variant", "target", "median", "q1", "q3", "verdict"), row))
                     for row in verdicts(steps)],
        "scaling_ns": ns,
        "scaling_d": SCALING_D,
        "scaling": scaling,
        "files": files,
    }
    report["notes"] = make_notes(report)
    if scaling:
        plot_scaling(scaling, ns, files["png"])
    report["total_seconds"] = time.perf_counter() - t_start
    common.write_json(files["json"], report)
    common.write_text(files["md"], markdown(report))
    for row in report["verdicts"]:
        log(f"target {row['size']} {row['variant']}: {pct(row['median'])} [IQR {pct(row['q1'])}, {pct(row['q3'])}]"
            f" vs <= {pct(row['target'])}: {row['verdict']}")
    log(f"wrote {files['md']}, {files['json']}" + (f", {files['png']}" if scaling else ""))
    log(f"total {report['total_seconds']:.0f} s")
    return report


def slopes(scaling, ns):
    """Log-log slope of each loss's median time between the two largest batch sizes (1: O(N), 2: O(N^2))."""
    if len(ns) < 2:
        return {}
    a, b = ns[-2], ns[-1]
    return {name: math.log(per_n[str(b)]["median"] / per_n[str(a)]["median"]) / math.log(b / a)
            for name, per_n in scaling.items()}


def make_notes(report):
    """Explanations for the markdown, derived from the measured numbers (a verdict per target, the scaling slopes)
    plus the method's limits."""
    notes = []
    for row in report["verdicts"]:
        e = report["steps"][row["size"]]["variants"][row["variant"]]
        iso = e.get("extra_code_pct_of_lavis_step", float("nan"))
        allowed = (row["target"] - 1) * 100
        head = (f"- {row['size']} / {row['variant']}: end-to-end {pct(row['median'])} (IQR {pct(row['q1'])} to "
                f"{pct(row['q3'])}); the plugin's extra code alone costs {small_pct(iso)} of LAVIS's step")
        if row["variant"] == "none":
            head += (" (`none` runs LAVIS's forward unchanged, with the same losses bit for bit, plus two Python "
                     "checks)")
        if row["verdict"] == "PASS" and row["q3"] <= row["target"]:
            notes.append(head + f" (target {allowed:.0f} %): PASS.")
        elif row["verdict"] == "PASS" and iso < allowed:
            notes.append(head + f" (target {allowed:.0f} %): PASS by the median; the upper quartile lies past the "
                         "target because of the shared machine's timing noise (the code alone is within it).")
        elif row["verdict"] == "PASS":
            notes.append(head + f", above the {allowed:.0f} % target: the PASS of the noisy end-to-end median "
                         "is not to be trusted at this size.")
        elif iso < allowed:
            notes.append(head + f", well inside the {allowed:.0f} % target, so this MISS is the shared machine's "
                         "timing noise, not the regularizer: rerun on a quiet machine or with more --repeats.")
        else:
            notes.append(head + f", above the {allowed:.0f} % target: a real overhead at this size.")
    if report["scaling"] and len(report["scaling_ns"]) >= 2:
        ns = report["scaling_ns"]
        sl = slopes(report["scaling"], ns)
        notes.append(f"- Loss alone, log-log slope of time between N={ns[-2]} and N={ns[-1]} (1 = O(N), 2 = O(N^2)): "
                     + ", ".join(f"{name} {v:.2f}" for name, v in sl.items()) + ".")
        notes.append("- Geometric consistency builds N x N similarity matrices (V-T, V-V, T-T and the two augmented "
                     "ones) from [N, D] features: O(N^2 D), like the contrastive logits themselves, with about five "
                     "such products instead of two, so at large N it costs a small multiple of the ITC-like term. "
                     "Brownian bridge and the orthogonality term are per-sample, O(N D). Feature separation adds "
                     "two Linear heads (O(N x width x D), dominant at small N) and in-modal contrastive + uniformity "
                     "terms, O(N^2 D). In ALBEF pretraining N is the per-GPU batch (64 in projects/), where every "
                     "term is milliseconds, against seconds for the encoders' forward and backward.")
    notes += [
        "- A step here is forward + backward without the optimizer step; the optimizer's cost is proportional to "
        "the trainable parameters, which the separation heads increase by < 0.5 % at full size.",
        "- `full` is ALBEF's ViT-B/16 + BERT-base (6 text + 6 fusion layers, LAVIS's med_config_albef.json, vocabulary "
        "30522) with random weights, at 224 px; captions are tokenized with the plugin's local vocabulary (no hub "
        "access), which changes token ids, not shapes (max_txt_len 30).",
        "- CPU memory is RSS: page granularity and glibc's heap management make the step memory of the same model "
        "vary between repeats by a few % (a few MiB of the tiny model's ~120 MiB, up to ~100 MiB of the full "
        "model's ~1.5 GiB), more than the regularizers allocate: what they keep for backward is counted exactly "
        "in the `plugin tensors saved for backward` column (saved_tensors_hooks; new storages only), and their "
        "parameters in `params M` / the peak. On CUDA the report uses max_memory_allocated instead of RSS.",
        "- The machine is shared (2 cores, other jobs running): end-to-end ratios carry that noise, which interleaving "
        "and paired ratios reduce but do not remove; the `plugin code alone` column does not depend on it.",
    ]
    return notes

if __name__ == "__main__":
    main()
