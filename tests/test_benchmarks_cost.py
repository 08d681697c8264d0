"""Smoke test of benchmarks/cost.py at its smallest size (``--quick``), for ALBEF (default) and BLIP (``--model
blip``): every code path runs, the output files exist, the ratios are finite and the variants really ran on the same
weights and batches. No wall-clock assertions."""
import json
import math
import os
import re
import shutil

import pytest

from benchmarks import common, cost

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cost")
    report = cost.main(["--quick", "--threads", "1", "--output-dir", str(out)])
    return out, report


@pytest.fixture(scope="module")
def blip_quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cost_blip")
    report = cost.main(["--model", "blip", "--quick", "--threads", "1", "--output-dir", str(out)])
    return out, report


def size_table(md, size):
    """``{variant: row cells}`` of the markdown's table of ``size``."""
    section = md.split(f"## {size}:", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split("|") for line in section.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[1:]}  # rows[0]: the header


def test_writes_markdown_json_png(quick_run):
    out, report = quick_run
    assert "model" not in report  # ALBEF's json as before --model existed
    for name in ("cost.md", "cost.json", "cost_scaling.png"):
        assert os.path.getsize(out / name) > 0, name
    with open(out / "cost_scaling.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    md = (out / "cost.md").read_text()
    assert "--quick" in md and common.cpu_model() in md
    for variant in cost.TARGETS:
        assert f"| tiny | {variant} |" in md
    assert "PASS" in md or "MISS" in md
    saved = json.loads((out / "cost.json").read_text())  # strict JSON (no NaN)
    assert saved["threads"] == 1 and saved["steps"]["tiny"]["variants"].keys() == set(cost.VARIANTS)


def test_ratios_finite_and_losses_identical(quick_run):
    _, report = quick_run
    variants = report["steps"]["tiny"]["variants"]
    assert variants["lavis"]["time_ratio"]["median"] == 1.0
    for name, v in variants.items():
        assert len(v["step_ms"]) == 2
        for key in ("median", "q1", "q3"):
            assert math.isfinite(v["time_ratio"][key]) and v["time_ratio"][key] > 0, (name, key)
        assert math.isfinite(v["memory_ratio"]) and v["memory_ratio"] > 0
        assert all(m > 0 for m in v["step_memory_bytes"]), name
        # same weights, same batch, same RNG: ITC / ITM / MLM equal LAVIS's (the regularizers only add terms)
        assert v["max_base_loss_diff_vs_lavis"] < 1e-5, name
    # the separation heads are extra parameters; the other regularizers add none
    assert variants["fs"]["parameters"] > variants["lavis"]["parameters"] == variants["bb"]["parameters"]
    assert variants["none"]["model_bytes"] == variants["lavis"]["model_bytes"]
    for name in ("none", "fs", "bb", "gc", "all"):
        assert variants[name]["extra_code_ms"]["median"] > 0
    for name in ("fs", "bb", "gc", "all"):  # the project yaml's latent block was used
        assert variants[name]["latent"] and variants[name]["extra_code_ms"]["median"] > variants["none"][
            "extra_code_ms"]["median"]
    assert "extra_code_ms" not in variants["lavis"] and not variants["none"]["latent"]
    # what the regularizers keep for backward, counted exactly: nothing without a latent block
    assert variants["lavis"]["extra_saved_for_backward_bytes"] is None
    assert variants["none"]["extra_saved_for_backward_bytes"] == 0
    assert all(variants[name]["extra_saved_for_backward_bytes"] > 0 for name in ("fs", "bb", "gc", "all"))
    assert variants["all"]["extra_saved_for_backward_bytes"] > variants["bb"]["extra_saved_for_backward_bytes"]
    assert {r["variant"] for r in report["verdicts"]} == set(cost.TARGETS)
    # the data's augmented view costs one more momentum-encoder pass than the paper-literal momentum view
    assert variants["bb"]["extra_code_ms"]["median"] > variants["bb@momentum"]["extra_code_ms"]["median"]
    assert variants["bb@momentum"]["latent"] == variants["bb"]["latent"]
    assert cost.split_variant("all@momentum") == ("all", "momentum") and cost.split_variant("gc") == ("gc", "data")


def test_scaling_covers_every_loss(quick_run):
    _, report = quick_run
    assert report["scaling_ns"] == [64, 128]
    assert len(report["scaling"]) == 7
    for name, per_n in report["scaling"].items():
        assert all(math.isfinite(per_n[str(n)]["median"]) and per_n[str(n)]["median"] > 0 for n in (64, 128)), name


def test_common_helpers(tmp_path):
    assert common.quantile([1, 2, 3, 4], 0.5) == 2.5
    s = common.summary([3.0, 1.0, 2.0])
    assert (s["median"], s["q1"], s["q3"], s["n"]) == (2.0, 1.5, 2.5, 3)
    assert math.isnan(common.summary([])["median"])
    path = common.write_json(str(tmp_path / "x.json"), {"a": float("nan"), "b": [1.0]})
    assert json.loads(open(path).read()) == {"a": None, "b": [1.0]}
    assert common.markdown_table(["a", "b"], [[1, 2]]) == ["| a | b |", "|---|---|", "| 1 | 2 |"]
    assert common.rss_bytes() > 0 and common.peak_rss_bytes() >= common.rss_bytes()


def test_albef_render_rewrites_the_same_markdown(quick_run, tmp_path):
    out, _ = quick_run
    shutil.copy(out / "cost.json", tmp_path / "cost.json")
    cost.main(["--render", str(tmp_path / "cost.json")])
    assert (tmp_path / "cost.md").read_text() == (out / "cost.md").read_text()


def test_blip_quick_run_reports_every_variant(blip_quick_run):
    out, report = blip_quick_run
    assert sorted(os.listdir(out)) == ["cost_blip.json", "cost_blip.md"]  # its own files; no part 2, no plot
    md = (out / "cost_blip.md").read_text()
    assert "--model blip" in md and "against LAVIS's BLIP" in md and "`BlipPretrain`" in md
    assert "`blip_latent_pretrain`" in md and "projects/blip/pretrain_*.yaml" in md and "ITC/ITM/LM" in md
    assert "## Each loss alone" not in md and "Part 2 (each loss alone as the batch grows) is not run for BLIP" in md
    for variant in cost.TARGETS:
        assert f"| tiny | {variant} |" in md
    rows = size_table(md, "tiny")
    assert set(rows) == set(cost.FAMILIES["blip"].variants) == set(cost.VARIANTS)
    for variant, cells in rows.items():
        ratio = float(cells[0])
        q1, q3 = (float(x) for x in re.fullmatch(r"\[(\S+), (\S+)\]", cells[1]).groups())
        assert all(math.isfinite(x) and x > 0 for x in (ratio, q1, q3)), variant
    saved = json.loads((out / "cost_blip.json").read_text())  # strict JSON (no NaN)
    assert saved["model"] == "blip" and saved["scaling"] == {} and saved["scaling_ns"] == []
    assert saved["steps"]["tiny"]["variants"].keys() == set(cost.VARIANTS)


def test_blip_variants_are_lavis_blip_plus_the_project_blocks(blip_quick_run):
    from omegaconf import OmegaConf

    _, report = blip_quick_run
    variants = report["steps"]["tiny"]["variants"]
    assert variants["lavis"]["time_ratio"]["median"] == 1.0
    for name, v in variants.items():
        assert len(v["step_ms"]) == 2 and all(m > 0 for m in v["step_memory_bytes"]), name
        assert math.isfinite(v["memory_ratio"]) and v["memory_ratio"] > 0
        # same weights, same batch, same RNG: ITC / ITM / LM equal LAVIS's BlipPretrain's
        assert v["max_base_loss_diff_vs_lavis"] < 1e-5, name
    for name in ("fs", "bb", "gc", "all"):  # BLIP's own project yamls
        block = OmegaConf.load(os.path.join(cost.REPO_ROOT, "projects", "blip", f"pretrain_{name}.yaml")).model.latent
        assert variants[name]["latent"] == OmegaConf.to_container(block, resolve=True) != {}
        assert variants[name]["extra_code_ms"]["median"] > variants["none"]["extra_code_ms"]["median"] > 0
    assert not variants["none"]["latent"] and variants["lavis"]["extra_saved_for_backward_bytes"] is None
    assert variants["fs"]["parameters"] > variants["lavis"]["parameters"] == variants["bb"]["parameters"]
    assert variants["none"]["model_bytes"] == variants["lavis"]["model_bytes"]
    assert variants["bb"]["extra_code_ms"]["median"] > variants["bb@momentum"]["extra_code_ms"]["median"]


def test_blip_render_rewrites_its_own_markdown(blip_quick_run, tmp_path):
    out, _ = blip_quick_run
    shutil.copy(out / "cost_blip.json", tmp_path / "cost_blip.json")
    cost.main(["--render", str(tmp_path / "cost_blip.json")])
    assert sorted(os.listdir(tmp_path)) == ["cost_blip.json", "cost_blip.md"]
    assert (tmp_path / "cost_blip.md").read_text() == (out / "cost_blip.md").read_text()


def test_blip_full_size_vocabulary_keeps_the_local_ids():
    from benchmarks.cost_families import BLIP_BASE_VOCAB, blip_tokenizer, padded_vocab_file
    from benchmarks.cost_models import CAPTIONS

    local = common.default_model_config("blip_latent_pretrain", "tiny").tokenizer
    small, padded = blip_tokenizer(local), blip_tokenizer(padded_vocab_file(local, BLIP_BASE_VOCAB))
    assert len(padded) == BLIP_BASE_VOCAB == 30524 and len(small) < 1000
    assert padded(CAPTIONS).input_ids == small(CAPTIONS).input_ids
    assert (padded.bos_token_id, padded.enc_token_id) == (small.bos_token_id, small.enc_token_id)
