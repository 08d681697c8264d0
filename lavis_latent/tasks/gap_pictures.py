"""The modality-gap picture of an evaluated split, as the evaluation tasks draw it (``run.plot_gap``; both
``latent_retrieval`` and ``zero_shot_classification``)."""
import logging

from lavis.common.registry import registry


class GapPictureMixin:
    """A task that can draw its paired features (``lavis_latent.evaluate --plot`` accepts it) and keeps the paths of
    the pictures it wrote in ``gap_plots``."""

    #: this task has paired image/text features to draw (``run.plot_gap``, ``lavis_latent.evaluate --plot``)
    plots_gap = True

    #: the pictures written so far, each once, in the order last written
    gap_plots = ()

    def draw_gap(self, z_v, z_t, split, title, gap, max_pairs=None):
        """Draw ``z_v`` / ``z_t`` ([N, D] pairs) to ``gap_<split>.png`` in the run's output folder
        (:func:`lavis_latent.metrics.gap_plot.plot_modality_gap`); returns the path."""
        from lavis_latent.metrics.gap_plot import plot_modality_gap, split_plot_path

        path = split_plot_path(registry.get_path("output_dir"), split)
        plot_modality_gap(z_v, z_t, path, title=title, gap=gap, max_pairs=max_pairs)
        self.gap_plots = [p for p in self.gap_plots if p != path] + [path]  # a split drawn again: once
        logging.info("modality-gap picture of split %s: %s", split, path)
        return path
