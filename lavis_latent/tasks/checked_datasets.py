"""``CheckedDatasetsMixin``: a LAVIS task whose ``build_datasets`` checks annotations and images (see
:mod:`lavis_latent.datasets.checks`), with ``run.skip_bad_images`` (default false) to skip bad training samples."""
from lavis.common.registry import registry

from lavis_latent.datasets.checks import build_datasets_checked


class CheckedDatasetsMixin:
    """Mixin for a LAVIS task (before the LAVIS class in the bases): ``build_datasets`` as LAVIS's
    ``BaseTask.build_datasets``, each builder's datasets built by
    :func:`~lavis_latent.datasets.checks.build_datasets_checked`.

    Config (``run:``): ``skip_bad_images`` (bool, default False): drop training samples whose caption is empty or
    whose image is missing, and replace those whose image cannot be decoded, with a warning naming each file;
    without it each of these is an error naming the file (and the annotation entry) before or when it is read.
    """

    def build_datasets(self, cfg):
        """``{dataset name: {split: dataset}}`` for every dataset of the config, checked."""
        datasets_config = cfg.datasets_cfg
        if not datasets_config:
            raise ValueError("the config names no dataset: add a 'datasets:' block with at least one builder name "
                             "(e.g. datasets: {demo_caption: {}}), as LAVIS's tasks require")
        skip_bad = bool(cfg.run_cfg.get("skip_bad_images", False))
        datasets = {}
        for name in datasets_config:
            builder = registry.get_builder_class(name)(datasets_config[name])
            datasets[name] = build_datasets_checked(builder, name, skip_bad=skip_bad)
        return datasets
