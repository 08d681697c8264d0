"""Modality-gap measures between paired image and text features (pure torch; scikit-learn optional).

``modality_gap(z_v, z_t)`` returns (python floats):

* ``centroid_distance``: ``||mean_j z_Vj - mean_j z_Tj||`` (Liang et al. 2022, "Mind the Gap").
* ``paired_distance``: ``mean_j ||z_Vj - z_Tj||``, the average distance between paired features (the paper's
  Fig. 2 gap measure, features normalised).
* ``alignment``: ``mean_j ||z_Vj - z_Tj||^2`` (Wang & Isola 2020, alpha = 2).
* ``uniformity_image``, ``uniformity_text``: ``log mean_{j != k} exp(-2 ||z_j - z_k||^2)`` per modality
  (Wang & Isola 2020, t = 2); NaN for fewer than 2 samples.
* ``linear_separability``: held-out accuracy of an L2-regularised logistic regression that tells image from
  text features. Pairs are split at random (``seed``) into a training part (``train_fraction``) and a test part;
  a pair's image and text go to the same part, so both classes are balanced in each. Features are standardised
  with the training statistics. Solver: scikit-learn's ``LogisticRegression(C=1, max_iter=1000)`` if it is
  installed (``backend="auto"``), else the same objective (mean log-loss + ||w||^2 / (2 C n)) minimised with
  torch L-BFGS; both reach the same convex optimum, so the accuracy agrees up to solver tolerance.
  0.5 = modalities indistinguishable, 1.0 = linearly separable. NaN for fewer than 2 pairs.
"""
from __future__ import annotations

import math
from typing import Dict

import torch
import torch.nn.functional as F

__all__ = ["modality_gap", "linear_separability"]


def _check(z_v: torch.Tensor, z_t: torch.Tensor) -> None:
    for name, z in (("z_v", z_v), ("z_t", z_t)):
        if not isinstance(z, torch.Tensor) or z.dim() != 2:
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"{name} must be a 2-D tensor [N, D], got {shape}")
    if z_v.shape != z_t.shape:
        raise ValueError(f"shape mismatch: z_v has shape {tuple(z_v.shape)} but z_t has shape {tuple(z_t.shape)} "
                         "(modality_gap needs paired features)")
    if z_v.shape[0] < 1:
        raise ValueError("modality_gap needs at least one pair")


def _uniformity(z: torch.Tensor, t: float = 2.0) -> float:
    n = z.shape[0]
    if n < 2:
        return float("nan")
    sq = (z * z).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2 * z @ z.t()).clamp_min(0)
    off = ~torch.eye(n, dtype=torch.bool)
    return float(torch.logsumexp(-t * d2[off], 0) - math.log(n * (n - 1)))


def _fit_torch(x: torch.Tensor, y: torch.Tensor, c: float) -> torch.Tensor:
    """Logistic regression (weights + bias), L-BFGS on mean log-loss + ||w||^2 / (2 C n). Returns [D + 1]."""
    n, d = x.shape
    w = torch.zeros(d + 1, dtype=x.dtype, requires_grad=True)
    xb = torch.cat([x, torch.ones(n, 1, dtype=x.dtype)], 1)
    opt = torch.optim.LBFGS([w], lr=1.0, max_iter=500, tolerance_grad=1e-9, tolerance_change=1e-12,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(xb @ w, y) + (w[:-1] ** 2).sum() / (2 * c * n)
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach()


def linear_separability(z_v: torch.Tensor, z_t: torch.Tensor, train_fraction: float = 0.5, seed: int = 0,
                        c: float = 1.0, backend: str = "auto") -> float:
    """Held-out accuracy of a logistic regression separating image (label 1) from text (label 0) features.

    See the module docstring. ``backend``: "auto" (scikit-learn if importable, else torch), "sklearn", "torch".
    """
    _check(z_v, z_t)
    if backend not in ("auto", "sklearn", "torch"):
        raise ValueError(f"backend must be 'auto', 'sklearn' or 'torch', got {backend!r}")
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction!r}")
    n = z_v.shape[0]
    if n < 2:
        return float("nan")
    zv = z_v.detach().to("cpu", torch.float64)
    zt = z_t.detach().to("cpu", torch.float64)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_train = min(n - 1, max(1, int(round(train_fraction * n))))
    tr, te = perm[:n_train], perm[n_train:]
    x_tr = torch.cat([zv[tr], zt[tr]])
    y_tr = torch.cat([torch.ones(n_train), torch.zeros(n_train)]).double()
    x_te = torch.cat([zv[te], zt[te]])
    y_te = torch.cat([torch.ones(len(te)), torch.zeros(len(te))]).double()
    mean, std = x_tr.mean(0), x_tr.std(0, unbiased=False).clamp_min(1e-8)
    x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std

    use_sklearn = backend == "sklearn"
    if backend == "auto":
        try:
            import sklearn.linear_model  # noqa: F401
            use_sklearn = True
        except ImportError:
            use_sklearn = False
    if use_sklearn:
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(C=c, max_iter=1000)
        clf.fit(x_tr.numpy(), y_tr.numpy())
        pred = torch.from_numpy(clf.predict(x_te.numpy())).double()
    else:
        w = _fit_torch(x_tr, y_tr, c)
        pred = ((x_te @ w[:-1] + w[-1]) > 0).double()
    return float((pred == y_te).double().mean())


@torch.no_grad()
def modality_gap(z_v: torch.Tensor, z_t: torch.Tensor, normalize: bool = True, seed: int = 0,
                 train_fraction: float = 0.5, backend: str = "auto") -> Dict[str, float]:
    """Modality-gap measures of paired features (see the module docstring for each key).

    Args:
        z_v, z_t: [N, D] paired image / text features (any float dtype, any device; detached).
        normalize: L2-normalise the features first (default; the paper measures the gap on normalised
            features; a no-op for features that already are).
        seed, train_fraction, backend: for ``linear_separability``.

    Returns:
        dict of python floats: centroid_distance, paired_distance, alignment, uniformity_image,
        uniformity_text, linear_separability.
    """
    _check(z_v, z_t)
    zv = z_v.detach().to("cpu", torch.float64)
    zt = z_t.detach().to("cpu", torch.float64)
    if normalize:
        zv, zt = F.normalize(zv, dim=1), F.normalize(zt, dim=1)
    diff = zv - zt
    return {
        "centroid_distance": float((zv.mean(0) - zt.mean(0)).norm()),
        "paired_distance": float(diff.norm(dim=1).mean()),
        "alignment": float((diff ** 2).sum(1).mean()),
        "uniformity_image": _uniformity(zv),
        "uniformity_text": _uniformity(zt),
        "linear_separability": linear_separability(zv, zt, train_fraction=train_fraction, seed=seed,
                                                   backend=backend),
    }
