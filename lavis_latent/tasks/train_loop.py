"""LAVIS's training inner loop with every ``loss_*`` term logged and non-finite steps skipped.

PyPI LAVIS 1.0.2's ``BaseTask.train_step`` returns only ``loss``, so log.txt shows ``loss`` and ``lr`` alone (LAVIS's
main branch later returned a ``loss_dict``). ``LossTermsMixin`` backports that: ``train_step`` keeps every
``loss_*`` scalar of the model output, and the loop logs each one per step (log.txt epoch averages, the console,
and TensorBoard with ``run.tensorboard: true``). It also refuses to apply a step whose loss or gradients are NaN or
inf: the step is skipped with a warning that names the offending terms, and after ``run.max_nonfinite_steps``
(default 5) such steps in a row the run stops with ``NonFiniteLossError``; the checkpoints already written stay
intact. Under ``torchrun`` the ranks agree on skipping, so DDP never waits on a rank that skipped.

The contract with ``runner_latent`` (the methods it calls, everything passed as arguments):

* ``setup_task(cfg)``: the task keeps ``cfg.run_cfg`` as ``run_cfg``, its only source of ``run:`` settings;
* ``train_epoch(epoch, model, data_loader, optimizer, lr_scheduler, scaler, cuda_enabled, log_freq,
  accum_grad_iters, start_step=0, after_step=None)``: LAVIS's arguments, plus the step to start at (a mid-epoch
  resume) and ``after_step(epoch=, step=, iters_per_epoch=)``, called on every rank after each step (``step``
  counts the steps of the epoch done, skipped ones included);
* ``evaluation(model, data_loader, cuda_enabled=)``: LAVIS's.
"""
import logging
import math
import os

import torch
import torch.distributed as dist
from lavis.common.logger import MetricLogger, SmoothedValue
from lavis.common.registry import registry
from lavis.datasets.data_utils import prepare_sample

from lavis_latent.regularizers.distributed import world_info


class NonFiniteLossError(RuntimeError):
    """Too many consecutive training steps had a NaN or inf loss or gradient."""


def _any_rank(flag, device):
    """True when ``flag`` is true on any rank (a MAX all-reduce; plain ``flag`` without a multi-process group)."""
    if world_info()[1] == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def _grads_finite(model):
    """Whether every parameter gradient is finite (one fused norm over all of them)."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return True
    return bool(torch.isfinite(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))


class LossTermsMixin:
    """Mixin for a LAVIS task: log all ``loss_*`` terms of the model output, skip non-finite steps; the runner
    contract of the module docstring.

    Config (``run:``): ``tensorboard`` (bool, default False), ``max_nonfinite_steps`` (int, default 5).
    """

    #: the ``run:`` block of the config (set by :meth:`setup_task`), or None for a task built by hand
    run_cfg = None

    @classmethod
    def setup_task(cls, cfg, **kwargs):
        """The LAVIS task built as LAVIS builds it, keeping ``cfg.run_cfg`` (the one way settings reach a task)."""
        task = super().setup_task(cfg=cfg, **kwargs)
        task.run_cfg = cfg.run_cfg
        return task

    def train_epoch(self, epoch, model, data_loader, optimizer, lr_scheduler, scaler=None, cuda_enabled=False,
                    log_freq=50, accum_grad_iters=1, start_step=0, after_step=None):
        """LAVIS's ``BaseTask.train_epoch``, starting at step ``start_step`` of the epoch and calling
        ``after_step(epoch=, step=, iters_per_epoch=)`` after every step. Returns ``{meter: global average}``."""
        return self._train_inner_loop(
            epoch=epoch, iters_per_epoch=len(data_loader), model=model, data_loader=data_loader, optimizer=optimizer,
            scaler=scaler, lr_scheduler=lr_scheduler, log_freq=log_freq, cuda_enabled=cuda_enabled,
            accum_grad_iters=accum_grad_iters, start_step=start_step, after_step=after_step)

    def train_step(self, model, samples):
        """Forward pass; returns ``loss`` and keeps the detached ``loss_*`` terms in ``self.last_loss_terms``."""
        output = model(samples)
        self.last_loss_terms = {
            k: v.detach() for k, v in output.items() if k.startswith("loss") and torch.is_tensor(v) and v.dim() == 0
        }
        return output["loss"]

    def _run_setting(self, key, default):
        """``run.<key>`` of the config, or ``default`` (also for a task built without a config)."""
        value = self.run_cfg.get(key, default) if self.run_cfg is not None else default
        return default if value is None else value

    def _tensorboard(self):
        if not self._run_setting("tensorboard", False):
            return None
        if getattr(self, "_tb_writer", None) is None:
            from lavis.common.dist_utils import is_main_process

            if not is_main_process():
                return None
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as err:
                raise ImportError("run.tensorboard: true needs tensorboard: pip install 'lavis-latent[tensorboard]'") from err
            self._tb_writer = SummaryWriter(os.path.join(registry.get_path("output_dir"), "tensorboard"))
        return self._tb_writer

    def _train_inner_loop(
        self,
        epoch,
        iters_per_epoch,
        model,
        data_loader,
        optimizer,
        lr_scheduler,
        scaler=None,
        start_iters=None,
        log_freq=50,
        cuda_enabled=False,
        accum_grad_iters=1,
        start_step=0,
        after_step=None,
    ):
        """LAVIS's ``BaseTask._train_inner_loop`` (same arguments, schedule and return value) with per-term logging
        and the non-finite guard, from step ``start_step``, calling ``after_step`` after each step. Returns
        ``{meter: "global average"}`` as LAVIS does."""
        max_bad = int(self._run_setting("max_nonfinite_steps", 5))
        if not hasattr(data_loader, "__next__"):
            data_loader = iter(data_loader)
        inner_epoch = epoch if start_iters is None else start_iters // iters_per_epoch
        header = self._loop_header(epoch, iters_per_epoch, start_iters, inner_epoch, start_step)
        # LAVIS adds the lr and loss meters up front; here they are added at the first applied step, because
        # printing a meter that has no value yet fails (SmoothedValue.value/global_avg), e.g. when step 0 is skipped
        metric_logger = MetricLogger(delimiter="  ")
        writer = self._tensorboard()
        bad_in_a_row = getattr(self, "_bad_in_a_row", 0)
        skipped = 0
        for i in metric_logger.log_every(range(int(start_step or 0), iters_per_epoch), log_freq, header):
            if self._train_one_step(i, epoch, inner_epoch, iters_per_epoch, model, data_loader, optimizer,
                                    lr_scheduler, scaler, cuda_enabled, accum_grad_iters, metric_logger, writer):
                bad_in_a_row = 0
            else:
                skipped += 1
                bad_in_a_row = self._note_nonfinite(epoch, i, self._last_bad_terms, bad_in_a_row, max_bad)
            if after_step is not None:
                after_step(epoch=epoch, step=i + 1, iters_per_epoch=iters_per_epoch)
        self._bad_in_a_row = bad_in_a_row
        return self._epoch_stats(metric_logger, skipped, writer)

    @staticmethod
    def _loop_header(epoch, iters_per_epoch, start_iters, inner_epoch, start_step):
        """Log the start of the epoch; return the progress header LAVIS prints."""
        logging.info("Start training epoch {}, {} iters per inner epoch.".format(epoch, iters_per_epoch))
        header = "Train: data epoch: [{}]".format(epoch)
        if start_iters is not None:
            header = header + "; inner epoch [{}]".format(inner_epoch)
        if start_step:
            logging.info("Resuming epoch %d at step %d of %d.", epoch, start_step, iters_per_epoch)
            header = header + "; from step {}".format(start_step)
        return header

    @staticmethod
    def _epoch_stats(metric_logger, skipped, writer):
        """The epoch's averaged meters over all ranks (``{meter: "%.3f"}``), logged, plus the skipped steps."""
        metric_logger.synchronize_between_processes()
        meters = {k: meter for k, meter in metric_logger.meters.items() if meter.count > 0}
        logging.info("Averaged stats: " + "  ".join(f"{k}: {m.global_avg:.4f}" for k, m in meters.items()))
        stats = {k: "{:.3f}".format(meter.global_avg) for k, meter in meters.items()}
        if skipped:
            stats["skipped_nonfinite_steps"] = skipped
        if writer is not None:
            writer.flush()
        return stats

    def _train_one_step(self, i, epoch, inner_epoch, iters_per_epoch, model, data_loader, optimizer, lr_scheduler,
                        scaler, cuda_enabled, accum_grad_iters, metric_logger, writer):
        """One iteration of LAVIS's loop; returns False (and sets ``_last_bad_terms``) when it was skipped because
        the loss, a loss term or (without AMP) a gradient was not finite on some rank."""
        use_amp = scaler is not None
        samples = next(data_loader)
        samples = prepare_sample(samples, cuda_enabled=cuda_enabled)
        samples.update({"epoch": inner_epoch, "num_iters_per_epoch": iters_per_epoch, "iters": i})

        lr_scheduler.step(cur_epoch=inner_epoch, cur_step=i)

        with torch.autocast(device_type="cuda", enabled=use_amp):
            loss = self.train_step(model=model, samples=samples)
        terms = getattr(self, "last_loss_terms", {"loss": loss.detach()})

        bad_terms = {k: float(v) for k, v in terms.items() if not math.isfinite(float(v))}
        if _any_rank(bool(bad_terms) or not torch.isfinite(loss).item(), loss.device):
            optimizer.zero_grad()
            self._last_bad_terms = bad_terms or {"loss": float(loss)}
            return False

        if use_amp:
            scaler.scale(loss).backward()
        else:
            loss.backward()

        if (i + 1) % accum_grad_iters == 0:
            if use_amp:  # GradScaler already skips steps with inf/NaN gradients
                scaler.step(optimizer)
                scaler.update()
            elif _any_rank(not _grads_finite(model), loss.device):
                optimizer.zero_grad()
                self._last_bad_terms = {"gradients": float("nan")}
                return False
            else:
                optimizer.step()
            optimizer.zero_grad()

        if "lr" not in metric_logger.meters:
            metric_logger.add_meter("lr", SmoothedValue(window_size=1, fmt="{value:.6f}"))
            metric_logger.add_meter("loss", SmoothedValue(window_size=1, fmt="{value:.4f}"))
        metric_logger.update(**{k: float(v) for k, v in terms.items()})
        metric_logger.update(lr=optimizer.param_groups[0]["lr"])
        if writer is not None:
            step = inner_epoch * iters_per_epoch + i
            for k, v in terms.items():
                writer.add_scalar(f"train/{k}", float(v), step)
            writer.add_scalar("train/lr", optimizer.param_groups[0]["lr"], step)
        return True

    @staticmethod
    def _note_nonfinite(epoch, step, bad_terms, bad_in_a_row, max_bad):
        """Warn about a skipped step; raise ``NonFiniteLossError`` once ``max_bad`` steps in a row were skipped."""
        bad_in_a_row += 1
        names = ", ".join(f"{k}={v}" for k, v in bad_terms.items())
        logging.warning(
            "epoch %d step %d: non-finite %s; step skipped (%d in a row, limit run.max_nonfinite_steps=%d)",
            epoch, step, names, bad_in_a_row, max_bad,
        )
        if bad_in_a_row >= max_bad:
            raise NonFiniteLossError(
                f"{bad_in_a_row} training steps in a row had a non-finite loss or gradient (last: {names}); stopping. "
                "No weights were updated by those steps; the last checkpoint in the output folder is intact. "
                "Lower the learning rate or the regularizer weights, or raise run.max_nonfinite_steps."
            )
        return bad_in_a_row
