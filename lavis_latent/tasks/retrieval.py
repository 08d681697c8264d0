"""``latent_retrieval``: LAVIS's ``retrieval`` task, logging every loss term and reporting the modality gap.

Evaluation is LAVIS's (ITC top-k then ITM re-ranking, R@1/5/10 both ways, ``agg_metrics``); the result also carries
the modality-gap measures of ``lavis_latent.metrics.modality_gap`` on the split's paired unimodal features (each
caption with its image), prefixed ``gap_``, so log.txt shows them beside recall. With ``run.plot_gap: true`` each
evaluated split's features are also drawn (``lavis_latent.metrics.gap_plot``) to ``gap_<split>.png`` in the run's
output folder, beside ``evaluate.txt``.
"""
import json
import os

import torch
from lavis.common.registry import registry
from lavis.tasks.retrieval import RetrievalTask

from lavis_latent.metrics import modality_gap
from lavis_latent.tasks.checked_datasets import CheckedDatasetsMixin
from lavis_latent.tasks.gap_pictures import GapPictureMixin
from lavis_latent.tasks.train_loop import LossTermsMixin

#: at most this many pairs are drawn in ``gap_<split>.png`` (evenly spaced; the projection and measures use all)
PLOT_MAX_PAIRS = 1000


@registry.register_task("latent_retrieval")
class LatentRetrievalTask(GapPictureMixin, CheckedDatasetsMixin, LossTermsMixin, RetrievalTask):
    """Image-text retrieval fine-tuning and evaluation, plus per-term logging, modality-gap measures and checked
    datasets (``run.skip_bad_images``).

    Config (``run:``): ``plot_gap`` (bool, default False): draw each evaluated split's paired features to
    ``gap_<split>.png`` in the output folder (needs matplotlib); the paths written are kept in ``gap_plots``.
    """

    #: the ``model:`` block of the config (set by :meth:`setup_task`; titles the pictures), or None
    model_cfg = None

    #: the features of the last evaluation, waiting for ``after_evaluation`` to draw them (``run.plot_gap``)
    _gap_to_plot = None

    @classmethod
    def setup_task(cls, cfg, **kwargs):
        """As LAVIS, keeping ``cfg.model_cfg``; with ``run.plot_gap`` checks that matplotlib is installed."""
        task = super().setup_task(cfg=cfg, **kwargs)
        task.model_cfg = getattr(cfg, "model_cfg", None)
        if task._run_setting("plot_gap", False):
            from lavis_latent.metrics.gap_plot import _matplotlib

            _matplotlib()  # an ImportError naming the extra now, not after the evaluation
        return task

    def evaluation(self, model, data_loader, **kwargs):
        """LAVIS's retrieval metrics plus ``gap_*`` measures (main process; ``None`` elsewhere, as LAVIS)."""
        self._gap_to_plot = None
        result = super().evaluation(model, data_loader, **kwargs)
        if result is None or not hasattr(model, "unimodal_features"):
            return result
        z_v, z_t = model.unimodal_features(data_loader)
        txt2img = data_loader.dataset.txt2img
        paired_images = torch.tensor([txt2img[j] for j in range(z_t.size(0))], dtype=torch.long)
        z_v = z_v[paired_images]
        gap = modality_gap(z_v, z_t)
        result.update({f"gap_{k}": v for k, v in gap.items()})
        with open(os.path.join(registry.get_path("output_dir"), "evaluate.txt"), "a") as f:
            f.write(json.dumps({f"gap_{k}": v for k, v in gap.items()}) + "\n")
        if self._run_setting("plot_gap", False):
            # drawn in after_evaluation, which knows the split's name
            self._gap_to_plot = (z_v.detach().cpu(), z_t.detach().cpu(), gap, self._model_title(model))
        return result

    def after_evaluation(self, val_result, split_name=None, epoch=None, **kwargs):
        """LAVIS's ``after_evaluation``; with ``run.plot_gap`` first writes ``gap_<split>.png``."""
        pending, self._gap_to_plot = self._gap_to_plot, None
        if pending is not None:
            z_v, z_t, gap, (model_name, latent_line) = pending
            split = split_name if split_name is not None else "eval"
            head = ", ".join(p for p in (model_name, f"{split} split") if p)
            if epoch is not None and not isinstance(epoch, str):
                head += f", epoch {epoch}"
            title = "\n".join(p for p in (head, latent_line) if p)
            self.draw_gap(z_v, z_t, split, title, gap, max_pairs=PLOT_MAX_PAIRS)
        return super().after_evaluation(val_result=val_result, split_name=split_name, epoch=epoch, **kwargs)

    def _model_title(self, model):
        """``("arch (model_type)", "latent: <active regularizers>")`` for a picture's title ("" where unknown)."""
        name = ""
        if self.model_cfg is not None and self.model_cfg.get("arch"):
            kind = self.model_cfg.get("model_type")
            name = f"{self.model_cfg.arch} ({kind})" if kind else str(self.model_cfg.arch)
        latent = getattr(model, "latent", None)
        if latent is None or not hasattr(latent, "names"):
            return name, ""
        names = list(latent.names)
        return name, ("latent: " + ", ".join(names)) if names else "no latent terms"
