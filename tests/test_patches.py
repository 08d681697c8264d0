"""The plugin's patches of LAVIS are scoped: applied while the runner works, LAVIS's originals back afterwards."""
import os

import pytest
import torch

from conftest import PROJECTS_DIR
from lavis_latent import train
from lavis_latent.datasets import demo_data
from lavis_latent.runners.patches import lavis_runtime_patches, patch_targets, swapped

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def current():
    """The present value of every patch target (and of ``torch.multinomial``, which no patch may touch)."""
    values = {(id(owner), name): getattr(owner, name) for owner, name in patch_targets()}
    values["torch.multinomial"] = torch.multinomial
    return values


def test_patches_apply_inside_and_restore_on_exit_and_on_error():
    before = current()
    with lavis_runtime_patches(cuda_enabled=False, seed=0, rank=0):
        inside = current()
        changed = [k for k in before if inside[k] is not before[k]]
        assert len(changed) == len(patch_targets())  # off the GPU all three are swapped
    assert all(current()[k] is v for k, v in before.items())
    with pytest.raises(KeyError):
        with lavis_runtime_patches(cuda_enabled=True, seed=0, rank=0):
            raise KeyError("boom")
    assert all(current()[k] is v for k, v in before.items())


def test_swapped_restores_the_previous_value_when_nested():
    class Owner:
        x = "original"

    with swapped(Owner, "x", "outer") as original:
        assert original == "original"
        with swapped(Owner, "x", "inner"):
            assert Owner.x == "inner"
        assert Owner.x == "outer"
    assert Owner.x == "original"


def test_lavis_originals_are_back_after_a_training_run(tmp_path, session_cache_root):
    world = tmp_path / "world"
    demo_data.generate(world, num_train=4, num_val=2, num_test=2)
    before = current()
    gen = "datasets.demo_retrieval.build_info.generator"
    # a batch of one: the ITM negative sampling without candidate (the local multinomial mode) is exercised too
    runner = train.main(["--cfg-path", os.path.join(PROJECTS_DIR, "demo", "albef_retrieval.yaml"), "--options",
                         f"{gen}.root={world}", f"{gen}.enabled=false", "run.max_epoch=1", "run.batch_size_train=1",
                         "run.valid_splits=[]", "run.test_splits=[]", f"run.output_dir={tmp_path / 'out'}"])
    assert float(runner.last_train_stats["loss_itm"]) == 0.0
    after = current()
    assert all(after[k] is v for k, v in before.items()), [k for k, v in before.items() if after[k] is not v]
