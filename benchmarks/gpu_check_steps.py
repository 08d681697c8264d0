"""Training steps of ``benchmarks.gpu_check``: a mixed-precision step (autocast + GradScaler + AdamW) as LAVIS's
runner takes it, its peak memory, and the ALBEF and CLIP models it is timed on.

The step is the real one: forward under ``torch.autocast`` (float16 with a ``GradScaler`` on CUDA, as LAVIS's runner
with ``run.amp: True``; bfloat16 without a scaler on CPU), ``scaler.scale(loss).backward()``, ``scaler.step``
(AdamW), ``scaler.update()``. AdamW runs at learning rate 0: the same kernels as a real step (the decay multiply and
the update are computed, by 0), so the weights that the variants share stay the same from step to step and every
variant keeps training on the same weights (the base losses stay comparable with LAVIS's).
"""
import os
import random
import time

import torch

from lavis_latent.tasks.precision import amp_policy

from benchmarks import common
from benchmarks.cost_models import BERT_BASE_VOCAB, PROJECTS_DIR, model_bytes

#: ALBEF: LAVIS's ``AlbefPretrain`` (the reference), the plugin without a ``latent:`` block and with each project's
ALBEF_VARIANTS = ("lavis", "none", "fs", "bb", "gc", "all")
#: CLIP: variant -> project yaml whose ``model.base_loss`` / ``model.latent`` it uses (the first is the reference)
CLIP_PROJECTS = {"baseline": "clip_baseline.yaml", "fs": "clip_fs.yaml", "bb": "clip_bb.yaml", "gc": "clip_gc.yaml"}
CLIP_IMAGE_SIZE = {"rn50_bert": 224, "tiny": 64}


class AmpTrainer:
    """One model's optimizer (AdamW, lr 0, see the module docstring) and GradScaler under ``device``'s AMP policy;
    counts the optimizer steps the scaler skipped (inf/NaN gradients)."""

    def __init__(self, model, device):
        self.device = torch.device(device)
        # the training loop's ``run.amp: True``: float16 + GradScaler on CUDA (LAVIS's), bfloat16 without one on CPU
        policy = amp_policy(True, cuda=self.device.type == "cuda")
        self.dtype, self.use_scaler = policy.dtype, policy.scaler
        self.optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.0,
                                           weight_decay=0.05)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.use_scaler)
        self.skipped = 0

    def step(self, model, batch):
        """One training step of ``model`` on ``batch``; returns the model's output."""
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=self.device.type, dtype=self.dtype):
            out = model(batch)
        self.scaler.scale(out.loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return out

    def timed_step(self, model, batch, seed):
        """``(seconds, output)`` of one step with the RNG seeded by ``seed`` (device synchronised around it)."""
        scale = self.scaler.get_scale() if self.scaler.is_enabled() else None
        torch.manual_seed(seed)
        common.synchronize(self.device)
        t0 = time.perf_counter()
        out = self.step(model, batch)
        common.synchronize(self.device)
        seconds = time.perf_counter() - t0
        if scale is not None and self.scaler.get_scale() < scale:  # the scaler backed off: the step was skipped
            self.skipped += 1
        self.optimizer.zero_grad(set_to_none=True)
        return seconds, out

    def state_bytes(self):
        """Bytes of the optimizer's state (AdamW's two moments per parameter, its step counters)."""
        return sum(t.numel() * t.element_size() for state in self.optimizer.state.values()
                   for t in state.values() if torch.is_tensor(t))

    def amp_name(self):
        """The precision in words: ``float16 autocast + GradScaler`` or ``bfloat16 autocast (no scaler)``."""
        name = str(self.dtype).replace("torch.", "")
        return f"{name} autocast + GradScaler" if self.use_scaler else f"{name} autocast (no scaler)"


def step_peak_bytes(fn, device):
    """Bytes ``fn()`` needs at its peak above what is allocated before it: CUDA ``max_memory_allocated`` minus
    ``memory_allocated``; CPU peak RSS minus RSS (as ``benchmarks.cost_memory``); None where neither is readable."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    common.release_free_memory()
    before = common.rss_bytes()
    if before is None or not common.reset_peak_rss():
        fn()
        return None
    fn()
    return common.peak_rss_bytes() - before


def interleaved_rounds(models, trainers, batch_of, plan, deadline, on_step=None, seed=0, label=""):
    """Step every model once per round in a shuffled order: warm-up rounds first (``plan["warmup"]``, more while a
    GradScaler still skips steps, up to ``plan["max_warmup"]``), dropped; then measured rounds up to
    ``plan["max_rounds"]``, stopping after ``plan["min_rounds"]`` once one more round and the memory steps (one
    round's time) would end after ``deadline`` (a ``time.perf_counter`` value). Below the minimum the budget wins
    too: the warm-up is cut short and at least one round is measured. The trainers' skipped-step counts start at 0
    with the measured rounds. ``on_step(name, seed, output)`` runs after each step (outside the timing). Returns
    ``({name: [seconds per measured round]}, warm-up rounds run, cut short)``."""
    rng = random.Random(seed)
    times = {v: [] for v in models}
    warmup, r, cut = plan["warmup"], 0, False
    while True:
        t_round = time.perf_counter()
        skipped = {v: trainers[v].skipped for v in models}
        order = list(models)
        rng.shuffle(order)
        row = {}
        for v in order:
            row[v], out = trainers[v].timed_step(models[v], batch_of(v), 1000 + r)
            if on_step is not None:
                on_step(v, 1000 + r, out)
            del out
        round_seconds = time.perf_counter() - t_round
        scaler_settling = any(trainers[v].skipped > skipped[v] for v in models)
        if r >= warmup:
            for v in models:
                times[v].append(row[v])
        elif r == warmup - 1 and scaler_settling and warmup < plan.get("max_warmup", warmup):
            warmup += 1
        r += 1
        measured = max(0, r - warmup)
        tag = f"round {measured}" if measured else f"warm-up {r}/{warmup}"
        common.log(f"{label} {tag}: " + ", ".join(f"{v} {row[v] * 1e3:.0f} ms" for v in models)
                   + ("; GradScaler skipped a step" if scaler_settling else ""))
        late = time.perf_counter() + 2 * round_seconds > deadline
        if measured >= plan["max_rounds"] or (late and measured >= plan["min_rounds"]):
            return times, warmup, cut
        if late and measured >= 1:
            return times, warmup, True
        if late and r < warmup:  # no time for the rest of the warm-up: measure from the next round on
            warmup, cut = r, True
        if r == warmup:  # the next round is measured
            for v in models:
                trainers[v].skipped = 0


def ratio_entries(times, ref, batch, mem, model_bytes_of, trainers):
    """Per model: step ms, samples/s, time ratio to ``ref`` (paired by round), peak memory (model + optimizer
    state + the step's peak) and its ratio to ``ref``'s, the scaler's skipped steps."""
    def peak(v):
        step = common.quantile(mem[v], 0.5) if mem[v] and None not in mem[v] else None
        return None if step is None else model_bytes_of[v] + trainers[v].state_bytes() + step

    ref_peak = peak(ref)
    out = {}
    for v, ts in times.items():
        med = common.quantile(ts, 0.5)
        p = peak(v)
        out[v] = {"step_ms": common.summary([t * 1e3 for t in ts]),
                  "samples_per_s": batch / med,
                  "time_ratio": common.summary([t / r for t, r in zip(ts, times[ref])]),
                  "model_bytes": model_bytes_of[v], "optimizer_state_bytes": trainers[v].state_bytes(),
                  "step_peak_bytes": mem[v], "peak_bytes": p,
                  "memory_ratio": None if p is None or not ref_peak else p / ref_peak,
                  "skipped_optimizer_steps": trainers[v].skipped}
    return out


def memory_rounds(models, trainers, batch_of, device, repeats, prepare=None, restore=None):
    """Per model the step's peak bytes (:func:`step_peak_bytes`) of ``repeats`` steps; ``prepare(name)`` /
    ``restore(name)`` run before / after each."""
    mem = {v: [] for v in models}
    for r in range(repeats):
        for v in models:
            if prepare is not None:
                prepare(v)
            torch.manual_seed(5000 + r)
            mem[v].append(step_peak_bytes(lambda: trainers[v].step(models[v], batch_of(v)), device))
            trainers[v].optimizer.zero_grad(set_to_none=True)
            if restore is not None:
                restore(v)
    return mem


# -- ALBEF -------------------------------------------------------------------------------------------------------
def measure_albef(size, batch, device, plan, deadline, seed=0):
    """ALBEF's variants (:data:`ALBEF_VARIANTS`, on shared encoders: :class:`benchmarks.cost_bench.Bench`), each
    trained with :class:`AmpTrainer`, in interleaved rounds; returns a json-able dict."""
    from benchmarks.cost_bench import Bench

    t0 = time.perf_counter()
    bench = Bench(size, batch, device, variants=ALBEF_VARIANTS, seed=seed)
    trainers = {v: AmpTrainer(m, device) for v, m in bench.models.items()}
    build_s = time.perf_counter() - t0
    common.log(f"albef {size}: built {len(bench.models)} variants in {build_s:.1f} s")

    def after(v, step_seed, out):
        bench.record_base_losses(v, step_seed, out)  # finite, and the base losses against LAVIS's
        bench.restore(bench.models[v])

    times, warmup, cut = interleaved_rounds(bench.models, trainers, bench.batch_of, plan, deadline, on_step=after,
                                            seed=seed, label=f"albef {size}")
    mem = memory_rounds(bench.models, trainers, bench.batch_of, device, plan["memory_repeats"],
                        prepare=lambda v: bench.untie_momentum(bench.models[v]),
                        restore=lambda v: bench.restore(bench.models[v]))
    entries = ratio_entries(times, "lavis", batch, mem, bench.bytes, trainers)
    for v in entries:
        entries[v]["parameters"] = bench.param_count[v]
        entries[v]["max_base_loss_diff_vs_lavis"] = bench.max_loss_diff[v]
    out = {"size": size, "batch": batch, "image_size": int(bench.cfg.image_size), "amp": trainers["lavis"].amp_name(),
           "warmup_rounds": warmup, "rounds": len(times["lavis"]), "memory_repeats": plan["memory_repeats"],
           "cut_by_budget": cut,
           "build_seconds": build_s, "variants": entries}
    return out


# -- CLIP --------------------------------------------------------------------------------------------------------
def clip_config(model_type):
    """``clip_latent``'s model config of ``model_type`` offline: ``rn50_bert`` with random ResNet-50 and BERT-base
    and the plugin's local vocabulary for tokenizing (its text encoder keeps BERT-base's 30522-word table)."""
    tiny = common.default_model_config("clip_latent", "tiny")
    if model_type == "tiny":
        return tiny
    cfg = common.default_model_config("clip_latent", model_type)
    cfg.update({"vision_from_pretrained": False, "text_from_pretrained": False, "text_config": None,
                "tokenizer": tiny.tokenizer})
    return cfg


def build_clip_variants(model_type, device, seed=0):
    """``{variant: ClipLatent}`` of :data:`CLIP_PROJECTS` on one pair of towers (shared modules), in training mode on
    ``device``."""
    from omegaconf import OmegaConf

    from lavis_latent.models.clip_latent import ClipLatent
    from lavis_latent.models.clip_towers import build_image_encoder, build_text_encoder
    from lavis_latent.models.encoders import load_tokenizer

    cfg = clip_config(model_type)
    tokenizer = load_tokenizer(cfg.tokenizer)
    torch.manual_seed(seed)
    visual, vision_width = build_image_encoder(cfg)
    text = build_text_encoder(cfg, vocab_size=len(tokenizer) if model_type == "tiny" else BERT_BASE_VOCAB)
    models = {}
    for name, yaml in CLIP_PROJECTS.items():
        block = OmegaConf.load(os.path.join(PROJECTS_DIR, "clip", yaml)).model
        torch.manual_seed(seed + 1)
        models[name] = ClipLatent(visual, text, tokenizer, vision_width, text.config.hidden_size,
                                  embed_dim=cfg.embed_dim, temp=cfg.temp, max_txt_len=cfg.max_txt_len,
                                  base_loss=block.base_loss,
                                  latent=OmegaConf.to_container(block.latent, resolve=True)).to(device).train()
    return models


def clip_batch(batch, image_size, device, seed=0):
    """A training batch on ``device``: random images and captions with their augmented views (``PairedViews``)."""
    from lavis_latent.models.dummy_inputs import image_text_batch
    from lavis_latent.processors import PairedViews

    b = image_text_batch(batch, image_size, seed, paired=True)
    return dict(b, image=PairedViews(*(t.to(device) for t in b["image"])), image_id=b["image_id"].to(device))


def measure_clip(model_type, batch, device, plan, deadline, seed=0):
    """``clip_latent``'s project variants (:data:`CLIP_PROJECTS`) on shared towers, trained with
    :class:`AmpTrainer` in interleaved rounds; returns a json-able dict (ratios to ``baseline``)."""
    t0 = time.perf_counter()
    models = build_clip_variants(model_type, device, seed)
    trainers = {v: AmpTrainer(m, device) for v, m in models.items()}
    samples = clip_batch(batch, CLIP_IMAGE_SIZE[model_type], device, seed)
    build_s = time.perf_counter() - t0
    common.log(f"clip {model_type}: built {len(models)} variants in {build_s:.1f} s")

    def after(v, step_seed, out):
        if not torch.isfinite(out.loss.detach()).item():
            raise RuntimeError(f"clip {v}: non-finite loss {out.loss.item()}")

    times, warmup, cut = interleaved_rounds(models, trainers, lambda v: samples, plan, deadline, on_step=after,
                                            seed=seed, label=f"clip {model_type}")
    mem = memory_rounds(models, trainers, lambda v: samples, device, plan["memory_repeats"])
    entries = ratio_entries(times, "baseline", batch, mem, {v: model_bytes(m) for v, m in models.items()},
                            trainers)
    for v, m in models.items():
        entries[v]["parameters"] = sum(p.numel() for p in m.parameters())
        entries[v]["base_loss"] = m.base_loss
        entries[v]["latent"] = m.latent.names
    out = {"model_type": model_type, "batch": batch, "image_size": CLIP_IMAGE_SIZE[model_type],
           "amp": trainers["baseline"].amp_name(), "warmup_rounds": warmup, "rounds": len(times["baseline"]),
           "memory_repeats": plan["memory_repeats"], "cut_by_budget": cut, "build_seconds": build_s,
           "variants": entries}
    return out
