"""``python -m lavis_latent.train --cfg-path X.yaml [--options k=v ...]``: LAVIS's ``train.py``, for the plugin.

The PyPI LAVIS wheel has no ``train.py``; this module has the same flags and flow as the one in LAVIS's repository
(``Config`` -> distributed init -> seeds -> logger -> task -> datasets -> model -> runner ``.train()``), with:
the plugin registered; the config checked against the registry, and stock datasets whose default paths nobody can
reach (SNLI-VE, NLVR2 images) checked for their files, before anything is built; a device-aware process group
(gloo on CPU, nccl on GPU, a single-member group without ``torchrun``); ``runner_latent`` standing in for LAVIS's
``runner_base`` (a yaml naming another runner keeps it); a job id with second resolution, shared by all ranks.
"""
import argparse
import random
from datetime import datetime

import numpy as np
import torch
import torch.backends.cudnn as cudnn

import lavis_latent  # noqa: F401  (registration)
import lavis.tasks as tasks
from lavis.common.config import Config
from lavis.common.dist_utils import get_rank
from lavis.common.logger import setup_logger
from lavis.common.registry import registry
from lavis_latent.common.config_check import check_run_config, load_run_config
from lavis_latent.common.offline_checks import HostProbe, model_weight_problems, raise_if_unavailable
from lavis_latent.datasets.stock_datasets import dataset_file_problems, drop_null_splits
from lavis_latent.runners import broadcast_object, init_distributed_mode

DEFAULT_RUNNER = "runner_latent"


def parse_args(argv=None, description="Training"):
    """LAVIS's command line: ``--cfg-path`` (required) and ``--options key=value ...``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--cfg-path", required=True, help="path to configuration file.")
    parser.add_argument(
        "--options",
        nargs="+",
        help="override some settings in the used config, the key-value pair "
        "in xxx=yyy format will be merged into config file (deprecate), "
        "change to --cfg-options instead.",
    )
    return parser.parse_args(argv)


def setup_seeds(config):
    """Seed python, numpy and torch with ``run.seed + rank`` (as LAVIS)."""
    seed = config.run_cfg.seed + get_rank()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    cudnn.benchmark = False
    cudnn.deterministic = True


def new_job_id():
    """A job folder name with second resolution, identical on every rank (LAVIS's has 10-minute resolution)."""
    return broadcast_object(datetime.now().strftime("%Y%m%d%H%M%S"))


def get_runner_class(cfg):
    """The runner named by ``run.runner``; LAVIS's default ``runner_base`` maps to ``runner_latent``."""
    name = cfg.run_cfg.get("runner", "runner_base")
    return registry.get_runner_class(DEFAULT_RUNNER if name == "runner_base" else name)


def build_run(args):
    """Config, job id, task, datasets and model for a run, as LAVIS's ``train.py`` builds them.

    Before anything is built: the config is checked against the registry; annotation splits set to ``null`` are
    dropped (how a run leaves out a split of a stock builder); every dataset file and the model checkpoint that are
    missing and cannot be downloaded (URL host unreachable, or ``$LAVIS_LATENT_OFFLINE=1``) stop the run with one
    ``UnavailableFilesError`` that names each path, URL and config key.
    """
    check_run_config(load_run_config(args.cfg_path, args.options))
    cfg = Config(args)
    drop_null_splits(cfg.datasets_cfg, cfg.run_cfg)
    probe = HostProbe()  # one probe per host for the whole check
    raise_if_unavailable(dataset_file_problems(cfg.datasets_cfg, cfg.run_cfg, probe)
                         + model_weight_problems(cfg.model_cfg, probe))
    init_distributed_mode(cfg.run_cfg)
    job_id = new_job_id()
    setup_seeds(cfg)
    setup_logger()
    cfg.pretty_print()
    task = tasks.setup_task(cfg)
    datasets = task.build_datasets(cfg)
    model = task.build_model(cfg)
    return cfg, job_id, task, datasets, model


def main(argv=None):
    """Train (and evaluate) as the config says; returns the runner."""
    cfg, job_id, task, datasets, model = build_run(parse_args(argv))
    runner = get_runner_class(cfg)(cfg=cfg, job_id=job_id, task=task, model=model, datasets=datasets)
    runner.train()
    return runner


if __name__ == "__main__":
    main()
