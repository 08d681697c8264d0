"""ALBEF's downstream tasks for the evidence benchmark: VQA, NLVR2 (after ALBEF's text-assignment step) and SNLI-VE,
each fine-tuned from a pretrained checkpoint and tested through LAVIS's runner and tasks with the demo configs
(``projects/demo/albef_{vqa,nlvr_ta,nlvr,snli_ve}.yaml``), on a demo world chosen by generator parameters.

The world is the benchmark's own (same seed and information gap, so the same scenes: the demo generator draws each
image from a stream of its split and index) at a fine-tuning size: its first ``num_train`` training images and its
first ``num_test`` test images.
"""
import os
import time
from typing import Dict, Sequence

from lavis_latent.demo import DEFAULT_PROJECTS, last_checkpoint, task_accuracy

TASKS = ("vqa", "nlvr", "snli_ve")
#: task -> (demo yaml, dataset the yaml reads); NLVR2 starts with ALBEF's text-assignment step on the captions
CONFIGS = {"vqa": ("albef_vqa.yaml", "demo_vqa"), "nlvr": ("albef_nlvr.yaml", "demo_nlvr"),
           "snli_ve": ("albef_snli_ve.yaml", "demo_snli_ve"), "nlvr_ta": ("albef_nlvr_ta.yaml", "demo_caption")}


def world_root(params: Dict) -> str:
    """The world's folder relative to LAVIS's cache root: :func:`benchmarks.demo_world.world_root`'s, so the
    benchmark generates it beforehand with ``demo_world.load_world``."""
    from benchmarks.demo_world import world_root as folder

    return folder("", **params)


def world_options(dataset: str, params: Dict) -> list:
    """``--options`` that point ``dataset``'s generator at the world of ``params``."""
    gen = f"datasets.{dataset}.build_info.generator"
    return [f"{gen}.root={world_root(params)}"] + [f"{gen}.{k}={v}" for k, v in sorted(params.items())]


def _train(stage: str, params: Dict, output_dir: str, pretrained: str, seed: int, extra: Sequence[str] = (),
           verbose: bool = False):
    from lavis_latent.common.console import run_quietly

    yaml, dataset = CONFIGS[stage]
    options = [f"model.pretrained={pretrained}", f"run.seed={seed}", *world_options(dataset, params), *extra]
    return run_quietly("train", os.path.join(DEFAULT_PROJECTS, yaml), output_dir, options,
                       desc=f"{stage} seed {seed}", verbose=verbose)


def finetune(task: str, checkpoint: str, params: Dict, output_dir: str, seed: int,
             extra: Sequence[str] = ()) -> Dict:
    """Fine-tune ``task`` from ``checkpoint`` on the world of ``params`` and test it.

    Returns ``{"acc": test accuracy %, "seconds": wall time}`` (VQA: LAVIS's VQA accuracy; NLVR2 and SNLI-VE:
    classification accuracy).
    """
    if task not in TASKS:
        raise ValueError(f"unknown downstream task {task!r}; choose from {', '.join(TASKS)}")
    started = time.time()
    if task == "nlvr":
        ta = _train("nlvr_ta", params, os.path.join(output_dir, "nlvr_ta"), checkpoint, seed, extra)
        checkpoint = last_checkpoint(str(ta.output_dir))
    runner = _train(task, params, os.path.join(output_dir, task), checkpoint, seed, extra)
    test = (runner.last_test_logs or {}).get("test") or {}
    return {"acc": float(task_accuracy(task, test)), "seconds": time.time() - started}
