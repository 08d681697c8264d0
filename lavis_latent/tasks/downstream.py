"""Fine-tuning tasks for VQA, NLVR2 and SNLI-VE, and ALBEF's NLVR2 text-assignment (TA) pre-training.

``latent_vqa`` and ``latent_multimodal_classification`` are LAVIS's ``vqa`` and ``multimodal_classification``
tasks (their evaluation: answer ranking over the answer list scored by the official VQA script; accuracy of the
arg-max class) that also log every loss term and skip non-finite steps (:class:`~lavis_latent.tasks.LossTermsMixin`).
LAVIS's own task names work too; they log ``loss`` only.

``latent_text_assignment`` trains ALBEF's TA step, which LAVIS 1.0.2 lacks: every configured caption dataset's
train split is wrapped in :class:`~lavis_latent.datasets.text_assignment.TextAssignmentDataset`, and the model is
``albef_latent_nlvr`` with ``num_classes: 3``. It trains only (ALBEF runs it for one epoch on the pre-training
images); the NLVR2 fine-tuning then starts from its last checkpoint (``model.pretrained``), whose TA head is
dropped.
"""
import logging

from lavis.common.registry import registry
from lavis.tasks.multimodal_classification import MultimodalClassificationTask
from lavis.tasks.vqa import VQATask

from lavis_latent.datasets.text_assignment import TextAssignmentDataset
from lavis_latent.tasks.train_loop import LossTermsMixin


@registry.register_task("latent_vqa")
class LatentVQATask(LossTermsMixin, VQATask):
    """LAVIS's VQA task (fine-tuning, answer ranking, VQA accuracy) with per-term logging."""


@registry.register_task("latent_multimodal_classification")
class LatentClassificationTask(LossTermsMixin, MultimodalClassificationTask):
    """LAVIS's multimodal classification task (NLVR2, SNLI-VE: accuracy of the arg-max class) with per-term
    logging."""

    def after_evaluation(self, val_result, split_name, epoch, **kwargs):
        """LAVIS's metrics (``agg_metrics``, ``acc``: the fraction of correct arg-max predictions) as Python floats
        (LAVIS returns numpy scalars, multimodal_classification.py:72, which ``torch.load(weights_only=True)`` then
        refuses wherever a checkpoint stores them)."""
        metrics = super().after_evaluation(val_result, split_name, epoch, **kwargs)
        return {k: float(v) for k, v in metrics.items()} if isinstance(metrics, dict) else metrics


@registry.register_task("latent_text_assignment")
class TextAssignmentTask(LatentClassificationTask):
    """ALBEF's text-assignment pre-training for NLVR2 on the configured caption datasets (train split only)."""

    def build_datasets(self, cfg):
        """LAVIS's datasets, with each train split wrapped in ``TextAssignmentDataset`` and other splits dropped."""
        datasets = super().build_datasets(cfg)
        wrapped = {}
        for name, splits in datasets.items():
            dropped = sorted(s for s in splits if s != "train")
            if dropped:
                logging.info("text assignment trains only: splits %s of %s are not used", dropped, name)
            if "train" not in splits:
                raise ValueError(f"dataset {name} has no train split for text assignment")
            wrapped[name] = {"train": TextAssignmentDataset(splits["train"])}
        return wrapped
