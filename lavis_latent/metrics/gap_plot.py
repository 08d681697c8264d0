"""A picture of the modality gap (the paper's Fig. 2; Liang et al. 2022, "Mind the Gap", Fig. 1).

``plot_modality_gap(z_v, z_t, path)`` projects paired image and text features onto the first two principal
components of their joint set, draws both modalities, joins each pair with a thin line, marks both centroids and
titles the picture with the measures of :func:`lavis_latent.metrics.modality_gap`. ``combine_panels`` puts several
such PNGs side by side. ``pca_project`` is the projection alone (torch only).

matplotlib (``pip install 'lavis-latent[plot]'``) is imported inside the drawing functions, so importing
``lavis_latent.metrics`` does not need it; figures are drawn on matplotlib's Agg canvas without pyplot, so no global
backend is switched and nothing opens a window.
"""
from __future__ import annotations

import math
import os
import textwrap
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from .gap import _check, modality_gap

__all__ = ["pca_project", "plot_modality_gap", "combine_panels", "split_plot_path", "written_split_plot"]

#: figure size (inches) and resolution of one panel: 400 x 400 pixels, small enough to commit
PANEL_INCHES = 4.0
DPI = 100


def _matplotlib():
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError("drawing the modality gap needs matplotlib: pip install 'lavis-latent[plot]'") from err
    return Figure, FigureCanvasAgg


def split_plot_path(output_dir: str, split: str) -> str:
    """``<output_dir>/gap_<split>.png``: where the evaluation tasks draw a split's gap (``run.plot_gap``)."""
    return os.path.join(output_dir, f"gap_{split}.png")


def written_split_plot(output_dir: str, split: str = "test") -> Optional[str]:
    """:func:`split_plot_path` of a run's folder when that picture was written, else None."""
    path = split_plot_path(output_dir, split)
    return path if os.path.isfile(path) else None


def _check_pairs(z_v: torch.Tensor, z_t: torch.Tensor) -> None:
    _check(z_v, z_t)
    if z_v.shape[0] < 2:
        raise ValueError(f"a modality-gap picture needs at least 2 pairs, got {z_v.shape[0]}")


@torch.no_grad()
def pca_project(z_v: torch.Tensor, z_t: torch.Tensor, normalize: bool = True,
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Project paired features onto the first two principal components of their joint set.

    PCA is fitted on the concatenation ``[z_v; z_t]`` (as Liang et al. 2022), centred on its joint mean. When the
    offset between the two modality centroids dominates the variance, the first component is (close to) that offset
    direction, so the gap shows as a separation along the horizontal axis. Each component's sign is fixed so that
    its largest-magnitude loading is positive (deterministic across runs and backends).

    Args:
        z_v, z_t: [N, D] paired image / text features (N >= 2), any float dtype or device.
        normalize: L2-normalise each row first (default; the gap is measured on normalised features).

    Returns:
        ``(p_v, p_t, explained)``: [N, 2] float64 coordinates of the images and the texts, and the [2] fraction of
        the joint set's total variance along each component (0 for a component that does not exist, D = 1).
    """
    _check_pairs(z_v, z_t)
    zv = z_v.detach().to("cpu", torch.float64)
    zt = z_t.detach().to("cpu", torch.float64)
    if normalize:
        zv, zt = F.normalize(zv, dim=1), F.normalize(zt, dim=1)
    x = torch.cat([zv, zt])
    xc = x - x.mean(0, keepdim=True)
    _, s, vh = torch.linalg.svd(xc, full_matrices=False)
    k = min(2, vh.shape[0])
    comps = vh[:k].clone()
    lead = comps.abs().argmax(dim=1)
    signs = torch.sign(comps[torch.arange(k), lead])
    comps *= torch.where(signs == 0, torch.ones_like(signs), signs)[:, None]
    proj = xc @ comps.t()
    var = s ** 2
    total = var.sum()
    explained = var[:k] / total if total > 0 else torch.zeros(k, dtype=torch.float64)
    if k < 2:  # one-dimensional features: the second coordinate is 0
        proj = torch.cat([proj, torch.zeros(proj.shape[0], 2 - k, dtype=proj.dtype)], 1)
        explained = torch.cat([explained, torch.zeros(2 - k, dtype=torch.float64)])
    n = zv.shape[0]
    return proj[:n], proj[n:], explained


def _fmt(value) -> str:
    value = float(value)
    return "nan" if math.isnan(value) else f"{value:.3f}"


def _gap_caption(gap: Dict[str, float]) -> str:
    """The one-line summary of ``modality_gap``'s measures written under a picture's title."""
    return (f"centroid dist {_fmt(gap['centroid_distance'])} · paired dist {_fmt(gap['paired_distance'])} · "
            f"lin. sep. {_fmt(gap['linear_separability'])}")


def plot_modality_gap(z_v: torch.Tensor, z_t: torch.Tensor, path: str, title: Optional[str] = None,
                      gap: Optional[Dict[str, float]] = None, max_pairs: Optional[int] = None) -> str:
    """Draw paired image and text features in 2-D and write the picture to ``path`` (a PNG, 400 x 400 pixels).

    Both modalities are L2-normalised and projected with :func:`pca_project` (PCA on the joint set, as Liang et al.
    2022; it keeps the centroid offset direction when that dominates). Images and texts are drawn in two colours,
    each pair joined by a thin grey line, both centroids marked (a ring) and joined by a dashed line; the axes have
    equal aspect. The title is ``title`` (wrapped) over a line with the centroid distance, the mean paired distance
    and the linear separability.

    Args:
        z_v, z_t: [N, D] paired features, row j of each is a pair (N >= 2).
        path: where to write the PNG (its folder is created).
        title: first title line(s), e.g. the model and split (``\\n`` starts a new line; long lines are wrapped);
            none if None.
        gap: the dict of :func:`lavis_latent.metrics.modality_gap` for these features; computed if None.
        max_pairs: draw at most this many pairs (evenly spaced over the N rows; the projection and the measures
            still use all N). All if None.

    Returns:
        ``path``.

    Raises:
        ValueError: ``z_v`` / ``z_t`` are not 2-D, differ in shape, or hold fewer than 2 pairs; ``max_pairs`` < 2.
        ImportError: matplotlib is not installed.
    """
    _check_pairs(z_v, z_t)
    if max_pairs is not None and int(max_pairs) < 2:
        raise ValueError(f"max_pairs must be at least 2 (or None for all pairs), got {max_pairs!r}")
    Figure, FigureCanvasAgg = _matplotlib()
    from matplotlib.collections import LineCollection

    if gap is None:
        gap = modality_gap(z_v, z_t)
    p_v, p_t, explained = pca_project(z_v, z_t)
    c_v, c_t = p_v.mean(0), p_t.mean(0)  # centroids of the projected (= projection of the centroids)
    n = p_v.shape[0]
    if max_pairs is not None and n > int(max_pairs):
        keep = torch.linspace(0, n - 1, int(max_pairs), dtype=torch.float64).round().long()
        p_v, p_t = p_v[keep], p_t[keep]
    pv, pt = p_v.numpy(), p_t.numpy()
    count = f"{len(pv)} of {n}" if len(pv) < n else f"{n}"

    fig = Figure(figsize=(PANEL_INCHES, PANEL_INCHES), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    segments = [[(a[0], a[1]), (b[0], b[1])] for a, b in zip(pv, pt)]
    ax.add_collection(LineCollection(segments, colors="0.6", linewidths=0.4, alpha=0.5, zorder=1))
    size = 10 if len(pv) > 200 else 16
    ax.scatter(pv[:, 0], pv[:, 1], s=size, c="tab:blue", alpha=0.75, linewidths=0, label="image", zorder=2)
    ax.scatter(pt[:, 0], pt[:, 1], s=size, c="tab:orange", alpha=0.75, linewidths=0, label="text", zorder=2)
    ax.plot([c_v[0], c_t[0]], [c_v[1], c_t[1]], ls="--", lw=1.0, c="black", zorder=3)
    # centroids: rings with a cross, so that a cloud collapsed onto its centroid stays visible inside
    for c, colour, label in ((c_v, "tab:blue", "centroids"), (c_t, "tab:orange", None)):
        ax.scatter([c[0]], [c[1]], marker="o", s=130, facecolors="none", edgecolors="black", linewidths=2.6,
                   zorder=4)
        ax.scatter([c[0]], [c[1]], marker="o", s=130, facecolors="none", edgecolors=colour, linewidths=1.4,
                   zorder=4, label=label)
        ax.scatter([c[0]], [c[1]], marker="+", s=40, c="black", linewidths=0.8, zorder=5)
    ax.set_aspect("equal", adjustable="datalim")
    ax.autoscale_view()
    ax.set_xlabel(f"PC1 ({100 * float(explained[0]):.0f}% var.)", fontsize=8)
    ax.set_ylabel(f"PC2 ({100 * float(explained[1]):.0f}% var.)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(loc="best", fontsize=7, title=f"{count} pairs", title_fontsize=7, framealpha=0.85, markerscale=1.0,
              handletextpad=0.3, borderpad=0.3)
    lines = []
    for part in (str(title).split("\n") if title else []):
        lines += textwrap.wrap(part, width=60, break_long_words=False)
    ax.set_title("\n".join(lines + [_gap_caption(gap)]), fontsize=8)
    fig.tight_layout(pad=0.4)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png")
    return path


def combine_panels(png_paths: Sequence[str], out_path: str, titles: Optional[Sequence[str]] = None,
                   ncols: Optional[int] = None) -> str:
    """Put PNG pictures (e.g. of :func:`plot_modality_gap`) side by side in one PNG, at their own resolution.

    Args:
        png_paths: the pictures, in reading order (at least one).
        out_path: where to write the combined PNG (its folder is created).
        titles: one title per picture, drawn above it; none if None.
        ncols: pictures per row; all in one row if None.

    Returns:
        ``out_path``.
    """
    paths = list(png_paths)
    if not paths:
        raise ValueError("combine_panels needs at least one PNG")
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"combine_panels: no such file(s): {missing}")
    if titles is not None and len(titles) != len(paths):
        raise ValueError(f"combine_panels: {len(titles)} titles for {len(paths)} pictures")
    ncols = len(paths) if ncols is None else int(ncols)
    if ncols < 1:
        raise ValueError(f"ncols must be at least 1, got {ncols}")
    Figure, FigureCanvasAgg = _matplotlib()
    import matplotlib.image as mpimg

    images = [mpimg.imread(p) for p in paths]
    nrows = math.ceil(len(images) / ncols)
    height = max(im.shape[0] for im in images)
    width = max(im.shape[1] for im in images)
    title_px = 24 if titles else 0
    fig = Figure(figsize=(ncols * width / DPI, nrows * (height + title_px) / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    for i, im in enumerate(images):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.imshow(im, interpolation="none")
        ax.set_axis_off()
        if titles:
            ax.set_title(str(titles[i]), fontsize=9)
    # every cell is title_px + height pixels: the axes keep the pictures' own size (no resampling)
    fig.subplots_adjust(left=0, right=1, bottom=0, top=1 - title_px / (nrows * (height + title_px)), wspace=0,
                        hspace=title_px / height)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    fig.savefig(out_path, dpi=DPI, format="png")
    return out_path
