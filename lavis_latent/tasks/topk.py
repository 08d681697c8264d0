"""Top-k predictions and accuracies of the classification tasks (``zero_shot_classification``, ``linear_probe``)."""
import numpy as np

__all__ = ["DEFAULT_TOPK", "topk_predictions", "topk_accuracy", "headline_accuracy"]

DEFAULT_TOPK = (1, 3, 5)


def topk_predictions(scores, k):
    """Indices [N, min(k, C)] of the highest scores per row, best first."""
    return scores.topk(min(int(k), scores.size(1)), dim=1).indices


def topk_accuracy(topk_indices, targets, ks=DEFAULT_TOPK):
    """Top-k accuracies in percent from ranked predictions.

    Args:
        topk_indices: int array-like [N, K] of predicted classes, best first (K >= max of the kept ks).
        targets: int array-like [N].
        ks: the k to report; k > K (more than the number of classes) is skipped.

    Returns:
        ``{k: accuracy in percent}``.
    """
    topk_indices = np.asarray(topk_indices)
    targets = np.asarray(targets)
    if len(targets) == 0:
        raise ValueError("no samples to score")
    hits = topk_indices == targets[:, None]
    return {int(k): float(100.0 * hits[:, :k].any(axis=1).mean()) for k in ks if k <= topk_indices.shape[1]}


def headline_accuracy(accuracies):
    """The accuracy a task reports as ``agg_metrics`` from ``{k: percent}``: top-1, else the smallest k's."""
    return accuracies[1] if 1 in accuracies else accuracies[min(accuracies)]
