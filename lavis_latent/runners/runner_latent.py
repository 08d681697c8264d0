"""``runner_latent``: LAVIS's ``RunnerBase`` with the few methods that assume CUDA or a fresh process fixed.

Everything else (optimiser, schedulers, loaders, train/eval loop, checkpoint format, logging) is LAVIS's. Fixes:

* ``model``: LAVIS only wraps the model when it has to move it to another device, so a CPU model on a CPU run
  came back ``None``; DDP is built with ``device_ids=None`` on CPU (gloo).
* ``create_loaders``: no ``PrefetchLoader`` (it opens a CUDA stream) when the run's device is not CUDA.
* ``eval_epoch``: LAVIS calls ``task.evaluation`` without ``cuda_enabled``, so ``BaseTask`` moves CPU batches to
  cuda; here the task is told the run's device.
* ``setup_output_dir``: a relative ``run.output_dir`` resolves against the working directory (LAVIS resolves it
  inside its own package, i.e. site-packages), and a second runner in one process may register its paths.
* ``evaluate`` / ``train_epoch``: the test results are written to log.txt (``test_*``), as the validation ones
  are, and the latest results are kept on the runner (``last_test_logs``, ``last_train_stats``) for callers.
"""
import functools
import os

from lavis.common.registry import registry
from lavis.runners.runner_base import RunnerBase
from torch.nn.parallel import DistributedDataParallel as DDP

from lavis_latent.runners.compat import patch_smoothed_value, without_prefetch_loader


@registry.register_runner("runner_latent")
class RunnerLatent(RunnerBase):
    """LAVIS's epoch-based runner, usable on CPU, on one GPU without ``torchrun``, and under ``torchrun``."""

    def __init__(self, cfg, task, model, datasets, job_id):
        patch_smoothed_value()
        run_cfg = cfg.run_cfg
        if not os.path.isabs(run_cfg.output_dir):
            run_cfg.output_dir = os.path.abspath(run_cfg.output_dir)
        super().__init__(cfg, task, model, datasets, job_id)
        self.last_train_stats, self.last_test_logs = None, None

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

    def create_loaders(self, *args, **kwargs):
        """LAVIS's loaders; without its CUDA prefetcher when the run is not on a GPU."""
        if self.cuda_enabled:
            return super().create_loaders(*args, **kwargs)
        with without_prefetch_loader():
            return super().create_loaders(*args, **kwargs)

    def train_epoch(self, epoch):
        """LAVIS's ``train_epoch``; keeps the epoch's averaged stats in ``last_train_stats``."""
        self.last_train_stats = super().train_epoch(epoch)
        return self.last_train_stats

    def evaluate(self, cur_epoch="best", skip_reload=False):
        """LAVIS's ``evaluate``; also logs each test split's results to log.txt and keeps them in
        ``last_test_logs`` (``{split: metrics}``)."""
        logs = super().evaluate(cur_epoch=cur_epoch, skip_reload=skip_reload)
        self.last_test_logs = logs
        for split_name, result in (logs or {}).items():
            if isinstance(result, dict):
                self.log_stats(result, split_name)
        return logs

    def eval_epoch(self, split_name, cur_epoch, skip_reload=False):
        """LAVIS's ``eval_epoch`` with ``cuda_enabled`` passed on to the task's ``evaluation``."""
        task = self.task
        shadowed = vars(task).get("evaluation")
        task.evaluation = functools.partial(task.evaluation, cuda_enabled=self.cuda_enabled)
        try:
            return super().eval_epoch(split_name, cur_epoch, skip_reload=skip_reload)
        finally:
            if shadowed is None:
                del task.evaluation
            else:
                task.evaluation = shadowed
