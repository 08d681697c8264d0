"""The linear probe itself: scikit-learn's logistic regression on frozen features, C chosen on validation data.

Pure numpy / scikit-learn (imported when a probe is fitted); the ``linear_probe`` task
(:mod:`lavis_latent.tasks.linear_probe`) extracts the features and calls :func:`fit_linear_probe`.
"""
import logging
import math
import warnings

import numpy as np

from lavis_latent.tasks.topk import DEFAULT_TOPK, topk_accuracy

__all__ = ["DEFAULT_C_GRID", "fit_linear_probe"]

DEFAULT_C_GRID = tuple(float(c) for c in np.logspace(-3, 3, 13))  # 1e-3 ... 1e3, half-decade steps


def _logistic_regression(C, max_iter, seed, warm_start=False):
    """An unfitted lbfgs ``LogisticRegression`` (``ImportError`` saying how to install scikit-learn)."""
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as err:
        raise ImportError("linear_probe needs scikit-learn: pip install 'lavis-latent[probe]'") from err
    # lbfgs fits the multinomial (softmax) model for more than two classes (sklearn's default; multi_class was
    # removed in scikit-learn 1.7)
    return LogisticRegression(C=C, solver="lbfgs", max_iter=max_iter, random_state=seed, warm_start=warm_start)


def _ranked(clf, X, k):
    """The ``k`` best classes [N, k] of a fitted classifier for features ``X`` [N, D], best first."""
    scores = clf.decision_function(X)
    if scores.ndim == 1:  # two classes: a single margin for classes_[1]
        scores = np.stack([-scores, scores], axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return clf.classes_[order]


def _scaler(X, standardize):
    """A function z-scoring features with ``X``'s per-column mean / std (the identity when not ``standardize``)."""
    if not standardize:
        return lambda a: a
    mean, std = X.mean(axis=0), X.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    return lambda a: (a - mean) / std


def _checked_c_grid(c_grid):
    """``c_grid`` as a sorted list of floats; ``ValueError`` unless all are positive and finite."""
    c_grid = sorted(float(c) for c in c_grid)
    if not c_grid or any(c <= 0 or not math.isfinite(c) for c in c_grid):
        raise ValueError(f"run.probe_c_grid must be positive finite numbers, got {c_grid}")
    return c_grid


def _selection_split(x_train, y_train, x_val, y_val, holdout, seed):
    """``(fit_x, fit_y, sel_x, sel_y, source)``: the data the probe is fitted on while C is chosen, and the data C
    is chosen on: train and the validation split (``source`` ``"val"``), or without one a seeded ``holdout``
    fraction of train, stratified when every class has two samples and both parts can hold every class
    (``"train_holdout"``; scikit-learn refuses a stratified part smaller than the number of classes)."""
    if x_val is not None:
        return x_train, y_train, np.asarray(x_val, np.float64), np.asarray(y_val), "val"
    from sklearn.model_selection import train_test_split

    _, counts = np.unique(y_train, return_counts=True)
    n_sel = int(np.ceil(holdout * len(y_train)))
    fits = min(n_sel, len(y_train) - n_sel) >= len(counts)
    stratify = y_train if counts.min() >= 2 and fits else None
    fit_x, sel_x, fit_y, sel_y = train_test_split(x_train, y_train, test_size=holdout, random_state=seed,
                                                  stratify=stratify)
    return fit_x, fit_y, sel_x, sel_y, "train_holdout"


def _search_c(fit_x, fit_y, sel_x, sel_y, c_grid, max_iter, standardize, seed):
    """``({C: selection top-1 percent}, best C)`` over the increasing ``c_grid``, each fit warm-started from the
    previous C's; the best C is the first (smallest) with the highest accuracy."""
    scale = _scaler(fit_x, standardize)
    fx, sx = scale(fit_x), scale(sel_x)
    clf = _logistic_regression(c_grid[0], max_iter, seed, warm_start=True)
    by_c, best = {}, None
    for c in c_grid:
        clf.set_params(C=c)
        clf.fit(fx, fit_y)
        acc = float(100.0 * (clf.predict(sx) == sel_y).mean())
        by_c[c] = acc
        if best is None or acc > by_c[best]:
            best = c
    return by_c, best


def fit_linear_probe(x_train, y_train, x_test, y_test, x_val=None, y_val=None, c_grid=DEFAULT_C_GRID,
                     max_iter=1000, standardize=True, holdout=0.2, seed=0, topk=DEFAULT_TOPK):
    """Logistic-regression probe with C chosen on validation data; test top-k accuracy.

    Args:
        x_train, y_train: training features [N, D] and labels [N].
        x_test, y_test: evaluated split [M, D], [M].
        x_val, y_val: validation split; ``None``: a seeded, stratified ``holdout`` fraction of train is held out to
            choose C, then the probe is refit on the whole train split.
        c_grid: candidate inverse regularisation strengths (tried in increasing order, warm-started).
        max_iter: lbfgs iterations per fit.
        standardize: z-score features with the fitting set's mean / std.
        holdout: fraction of train held out when there is no validation split.
        seed: seed of the holdout split (and of the solver).
        topk: reported k (k > number of classes skipped).

    Returns:
        dict: ``C`` (chosen), ``val_top1`` (its validation accuracy, percent), ``val_top1_by_C`` ({C: percent}),
        ``val_source`` (``"val"`` or ``"train_holdout"``), ``top`` ({k: test accuracy percent}), ``predictions``
        (int [M, K] ranked test classes), ``converged`` (False when some fit hit ``max_iter``), ``classifier``.
    """
    from sklearn.exceptions import ConvergenceWarning

    x_train, y_train = np.asarray(x_train, np.float64), np.asarray(y_train)
    x_test, y_test = np.asarray(x_test, np.float64), np.asarray(y_test)
    if len(np.unique(y_train)) < 2:
        raise ValueError("the linear probe needs at least two classes in the train split")
    c_grid = _checked_c_grid(c_grid)
    fit_x, fit_y, sel_x, sel_y, source = _selection_split(x_train, y_train, x_val, y_val, holdout, seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        by_c, best = _search_c(fit_x, fit_y, sel_x, sel_y, c_grid, max_iter, standardize, seed)
        if source == "train_holdout":  # refit on the whole train split with the chosen C
            fit_x, fit_y = x_train, y_train
        scale = _scaler(fit_x, standardize)
        clf = _logistic_regression(best, max_iter, seed).fit(scale(fit_x), fit_y)
        converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    if not converged:
        logging.warning("linear probe: lbfgs did not converge in %d iterations for some C (raise run.probe_max_iter, "
                        "or keep run.probe_standardize: true)", max_iter)
    ranked = _ranked(clf, scale(x_test), min(max(topk), len(clf.classes_)))
    return {"C": best, "val_top1": by_c[best], "val_top1_by_C": by_c, "val_source": source,
            "top": topk_accuracy(ranked, y_test, topk), "predictions": ranked, "converged": converged,
            "classifier": clf}
