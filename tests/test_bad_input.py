"""Bad input through ``lavis_latent.train``: each case fails with a message that names what is wrong (before
training where it can), or, where the config asks for it, is handled (skipped and counted, converted, trained)."""
import glob
import json
import logging
import os
import shutil

import pytest
import torch
from PIL import Image

from conftest import PROJECTS_DIR
from lavis_latent import train
from lavis_latent.common.config_check import ConfigError
from lavis_latent.datasets import demo_data
from lavis_latent.datasets.checks import BadImageError

RETRIEVAL = os.path.join(PROJECTS_DIR, "demo", "albef_retrieval.yaml")
PRETRAIN = os.path.join(PROJECTS_DIR, "demo", "albef_pretrain.yaml")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def base_world(tmp_path_factory, session_cache_root):
    """A small demo world (4 train images x 3 captions, 2 val, 2 test) that the tests copy before damaging."""
    root = tmp_path_factory.mktemp("bad_input") / "world"
    demo_data.generate(root, num_train=4, num_val=2, num_test=2)
    return root


@pytest.fixture
def world(base_world, tmp_path):
    """A private copy of the base world, with helpers to damage it."""
    root = tmp_path / "world"
    shutil.copytree(base_world, root)
    return root


def opts(world, out, *extra, builder="demo_retrieval"):
    """Run options: the given world (never regenerated), one short epoch, no evaluation."""
    gen = f"datasets.{builder}.build_info.generator"
    return [f"{gen}.root={world}", f"{gen}.enabled=false", "run.max_epoch=1", "run.batch_size_train=4",
            "run.valid_splits=[]", "run.test_splits=[]", f"run.output_dir={out}", *extra]


def run(world, out, *extra, cfg=RETRIEVAL, builder="demo_retrieval"):
    return train.main(["--cfg-path", cfg, "--options", *opts(world, out, *extra, builder=builder)])


def annotations(world, name="retrieval_train"):
    path = os.path.join(world, "annotations", f"{name}.json")
    return path, json.load(open(path))


def nothing_trained(out):
    return not glob.glob(os.path.join(out, "*", "checkpoint_*.pth"))


def train_image(world, index):
    """Absolute path of the image of training annotation entry ``index``."""
    _, rows = annotations(world)
    return os.path.join(world, "images", rows[index]["image"])


# ---------------------------------------------------------------------------------------------------------------------
# the latent: block
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("option, message", [
    ("model.latent.bridg.weight=1.0", r"Unknown key 'bridg' in model\.latent\. Did you mean 'bridge'\?"),
    ("model.latent.bridge.weigth=1.0", r"Unknown key 'weigth' in model\.latent\.bridge\. Did you mean 'weight'\?"),
    ("model.latent.geometric.weight=-0.5", r"'geometric\.weight' must be a finite number >= 0, got -0\.5"),
    ("model.latent.bridge.t=1.5", r"'bridge\.t' must be a number in \[0, 1\] or \"uniform\", got 1\.5"),
    ("model.latent.bridge.t=-0.1", r"'bridge\.t' must be a number in \[0, 1\].*got -0\.1"),
])
def test_bad_latent_block_fails_before_anything_is_built(option, message, tmp_path):
    with pytest.raises(ConfigError, match=message):  # a ValueError
        train.main(["--cfg-path", RETRIEVAL, "--options", option, f"run.output_dir={tmp_path / 'out'}"])
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------------------------------------------------
def test_missing_image_is_an_error_naming_it(world, tmp_path):
    image = train_image(world, 3)
    os.remove(image)
    with pytest.raises(FileNotFoundError, match=rf"image {image} .*does not exist"):
        run(world, tmp_path / "out")
    assert nothing_trained(tmp_path / "out")


def test_corrupt_image_is_an_error_naming_it(world, tmp_path):
    image = train_image(world, 0)
    data = open(image, "rb").read()
    open(image, "wb").write(data[:300])  # a truncated JPEG: PIL's own message names no file
    with pytest.raises(BadImageError, match=rf"split 'train', sample \d+: cannot read image {image}: OSError: "
                                            r".*run\.skip_bad_images"):
        run(world, tmp_path / "out")
    assert nothing_trained(tmp_path / "out")


def test_skip_bad_images_drops_and_counts_them(world, tmp_path, caplog):
    missing, corrupt = train_image(world, 3), train_image(world, 0)  # entries 0-2: one image, 3-5: another
    os.remove(missing)
    open(corrupt, "wb").write(b"not an image at all")
    path, rows = annotations(world)
    rows[7]["caption"] = "   "
    json.dump(rows, open(path, "w"))
    with caplog.at_level(logging.WARNING):
        runner = run(world, tmp_path / "out", "run.skip_bad_images=true")
    messages = [r.getMessage() for r in caplog.records]
    dropped = [m for m in messages if "dropped" in m]
    assert len(dropped) == 1, messages
    assert (f"dropped 4 bad training samples (run.skip_bad_images): 1 missing images ({missing}); 1 entries with an "
            f"empty text ({path} entry 7 field 'caption')") in dropped[0]  # the image's 3 captions + 1 empty one
    skipped = [m for m in messages if "cannot read image" in m]
    assert len(skipped) == 3 and all(corrupt in m and "skipped" in m for m in skipped)  # its 3 captions, once each
    assert "(3 unreadable samples skipped so far in this process)" in skipped[-1]
    dataset = runner.datasets["train"].datasets[0]  # LAVIS concatenates the training datasets
    assert len(dataset) == len(rows) - 4 and dataset.skipped == 3
    assert float(runner.last_train_stats["loss"]) > 0


def test_grayscale_and_rgba_images_are_converted(world, tmp_path):
    gray, rgba = train_image(world, 0), train_image(world, 3)
    Image.open(gray).convert("L").save(gray, format="JPEG")
    Image.open(rgba).convert("RGBA").save(rgba, format="PNG")  # a PNG behind a .jpg name: PIL reads the content
    assert Image.open(gray).mode == "L" and Image.open(rgba).mode == "RGBA"
    cfg, job_id, task, datasets, model = train.build_run(train.parse_args(
        ["--cfg-path", RETRIEVAL, "--options", *opts(world, tmp_path / "out")]))
    dataset = datasets["demo_retrieval"]["train"]
    batch = dataset.collater([dataset[0], dataset[3], dataset[6]])
    assert batch["image"].shape == (3, 3, 64, 64)
    runner = train.get_runner_class(cfg)(cfg=cfg, job_id=job_id, task=task, model=model, datasets=datasets)
    runner.train()
    assert float(runner.last_train_stats["loss"]) > 0


# ---------------------------------------------------------------------------------------------------------------------
# annotations
# ---------------------------------------------------------------------------------------------------------------------
def test_empty_caption_is_an_error_naming_file_and_entry(world, tmp_path):
    path, rows = annotations(world)
    rows[5]["caption"] = ""
    json.dump(rows, open(path, "w"))
    with pytest.raises(ValueError, match=rf"datasets\.demo_retrieval split 'train': annotation file {path}, entry 5 "
                                         r"\(0-based\): field 'caption' is empty"):
        run(world, tmp_path / "out")
    assert nothing_trained(tmp_path / "out")


@pytest.mark.parametrize("name, split, field, index", [
    ("retrieval_train", "train", "image_id", 4),
    ("retrieval_val", "val", "caption", 1),
])
def test_annotation_without_a_field_names_field_file_and_entry(world, tmp_path, name, split, field, index):
    path, rows = annotations(world, name)
    del rows[index][field]
    json.dump(rows, open(path, "w"))
    with pytest.raises(ValueError, match=rf"split '{split}': annotation file {path}, entry {index} \(0-based\) has "
                                         rf"no field '{field}'"):
        run(world, tmp_path / "out")
    assert nothing_trained(tmp_path / "out")


def test_annotation_file_that_is_not_json(world, tmp_path):
    path, _ = annotations(world)
    open(path, "w").write('[{"image": "train/000000.jpg",')
    with pytest.raises(ValueError, match=rf"annotation file {path} is not valid JSON"):
        run(world, tmp_path / "out")


# ---------------------------------------------------------------------------------------------------------------------
# batch of one, device
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cfg, builder", [(RETRIEVAL.replace(".yaml", "_bb.yaml"), "demo_retrieval"),
                                          (PRETRAIN.replace(".yaml", "_bb.yaml"), "demo_caption")])
def test_batch_of_one_trains(base_world, tmp_path, cfg, builder):
    # ALBEF's ITM draws its hard negative among the other samples of the batch: with one sample there is none.
    # The bridge configs' paired-view processors give the augmented view of that one sample.
    runner = run(base_world, tmp_path / "out", "run.batch_size_train=1", cfg=cfg, builder=builder)
    stats = runner.last_train_stats
    assert float(stats["loss_itm"]) == 0.0 and float(stats["loss_itc"]) > 0 and float(stats["loss_bridge"]) > 0
    assert "skipped_nonfinite_steps" not in stats
    state = runner.unwrap_dist_model(runner.model).state_dict()
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match=r"run\.device is 'cuda:0' but this machine has no usable CUDA GPU.*"
                                           r"run\.device: cpu \(or auto"):
        train.main(["--cfg-path", RETRIEVAL, "--options", "run.device=cuda:0"])


def test_device_auto_falls_back_to_cpu(base_world, tmp_path):
    cfg, *_ = train.build_run(train.parse_args(
        ["--cfg-path", RETRIEVAL, "--options", *opts(base_world, tmp_path / "out", "run.device=auto")]))
    assert cfg.run_cfg.device == ("cuda" if torch.cuda.is_available() else "cpu")
