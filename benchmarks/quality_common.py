"""What the CLIP and the ALBEF parts of ``benchmarks.quality`` share: the regularizers compared and the table cells
(mean ± standard deviation over seeds)."""
import statistics

#: short row name -> the regularizer's key in a ``latent:`` block
METHODS = {"fs": "separation", "bb": "bridge", "gc": "geometric"}


def mean_sd(values):
    """``(mean, standard deviation)`` of ``values`` without their NaNs (sd 0 for one value; NaNs if none)."""
    vals = [v for v in values if v == v]  # drop NaN
    if not vals:
        return float("nan"), float("nan")
    return statistics.mean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def cell(runs, key):
    """``"mean ± sd"`` of ``key`` over runs (3 decimals for gap measures, 1 for percentages), ``-`` if absent."""
    m, sd = mean_sd([r.get(key, float("nan")) for r in runs])
    fmt = "{:.3f}" if key.startswith("gap") else "{:.1f}"
    return "-" if m != m else (fmt + " ± " + fmt).format(m, sd)
