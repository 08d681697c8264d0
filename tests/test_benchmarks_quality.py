"""Smoke tests of benchmarks/quality.py and benchmarks/gap_vs_retrieval.py at their smallest size (``--quick``):
every code path of the CLIP grid and the gap study runs, writes its files, and reports finite, in-range metrics.
No wall-clock assertions; the numbers of a 5-step run mean nothing beyond that."""
import json
import math
import os

import pytest

from benchmarks import gap_vs_retrieval, quality, quality_albef

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_quality_quick_run_writes_tables(session_cache_root, tmp_path):
    out = tmp_path / "q"
    quality.main(["--quick", "--threads", "1", "--output-dir", str(out), "--cache-root", str(session_cache_root)])
    md = (out / "quality.md").read_text()
    for row in ("untrained", "plain", "inmodal", "control", "fs w=1", "bb w=1", "gc w=1"):
        assert f"| {row} |" in md, row
    data = json.loads((out / "quality.json").read_text())
    fs = data["grid"]["fs w=1"][0]
    assert "probe_image_only[z+ind]" in fs and fs["probe_image_only[z+]"] == fs["probe_image_only[z+ind]"]
    ctrl, inmodal = data["grid"]["control"][0], data["grid"]["inmodal"][0]
    assert ctrl["probe_image_only[z+]"] == inmodal["probe_image_only[z+ctrl]"]
    for runs in data["grid"].values():
        for r in runs:
            for key in ("txt_r1", "img_r1", "zs_shape", "probe_shared[z]", "probe_image_only[z]"):
                assert 0.0 <= r[key] <= 100.0, (key, r[key])
            assert math.isfinite(r["gap_centroid_distance"])


def test_gap_vs_retrieval_quick_run(session_cache_root, tmp_path):
    out = tmp_path / "g"
    summary = gap_vs_retrieval.main(["--quick", "--threads", "1", "--output-dir", str(out),
                                     "--cache-root", str(session_cache_root)])
    assert [r["scale"] for r in summary] == [1.0, 0.5]
    for name in ("gap_vs_retrieval.md", "gap_vs_retrieval.json", "gap_vs_retrieval.png"):
        assert os.path.getsize(out / name) > 0
    runs = json.loads((out / "gap_vs_retrieval.json").read_text())["runs"]
    assert all("loss_extra" in r["final_losses"] for r in runs)  # the alignment term was really added


def test_albef_grid_rows():
    rows = quality_albef.albef_configs([0.1, 1.0])
    names = [r[0] for r in rows]
    assert names[:2] == ["baseline", "inmodal"] and "gc w=0.1" in names and len(rows) == 8
    assert dict((r[0], r[2]) for r in rows)["fs w=1"] == ["model.latent.separation.weight=1.0"]


def test_albef_render_pools_parts_run_side_by_side(tmp_path):
    machine = {"cpu": "x", "logical_cores": 2, "torch": "t", "torch_threads": 1, "python": "3", "device": "cpu",
               "load_average": None}

    def part(seed, txt):
        return {"command": f"python -m benchmarks.quality --seeds {seed}", "machine": machine, "tasks": ["retrieval"],
                "minutes": 1.0, "results": {"baseline": [{"seed": seed, "txt_r1": txt, "img_r1": 2.0,
                                                          "gap_centroid_distance": 0.5}]}}

    lines = quality_albef.render([part(0, 10.0), part(1, 20.0)], str(tmp_path))
    assert lines[2] == "| baseline | 2 | 15.0 ± 7.1 | 2.0 ± 0.0 | 0.500 ± 0.000 |"
    md = (tmp_path / "quality_albef.md").read_text()
    assert "--seeds 0" in md and "--seeds 1" in md and "Seeds 0, 1" in md


def test_blip_grid_runs_retrieval_only_and_renders_its_own_table(tmp_path):
    args = quality.parse_args(["--frameworks", "blip", "--albef-tasks", "retrieval,vqa"])
    with pytest.raises(SystemExit, match="blip runs retrieval only"):
        quality_albef.run(args, [1.0], [0], {}, model="blip")
    machine = {"cpu": "x", "logical_cores": 2, "torch": "t", "torch_threads": 1, "python": "3", "device": "cpu",
               "load_average": None}
    report = {"command": "python -m benchmarks.quality --frameworks blip", "machine": machine, "model": "blip",
              "tasks": ["retrieval"], "minutes": 1.0,
              "results": {"baseline": [{"seed": 0, "txt_r1": 4.0, "img_r1": 2.0, "gap_centroid_distance": 0.3}]}}
    quality_albef.render([report], str(tmp_path), "quality_blip")
    assert (tmp_path / "quality_blip.md").read_text().startswith("# Quality: tiny BLIP")
