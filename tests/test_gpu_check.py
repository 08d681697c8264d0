"""The GPU check's dry run (``python -m benchmarks.gpu_check --device cpu --quick``): every section runs at tiny
sizes and lands in the markdown with numbers, the ratios are positive and finite, the torchrun part (a real
``torch.distributed.run`` subprocess, gloo) passes; without CUDA the CUDA mode says so in one line (exit code 2);
the time budget skips sections with a note; the warm-up waits for the GradScaler. No wall-clock assertions."""
import copy
import json
import math
import os
import re
import types

import pytest
import torch

from benchmarks import gpu_check
from benchmarks.gpu_check_report import markdown
from benchmarks.gpu_check_steps import interleaved_rounds, step_peak_bytes

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def positive(x):
    return x is not None and math.isfinite(x) and x > 0


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    code = gpu_check.main(["--device", "cpu", "--quick", "--threads", "1", "--output", str(out / "gpu.md")])
    md = (out / "gpu.md").read_text()
    report = json.loads((out / "gpu.json").read_text())  # strict JSON: NaN would be null
    return code, md, report, out


def section_text(md, number):
    """The markdown of section ``number`` (from its heading to the next one)."""
    m = re.search(rf"^## {number}\. .*?(?=^## )", md, re.S | re.M)
    assert m, f"section {number} missing"
    return m.group(0)


def test_every_section_ran_and_is_in_the_markdown(dry_run):
    code, md, report, out = dry_run
    assert code == 0
    assert sorted(os.listdir(out)) == ["gpu.json", "gpu.md"]  # the torchrun worker's json is not left behind
    assert {name: e["status"] for name, e in report["sections"].items()} == dict.fromkeys(gpu_check.SECTIONS, "ok")
    assert "Result: 4 of 4 sections ok" in md and "--device cpu --quick" in md
    assert "| GPU | none: CPU dry run" in section_text(md, 1)
    for number, rows in ((2, ("lavis", "none", "fs", "bb", "gc", "all")), (3, ("baseline", "fs", "bb", "gc")),
                         (4, ("orthogonal_loss", "LatentStructureLoss")), (5, ("training steps", "wall time"))):
        text = section_text(md, number)
        for row in rows:
            assert re.search(rf"^\| {re.escape(row)}.*\d", text, re.M), (number, row)
    assert "| result | ok |" in section_text(md, 5) and "FAILED" not in md


def test_albef_ratios_positive_finite_and_same_losses(dry_run):
    res = dry_run[2]["sections"]["albef"]["result"]
    assert res["size"] == "tiny" and res["rounds"] == 2 and res["amp"] == "bfloat16 autocast (no scaler)"
    variants = res["variants"]
    assert list(variants) == ["lavis", "none", "fs", "bb", "gc", "all"]
    assert variants["lavis"]["time_ratio"]["median"] == 1.0 and variants["lavis"]["memory_ratio"] == 1.0
    for name, e in variants.items():
        for key in ("median", "q1", "q3"):
            assert positive(e["time_ratio"][key]), (name, key)
        assert positive(e["memory_ratio"]) and positive(e["samples_per_s"]), name
        assert e["peak_bytes"] > e["model_bytes"] + e["optimizer_state_bytes"] > e["model_bytes"], name
        assert e["skipped_optimizer_steps"] == 0
        # lr 0 keeps the shared weights: ITC / ITM / MLM equal LAVIS's at every step (bfloat16 is deterministic here)
        assert e["max_base_loss_diff_vs_lavis"] < 1e-5, name
    assert variants["fs"]["optimizer_state_bytes"] > variants["lavis"]["optimizer_state_bytes"]  # separation heads


def test_clip_ratios_positive_and_finite(dry_run):
    res = dry_run[2]["sections"]["clip"]["result"]
    assert res["model_type"] == "tiny" and res["batch"] == 8
    variants = res["variants"]
    assert variants["baseline"]["base_loss"] == "clip" and variants["baseline"]["latent"] == []
    assert variants["fs"]["latent"] == ["separation"] and variants["gc"]["base_loss"] == "paper"
    for name, e in variants.items():
        assert positive(e["time_ratio"]["median"]) and positive(e["memory_ratio"]), name
        assert positive(e["samples_per_s"]) and positive(e["step_ms"]["median"]), name


def test_each_loss_alone(dry_run):
    res = dry_run[2]["sections"]["losses"]["result"]
    assert res["n"] == 64 and len(res["losses"]) == 8
    for name, v in res["losses"].items():
        assert positive(v["ms"]["median"]) and v["peak_bytes"] is None, name  # peak memory: CUDA only


def test_torchrun_one_process_gloo(dry_run):
    res = dry_run[2]["sections"]["torchrun"]["result"]
    assert res["ok"] and res["returncode"] == 0 and res["backend"] == "gloo"
    w = res["worker"]
    assert (w["backend"], w["world_size"], w["ddp"]) == ("gloo", 1, "DistributedDataParallel")
    assert w["gather_with_grad_ok"] and w["losses_finite"] and w["weights_moved"]
    assert {"loss_itc", "loss_sep", "loss_bridge", "loss_geo"} <= set(w["losses"])
    assert "torch.distributed.run --standalone --nproc_per_node 1" in res["command"]


def test_no_cuda_says_so_in_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--output", str(tmp_path / "gpu.md")]) == 2  # --device cuda is the default
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("no CUDA device: ")
    assert "(run with --device cpu --quick for the dry run)" in lines[0]
    assert not os.listdir(tmp_path)


def test_budget_skips_sections_with_a_note(tmp_path):
    code = gpu_check.main(["--device", "cpu", "--quick", "--threads", "1", "--sections", "losses,torchrun",
                           "--budget-s", "10", "--output", str(tmp_path / "gpu.md")])
    assert code == 0
    report = json.loads((tmp_path / "gpu.json").read_text())
    assert [e["status"] for e in report["sections"].values()] == ["skipped", "skipped"]
    md = (tmp_path / "gpu.md").read_text()
    assert md.count("_skipped: ") == 2 and "2 skipped by the time budget" in md and "## 2." not in md


def test_cli_defaults():
    assert gpu_check.default_output(False).endswith(os.path.join("benchmarks", "results", "gpu.md"))
    assert os.path.join("output", "benchmarks") in gpu_check.default_output(True)  # tests never touch results/
    args = gpu_check.parse_args(["--quick", "--clip-batch", "16"])
    assert args.device == "cuda" and gpu_check.section_plans(args)["clip"]["batch"] == 16
    assert gpu_check.section_plans(gpu_check.parse_args([]))["albef"]["batch"] == 32
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--sections", "albef,gpu"])


class FakeTrainer:
    """A trainer whose scaler skips its first ``skips`` steps."""

    def __init__(self, skips):
        self.skips, self.skipped = skips, 0

    def timed_step(self, model, batch, seed):
        if self.skips:
            self.skips -= 1
            self.skipped += 1
        return 0.001, None


def test_warmup_waits_for_the_grad_scaler_and_the_budget_cuts_it():
    models = {"a": None, "b": None}
    trainers = {"a": FakeTrainer(0), "b": FakeTrainer(4)}
    plan = dict(warmup=2, max_warmup=10, min_rounds=2, max_rounds=3)
    times, warmup, cut = interleaved_rounds(models, trainers, lambda v: None, plan, deadline=float("inf"))
    assert warmup == 5 and not cut and len(times["a"]) == 3 and trainers["b"].skipped == 0
    trainers = {"a": FakeTrainer(0), "b": FakeTrainer(4)}
    times, warmup, cut = interleaved_rounds(models, trainers, lambda v: None, plan, deadline=0.0)
    assert warmup == 1 and cut and len(times["a"]) == 1  # past the deadline: one warm-up, one measured round


def test_cuda_branches_of_the_machine_section_and_the_markdown(dry_run, monkeypatch):
    """What only a GPU run reaches, on a fake device: the machine's CUDA facts and the markdown of a CUDA report."""
    props = types.SimpleNamespace(name="NVIDIA H200", total_memory=141 * 2**30, major=9, minor=0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: props)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: props.name)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    machine = gpu_check.machine_section(torch.device("cuda"))
    assert (machine["gpu"], machine["gpu_memory_gib"], machine["compute_capability"]) == ("NVIDIA H200", 141.0, "9.0")
    report = copy.deepcopy(dry_run[2])
    report.update(device="cuda", quick=False, machine=machine)
    for v in report["sections"]["losses"]["result"]["losses"].values():
        v["peak_bytes"] = 3 * 2**20
    report["sections"]["torchrun"]["result"]["worker"]["nccl_version"] = "2.21.5"
    md = "\n".join(markdown(report))
    assert "| GPU | NVIDIA H200 (141.0 GiB, compute capability 9.0; 1 visible) |" in md
    for title in ("## 2. ALBEF full size, batch 4:", "## 3. CLIP RN50 + BERT-base: train step at batch 8",
                  "## 4. Each loss alone: forward + backward at N = 64", "## 5. torchrun, 1 process, nccl"):
        assert title in md
    assert "CUDA max_memory_allocated" in md and "| NCCL | 2.21.5 |" in md and "| 3 |" in md


def test_step_peak_bytes_reads_the_cuda_allocator(monkeypatch):
    state = {"allocated": 100, "peak": 100}
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats",
                        lambda device=None: state.update(peak=state["allocated"]))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: state["allocated"])
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: state["peak"])
    assert step_peak_bytes(lambda: state.update(peak=1100), "cuda") == 1000


def test_a_failed_section_is_reported_and_the_exit_code_is_1(monkeypatch, tmp_path):
    import benchmarks.gpu_check_steps as steps

    def boom(*args, **kwargs):
        raise RuntimeError("CUDA error: out of luck")

    monkeypatch.setattr(steps, "measure_clip", boom)
    code = gpu_check.main(["--device", "cpu", "--quick", "--threads", "1", "--sections", "clip", "--output",
                           str(tmp_path / "gpu.md")])
    assert code == 1
    entry = json.loads((tmp_path / "gpu.json").read_text())["sections"]["clip"]
    assert entry["status"] == "failed" and "in boom" in entry["traceback"]
    md = (tmp_path / "gpu.md").read_text()
    assert "**FAILED** after" in md and "RuntimeError: CUDA error: out of luck" in md and ", 1 FAILED" in md
