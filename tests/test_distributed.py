"""``torchrun --nproc_per_node 2`` on CPU (gloo) through the training entry point: the model's latent contrastive
loss and its gradients on two ranks match one process on the concatenated batch (to 1e-5), and a short DDP training
run (validation and checkpoints included) ends with equal weights on both ranks. For ALBEF, and for BLIP with LAVIS's
``negative_all_rank`` (ITM negatives drawn from both ranks' batches, LAVIS's COCO recipe)."""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from lavis.common.config import Config
from lavis.common.registry import registry
from lavis_latent.processors import PairedViews

from conftest import PROJECTS_DIR, REPO_ROOT

WORLD = 2
WORKER = os.path.join(REPO_ROOT, "tests", "_torchrun_worker.py")
#: family -> (demo retrieval yaml, its own options)
FAMILIES = {"albef": ("albef_retrieval_all.yaml", []),
            "blip": ("blip_retrieval_all.yaml", ["model.negative_all_rank=true"])}


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def run(request, tmp_path_factory, session_cache_root):
    """Launch the 2-process run once per family; returns ``(out_dir, entry-point arguments)``."""
    yaml, family_options = FAMILIES[request.param]
    out = tmp_path_factory.mktemp(f"torchrun_{request.param}")
    world = out / "world"
    gen = "datasets.demo_retrieval.build_info.generator"
    argv = ["--cfg-path", os.path.join(PROJECTS_DIR, "demo", yaml), "--options", *family_options,
            f"{gen}.root={world}", f"{gen}.num_train=12", f"{gen}.num_val=4", f"{gen}.num_test=4",
            "model.latent.inmodal.weight=1.0",  # CyCLIP's in-modal terms: contrastive against the global batch
            "run.max_epoch=1", "run.batch_size_train=4", "run.k_test=2", "run.valid_splits=[val]",
            "run.test_splits=[]", "run.checkpoint_every_n_steps=2", "run.device=cpu", f"run.output_dir={out / 'run'}"]
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    launcher = [torchrun] if shutil.which(torchrun) else [sys.executable, "-m", "torch.distributed.run"]
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               LAVIS_CACHE_ROOT=str(session_cache_root))
    proc = subprocess.run([*launcher, "--standalone", "--nproc_per_node", str(WORLD), WORKER, str(out), *argv],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    return out, argv


@pytest.fixture(scope="module")
def single_process(run):
    """The same model and weights on the concatenated batch of both ranks, in this (single) process."""
    out, argv = run
    cfg = Config(argparse.Namespace(cfg_path=argv[1], options=argv[3:]))
    model = registry.get_model_class(cfg.model_cfg.arch).from_config(cfg.model_cfg)
    model.load_state_dict(torch.load(out / "init.pt"))
    batches = [torch.load(out / f"batch{r}.pt", weights_only=False) for r in range(WORLD)]
    # the config's paired-view processors give PairedViews(view, aug) of images and captions
    samples = {"image": PairedViews(*(torch.cat([getattr(b["image"], f) for b in batches])
                                      for f in PairedViews._fields)),
               "text_input": PairedViews(*([t for b in batches for t in getattr(b["text_input"], f)]
                                           for f in PairedViews._fields)),
               "image_id": torch.cat([b["image_id"] for b in batches]),
               "epoch": 0, "iters": 0, "num_iters_per_epoch": 1}
    model.eval()
    output = model(samples)
    (output["loss_inmodal"] + output["loss_bridge"]).backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    return output, grads, [torch.load(out / f"check{r}.pt") for r in range(WORLD)], batches


def test_ranks_ran_ddp_with_gloo_on_different_data(single_process, run):
    _, _, ranks, batches = single_process
    assert [r["rank"] for r in ranks] == list(range(WORLD))
    assert all(r["world"] == "DistributedDataParallel" and r["backend"] == "gloo" for r in ranks)
    # BLIP's negative_all_rank acts on more than one rank only
    assert all(r["negative_all_rank"] == ("model.negative_all_rank=true" in run[1]) for r in ranks)
    assert not set(batches[0]["instance_id"]) & set(batches[1]["instance_id"])  # DistributedSampler split


def test_latent_contrastive_loss_matches_single_process(single_process):
    output, _, ranks, _ = single_process
    for key in ("loss_inmodal", "loss_bridge"):
        per_rank = torch.stack([r[key] for r in ranks])
        assert not torch.allclose(per_rank[0], per_rank[1]), key  # each rank saw its own half
        assert torch.allclose(per_rank.mean(), output[key].detach(), atol=1e-5, rtol=0), (key, per_rank, output[key])


def test_gradients_match_single_process(single_process):
    _, grads, ranks, _ = single_process
    averaged = ranks[0]["grads"]
    assert set(averaged) == set(grads)
    # the gather reaches both encoders, the projections and the learnable temperature
    for name in ("temp", "vision_proj.weight", "text_proj.weight", "visual_encoder.cls_token"):
        assert name in grads and grads[name].abs().sum() > 0, name
    assert any(n.startswith("text_encoder.") for n in grads)
    worst = max((averaged[n] - grads[n]).abs().max().item() for n in grads)
    assert worst <= 1e-5, worst


def test_both_ranks_end_with_equal_weights(run):
    out, _ = run
    finals = [torch.load(out / f"final{r}.pt") for r in range(WORLD)]
    init = torch.load(out / "init.pt")
    assert finals[0].keys() == finals[1].keys() == init.keys()
    assert all(torch.equal(finals[0][k], finals[1][k]) for k in init), "the ranks' weights diverged"
    assert not torch.equal(finals[0]["vision_proj.weight"], init["vision_proj.weight"])  # it did train


def test_rank0_logged_validated_and_checkpointed(run):
    out, _ = run
    (folder,) = {torch.load(out / f"run{r}.pt")["output_dir"] for r in range(WORLD)}  # job id shared by the ranks
    records = [json.loads(line) for line in open(os.path.join(folder, "log.txt")) if line.startswith('{"')]
    train_stats = [r for r in records if "train_loss" in r][-1]
    assert {"train_loss_itc", "train_loss_inmodal", "train_loss_sep", "train_loss_bridge"} <= set(train_stats)
    assert any("val_txt_r1" in r for r in records)
    latest = torch.load(os.path.join(folder, "checkpoint_latest.pth"), map_location="cpu")
    assert latest["world_size"] == WORLD and len(latest["rng_states"]) == WORLD
    assert latest["position"] == {"epoch": 1, "step": 0, "iters_per_epoch": 4}
    assert not glob.glob(os.path.join(folder, "*.tmp-*"))
