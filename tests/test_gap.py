"""lavis_latent.metrics.modality_gap: values on hand-made configurations."""
import math

import pytest
import torch
import torch.nn.functional as F

from lavis_latent.metrics import linear_separability, modality_gap

KEYS = {"centroid_distance", "paired_distance", "alignment", "uniformity_image", "uniformity_text",
        "linear_separability"}


def test_hand_values_swapped_basis():
    zv = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    zt = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    g = modality_gap(zv, zt)
    assert set(g) == KEYS and all(isinstance(v, float) for v in g.values())
    assert g["centroid_distance"] == pytest.approx(0.0, abs=1e-12)  # same centroid (0.5, 0.5)
    assert g["paired_distance"] == pytest.approx(math.sqrt(2))
    assert g["alignment"] == pytest.approx(2.0)
    assert g["uniformity_image"] == pytest.approx(-4.0)  # log exp(-2 * 2)
    assert g["uniformity_text"] == pytest.approx(-4.0)


def test_hand_values_constant_modalities():
    # every image at e1, every text at (0.6, 0.8): centroid = paired distance = sqrt(0.4^2 + 0.8^2)
    n = 6
    zv = torch.tensor([[1.0, 0.0]]).repeat(n, 1)
    zt = torch.tensor([[0.6, 0.8]]).repeat(n, 1)
    g = modality_gap(zv, zt)
    d = math.sqrt(0.4 ** 2 + 0.8 ** 2)
    assert g["centroid_distance"] == pytest.approx(d)
    assert g["paired_distance"] == pytest.approx(d)
    assert g["alignment"] == pytest.approx(d ** 2)
    assert g["uniformity_image"] == pytest.approx(0.0, abs=1e-12)  # collapsed: log 1
    assert g["linear_separability"] == 1.0


def test_against_direct_formulas_and_normalisation():
    gen = torch.Generator().manual_seed(0)
    zv, zt = torch.randn(20, 8, generator=gen) * 3, torch.randn(20, 8, generator=gen)
    g = modality_gap(zv, zt)
    a, b = F.normalize(zv.double(), dim=1), F.normalize(zt.double(), dim=1)
    assert g["centroid_distance"] == pytest.approx(float((a.mean(0) - b.mean(0)).norm()))
    assert g["paired_distance"] == pytest.approx(sum(float((a[j] - b[j]).norm()) for j in range(20)) / 20)
    pairs = [math.exp(-2 * float(((a[j] - a[k]) ** 2).sum())) for j in range(20) for k in range(20) if j != k]
    assert g["uniformity_image"] == pytest.approx(math.log(sum(pairs) / len(pairs)))
    raw = modality_gap(zv, zt, normalize=False)
    assert raw["paired_distance"] == pytest.approx(float((zv - zt).norm(dim=1).mean()), rel=1e-6)


def test_linear_separability_extremes():
    gen = torch.Generator().manual_seed(1)
    base = F.normalize(torch.randn(40, 16, generator=gen), dim=1)
    # identical features: nothing to separate -> constant prediction on a balanced test set = 0.5
    assert modality_gap(base, base.clone())["linear_separability"] == pytest.approx(0.5)
    # a constant offset (the "cone" gap): separable
    shift = torch.zeros(16)
    shift[0] = 2.0
    zt = F.normalize(base + shift, dim=1)
    assert modality_gap(base, zt)["linear_separability"] == 1.0
    # deterministic for a seed; torch backend explicit
    assert linear_separability(base, zt, backend="torch", seed=3) == linear_separability(base, zt, backend="torch",
                                                                                          seed=3)


def test_edge_cases_and_dtypes():
    z = F.normalize(torch.randn(1, 4), dim=1)
    g = modality_gap(z, -z)
    assert g["paired_distance"] == pytest.approx(2.0)
    assert math.isnan(g["uniformity_image"]) and math.isnan(g["linear_separability"])
    h = F.normalize(torch.randn(10, 4), dim=1)
    g16 = modality_gap(h.half(), h.flip(0).half())
    assert all(isinstance(v, float) for v in g16.values())
    assert g16["paired_distance"] == pytest.approx(modality_gap(h, h.flip(0))["paired_distance"], abs=2e-3)


def test_errors():
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(5, 3\)"):
        modality_gap(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="2-D"):
        modality_gap(torch.randn(4), torch.randn(4))
    with pytest.raises(ValueError, match="backend"):
        linear_separability(torch.randn(4, 3), torch.randn(4, 3), backend="svm")
