"""The training loop's gradient accumulation (divided by ``accum_grad_iters``) and mixed precision on CPU."""
import logging
import os

import pytest
import torch
from lavis.common.optims import LinearWarmupStepLRScheduler
from lavis.common.registry import registry
from lavis.tasks.base_task import BaseTask
from omegaconf import OmegaConf

from lavis_latent.runners.patches import lavis_runtime_patches
from lavis_latent.tasks.precision import amp_policy
from lavis_latent.tasks.train_loop import LossTermsMixin

PROJECTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "projects", "demo")


class LoopTask(LossTermsMixin, BaseTask):
    """LAVIS's BaseTask with the plugin's training loop (what every plugin task is)."""


class MeanSquaredError(torch.nn.Module):
    """A model whose loss is a mean over samples: ``mean((w x + b - y)^2)``; NaN where ``x`` holds a NaN."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(3, 1)

    def forward(self, samples):
        loss = ((self.linear(samples["x"]).squeeze(1) - samples["y"]) ** 2).mean()
        return {"loss": loss, "loss_mse": loss}


def _train(batches, accum, lr=0.1, run_cfg=None):
    model = MeanSquaredError()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    scheduler = LinearWarmupStepLRScheduler(optimizer, max_epoch=1, min_lr=lr, init_lr=lr)
    task = LoopTask()
    task.run_cfg = run_cfg
    # as runner_latent runs it: LAVIS's meters would sync on CUDA once an earlier test opened a process group
    with lavis_runtime_patches(cuda_enabled=False, seed=0, rank=0):
        stats = task._train_inner_loop(epoch=0, iters_per_epoch=len(batches), model=model, data_loader=iter(batches),
                                       optimizer=optimizer, lr_scheduler=scheduler, accum_grad_iters=accum,
                                       log_freq=1000)
    return model, stats


def _data(n=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g), torch.randn(n, generator=g)


def test_k_micro_batches_give_the_gradient_of_one_batch_of_k_times_b():
    x, y = _data()
    micro = [{"x": x[i:i + 2], "y": y[i:i + 2]} for i in range(0, 8, 2)]
    accumulated, stats = _train(micro, accum=4)
    whole, _ = _train([{"x": x, "y": y}], accum=1)
    start = MeanSquaredError()
    moved = (whole.linear.weight - start.linear.weight).abs().max()
    assert moved > 1e-3  # the step did something
    torch.testing.assert_close(accumulated.linear.weight, whole.linear.weight, atol=1e-6, rtol=0)
    torch.testing.assert_close(accumulated.linear.bias, whole.linear.bias, atol=1e-6, rtol=0)
    # the logged loss is the mean of the micro-batches' own losses (not divided by accum_grad_iters)
    by_hand = sum(float(start({"x": b["x"], "y": b["y"]})["loss"]) for b in micro) / 4
    assert float(stats["loss"]) == pytest.approx(by_hand, abs=1e-3)


def test_a_skipped_micro_batch_reports_the_gradients_it_discards(caplog):
    x, y = _data()
    x[4, 0] = float("nan")  # the third micro-batch of the window of 4
    micro = [{"x": x[i:i + 2], "y": y[i:i + 2]} for i in range(0, 8, 2)]
    with caplog.at_level(logging.WARNING):
        model, stats = _train(micro, accum=4)
    warnings = [r.getMessage() for r in caplog.records if "non-finite" in r.getMessage()]
    assert len(warnings) == 1 and "step 2" in warnings[0]
    assert "the gradients of 2 micro-batch(es) accumulated in this window (run.accum_grad_iters=4)" in warnings[0]
    assert stats["skipped_nonfinite_steps"] == 1
    assert torch.isfinite(model.linear.weight).all()
    # what is applied at the window's end is the last micro-batch alone, divided by 4
    last, _ = _train([micro[3]], accum=1, lr=0.1 / 4)
    torch.testing.assert_close(model.linear.weight, last.linear.weight, atol=1e-6, rtol=0)


def test_amp_policy_per_device_and_dtype():
    assert amp_policy(False) == (False, "cpu", torch.bfloat16, False)
    assert amp_policy(True, cuda=False) == (True, "cpu", torch.bfloat16, False)
    assert amp_policy(True, cuda=True) == (True, "cuda", torch.float16, True)
    assert amp_policy(True, "bfloat16", cuda=True) == (True, "cuda", torch.bfloat16, False)
    with pytest.raises(ValueError, match="run.amp_dtype: float16 is for CUDA"):
        amp_policy(True, "float16", cuda=False)
    with pytest.raises(ValueError, match="run.amp_dtype must be one of float16, bfloat16"):
        amp_policy(True, "fp8")


def _tiny_albef():
    cls = registry.get_model_class("albef_latent_pretrain")
    cfg = OmegaConf.load(cls.default_config_path("tiny")).model
    cfg.latent = {"bridge": {"weight": 1.0}}
    torch.manual_seed(0)
    return cls.from_config(cfg)


def test_bfloat16_autocast_on_cpu_runs_the_model_in_bfloat16_and_the_regularizers_in_float32():
    model = _tiny_albef().train()
    batch = model.dummy_inputs(n=4, seed=0)
    dtypes = []
    hook = model.vision_proj.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    task = LoopTask()
    task.run_cfg = OmegaConf.create({"amp": True})
    from lavis_latent.tasks.precision import autocast

    torch.manual_seed(1)
    with autocast(task._amp_policy(cuda_enabled=False, scaler=None)):
        low = model(dict(batch))
    hook.remove()
    torch.manual_seed(1)
    full = model(dict(batch))
    assert torch.bfloat16 in dtypes
    assert low["loss_bridge"].dtype == torch.float32  # the regularizer computes in float32 under autocast
    for key in ("loss_itc", "loss_itm", "loss_mlm", "loss_bridge", "loss"):
        assert torch.isfinite(low[key])
        assert float(low[key]) == pytest.approx(float(full[key]), rel=0.05, abs=0.02), key


def test_a_tiny_bfloat16_training_run_on_cpu_is_finite_and_close_to_float32(tmp_path):
    from lavis_latent import train

    def run(amp):
        runner = train.main(["--cfg-path", os.path.join(PROJECTS, "albef_pretrain_bb.yaml"), "--options",
                             f"run.amp={amp}", "run.max_epoch=1", f"run.output_dir={tmp_path / str(amp)}",
                             "datasets.demo_caption.build_info.generator.num_train=32"])
        assert runner.scaler is None  # no GradScaler off CUDA
        return {k: float(v) for k, v in runner.last_train_stats.items() if k.startswith("loss")}

    low, full = run(True), run(False)
    assert set(low) == set(full) >= {"loss", "loss_itc", "loss_itm", "loss_mlm", "loss_bridge"}
    for key, value in low.items():
        assert value == pytest.approx(full[key], rel=0.05, abs=0.02), (key, low, full)
