"""``latent_retrieval``: LAVIS's ``retrieval`` task, logging every loss term and reporting the modality gap.

Evaluation is LAVIS's (ITC top-k then ITM re-ranking, R@1/5/10 both ways, ``agg_metrics``); the result also carries
the modality-gap measures of ``lavis_latent.metrics.modality_gap`` on the split's paired unimodal features (each
caption with its image), prefixed ``gap_``, so log.txt shows them beside recall.
"""
import json
import os

import torch
from lavis.common.registry import registry
from lavis.tasks.retrieval import RetrievalTask

from lavis_latent.metrics import modality_gap
from lavis_latent.tasks.checked_datasets import CheckedDatasetsMixin
from lavis_latent.tasks.train_loop import LossTermsMixin


@registry.register_task("latent_retrieval")
class LatentRetrievalTask(CheckedDatasetsMixin, LossTermsMixin, RetrievalTask):
    """Image-text retrieval fine-tuning and evaluation, plus per-term logging, modality-gap measures and checked
    datasets (``run.skip_bad_images``)."""

    def evaluation(self, model, data_loader, **kwargs):
        """LAVIS's retrieval metrics plus ``gap_*`` measures (main process; ``None`` elsewhere, as LAVIS)."""
        result = super().evaluation(model, data_loader, **kwargs)
        if result is None or not hasattr(model, "unimodal_features"):
            return result
        z_v, z_t = model.unimodal_features(data_loader)
        txt2img = data_loader.dataset.txt2img
        paired_images = torch.tensor([txt2img[j] for j in range(z_t.size(0))], dtype=torch.long)
        gap = modality_gap(z_v[paired_images], z_t)
        result.update({f"gap_{k}": v for k, v in gap.items()})
        with open(os.path.join(registry.get_path("output_dir"), "evaluate.txt"), "a") as f:
            f.write(json.dumps({f"gap_{k}": v for k, v in gap.items()}) + "\n")
        return result
