"""The ``torchrun`` part of ``benchmarks.gpu_check``: one process launched by ``python -m torch.distributed.run
--standalone --nproc_per_node 1`` (nccl on CUDA, gloo on CPU) that

1. sends a tensor through the collectives of the plugin's gather with gradient (``_GatherWithGrad``: ``all_gather``
   forward, ``all_reduce`` backward; at world size 1 ``gather_features`` itself skips them, so they are called
   directly) and checks the values and the gradient;
2. trains the tiny ``clip_latent`` with every regularizer (base loss and in-modal terms gathered with gradient) in
   ``DistributedDataParallel`` for a few mixed-precision steps (autocast + GradScaler + AdamW, as LAVIS's runner),
   checking the losses are finite and the weights moved.

:func:`launch` runs it and reads its json; ``python -m benchmarks.gpu_check_dist --out FILE`` is the worker.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time
import traceback

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LATENT = {"separation": {}, "bridge": {}, "geometric": {"gather": True}}


def launch(device, out_json, timeout, steps=3):
    """Run the worker under torchrun (1 process, nccl on CUDA, gloo on CPU); returns a json-able dict: ``ok``, the
    wall time of the whole launch, the return code, the worker's own report, and the output's tail on failure."""
    backend = "nccl" if device == "cuda" else "gloo"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
           "-m", "benchmarks.gpu_check_dist", "--out", out_json, "--backend", backend, "--steps", str(steps)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (REPO_ROOT, os.environ.get("PYTHONPATH")) if p),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    if device != "cuda":
        env["OMP_NUM_THREADS"] = "1"
    if os.path.exists(out_json):
        os.remove(out_json)
    t0 = time.perf_counter()
    # a session of its own, so that a timeout ends the launcher and its worker together (a hung nccl init)
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
        rc, tail = proc.returncode, output[-3000:]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        rc, tail = None, f"timed out after {timeout:.0f} s (killed)\n" + (output or "")[-2500:]
    wall = time.perf_counter() - t0
    worker = None
    if os.path.exists(out_json):
        with open(out_json) as f:
            worker = json.load(f)
    ok = rc == 0 and worker is not None and worker.get("ok") is True
    shown = ["python"] + cmd[1:cmd.index("--out")] + cmd[cmd.index("--backend"):]
    return {"ok": ok, "backend": backend, "command": " ".join(shown), "returncode": rc,
            "wall_seconds": wall, "worker": worker, "output_tail": None if ok else tail}


def gather_check(device):
    """all_gather / all_reduce through ``_GatherWithGrad``: the gathered rows equal this rank's, the gradient of
    ``sum(gathered * w)`` is ``w`` summed over the ranks (world size 1: ``w``)."""
    import torch
    import torch.distributed as dist

    from lavis_latent.regularizers.distributed import _GatherWithGrad

    x = torch.arange(12.0, device=device).view(4, 3).requires_grad_(True)
    gathered = _GatherWithGrad.apply(x)
    w = torch.linspace(0.5, 2.0, gathered.numel(), device=device).view_as(gathered)
    (gathered * w).sum().backward()
    world = dist.get_world_size()
    values_ok = gathered.shape[0] == 4 * world and torch.equal(gathered[:4].detach(), x.detach())
    grad_ok = torch.allclose(x.grad, w[:4] * world)
    return bool(values_ok and grad_ok)


def train_check(device, steps):
    """DDP steps of the tiny ``clip_latent`` with :data:`LATENT` under AMP until ``steps`` optimizer steps were taken
    (GradScaler's skipped ones not counted); returns the step times, the last losses and whether the weights
    moved."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from benchmarks.common import build_registered_model
    from benchmarks.gpu_check_steps import AmpTrainer, clip_batch

    torch.manual_seed(0)
    model = build_registered_model("clip_latent", {"latent": LATENT}).to(device).train()
    ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    trainer = AmpTrainer(ddp, device)
    trainer.optimizer.param_groups[0]["lr"] = 1e-3  # a real step: the weights must move
    before = model.vision_proj.weight.detach().clone()
    batch = clip_batch(8, 64, device)
    times, out = [], None
    for s in range(steps + 16):  # float16: GradScaler skips the first steps while it backs off (up to 16 more)
        seconds, out = trainer.timed_step(ddp, batch, s)
        times.append(seconds)
        if len(times) - trainer.skipped >= steps:
            break
    losses = {k: float(v.detach()) for k, v in out.items() if k.startswith("loss")}
    return {"step_ms": [t * 1e3 for t in times], "losses": losses, "amp": trainer.amp_name(),
            "skipped_optimizer_steps": trainer.skipped, "ddp": type(ddp).__name__, "backend": dist.get_backend(),
            "world_size": dist.get_world_size(),
            "weights_moved": bool(not torch.equal(before, model.vision_proj.weight.detach())),
            "losses_finite": all(map(lambda v: v == v and abs(v) != float("inf"), losses.values()))}


def worker_main(argv=None):
    """The torchrun worker: writes its report (``ok`` and the checks) to ``--out`` on rank 0."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check_dist")
    p.add_argument("--out", required=True)
    p.add_argument("--backend", default="nccl")
    p.add_argument("--steps", type=int, default=3)
    args = p.parse_args(argv)
    import torch
    import torch.distributed as dist

    t0 = time.perf_counter()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if args.backend == "nccl":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
        torch.set_num_threads(1)
    dist.init_process_group(backend=args.backend)
    report = {"ok": False, "device": str(device)}
    try:
        report["gather_with_grad_ok"] = gather_check(device)
        report.update(train_check(device, args.steps))
        if device.type == "cuda":
            from torch.cuda import nccl

            v = nccl.version()
            report["nccl_version"] = ".".join(map(str, v)) if isinstance(v, tuple) else str(v)
        report["worker_seconds"] = time.perf_counter() - t0
        report["ok"] = bool(report["gather_with_grad_ok"] and report["losses_finite"] and report["weights_moved"]
                            and report["backend"] == args.backend)
    except Exception as err:  # noqa: BLE001 - reported in the json (and the traceback on stderr)
        report["error"] = f"{type(err).__name__}: {err}"
        traceback.print_exc()
    finally:
        if dist.get_rank() == 0:
            with open(args.out, "w") as f:
                json.dump(report, f, indent=1)
        dist.destroy_process_group()
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(worker_main())
