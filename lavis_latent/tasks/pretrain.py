"""``latent_pretrain``: LAVIS's ``image_text_pretrain`` task, logging every loss term (ITC, ITM, MLM, regularizers)."""
from lavis.common.registry import registry
from lavis.tasks.image_text_pretrain import ImageTextPretrainTask

from lavis_latent.tasks.checked_datasets import CheckedDatasetsMixin
from lavis_latent.tasks.train_loop import LossTermsMixin


@registry.register_task("latent_pretrain")
class LatentPretrainTask(CheckedDatasetsMixin, LossTermsMixin, ImageTextPretrainTask):
    """Image-text pretraining (no evaluation), with per-term logging, the non-finite step guard and checked
    datasets (``run.skip_bad_images``)."""
