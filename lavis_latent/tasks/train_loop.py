"""LAVIS's training inner loop with every ``loss_*`` term logged and non-finite steps skipped.

PyPI LAVIS 1.0.2's ``BaseTask.train_step`` returns only ``loss``, so log.txt shows ``loss`` and ``lr`` alone (LAVIS's
main branch later returned a ``loss_dict``). ``LossTermsMixin`` backports that: ``train_step`` keeps every
``loss_*`` scalar of the model output, and the loop logs each one per step (log.txt epoch averages, the console,
and TensorBoard with ``run.tensorboard: true``). It also refuses to apply a step whose loss or gradients are NaN or
inf: the step is skipped with a warning that names the offending terms, and after ``run.max_nonfinite_steps``
(default 5) such steps in a row the run stops with ``NonFiniteLossError``; the checkpoints already written stay
intact. Under ``torchrun`` the ranks agree on skipping, so DDP never waits on a rank that skipped.

Gradient accumulation (``run.accum_grad_iters: k``): each micro-batch's loss is divided by ``k`` before
``backward`` and the optimizer steps every ``k`` micro-batches, so ``k`` micro-batches of ``b`` samples give the
gradient of one batch of ``k*b`` for a loss that is a mean over samples (LAVIS 1.0.2 does not divide: its gradient
is ``k`` times that, LAVIS issue #225). The contrastive terms are not such a loss: their negatives come from one
micro-batch (and ALBEF's queue), so ``k`` micro-batches of ``b`` are ``k`` softmaxes over ``b`` candidates, not one
over ``k*b``; accumulation averages them, it does not enlarge the batch they contrast. The logged terms stay the
per-micro-batch values. A micro-batch skipped as non-finite zeroes the gradients, which discards the micro-batches
already accumulated in its window: the warning says how many.

Precision: ``run.amp`` autocasts the forward pass on CUDA (float16 with a GradScaler, or ``run.amp_dtype:
bfloat16``) and on CPU (bfloat16); see :mod:`lavis_latent.tasks.precision`.

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
from torch.nn.parallel import DistributedDataParallel
from lavis.common.logger import MetricLogger, SmoothedValue
from lavis.common.registry import registry
from lavis.datasets.data_utils import prepare_sample

from lavis_latent.common.run_config import run_value
from lavis_latent.regularizers.distributed import world_info
from lavis_latent.tasks.precision import amp_policy, autocast, run_amp_policy


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
    """Whether every parameter gradient is finite (one fused norm over all of them: ``torch._foreach_norm``, as
    ``clip_grad_norm_``; one host sync)."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return True
    norms = torch._foreach_norm(grads) if hasattr(torch, "_foreach_norm") else [torch.linalg.vector_norm(g)
                                                                                  for g in grads]
    return bool(torch.isfinite(torch.linalg.vector_norm(torch.stack(norms))))


def _grads_finite_on_all_ranks(model, device):
    """:func:`_grads_finite` agreed by every rank. Under DDP the gradients were already all-reduced by
    ``backward`` (the loop never uses ``no_sync``), so every rank holds the same ones and the local answer is the
    global one: no extra all-reduce per step."""
    if isinstance(model, DistributedDataParallel):
        return _grads_finite(model)
    return not _any_rank(not _grads_finite(model), device)


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
        return run_value(self.run_cfg, key, default)

    def _amp_policy(self, cuda_enabled, scaler):
        """The precision of the forward pass (:mod:`lavis_latent.tasks.precision`): ``run.amp`` / ``run.amp_dtype``
        of the run config; for a task built without one, LAVIS's rule (autocast when the runner made a scaler)."""
        if self.run_cfg is None:
            return amp_policy(scaler is not None, None, cuda_enabled)
        return run_amp_policy(self.run_cfg, cuda_enabled)

    def _discard_window(self, optimizer, bad_terms):
        """Skip a step: zero the gradients, which also discards the micro-batches already accumulated in this
        ``accum_grad_iters`` window (kept in ``_last_discarded`` for the warning)."""
        optimizer.zero_grad()
        self._last_bad_terms = bad_terms
        self._last_discarded = getattr(self, "_accumulated", 0)
        self._accumulated = 0

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
                bad_in_a_row = self._note_nonfinite(epoch, i, self._last_bad_terms, bad_in_a_row, max_bad,
                                                    self._last_discarded, accum_grad_iters)
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
        """One iteration of LAVIS's loop; returns False (and sets ``_last_bad_terms``, ``_last_discarded``) when it
        was skipped because the loss, a loss term or (without a GradScaler) a gradient was not finite on some rank.

        The loss is divided by ``accum_grad_iters`` before ``backward`` (module docstring); the logged terms are the
        micro-batch's own. All terms are read back to the host in one transfer.
        """
        samples = next(data_loader)
        samples = prepare_sample(samples, cuda_enabled=cuda_enabled)
        samples.update({"epoch": inner_epoch, "num_iters_per_epoch": iters_per_epoch, "iters": i})

        lr_scheduler.step(cur_epoch=inner_epoch, cur_step=i)

        with autocast(self._amp_policy(cuda_enabled, scaler)):
            loss = self.train_step(model=model, samples=samples)
        terms = getattr(self, "last_loss_terms", None) or {"loss": loss.detach()}
        names = list(terms)
        host = torch.stack([terms[n].float() for n in names] + [loss.detach().float()]).tolist()  # one host sync
        values, loss_value = dict(zip(names, host[:-1])), host[-1]

        bad_terms = {k: v for k, v in values.items() if not math.isfinite(v)}
        if _any_rank(bool(bad_terms) or not math.isfinite(loss_value), loss.device):
            self._discard_window(optimizer, bad_terms or {"loss": loss_value})
            return False

        k = max(1, int(accum_grad_iters))
        loss = loss / k if k > 1 else loss
        if scaler is not None:
            scaler.scale(loss).backward()
        else:
            loss.backward()
        self._accumulated = getattr(self, "_accumulated", 0) + 1

        if (i + 1) % k == 0:
            if scaler is not None:  # GradScaler already skips steps with inf/NaN gradients
                scaler.step(optimizer)
                scaler.update()
            elif not _grads_finite_on_all_ranks(model, loss.device):
                self._discard_window(optimizer, {"gradients": float("nan")})
                return False
            else:
                optimizer.step()
            optimizer.zero_grad()
            self._accumulated = 0

        if "lr" not in metric_logger.meters:
            metric_logger.add_meter("lr", SmoothedValue(window_size=1, fmt="{value:.6f}"))
            metric_logger.add_meter("loss", SmoothedValue(window_size=1, fmt="{value:.4f}"))
        metric_logger.update(**values)
        metric_logger.update(lr=optimizer.param_groups[0]["lr"])
        if writer is not None:
            step = inner_epoch * iters_per_epoch + i
            for name, value in values.items():
                writer.add_scalar(f"train/{name}", value, step)
            writer.add_scalar("train/lr", optimizer.param_groups[0]["lr"], step)
        return True

    @staticmethod
    def _note_nonfinite(epoch, step, bad_terms, bad_in_a_row, max_bad, discarded=0, accum_grad_iters=1):
        """Warn about a skipped step, with the ``discarded`` micro-batch gradients of its accumulation window;
        raise ``NonFiniteLossError`` once ``max_bad`` steps in a row were skipped."""
        bad_in_a_row += 1
        names = ", ".join(f"{k}={v}" for k, v in bad_terms.items())
        lost = (f"; the gradients of {discarded} micro-batch(es) accumulated in this window "
                f"(run.accum_grad_iters={accum_grad_iters}) are discarded with it" if discarded else "")
        logging.warning(
            "epoch %d step %d: non-finite %s; step skipped%s (%d in a row, limit run.max_nonfinite_steps=%d)",
            epoch, step, names, lost, bad_in_a_row, max_bad,
        )
        if bad_in_a_row >= max_bad:
            raise NonFiniteLossError(
                f"{bad_in_a_row} training steps in a row had a non-finite loss or gradient (last: {names}); stopping. "
                "No weights were updated by those steps; the last checkpoint in the output folder is intact. "
                "Lower the learning rate or the regularizer weights, or raise run.max_nonfinite_steps."
            )
        return bad_in_a_row
