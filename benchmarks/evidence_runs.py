"""The runs of ``benchmarks.evidence``: train and evaluate one run spec in-process (CLIP or ALBEF pretraining, ALBEF's
downstream tasks from its checkpoint), and compute every run of a grid that no process has stored or claimed."""
import os
import time
from typing import Dict, Optional

from benchmarks.common import log
from benchmarks.evidence_grid import DOWNSTREAM_MEASURES, Settings, grid, run_order, spec
from benchmarks.run_store import RunStore, run_key


_WORLDS = {}


def _world(cache_root, world_spec):
    from benchmarks.demo_world import load_world

    key = run_key(world_spec)
    if key not in _WORLDS:
        _WORLDS.clear()  # one world in memory at a time
        _WORLDS[key] = load_world(cache_root, **world_spec)
    return _WORLDS[key]


def compute_downstream(run: Dict, store: RunStore, cache_root: str) -> Dict:
    """Fine-tune and test VQA, NLVR2 and SNLI-VE from the pretraining run's checkpoint (pretraining it again, with
    the same seed, if its checkpoint is gone); returns ``{"<task>_acc": %, "seconds"}``."""
    from benchmarks import albef_finetune
    from lavis_latent.common.paths import set_cache_root

    started = time.time()
    ckpt = checkpoint_path(store, run["pretrain"])
    if not os.path.isfile(ckpt):
        compute(run["pretrain"], cache_root, ckpt)
    set_cache_root(cache_root)
    out = os.path.join(store.root, "downstream", run_key(run))
    res = {}
    for task in albef_finetune.TASKS:
        res[f"{task}_acc"] = albef_finetune.finetune(task, ckpt, run["world"], out, run["seed"], run["options"])["acc"]
    res["seconds"] = time.time() - started
    return res


def compute(run: Dict, cache_root: str, checkpoint: Optional[str] = None) -> Dict:
    """Train and evaluate one run spec; returns its measures, final loss terms and seconds. ALBEF's pretrained
    weights are saved to ``checkpoint`` (LAVIS's ``{"model": state_dict}``) when given, for the downstream tasks."""
    import torch

    from benchmarks import albef_world, clip_world
    from benchmarks.world_measures import add_plus_views

    started = time.time()
    world = _world(cache_root, run["world"])
    train = run["train"]
    if run["framework"] == "clip":
        model, terms = clip_world.train_clip(world, base_loss=run["base_loss"], latent=run["latent"],
                                             seed=run["seed"], **train)
        res = clip_world.evaluate_clip(model, world, control_seed=run["seed"])
    else:
        model, terms = albef_world.train_albef(world, latent=run["latent"], seed=run["seed"], **train)
        res = albef_world.evaluate_albef(model, world, control_seed=run["seed"])
        if checkpoint:
            os.makedirs(os.path.dirname(checkpoint), exist_ok=True)
            torch.save({"model": model.state_dict()}, checkpoint + ".tmp")
            os.replace(checkpoint + ".tmp", checkpoint)
    add_plus_views(res)
    res["final_losses"] = terms
    res["seconds"] = time.time() - started
    return res


def checkpoint_path(store: RunStore, run: Dict) -> str:
    """Where a run's pretrained weights go: ``<store>/checkpoints/<run key>.pth``."""
    return os.path.join(store.root, "checkpoints", run_key(run) + ".pth")


def run_pending(settings: Settings, store: RunStore, cache_root: str) -> int:
    """Compute every run of the grid that is neither stored nor claimed by another process; returns how many."""
    import torch

    torch.set_num_threads(1)
    runs = [spec(r, s, settings) for r in run_order(settings, grid(settings)) for s in settings.seeds]
    unique = list({run_key(r): r for r in runs}.values())
    done, started = 0, time.time()
    for run in store.pending(unique):
        try:
            if run.get("stage") == "downstream":
                res = compute_downstream(run, store, cache_root)
            else:
                res = compute(run, cache_root, checkpoint_path(store, run) if run["framework"] == "albef" else None)
        except BaseException:
            store.release(run)
            raise
        store.put(run, res)
        done += 1
        stored = store.results()
        left = sum(run_key(r) not in stored for r in unique)
        rate = (time.time() - started) / done
        log(f"[pid {os.getpid()}] {_describe(run)}: {_headline(res)} ({res['seconds']:.0f} s); {left} runs left, "
            f"about {left * rate / 60:.0f} min at this process's pace")
    return done


def _describe(run):
    if run.get("stage") == "downstream":
        return "downstream of " + _describe(run["pretrain"])
    parts = [f"{k}:{v}" for k, v in sorted(run["latent"].items())] or ["(no latent)"]
    if run.get("base_loss") == "clip":
        parts.append("clip loss")
    return f"{run['framework']} gap {run['world']['info_gap']:g} seed {run['seed']} " + " ".join(parts)


def _headline(res):
    if "vqa_acc" in res:
        return " ".join(f"{t} {res[k]:.1f}" for k, t, _ in DOWNSTREAM_MEASURES)
    return f"txt R@1 {res['txt_r1_shared']:.1f}"
