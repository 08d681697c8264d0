"""Resume and non-finite steps through ``lavis_latent.train`` on CPU: a run killed (SIGKILL) in the middle of an
epoch and resumed from its last checkpoint ends with the weights of an uninterrupted run; checkpoints are complete
files that LAVIS can read; a run whose loss turns inf skips those steps, names the term, stops after
``run.max_nonfinite_steps`` and leaves finite, unchanged weights and checkpoints. BLIP (same mixin, another LAVIS
model) resumes from the mid-epoch checkpoint of its reference run, in this process, and skips non-finite steps
alike."""
import glob
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from lavis.runners.runner_base import RunnerBase

from conftest import PROJECTS_DIR, REPO_ROOT
from lavis_latent import train
from lavis_latent.common import progress
from lavis_latent.tasks import NonFiniteLossError

YAML = os.path.join(PROJECTS_DIR, "demo", "albef_retrieval_all.yaml")
BLIP_YAML = os.path.join(PROJECTS_DIR, "demo", "blip_retrieval_all.yaml")
STEPS_PER_EPOCH = 6  # 16 images x 3 captions / batch 8


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def world(tmp_path_factory, session_cache_root):
    """A private demo world (16 train, 8 val images) so that other tests' worlds are left alone."""
    return str(tmp_path_factory.mktemp("resume_world") / "world")


def options(world, out, *extra, yaml=YAML):
    """A 2-epoch retrieval run with validation, a checkpoint every 2 steps, no test split."""
    gen = "datasets.demo_retrieval.build_info.generator"
    return ["--cfg-path", yaml, "--options", f"{gen}.root={world}", f"{gen}.num_train=16", f"{gen}.num_val=8",
            f"{gen}.num_test=8", "run.max_epoch=2", "run.batch_size_train=8", "run.k_test=4", "run.test_splits=[]",
            "run.checkpoint_every_n_steps=2", f"run.output_dir={out}", *extra]


def model_state(runner):
    return {k: v.detach().clone() for k, v in runner.unwrap_dist_model(runner.model).state_dict().items()}


@pytest.fixture(scope="module")
def uninterrupted(world, tmp_path_factory):
    """The reference run, in this process."""
    out = tmp_path_factory.mktemp("uninterrupted")
    runner = train.main(options(world, out))
    return runner, model_state(runner)


@pytest.fixture(scope="module")
def blip_uninterrupted(world, tmp_path_factory):
    """BLIP's reference run, in this process, keeping a copy of the checkpoint it wrote in the middle of its second
    epoch (after step 2), as a run killed there would have left it. Returns ``(runner, state, that copy)``."""
    out = tmp_path_factory.mktemp("blip_uninterrupted")
    mid_epoch = str(out / "mid_epoch.pth")

    def keep_mid_epoch_checkpoint(event, epoch=None, step=None, **_):
        if event == "step" and (epoch, step) == (1, 3):  # step 2's checkpoint is written: copy it before step 4's
            (latest,) = glob.glob(str(out / "run" / "*" / "checkpoint_latest.pth"))
            shutil.copy(latest, mid_epoch)

    with progress.listening(keep_mid_epoch_checkpoint):
        runner = train.main(options(world, out / "run", yaml=BLIP_YAML))
    return runner, model_state(runner), mid_epoch


def _position(path):
    try:
        return torch.load(path, map_location="cpu")["position"]
    except (OSError, RuntimeError, EOFError, KeyError):
        return None


def test_killed_mid_epoch_then_resumed_matches_uninterrupted(uninterrupted, world, tmp_path):
    _, reference = uninterrupted
    out = tmp_path / "killed"
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    log = open(tmp_path / "killed.log", "w")  # a file, not a pipe: nobody reads while it runs
    proc = subprocess.Popen([sys.executable, "-m", "lavis_latent.train", *options(world, out)], cwd=REPO_ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=log)
    latest, killed_at, deadline, mtime = None, None, time.time() + 240, None
    try:
        while time.time() < deadline and proc.poll() is None:
            found = glob.glob(str(out / "*" / "checkpoint_latest.pth"))
            if found and os.path.getmtime(found[0]) != mtime:
                latest, mtime = found[0], os.path.getmtime(found[0])
                pos = _position(latest)
                if pos is not None and pos["epoch"] == 1 and pos["step"] > 0:  # mid-way through the second epoch
                    proc.send_signal(signal.SIGKILL)
                    killed_at = pos
                    break
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
        log.close()
    assert killed_at is not None, f"the run ended (rc {proc.returncode}) before a mid-epoch checkpoint:\n" + \
        open(tmp_path / "killed.log").read()[-3000:]
    assert proc.returncode == -signal.SIGKILL

    # every checkpoint the killed run left is a complete file (written to a temporary name, then renamed)
    for path in glob.glob(str(out / "*" / "checkpoint_*.pth")):
        torch.load(path, map_location="cpu")
    ckpt = torch.load(latest, map_location="cpu")
    position = ckpt["position"]
    assert position["epoch"] == 1 and 0 < position["step"] < STEPS_PER_EPOCH, position
    assert position["iters_per_epoch"] == STEPS_PER_EPOCH
    # LAVIS's keys, plus what an exact resume needs: momentum encoders, queues, RNG of every rank
    assert {"model", "optimizer", "config", "scaler", "epoch"} <= set(ckpt) and ckpt["epoch"] == 0
    assert "visual_encoder_m.pos_embed" in ckpt["model"] and "image_queue" in ckpt["model"]
    assert len(ckpt["rng_states"]) == 1 and ckpt["best_agg_metric"] > 0

    resumed = train.main(options(world, tmp_path / "resumed", f"run.resume_ckpt_path={latest}"))
    assert resumed.start_epoch == 1
    state = model_state(resumed)
    assert state.keys() == reference.keys()
    different = [k for k in state if not torch.equal(state[k], reference[k])]
    assert not different, f"{len(different)} tensors differ from the uninterrupted run, e.g. {different[:5]}"
    # the resumed run continued the previous best (epoch 0's validation) instead of starting from 0
    assert os.path.isfile(os.path.join(resumed.output_dir, "checkpoint_best.pth"))

    # LAVIS's own runner reads the plugin's checkpoint (strict model load, optimizer, scaler, epoch)
    RunnerBase._load_checkpoint(resumed, latest)
    assert resumed.start_epoch == ckpt["epoch"] + 1


def test_blip_resumed_mid_epoch_matches_uninterrupted(blip_uninterrupted, world, tmp_path):
    runner, reference, mid_epoch = blip_uninterrupted
    ckpt = torch.load(mid_epoch, map_location="cpu")
    assert ckpt["position"] == {"epoch": 1, "step": 2, "iters_per_epoch": STEPS_PER_EPOCH}
    assert {"visual_encoder_m.pos_embed", "image_queue", "idx_queue"} <= set(ckpt["model"])
    assert not torch.equal(ckpt["model"]["vision_proj.weight"], reference["vision_proj.weight"])  # steps were left
    # every loss term of the run (BLIP retrieval: ITC, ITM and the configured regularizers) reached log.txt
    records = [json.loads(line) for line in open(os.path.join(runner.output_dir, "log.txt")) if line.startswith('{"')]
    logged = {k for r in records for k in r}
    assert {f"train_loss_{t}" for t in ("itc", "itm", "sep", "bridge", "geo")} <= logged and "val_txt_r1" in logged

    resumed = train.main(options(world, tmp_path / "resumed", f"run.resume_ckpt_path={mid_epoch}", yaml=BLIP_YAML))
    state = model_state(resumed)
    assert state.keys() == reference.keys()
    different = [k for k in state if not torch.equal(state[k], reference[k])]
    assert not different, f"{len(different)} tensors differ from the uninterrupted run, e.g. {different[:5]}"
    RunnerBase._load_checkpoint(resumed, mid_epoch)  # LAVIS's own runner reads it (strict)


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.mark.parametrize("reference_run, yaml", [("uninterrupted", YAML), ("blip_uninterrupted", BLIP_YAML)],
                         ids=["albef", "blip"])
def test_inf_loss_steps_are_skipped_then_the_run_stops(reference_run, yaml, request, world, tmp_path, caplog):
    reference_runner, reference = request.getfixturevalue(reference_run)[:2]
    good = os.path.join(reference_runner.output_dir, "checkpoint_latest.pth")  # end of epoch 1 (resumes at 2)
    digest = _sha(good)
    # bridge weight 1e39 overflows float32: loss_bridge (and the total) is inf at every step
    args = train.parse_args(options(world, tmp_path / "inf", f"run.resume_ckpt_path={good}", "run.max_epoch=3",
                                    "model.latent.bridge.weight=1e39", "run.max_nonfinite_steps=3", yaml=yaml))
    cfg, job_id, task, datasets, model = train.build_run(args)
    runner = train.get_runner_class(cfg)(cfg=cfg, job_id=job_id, task=task, model=model, datasets=datasets)
    with caplog.at_level(logging.WARNING), pytest.raises(NonFiniteLossError, match=r"3 training steps in a row.*"
                                                                                   r"loss_bridge=inf"):
        runner.train()
    warnings = [r.getMessage() for r in caplog.records if "non-finite" in r.getMessage()]
    assert len(warnings) == 3, warnings
    assert all("loss_bridge=inf" in w and "loss_itc" not in w for w in warnings), warnings
    assert "epoch 2 step 0" in warnings[0] and "3 in a row" in warnings[2]
    # no optimizer step was applied: the trained weights are those of the checkpoint; everything is finite (the
    # forward passes of the skipped steps still moved ALBEF's momentum encoders and queues, as forward passes do)
    model = runner.unwrap_dist_model(runner.model)
    trained = [name for name, p in model.named_parameters() if p.requires_grad]
    state = model_state(runner)
    assert trained and all(torch.equal(state[k], reference[k]) for k in trained)
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    # the checkpoint it resumed from is untouched; the one written during the skipped steps (after step 2) holds
    # the same trained weights, finite
    assert _sha(good) == digest
    (written,) = glob.glob(str(tmp_path / "inf" / "*" / "checkpoint_latest.pth"))
    saved = torch.load(written, map_location="cpu")
    assert saved["position"] == {"epoch": 2, "step": 2, "iters_per_epoch": STEPS_PER_EPOCH}
    assert all(torch.equal(saved["model"][k], reference[k]) for k in trained)
    assert all(torch.isfinite(v).all() for v in saved["model"].values() if v.is_floating_point())
