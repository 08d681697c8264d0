"""Paired comparisons of two configurations run on the same seeds and data: the mean difference, its 95 %
confidence interval, a p-value and a verdict.

A *pair* is one seed: the regularized run and its base run share the seed, the data and every other setting, so
the seed-to-seed variation that both share cancels in the difference ``d_s = x_s - y_s``. The interval is the
paired t interval ``mean(d) +- t_{0.975, n-1} * sd(d) / sqrt(n)`` (default), or a seeded percentile bootstrap of
``mean(d)`` (``method="bootstrap"``; with 5 pairs it is too narrow, which is why t is the default).

The verdict reads the interval against the measure's direction (``+1``: higher is better, ``-1``: lower is better,
``0``: neither, e.g. the modality gap): ``better`` / ``worse`` (or ``higher`` / ``lower`` for direction 0) when
the interval excludes 0, else ``no difference detected``. Across a table of many cells, :func:`holm` marks which
verdicts survive the Holm-Bonferroni correction for the number of cells (a 95 % interval excludes 0 by chance in
1 cell in 20 where nothing differs).

Nothing here imports torch or LAVIS; scipy gives the t quantiles.
"""
import math
import random
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence

NO_DIFFERENCE = "no difference detected"


@dataclass
class Comparison:
    """One paired comparison: ``mean`` of the differences, ``low`` / ``high`` (the interval), ``n`` pairs,
    ``p`` (two-sided, paired t), ``verdict`` and, after :func:`holm`, ``holm`` (the verdict survives it)."""

    mean: float
    low: float
    high: float
    n: int
    p: float
    verdict: str
    holm: Optional[bool] = None

    def as_dict(self) -> Dict:
        """The comparison as a plain dict (for json)."""
        return asdict(self)


def _verdict(low: float, high: float, direction: int) -> str:
    if low <= 0.0 <= high or math.isnan(low) or math.isnan(high):
        return NO_DIFFERENCE
    up = low > 0.0
    if direction == 0:
        return "higher" if up else "lower"
    return "better" if up == (direction > 0) else "worse"


def paired_differences(treated: Sequence[float], base: Sequence[float]) -> List[float]:
    """``[x_s - y_s]`` for paired sequences (one entry per seed, in the same order); ValueError if their lengths
    differ or a value is not finite (a failed run must not be averaged away)."""
    if len(treated) != len(base):
        raise ValueError(f"paired comparison needs one base run per treated run, got {len(treated)} and {len(base)}")
    diffs = []
    for x, y in zip(treated, base):
        x, y = float(x), float(y)
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"paired comparison got a non-finite value ({x}, {y})")
        diffs.append(x - y)
    return diffs


def compare(treated: Sequence[float], base: Sequence[float], direction: int = 1, confidence: float = 0.95,
            method: str = "t", resamples: int = 10000, seed: int = 0) -> Comparison:
    """Compare ``treated`` with ``base``, paired by position (seed).

    Args:
        treated, base: [n] values of one measure, one per seed, in the same seed order.
        direction: +1 higher is better, -1 lower is better, 0 no preferred direction.
        confidence: interval level (0.95).
        method: ``"t"`` (paired t interval) or ``"bootstrap"`` (percentile bootstrap of the mean difference).
        resamples, seed: the bootstrap's.

    Returns:
        :class:`Comparison`. With one pair the interval is (-inf, inf): nothing can be told. Differences that are
        all equal give the zero-width interval at that value (identical runs: exactly 0, no difference).
    """
    from scipy import stats

    if method not in ("t", "bootstrap"):
        raise ValueError(f"method must be 't' or 'bootstrap', got {method!r}")
    if direction not in (-1, 0, 1):
        raise ValueError(f"direction must be -1, 0 or 1, got {direction!r}")
    d = paired_differences(treated, base)
    n = len(d)
    if n == 0:
        raise ValueError("paired comparison of no runs")
    mean = sum(d) / n
    if n == 1:
        return Comparison(mean, -math.inf, math.inf, 1, 1.0, NO_DIFFERENCE)
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    if sd <= 1e-12 * max(1.0, abs(mean)):
        p = 1.0 if mean == 0 else 0.0
        low = high = mean
    else:
        se = sd / math.sqrt(n)
        p = float(2 * stats.t.sf(abs(mean) / se, n - 1))
        if method == "t":
            half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * se
            low, high = mean - half, mean + half
        else:
            rng = random.Random(seed)
            means = sorted(sum(rng.choice(d) for _ in range(n)) / n for _ in range(resamples))
            alpha = (1 - confidence) / 2
            low = means[int(math.floor(alpha * (resamples - 1)))]
            high = means[int(math.ceil((1 - alpha) * (resamples - 1)))]
    return Comparison(mean, low, high, n, p, _verdict(low, high, direction))


def holm(comparisons: Sequence[Comparison], alpha: float = 0.05) -> List[Comparison]:
    """Mark each comparison's ``holm``: whether it is rejected by the Holm-Bonferroni step-down procedure at family
    level ``alpha`` over all of ``comparisons`` (and has a verdict other than no difference). Returns them."""
    order = sorted(range(len(comparisons)), key=lambda i: comparisons[i].p)
    m = len(comparisons)
    rejecting = True
    for rank, i in enumerate(order):
        c = comparisons[i]
        rejecting = rejecting and c.p <= alpha / (m - rank)
        c.holm = bool(rejecting and c.verdict != NO_DIFFERENCE)
    return list(comparisons)


def format_cell(c: Comparison, digits: int = 1) -> str:
    """``+2.3 [+0.4, +4.2] better`` (``--`` interval bounds for a single pair); ``*`` marks a Holm survivor."""
    def num(x):
        return "inf" if math.isinf(x) else f"{x:+.{digits}f}"

    mark = "*" if c.holm else ""
    word = "" if c.verdict == NO_DIFFERENCE else f" {c.verdict}{mark}"
    return f"{num(c.mean)} [{num(c.low)}, {num(c.high)}]{word}"
