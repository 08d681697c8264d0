"""The GPU check (issue 17): one command that, on one CUDA GPU, measures within 8 minutes what the CPU benchmarks
could not, and writes ``benchmarks/results/gpu.md`` (and ``gpu.json`` beside it with every number):

1. the machine: GPU, CUDA, cuDNN, NCCL, driver, torch, LAVIS;
2. ALBEF at full size (ViT-B/16 + BERT-base, random init, offline): the step time and peak memory of the plugin's
   variants (``none``, ``fs``, ``bb``, ``gc``, ``all``) as ratios to LAVIS's own ``AlbefPretrain``, every model
   trained as LAVIS's runner does with ``run.amp``: float16 autocast + GradScaler + AdamW (batch 32, 224 px);
3. CLIP ``rn50_bert`` (ResNet-50 + BERT-base) train steps at batch 128 (the projects' baseline, fs, bb, gc):
   samples/s and peak memory;
4. each regularizer loss alone and the ``LatentStructureLoss`` at N = 4096, D = 256: ms per forward + backward;
5. a 1-process ``torchrun`` with nccl: the gather-with-gradient collectives and DDP training steps.

Each section checks the clock against an 8-minute budget (``--budget-s``) and is skipped with a note where the
minimum it needs would overrun it; the timed rounds stop early for the same reason. ``--device cpu --quick`` runs
every section at tiny sizes (bfloat16 autocast, gloo) in well under a minute: the tests run it so it cannot rot.

    python -m benchmarks.gpu_check                           # on a CUDA machine: benchmarks/results/gpu.md
    python -m benchmarks.gpu_check --device cpu --quick      # dry run: output/benchmarks/gpu_check_quick/gpu.md
"""
import argparse
import gc
import os
import sys
import tempfile
import time
import traceback

if __package__ in (None, ""):  # python benchmarks/gpu_check.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import offline_environment  # noqa: E402

offline_environment(TOKENIZERS_PARALLELISM="false")

import torch  # noqa: E402

from benchmarks import common  # noqa: E402
from benchmarks.cost_models import REPO_ROOT  # noqa: E402

SECTIONS = ("albef", "clip", "losses", "torchrun")
BUDGET_S = 480.0
RESERVE_S = 15.0  # the process's start (imports) before the clock starts, and writing the report
#: per mode: section -> settings; ``cap_s``: the most it may take, ``min_s``: the least it needs (else skipped);
#: ``warmup`` rounds, more while a GradScaler still skips steps (up to ``max_warmup``), then ``min_rounds`` to
#: ``max_rounds`` measured rounds as the budget allows
PLANS = {
    "full": {
        "albef": dict(size="full", batch=32, warmup=3, max_warmup=20, min_rounds=3, max_rounds=15,
                      memory_repeats=1, cap_s=240, min_s=90),
        "clip": dict(model_type="rn50_bert", batch=128, warmup=3, max_warmup=20, min_rounds=3, max_rounds=15,
                     memory_repeats=1, cap_s=90, min_s=30),
        "losses": dict(n=4096, repeats=10, cap_s=30, min_s=5),
        "torchrun": dict(steps=5, cap_s=90, min_s=30),
    },
    "quick": {
        "albef": dict(size="tiny", batch=4, warmup=1, min_rounds=2, max_rounds=2, memory_repeats=1, cap_s=120,
                      min_s=5),
        "clip": dict(model_type="tiny", batch=8, warmup=1, min_rounds=2, max_rounds=2, memory_repeats=1, cap_s=60,
                     min_s=2),
        "losses": dict(n=64, repeats=2, cap_s=30, min_s=1),
        "torchrun": dict(steps=2, cap_s=120, min_s=15),
    },
}
NO_CUDA = "no CUDA device: {why} (run with --device cpu --quick for the dry run)"


def default_output(quick):
    """``benchmarks/results/gpu.md``; with ``--quick`` a path under the ignored ``output/`` (never the committed
    file)."""
    if quick:
        return os.path.join(REPO_ROOT, "output", "benchmarks", "gpu_check_quick", "gpu.md")
    return os.path.join(REPO_ROOT, "benchmarks", "results", "gpu.md")


def parse_args(argv=None):
    """The command line's options (``argv``: a list of arguments, default ``sys.argv[1:]``)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="default cuda")
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes, 2 rounds: the dry run the tests do (with --device cpu: bfloat16, gloo)")
    p.add_argument("--output", default=None,
                   help="the markdown file, its json beside it (default benchmarks/results/gpu.md; "
                        "--quick: output/benchmarks/gpu_check_quick/gpu.md)")
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"comma list of {', '.join(SECTIONS)} (default: all; the machine is always described)")
    p.add_argument("--budget-s", type=float, default=BUDGET_S, help="time budget in seconds (default 480)")
    p.add_argument("--threads", default="auto",
                   help="torch CPU threads; auto: torch's default with --device cuda, on the CPU 2 if the load "
                        "average is below 0.5, else 1 (as benchmarks.cost)")
    p.add_argument("--albef-batch", type=int, default=None, help="ALBEF batch (default 32; --quick 4)")
    p.add_argument("--clip-batch", type=int, default=None, help="CLIP batch (default 128; --quick 8)")
    p.add_argument("--loss-n", type=int, default=None, help="N of the losses alone (default 4096; --quick 64)")
    args = p.parse_args(argv)
    args.sections = [s for s in args.sections.split(",") if s]
    for s in args.sections:
        if s not in SECTIONS:
            p.error(f"--sections: unknown section {s!r} (choose from {', '.join(SECTIONS)})")
    return args


def section_plans(args):
    """The settings of each chosen section (:data:`PLANS` of the mode, with the command line's overrides)."""
    plans = {s: dict(PLANS["quick" if args.quick else "full"][s]) for s in args.sections}
    for section, key, value in (("albef", "batch", args.albef_batch), ("clip", "batch", args.clip_batch),
                                ("losses", "n", args.loss_n)):
        if value is not None and section in plans:
            plans[section][key] = value
    return plans


class Budget:
    """The run's clock: each section gets a deadline that leaves the later sections their minimum."""

    def __init__(self, seconds, plans):
        self.seconds, self.plans = seconds, plans
        self.start = time.perf_counter()
        self.end = self.start + seconds - RESERVE_S

    def elapsed(self):
        return time.perf_counter() - self.start

    def deadline(self, section):
        """``(deadline, None)`` for ``section``, or ``(None, why)`` where the budget leaves it too little."""
        order = list(self.plans)
        later = sum(self.plans[s]["min_s"] for s in order[order.index(section) + 1:])
        now = time.perf_counter()
        deadline = min(now + self.plans[section]["cap_s"], self.end - later)
        if deadline - now < self.plans[section]["min_s"]:
            return None, (f"skipped: {self.elapsed():.0f} s of the {self.seconds:.0f} s budget used; this section "
                          f"needs about {self.plans[section]['min_s']} s and the later ones {later} s")
        return deadline, None


def machine_section(device):
    """Machine, CUDA stack and library versions (json-able)."""
    import importlib.metadata as md
    import subprocess

    info = common.machine_info(device)
    for pkg in ("salesforce-lavis", "transformers", "timm"):
        try:
            info[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            info[pkg] = None
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        try:
            from torch.cuda import nccl as nccl_module

            nccl = nccl_module.version()
        except (ImportError, RuntimeError, AttributeError):
            nccl = None
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    compute_capability=f"{props.major}.{props.minor}", cuda=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version(),
                    nccl=".".join(map(str, nccl)) if isinstance(nccl, tuple) else nccl,
                    gpu_count=torch.cuda.device_count(),
                    cudnn_settings=f"benchmark {torch.backends.cudnn.benchmark}, deterministic "
                                   f"{torch.backends.cudnn.deterministic} (as lavis_latent.train sets them)")
        try:
            info["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                            capture_output=True, text=True, timeout=20).stdout.split("\n")[0] or None
        except (OSError, subprocess.SubprocessError):
            info["driver"] = None
    return info


def run_section(name, plan, device, deadline):
    """Measure one section; returns its json-able result."""
    from benchmarks.gpu_check_dist import launch
    from benchmarks.gpu_check_losses import measure_losses
    from benchmarks.gpu_check_steps import measure_albef, measure_clip

    if name == "albef":
        return measure_albef(plan["size"], plan["batch"], device, plan, deadline)
    if name == "clip":
        return measure_clip(plan["model_type"], plan["batch"], device, plan, deadline)
    if name == "losses":
        return {"n": plan["n"], "repeats": plan["repeats"],
                "losses": measure_losses(plan["n"], plan["repeats"], device, deadline)}
    with tempfile.TemporaryDirectory() as tmp:
        return launch(device.type, os.path.join(tmp, "worker.json"),
                      timeout=max(deadline - time.perf_counter(), plan["min_s"]), steps=plan["steps"])


def free_device(device):
    """Free what a section left (its models are gone with its frame) and the CUDA cache."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def run_check(args):
    """Measure every chosen section within the budget and write the markdown and the json; returns the report."""
    from benchmarks.gpu_check_report import markdown

    device = torch.device(args.device)
    out_md = os.path.abspath(args.output or default_output(args.quick))
    out_json = os.path.splitext(out_md)[0] + ".json"
    os.makedirs(os.path.dirname(out_md), exist_ok=True)
    plans = section_plans(args)
    budget = Budget(args.budget_s, plans)
    report = {"command": common.command_line("benchmarks.gpu_check", args.argv), "quick": args.quick,
              "device": str(device), "budget_s": args.budget_s, "machine": machine_section(device),
              "plans": plans, "sections": {}}
    common.log(common.machine_description(report["machine"]))
    for name in plans:
        deadline, why = budget.deadline(name)
        entry = {"status": "skipped", "note": why}
        if deadline is not None:
            t0 = time.perf_counter()
            try:
                entry = {"status": "ok", "result": run_section(name, plans[name], device, deadline)}
                if name == "torchrun" and not entry["result"]["ok"]:
                    entry["status"] = "failed"
            except Exception as err:  # noqa: BLE001 - a failed section is reported, the others still run
                entry = {"status": "failed", "error": f"{type(err).__name__}: {err}"}
                if isinstance(err, torch.cuda.OutOfMemoryError):
                    entry["error"] += " (try a smaller --albef-batch / --clip-batch)"
                entry["traceback"] = traceback.format_exc()[-4000:]  # in the json, for the one who reads it
                traceback.print_exc()
                common.log(f"{name} FAILED: {entry['error']}")
            entry["seconds"] = time.perf_counter() - t0
            free_device(device)
        common.log(f"{name}: {entry['status']}" + (f" ({entry['note']})" if entry.get("note") else ""))
        report["sections"][name] = entry
    report["total_seconds"] = budget.elapsed()
    report["files"] = {"md": out_md, "json": out_json}
    common.write_json(out_json, report)
    common.write_text(out_md, markdown(report))
    common.log(f"wrote {out_md} and {out_json} in {report['total_seconds']:.0f} s")
    return report


def cuda_missing():
    """Why ``--device cuda`` cannot run here (one line), or None where it can."""
    if torch.cuda.is_available():
        return None
    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU-only build"
    return f"torch {torch.__version__} ({build}) sees no GPU"


def main(argv=None):
    """Run the check; returns the exit code: 0 every chosen section ran (or was skipped by the budget), 1 a section
    failed, 2 ``--device cuda`` without a CUDA device (one line on stderr, nothing measured)."""
    args = parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    if args.device == "cuda":
        why = cuda_missing()
        if why is not None:
            print(NO_CUDA.format(why=why), file=sys.stderr)
            return 2
    cudnn = torch.backends.cudnn
    saved = torch.get_num_threads(), cudnn.benchmark, cudnn.deterministic
    if args.threads != "auto" or args.device == "cpu":
        from benchmarks.cost import choose_threads

        torch.set_num_threads(choose_threads(args.threads))
    if args.device == "cuda":  # what the training entry point runs with (lavis_latent.train.setup_seeds)
        cudnn.benchmark, cudnn.deterministic = False, True
    try:
        report = run_check(args)
    finally:
        torch.set_num_threads(saved[0])
        cudnn.benchmark, cudnn.deterministic = saved[1:]
    return 1 if any(e["status"] == "failed" for e in report["sections"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
