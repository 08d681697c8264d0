"""``python -m lavis_latent.demo``: the compact run end to end (quiet console, tables, pictures) and its options."""
import glob
import json
import os

import pytest
import torch

from lavis_latent import demo
from lavis_latent.metrics import modality_gap


def _png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_compact_demo_runs_quietly_and_writes_tables_and_pictures(tmp_path, capfd):
    out = tmp_path / "demo"
    rows = demo.main(["--clip-variants", "untrained,bb", "--output-dir", str(out), "--options", "run.max_epoch=1"])
    stdout, stderr = capfd.readouterr()

    assert [r["variant"] for r in rows] == ["untrained", "bb"] and all(r["framework"] == "clip" for r in rows)
    for r in rows:
        assert 0 <= r["zero_shot"]["top1"] <= 100 and r["zero_shot"]["gap_paired_distance"] > 0
        assert "linear_probe" not in r  # the compact run is zero-shot only
        assert _png(r["plot"])
    assert rows[1]["pretrain_losses"]["loss_bridge"] >= 0
    assert _png(out / "gap_clip.png") and not (out / "gap_albef.png").exists()
    table = (out / "demo_table.md").read_text()
    assert "| variant | top-1 | top-3 | top-5 | gap centroid | gap paired |" in table and "| bb |" in table
    assert json.loads((out / "demo_results.json").read_text())[1]["variant"] == "bb"

    # the console: the plan, one summary line per run, the table; LAVIS's per-iteration lines only in console.log
    assert "[1/2] CLIP untrained" in stdout and "[2/2] CLIP bb" in stdout and "bb: zero-shot top-1" in stdout
    assert len(stdout.splitlines()) < 25
    assert "Train: data epoch" not in stdout + stderr and "Start training epoch" not in stdout + stderr
    assert "CLIP bb: pretrain" in stderr  # the progress bar
    logs = glob.glob(str(out / "clip" / "bb" / "pretrain" / "console.log"))
    assert logs and "Train: data epoch" in open(logs[0]).read()


def test_full_study_options_need_full():
    for flag in ("--tasks", "--variants", "--frameworks"):
        with pytest.raises(SystemExit):
            demo.parse_args([flag, "albef"])
    args = demo.parse_args(["--full", "--tasks", "all", "--variants", "baseline"])
    assert args.full and args.tasks == "all"


def test_zero_shot_gap_is_each_image_against_its_class_embedding(tmp_path, monkeypatch):
    from lavis.common.registry import registry

    from lavis_latent.tasks.zero_shot import ZeroShotClassificationTask

    monkeypatch.setitem(registry.mapping["paths"], "output_dir", str(tmp_path))
    task = ZeroShotClassificationTask(plot_gap=True)
    g = torch.Generator().manual_seed(0)
    classes = torch.nn.functional.normalize(torch.randn(3, 8, generator=g), dim=1)
    labels = torch.tensor([0, 1, 2, 2, 1, 0])
    images = torch.nn.functional.normalize(classes[labels] + 0.3 * torch.randn(6, 8, generator=g), dim=1)
    task._gap_pairs = (images, classes[labels])
    gap = task._image_class_gap("test")
    expected = modality_gap(images, classes[labels])
    assert gap["gap_paired_distance"] == pytest.approx(expected["paired_distance"])
    assert gap["gap_centroid_distance"] == pytest.approx(expected["centroid_distance"])
    assert task.gap_plots == [os.path.join(str(tmp_path), "gap_test.png")] and _png(task.gap_plots[0])
    assert task._gap_pairs is None and task._image_class_gap("test") == {}  # the features are not kept


def test_full_study_has_configs_for_every_framework_and_variant():
    for model in ("albef", "blip"):
        for stage in ("pretrain", "retrieval"):
            for variant in demo.VARIANTS:
                assert os.path.isfile(demo.variant_config(demo.DEFAULT_PROJECTS, f"{model}_{stage}", variant))
    with pytest.raises(ValueError, match="ALBEF only"):
        demo.run_variant("bb", demo.DEFAULT_PROJECTS, "unused", tasks=("retrieval", "vqa"), model="blip")
    with pytest.raises(SystemExit, match="ALBEF's"):
        demo.main(["--full", "--frameworks", "blip", "--tasks", "vqa"])
