"""What the plugin's training loop costs against LAVIS's own: ``python -m benchmarks.loop_cost``.

The same model, config and data are trained two ways, epochs interleaved in one process (``--world-size 2``: in
each of 2 gloo processes under ``torchrun``):

* ``lavis``: LAVIS's ``image_text_pretrain`` task, whose ``train_epoch`` is LAVIS's ``BaseTask`` loop;
* ``plugin``: the plugin's ``latent_pretrain`` task (per-term logging with one host sync per step, the non-finite
  guard with its all-reduce under torchrun and the gradient-norm check, accumulation, the step hook and progress
  events), which is what ``python -m lavis_latent.train`` runs.

Both go through ``runner_latent``: LAVIS's ``RunnerBase`` cannot train on a CPU as shipped (no model on a CPU run,
a CUDA prefetcher), and for a LAVIS task ``runner_latent.train_epoch`` is ``RunnerBase.train_epoch``, so the
difference measured is the task's loop. The model is the demo's tiny ``albef_latent_pretrain`` with no ``latent:``
block (LAVIS's ALBEF losses, tested equal to ``AlbefPretrain``'s). Reported: training samples per second (median
of ``--repeats`` timed epochs each, after one warm-up epoch), their ratio, and one instrumented epoch per loop split
into data (the loader), forward, backward, optimizer step and the rest (the loop's own work: logging, checks,
hooks). Writes ``benchmarks/results/loop_cost.md`` / ``.json``.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.common import command_line, log, machine_description, machine_info, offline_environment, write_json

offline_environment()

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
LOOPS = {"lavis": "image_text_pretrain", "plugin": "latent_pretrain"}
PHASES = ("data", "forward", "backward", "optimizer", "loop")


def build_runner(task_name, output_dir, num_train, batch_size, max_epoch):
    """A ``runner_latent`` for the demo's plain tiny ALBEF pretraining with the task ``task_name``."""
    from lavis_latent import train

    yaml = os.path.join(os.path.dirname(RESULTS), os.pardir, "projects", "demo", "albef_pretrain.yaml")
    options = [f"run.task={task_name}", f"run.output_dir={output_dir}", f"run.max_epoch={max_epoch}",
               f"run.batch_size_train={batch_size}", f"datasets.demo_caption.build_info.generator.num_train={num_train}"]
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        options += ["run.distributed=True", f"run.world_size={os.environ['WORLD_SIZE']}"]
    cfg, job_id, task, datasets, model = train.build_run(train.parse_args(["--cfg-path", os.path.normpath(yaml),
                                                                           "--options", *options]))
    return train.get_runner_class(cfg)(cfg=cfg, job_id=job_id, task=task, model=model, datasets=datasets)


def timed_epoch(runner, epoch):
    """Seconds for ``runner.train_epoch(epoch)`` (all ranks start and end together)."""
    import torch.distributed as dist

    distributed = dist.is_available() and dist.is_initialized()
    with runner._lavis_patches():
        runner.model.train()
        if distributed:
            dist.barrier()
        started = time.perf_counter()
        runner.train_epoch(epoch)
        if distributed:
            dist.barrier()
    return time.perf_counter() - started


class PhaseClock:
    """Times the phases of training steps: wraps the loader's ``__next__``, the model's forward (hooks),
    ``Tensor.backward`` and the optimizer's ``step`` (hooks) for the duration of a ``with`` block."""

    def __init__(self, runner):
        self.runner, self.seconds = runner, dict.fromkeys(PHASES[:-1], 0.0)

    def _add(self, phase, started):
        self.seconds[phase] += time.perf_counter() - started

    def __enter__(self):
        import torch

        loader, model, optimizer = self.runner.train_loader, self.runner.unwrap_dist_model(self.runner.model), \
            self.runner.optimizer
        clock, marks = self, {}
        self._next = type(loader).__next__
        original_next = self._next

        def timed_next(it):
            started = time.perf_counter()
            try:
                return original_next(it)
            finally:
                clock._add("data", started)

        type(loader).__next__ = timed_next
        self._backward = torch.Tensor.backward
        original_backward = self._backward

        def timed_backward(tensor, *args, **kwargs):
            started = time.perf_counter()
            try:
                return original_backward(tensor, *args, **kwargs)
            finally:
                clock._add("backward", started)

        torch.Tensor.backward = timed_backward
        self._handles = [
            model.register_forward_pre_hook(lambda *a: marks.__setitem__("forward", time.perf_counter())),
            model.register_forward_hook(lambda *a: clock._add("forward", marks["forward"])),
            optimizer.register_step_pre_hook(lambda *a: marks.__setitem__("optimizer", time.perf_counter())),
            optimizer.register_step_post_hook(lambda *a: clock._add("optimizer", marks["optimizer"])),
        ]
        return self

    def __exit__(self, *exc):
        import torch

        type(self.runner.train_loader).__next__ = self._next
        torch.Tensor.backward = self._backward
        for handle in self._handles:
            handle.remove()


def measure(args, out_root):
    """Build both loops, time interleaved epochs and one instrumented epoch each; returns the result dict."""
    import torch
    import torch.distributed as dist

    torch.set_num_threads(args.threads)
    epochs = 2 + args.repeats  # a warm-up, the timed ones, the instrumented one
    runners = {name: build_runner(task, os.path.join(out_root, name), args.num_train, args.batch_size, epochs)
               for name, task in LOOPS.items()}
    samples = {name: len(r.train_loader) * args.batch_size * r.config.run_cfg.get("world_size", 1)
               for name, r in runners.items()}
    for name, runner in runners.items():
        timed_epoch(runner, 0)  # warm-up
    seconds = {name: [] for name in runners}
    order = list(runners)
    for r in range(args.repeats):
        for name in (order if r % 2 == 0 else order[::-1]):
            seconds[name].append(timed_epoch(runners[name], 1 + r))
            log(f"{name}: epoch {1 + r}: {seconds[name][-1]:.2f} s")
    breakdown = {}
    for name, runner in runners.items():
        with PhaseClock(runner) as clock:
            total = timed_epoch(runner, 1 + args.repeats)
        steps = len(runner.train_loader)
        parts = dict(clock.seconds)
        parts["loop"] = total - sum(parts.values())
        breakdown[name] = {k: 1000 * v / steps for k, v in parts.items()}
    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    rate = {n: samples[n] / statistics.median(s) for n, s in seconds.items()}
    return {"world_size": world, "steps_per_epoch": len(runners["plugin"].train_loader), "seconds": seconds,
            "samples_per_s": rate, "ratio": rate["lavis"] / rate["plugin"],
            "spread": [min(seconds["plugin"][i] / seconds["lavis"][i] for i in range(args.repeats)),
                       max(seconds["plugin"][i] / seconds["lavis"][i] for i in range(args.repeats))],
            "breakdown_ms_per_step": breakdown}


def run_distributed(args, out_root):
    """``--world-size N``: the measurement in N gloo processes under torchrun; returns rank 0's result."""
    result_file = os.path.join(out_root, "rank0.json")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(args.world_size),
           "-m", "benchmarks.loop_cost", "--worker", result_file, *_forwarded(args)]
    subprocess.run(cmd, check=True, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(result_file) as f:
        return json.load(f)


def _forwarded(args):
    return ["--repeats", str(args.repeats), "--num-train", str(args.num_train), "--batch-size", str(args.batch_size),
            "--threads", str(args.threads)]


def render(report):
    """The markdown of a report (one section per world size)."""
    lines = ["# The training loop's own cost: the plugin's task vs LAVIS's (`python -m benchmarks.loop_cost`)", "",
             f"Command: `{report['command']}`. Machine: {machine_description(report['machine'])}. Tiny ALBEF pretraining (the demo's config, no `latent:` block), "
             "the same data and seed for both loops, epochs interleaved; samples/s is the median over the timed "
             "epochs. `ratio` = LAVIS's samples/s over the plugin's (1.01 = the plugin 1 % slower); `spread` = the "
             "smallest and largest per-repeat time ratio.", ""]
    for res in report["results"]:
        lines += [f"## {res['world_size']} process{'es' if res['world_size'] > 1 else ''}"
                  f"{' (gloo, torchrun)' if res['world_size'] > 1 else ''}", "",
                  "| loop | samples/s | " + " | ".join(f"{p} ms/step" for p in PHASES) + " |",
                  "|---|---|" + "---|" * len(PHASES)]
        for name in LOOPS:
            b = res["breakdown_ms_per_step"][name]
            lines.append(f"| {name} | {res['samples_per_s'][name]:.1f} | " + " | ".join(f"{b[p]:.1f}" for p in PHASES)
                         + " |")
        lines += ["", f"ratio {res['ratio']:.3f} (per-repeat plugin/LAVIS time ratio {res['spread'][0]:.3f} - "
                      f"{res['spread'][1]:.3f}; {res['steps_per_epoch']} steps an epoch per process)", ""]
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--world-sizes", default="1,2", help="comma-separated process counts (2: gloo under torchrun)")
    p.add_argument("--repeats", type=int, default=5, help="timed epochs per loop (interleaved)")
    p.add_argument("--num-train", type=int, default=200, help="images of the embedded world (3 captions each)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--output-dir", default=RESULTS)
    p.add_argument("--worker", help=argparse.SUPPRESS)  # a torchrun rank: write rank 0's result here
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="loop_cost_") as out_root:
        if args.worker:
            import torch.distributed as dist

            res = measure(args, out_root)
            if dist.get_rank() == 0:
                write_json(args.worker, res)
            return res
        results = []
        for n in (int(w) for w in args.world_sizes.split(",")):
            args.world_size = n
            results.append(measure(args, out_root) if n == 1 else run_distributed(args, out_root))
    report = {"command": command_line("benchmarks.loop_cost", argv), "machine": machine_info(), "args": vars(args),
              "results": results}
    os.makedirs(args.output_dir, exist_ok=True)
    write_json(os.path.join(args.output_dir, "loop_cost.json"), report)
    text = render(report)
    with open(os.path.join(args.output_dir, "loop_cost.md"), "w") as f:
        f.write(text + "\n")
    print(text, flush=True)
    return report


if __name__ == "__main__":
    main()
