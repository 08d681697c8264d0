"""``runner_latent``: LAVIS's ``RunnerBase`` with the few methods that assume CUDA or a fresh process fixed.

Everything else (optimiser, schedulers, loaders, train/eval loop, checkpoint format, logging) is LAVIS's. Fixes:

* ``model``: LAVIS only wraps the model when it has to move it to another device, so a CPU model on a CPU run
  came back ``None``; DDP is built with ``device_ids=None`` on CPU (gloo).
* loaders: no ``PrefetchLoader`` (it opens a CUDA stream) when the run's device is not CUDA, and a resumable
  training iterator (the scoped patches of :mod:`lavis_latent.runners.patches`, entered by ``_lavis_patches``).
* ``eval_epoch``: LAVIS calls ``task.evaluation`` without ``cuda_enabled``, so ``BaseTask`` moves CPU batches to
  cuda; here the task is told the run's device, as an argument.
* ``train_epoch``: the plugin's tasks (:class:`~lavis_latent.tasks.train_loop.LossTermsMixin`) take the step to
  start at and a step hook as arguments of their ``train_epoch`` (the runner-task contract).
* ``scaler``: a GradScaler only for float16 on CUDA (LAVIS makes one for any ``run.amp``, disabled off CUDA); the
  precision itself (``run.amp``, ``run.amp_dtype``; bfloat16 on CPU) is the task's (:mod:`lavis_latent.tasks.precision`).
* ``setup_output_dir``: a relative ``run.output_dir`` resolves against the working directory (LAVIS resolves it
  inside its own package, i.e. site-packages), and a second runner in one process may register its paths.
* ``evaluate`` / ``train_epoch``: the test results are written to log.txt (``test_*``), as the validation ones
  are, and the latest results are kept on the runner (``last_test_logs``, ``last_train_stats``) for callers.

Checkpoints and resume (LAVIS 1.0.2's ``_save_checkpoint`` drops every parameter with ``requires_grad=False``, i.e.
ALBEF's momentum encoders, and its ``_load_checkpoint`` then fails on them with ``strict=True``; it restores only
model, optimizer, scaler and epoch):

* ``_save_checkpoint`` writes the whole ``state_dict`` (momentum encoders and queue buffers included), atomically
  (temporary file + ``os.replace``). The file keeps LAVIS's keys (``model``, ``optimizer``, ``config``, ``scaler``,
  ``epoch`` = the last completed epoch) and adds ``position`` (``{"epoch", "step", "iters_per_epoch"}``: where
  training continues), ``rng_states`` (python / numpy / torch / CUDA, one per rank), ``best_agg_metric``,
  ``best_epoch`` and ``world_size``. LAVIS's runner and ``load_checkpoint`` read it as one of their own.
* ``run.checkpoint_every_n_steps: N`` (default 0 = off) also writes ``checkpoint_latest.pth`` every N training steps
  and at the end of every epoch (after validation), so a killed run loses at most N steps.
* ``run.resume_ckpt_path`` restores model, optimizer, scaler, RNG states, the best validation score so far and the
  position, mid-epoch included: the training loader (:class:`~lavis_latent.runners.loaders.ResumableIterLoader`)
  skips the batches already seen and the task's loop starts at the saved step, so the learning-rate schedule and
  ALBEF's distillation ramp-up continue where they were. A plain LAVIS checkpoint (no momentum encoders, no
  position) also resumes: the momentum encoders are re-copied from the online ones, at the next epoch.
* A resumed run does not overwrite ``checkpoint_best.pth`` with a worse validation score (LAVIS's ``train`` keeps
  the best score in a local variable that restarts at 0).
"""
import logging
import os

import torch
from lavis.common.dist_utils import download_cached_file, get_rank, get_world_size, is_main_process
from lavis.common.registry import registry
from lavis.common.utils import is_url
from lavis.runners.runner_base import RunnerBase
from torch.nn.parallel import DistributedDataParallel as DDP

from lavis_latent.common import progress
from lavis_latent.runners.loaders import ResumableIterLoader
from lavis_latent.runners.patches import lavis_runtime_patches
from lavis_latent.runners.state import atomic_link, atomic_save, gather_rng_states, rng_state, set_rng_state
from lavis_latent.tasks.precision import run_amp_policy
from lavis_latent.tasks.train_loop import LossTermsMixin

CHECKPOINT_FORMAT = 1
LATEST = "checkpoint_latest.pth"


@registry.register_runner("runner_latent")
class RunnerLatent(RunnerBase):
    """LAVIS's epoch-based runner, usable on CPU, on one GPU without ``torchrun``, and under ``torchrun``."""

    def __init__(self, cfg, task, model, datasets, job_id):
        run_cfg = cfg.run_cfg
        if not os.path.isabs(run_cfg.output_dir):
            run_cfg.output_dir = os.path.abspath(run_cfg.output_dir)
        super().__init__(cfg, task, model, datasets, job_id)
        self.last_train_stats, self.last_test_logs = None, None
        self.best_agg_metric, self.best_epoch = 0, 0
        self._resume_step = 0  # steps of epoch self.start_epoch a resumed checkpoint had already trained
        self._rng_snapshot = None  # every rank's RNG states at the last point all ranks passed together
        self._val_improved = False
        self._in_test = False
        self.amp_policy = run_amp_policy(run_cfg, self.cuda_enabled)  # checks run.amp_dtype before any work

    @property
    def scaler(self):
        """A GradScaler only where the run needs one: ``run.amp`` with float16 on CUDA. (LAVIS makes one for any
        ``run.amp``, also on CPU, where it is disabled and its autocast is CUDA-only; see
        :mod:`lavis_latent.tasks.precision`.)"""
        if self._scaler is None and self.amp_policy.scaler:
            self._scaler = torch.amp.GradScaler("cuda")
        return self._scaler

    @property
    def checkpoint_every_n_steps(self):
        """``run.checkpoint_every_n_steps`` (0: only LAVIS's end-of-epoch checkpoints)."""
        return int(self.config.run_cfg.get("checkpoint_every_n_steps", 0) or 0)

    @property
    def model(self):
        """The model on the run's device, wrapped in DDP when the run is distributed."""
        if self._wrapped_model is None:
            self._model = self._model.to(self.device)
            if self.use_distributed:
                device_ids = [self.config.run_cfg.gpu] if self.cuda_enabled else None
                self._wrapped_model = DDP(self._model, device_ids=device_ids)
            else:
                self._wrapped_model = self._model
        return self._wrapped_model

    def setup_output_dir(self):
        """LAVIS's output folders, after forgetting the paths a previous runner in this process registered."""
        for key in ("result_dir", "output_dir"):
            registry.mapping["paths"].pop(key, None)
        super().setup_output_dir()

    def _lavis_patches(self):
        """The scoped patches of LAVIS this runner needs (:mod:`lavis_latent.runners.patches`): the one place they
        are entered, around each call into LAVIS's runner code (``train``, ``evaluate``, building the loaders)."""
        return lavis_runtime_patches(cuda_enabled=self.cuda_enabled, seed=int(self.config.run_cfg.get("seed", 0)),
                                     rank=get_rank())

    @property
    def dataloaders(self):
        """LAVIS's loaders, with a resumable training iterator; without LAVIS's CUDA prefetcher off the GPU (the
        patches are entered only while LAVIS builds them, on first use)."""
        if self._dataloaders is not None:
            return self._dataloaders
        with self._lavis_patches():
            return super().dataloaders

    def train(self):
        """LAVIS's ``train`` (epochs, validation, checkpoints, test), within the runner's patches."""
        with self._lavis_patches():
            return super().train()

    def train_epoch(self, epoch):
        """One epoch: a plugin task gets the step to start at (a mid-epoch checkpoint) and the step hook that writes
        ``run.checkpoint_every_n_steps`` checkpoints as arguments; LAVIS's own tasks get LAVIS's call. Keeps the
        epoch's averaged stats in ``last_train_stats``."""
        skip = self._resume_step if epoch == self.start_epoch else 0
        self._resume_step = 0
        plugin_task = isinstance(self.task, LossTermsMixin)
        if skip and not plugin_task:
            raise RuntimeError(
                f"resuming in the middle of epoch {epoch} needs a task whose training loop can start at a given step "
                f"(the plugin's tasks); task {type(self.task).__name__} cannot. Resume from an end-of-epoch "
                "checkpoint.")
        self._begin_data_epoch(epoch, skip)
        if not plugin_task:
            if self.checkpoint_every_n_steps:
                logging.warning("run.checkpoint_every_n_steps is ignored: task %s has no step hook (use a plugin "
                                "task)", type(self.task).__name__)
            self.last_train_stats = super().train_epoch(epoch)
        else:
            self.model.train()
            self.last_train_stats = self.task.train_epoch(
                epoch=epoch, model=self.model, data_loader=self.train_loader, optimizer=self.optimizer,
                scaler=self.scaler, lr_scheduler=self.lr_scheduler, cuda_enabled=self.cuda_enabled,
                log_freq=self.log_freq, accum_grad_iters=self.accum_grad_iters, start_step=skip,
                after_step=self._after_train_step)
        self._rng_snapshot = gather_rng_states()  # an end-of-epoch checkpoint (no validation) may follow
        return self.last_train_stats

    def _begin_data_epoch(self, epoch, skip):
        """Start the training loader's epoch ``epoch`` without its first ``skip`` batches."""
        loader = self.train_loader
        if isinstance(loader, ResumableIterLoader):
            loader.begin_epoch(epoch, skip=skip)
        else:  # e.g. LAVIS's MultiIterLoader: the batches already trained on are drawn and dropped
            for _ in range(skip):
                next(loader)

    def _after_train_step(self, epoch, step, iters_per_epoch):
        """Called by the task's loop on every rank after step ``step`` (1-based) of ``epoch``: writes
        ``checkpoint_latest.pth`` every ``run.checkpoint_every_n_steps`` steps (end of epoch excluded: the
        end-of-epoch checkpoint follows validation)."""
        if is_main_process():
            progress.report("step", epoch=epoch, step=step, iters_per_epoch=iters_per_epoch, max_epoch=self.max_epoch)
        n = self.checkpoint_every_n_steps
        if n <= 0 or step >= iters_per_epoch or step % self.accum_grad_iters:
            return
        if (epoch * iters_per_epoch + step) % n:
            return
        self._rng_snapshot = gather_rng_states()
        if is_main_process():
            self._write_checkpoint(os.path.join(self.output_dir, LATEST), epoch, step, iters_per_epoch)

    def evaluate(self, cur_epoch="best", skip_reload=False):
        """LAVIS's ``evaluate`` (within the runner's patches); also logs each test split's results to log.txt and
        keeps them in ``last_test_logs`` (``{split: metrics}``)."""
        self._in_test = True
        try:
            with self._lavis_patches():
                logs = super().evaluate(cur_epoch=cur_epoch, skip_reload=skip_reload)
        finally:
            self._in_test = False
        self.last_test_logs = logs
        for split_name, result in (logs or {}).items():
            if isinstance(result, dict):
                self.log_stats(result, split_name)
        return logs

    @torch.no_grad()
    def eval_epoch(self, split_name, cur_epoch, skip_reload=False):
        """LAVIS's ``eval_epoch``, with the run's device passed to the task's ``evaluation`` (``cuda_enabled``: LAVIS
        omits it, so ``BaseTask`` would move CPU batches to cuda), and the best validation score tracked."""
        data_loader = self.dataloaders.get(split_name, None)
        if not data_loader:
            raise ValueError(f"there is no data loader for split {split_name!r} (splits: {sorted(self.dataloaders)})")
        model = self.unwrap_dist_model(self.model)
        if not skip_reload and cur_epoch == "best":
            model = self._reload_best_model(model)
        model.eval()
        if is_main_process():
            progress.report("phase", name=f"evaluate {split_name}")
        self.task.before_evaluation(model=model, dataset=self.datasets[split_name])
        results = self.task.evaluation(model, data_loader, cuda_enabled=self.cuda_enabled)
        result = None
        if results is not None:
            result = self.task.after_evaluation(val_result=results, split_name=split_name, epoch=cur_epoch)
        if not self._in_test and not self.evaluate_only and split_name in self.valid_splits:
            self._after_validation(split_name, cur_epoch, result)
        return result

    def _after_validation(self, split_name, cur_epoch, result):
        """Track the best validation score (LAVIS's rule: ``agg_metrics`` of split ``val``, strictly better) and,
        after the last validation split, snapshot every rank's RNG and write ``checkpoint_latest.pth``."""
        if is_main_process() and isinstance(result, dict) and "agg_metrics" in result:
            self._val_improved = split_name == "val" and result["agg_metrics"] > self.best_agg_metric
            if self._val_improved:
                self.best_agg_metric, self.best_epoch = float(result["agg_metrics"]), cur_epoch
        if split_name == self.valid_splits[-1]:
            self._rng_snapshot = gather_rng_states()
            if self.checkpoint_every_n_steps and is_main_process():
                self._write_checkpoint(os.path.join(self.output_dir, LATEST), cur_epoch + 1, 0)

    # ------------------------------------------------------------------------------------------------------------
    # checkpoints
    # ------------------------------------------------------------------------------------------------------------
    def _save_checkpoint(self, cur_epoch, is_best=False):
        """LAVIS's end-of-epoch checkpoint (``checkpoint_<epoch>.pth`` or ``checkpoint_best.pth``, main process
        only), with the full model state, the position and RNG states, written atomically."""
        if not is_main_process():
            return
        if is_best and not self._val_improved:
            logging.info("epoch %s: not overwriting checkpoint_best.pth, the validation score is not above %s "
                         "(epoch %s, from the resumed checkpoint)", cur_epoch, self.best_agg_metric, self.best_epoch)
            return
        path = os.path.join(self.output_dir, "checkpoint_{}.pth".format("best" if is_best else cur_epoch))
        self._write_checkpoint(path, cur_epoch + 1, 0)
        if not is_best and self.checkpoint_every_n_steps:
            atomic_link(path, os.path.join(self.output_dir, LATEST))

    def _write_checkpoint(self, path, epoch, step, iters_per_epoch=None):
        """Write the resumable state: training continues at step ``step`` of epoch ``epoch``."""
        model = self.unwrap_dist_model(self.model)
        save_obj = {
            "model": model.state_dict(),  # all of it: momentum encoders and queues are needed for an exact resume
            "optimizer": self.optimizer.state_dict(),
            "config": self.config.to_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "epoch": epoch - 1,  # LAVIS's meaning: the last completed epoch (its resume starts at epoch + 1)
            "position": {"epoch": epoch, "step": step,
                         "iters_per_epoch": iters_per_epoch if iters_per_epoch is not None else len(self.train_loader)},
            "rng_states": self._rng_snapshot if self._rng_snapshot is not None else [rng_state()],
            "best_agg_metric": self.best_agg_metric,
            "best_epoch": self.best_epoch,
            "world_size": get_world_size(),
            "lavis_latent_checkpoint": CHECKPOINT_FORMAT,
        }
        logging.info("Saving checkpoint (resumes at epoch %d, step %d) to %s.", epoch, step, path)
        atomic_save(save_obj, path)

    def _load_checkpoint(self, url_or_filename):
        """Resume from a checkpoint of this runner (exact: model, optimizer, scaler, RNG, position) or of LAVIS's
        (model, optimizer, scaler, next epoch; momentum encoders re-copied from the online ones)."""
        if is_url(url_or_filename):
            url_or_filename = download_cached_file(url_or_filename, check_hash=False, progress=True)
        elif not os.path.isfile(url_or_filename):
            raise FileNotFoundError(f"run.resume_ckpt_path: checkpoint {url_or_filename!r} does not exist")
        checkpoint = torch.load(url_or_filename, map_location="cpu")
        model = self.unwrap_dist_model(self.model)
        load_full_state(model, checkpoint["model"], url_or_filename)
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.scaler and checkpoint.get("scaler"):
            self.scaler.load_state_dict(checkpoint["scaler"])
        self.best_agg_metric = checkpoint.get("best_agg_metric", 0)
        self.best_epoch = checkpoint.get("best_epoch", 0)
        # LAVIS writes the resumed run into a new job folder and reloads checkpoint_best.pth from there for testing:
        # bring the previous best along, or forget its score so that this run saves its own best.
        old_best = os.path.join(os.path.dirname(os.path.abspath(url_or_filename)), "checkpoint_best.pth")
        new_best = os.path.join(self.output_dir, "checkpoint_best.pth")
        if self.best_agg_metric and os.path.abspath(old_best) != os.path.abspath(new_best):
            if os.path.isfile(old_best):
                if is_main_process():
                    atomic_link(old_best, new_best)
            else:
                logging.warning("no checkpoint_best.pth beside %s: the best validation score so far (%s) is "
                                "forgotten", url_or_filename, self.best_agg_metric)
                self.best_agg_metric, self.best_epoch = 0, 0

        position = checkpoint.get("position")
        if position is None:
            self.start_epoch, self._resume_step = checkpoint["epoch"] + 1, 0
        else:
            self.start_epoch, self._resume_step = position["epoch"], position["step"]
            iters = len(self.train_loader) if self.train_splits else position["iters_per_epoch"]
            if self._resume_step and iters != position["iters_per_epoch"]:
                new_step = min(iters - 1, round(self._resume_step * iters / position["iters_per_epoch"]))
                logging.warning(
                    "the checkpoint was written with %d steps per epoch, this run has %d (batch size or number of "
                    "processes changed): resuming at step %d of epoch %d, not exactly where it stopped",
                    position["iters_per_epoch"], iters, new_step, self.start_epoch)
                self._resume_step = new_step

        states = checkpoint.get("rng_states")
        if states is not None and len(states) == get_world_size():
            set_rng_state(states[get_rank()])
        elif states is not None:
            logging.warning("the checkpoint holds RNG states of %d processes, this run has %d: RNG not restored",
                            len(states), get_world_size())
        else:
            logging.warning("%s has no RNG states or position (a LAVIS checkpoint?): resuming at the start of epoch "
                            "%d, not bit-exact", url_or_filename, self.start_epoch)
        logging.info("Resume checkpoint from %s at epoch %d, step %d", url_or_filename, self.start_epoch,
                     self._resume_step)


def load_full_state(model, state_dict, source="checkpoint"):
    """Load a model state strictly, except for parameters without gradient (ALBEF's momentum encoders), which
    LAVIS's own checkpoints leave out: those are re-copied from the online encoders (``model.copy_params()``) with
    a warning. Any other missing or unexpected key is a ``RuntimeError`` naming the keys."""
    result = model.load_state_dict(state_dict, strict=False)
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    missing_frozen = [k for k in result.missing_keys if k in frozen]
    missing = [k for k in result.missing_keys if k not in frozen]
    if missing or result.unexpected_keys:
        raise RuntimeError(
            f"{source} does not match the model ({type(model).__name__}): missing keys {missing[:10]}"
            f"{' ...' if len(missing) > 10 else ''}, unexpected keys {result.unexpected_keys[:10]}"
            f"{' ...' if len(result.unexpected_keys) > 10 else ''}")
    if missing_frozen:
        if hasattr(model, "copy_params") and getattr(model, "model_pairs", None):
            model.copy_params()
            logging.warning("%s has no weights for %d parameters without gradient (LAVIS's runner drops the momentum "
                            "encoders): they were re-copied from the online encoders", source, len(missing_frozen))
        else:
            logging.warning("%s has no weights for %d frozen parameters; they keep their initial values", source,
                            len(missing_frozen))
    return result
