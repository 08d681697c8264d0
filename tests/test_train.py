"""End to end through LAVIS's Config, task, builders and runner: ``lavis_latent.train`` / ``evaluate`` on the
embedded data, and the config errors a user meets before any work starts."""
import glob
import json
import math
import os

import pytest
import torch

from conftest import PROJECTS_DIR
from lavis_latent import evaluate, train
from lavis_latent.common.config_check import ConfigError

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # two threads on a busy 2-core machine: 10x slower

SMALL_DATA = [  # a smaller world for speed: 48 training images (3 captions each), default val/test (50 images)
    "run.max_epoch=1",
    "run.batch_size_train=16",
]


def small_world(builder):
    return [f"datasets.{builder}.build_info.generator.num_train=48"]


def read_log(output_dir):
    lines = open(os.path.join(output_dir, "log.txt")).read()
    # log.txt starts with the indented config json, then one json object per line
    return [json.loads(line) for line in lines.splitlines() if line.startswith('{"')]


def demo_yaml(name):
    return os.path.join(PROJECTS_DIR, "demo", name)


@pytest.fixture(scope="module")
def retrieval_run(session_cache_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("ret")
    runner = train.main(["--cfg-path", demo_yaml("albef_retrieval_all.yaml"), "--options", *SMALL_DATA,
                         *small_world("demo_retrieval"), f"run.output_dir={out}", "run.tensorboard=true"])
    return runner


def test_retrieval_epoch_trains_logs_and_evaluates(retrieval_run):
    out = str(retrieval_run.output_dir)
    assert out.startswith(str(retrieval_run.config.run_cfg.output_dir)) and "site-packages" not in out
    records = read_log(out)
    train_stats = [r for r in records if "train_loss" in r]
    assert train_stats, records
    for term in ("loss_itc", "loss_itm", "loss_sep", "loss_bridge", "loss_geo"):
        value = float(train_stats[-1][f"train_{term}"])
        assert math.isfinite(value) and value != 0.0, term
    test = [r for r in records if "test_txt_r1" in r][-1]
    for key in ("test_txt_r1", "test_txt_r5", "test_txt_r10", "test_img_r1", "test_img_r5", "test_img_r10"):
        assert 0.0 <= test[key] <= 100.0
    assert test["test_txt_r1"] <= test["test_txt_r5"] <= test["test_txt_r10"]
    assert 0.0 <= test["test_gap_centroid_distance"] <= 2.0 and 0.0 <= test["test_gap_paired_distance"] <= 2.0
    assert os.path.isfile(os.path.join(out, "evaluate.txt"))
    state = torch.load(os.path.join(out, "checkpoint_best.pth"), map_location="cpu")["model"]
    assert "latent.separation.image_head.weight" in state or any(k.startswith("latent.separation") for k in state)
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_every_loss_term_reaches_tensorboard(retrieval_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(os.path.join(str(retrieval_run.output_dir), "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {f"train/{k}" for k in ("loss", "loss_itc", "loss_itm", "loss_sep", "loss_bridge", "loss_geo", "lr")} <= tags
    steps = [e.step for e in events.Scalars("train/loss_sep")]
    assert steps == sorted(steps) and len(steps) == len(set(steps)) >= 2


@pytest.mark.parametrize("family, lm_loss", [("albef", "loss_mlm"), ("blip", "loss_lm")])
def test_pretrain_checkpoint_then_evaluate_entry_point(family, lm_loss, retrieval_run, session_cache_root, tmp_path):
    pre = train.main(["--cfg-path", demo_yaml(f"{family}_pretrain_bb.yaml"), "--options", *SMALL_DATA,
                      *small_world("demo_caption"), f"run.output_dir={tmp_path / 'pre'}"])
    stats = pre.last_train_stats
    assert {"loss_itc", "loss_itm", lm_loss, "loss_bridge"} <= set(stats)
    assert all(math.isfinite(float(stats[k])) for k in ("loss_itc", "loss_itm", lm_loss, "loss_bridge"))
    ckpt = os.path.join(str(pre.output_dir), "checkpoint_0.pth")
    assert os.path.isfile(ckpt)
    runner, results = evaluate.main(["--cfg-path", demo_yaml(f"{family}_retrieval.yaml"), "--options",
                                     f"model.pretrained={ckpt}", f"run.output_dir={tmp_path / 'eval'}"])
    assert set(results) == {"test"} and "txt_r1" in results["test"]
    # the pretrained weights were loaded: the fine-tuning model's ViT equals the checkpoint's
    state = torch.load(ckpt, map_location="cpu")["model"]
    model = runner.unwrap_dist_model(runner.model)
    assert torch.equal(model.visual_encoder.pos_embed.cpu(), state["visual_encoder.pos_embed"])


def test_unknown_arch_is_named_with_suggestions(tmp_path):
    with pytest.raises(ConfigError, match=r"albef_latnt_retrieval.*Did you mean 'albef_latent_retrieval'"):
        train.main(["--cfg-path", demo_yaml("albef_retrieval.yaml"), "--options", "model.arch=albef_latnt_retrieval"])


def test_unknown_builder_and_task_are_named(tmp_path):
    cfg = tmp_path / "bad.yaml"
    text = open(demo_yaml("albef_retrieval.yaml")).read()
    assert "  demo_retrieval:" in text
    cfg.write_text(text.replace("  demo_retrieval:", "  demo_retreival:"))
    with pytest.raises(ConfigError, match=r"dataset builder 'demo_retreival'.*demo_retrieval"):
        train.main(["--cfg-path", str(cfg)])
    with pytest.raises(ConfigError, match=r"task 'retreival'"):
        train.main(["--cfg-path", demo_yaml("albef_retrieval.yaml"), "--options", "run.task=retreival"])


def test_missing_config_file_and_bad_option():
    with pytest.raises(ConfigError, match="does not exist"):
        train.main(["--cfg-path", "no/such/file.yaml"])
    with pytest.raises(ConfigError, match="key=value"):
        train.main(["--cfg-path", demo_yaml("albef_retrieval.yaml"), "--options", "run.max_epoch"])


def test_missing_annotation_file_fails_before_training(session_cache_root, tmp_path):
    empty = tmp_path / "empty_world"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"annotations\.train\.storage"):
        train.main(["--cfg-path", demo_yaml("albef_retrieval.yaml"), "--options",
                    "datasets.demo_retrieval.build_info.generator.enabled=false",
                    f"datasets.demo_retrieval.build_info.generator.root={empty}",
                    f"run.output_dir={tmp_path / 'out'}"])
    assert not glob.glob(str(tmp_path / "out" / "*" / "checkpoint_*.pth"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_cuda_requested_without_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match=r"run\.device.*no usable CUDA GPU.*run\.device=cpu"):
        train.main(["--cfg-path", demo_yaml("albef_retrieval.yaml"), "--options", "run.device=cuda"])
