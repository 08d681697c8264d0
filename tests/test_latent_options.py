"""The options that make the regularizers work in ALBEF (issue 12): bridge forms, sample ids (multi-positive
in-modal terms), batch-invariant geometric consistency. Pure torch, against loop-based references."""
import math

import pytest
import torch
import torch.nn.functional as F

from lavis_latent.regularizers import (FeatureSeparation, LatentStructure, brownian_bridge_loss, contrastive_terms,
                                       geometric_consistency_loss, geometric_consistency_terms)
from lavis_latent.regularizers.contrastive import info_nce


def unit(n, d, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g, dtype=dtype), dim=1)


# ---------------------------------------------------------------------------------------------------------------
# bridge forms: which tensors carry gradient, and whether the loss can be satisfied
# ---------------------------------------------------------------------------------------------------------------
def bridge(form, z_v, z_t, z_va, t=0.25):
    return LatentStructure({"bridge": {"form": form, "t": t}})(z_v, z_t, z_va, z_va)["loss_bridge"]


@pytest.mark.parametrize("form", ["literal", "online"])
@pytest.mark.parametrize("aug_has_grad", [False, True])
def test_bridge_gradient_reaches_the_tensors_of_its_form(form, aug_has_grad):
    z_v, z_t, z_va = (unit(6, 8, s).requires_grad_() for s in (0, 1, 2))
    z_va_in = z_va if aug_has_grad else z_va.detach()
    bridge(form, z_v, z_t, z_va_in).backward()
    # literal: the augmented view is the point placed on the bridge, z_V and z_T move the bridge mean;
    # online: z_V is the point, z_T (and z^a_V when it carries gradient) move the mean. Both reach z_V and z_T.
    assert z_v.grad is not None and z_v.grad.abs().sum() > 0
    assert z_t.grad is not None and z_t.grad.abs().sum() > 0
    assert (z_va.grad is not None) == aug_has_grad


def test_online_form_places_the_online_feature_on_the_bridge():
    z_v, z_t, z_va = unit(5, 7, 0), unit(5, 7, 1), unit(5, 7, 2)
    online = bridge("online", z_v, z_t, z_va, t=0.3)
    mu = F.normalize(0.3 * z_va + 0.7 * z_t, dim=1)
    assert torch.allclose(online, ((z_v - mu) ** 2).sum(1).mean(), atol=1e-12)
    # the literal form is the package function exactly as before
    assert torch.equal(bridge("literal", z_v, z_t, z_va, t=0.3), brownian_bridge_loss(z_v, z_t, z_va, t=0.3))
    # the online form's gradient on the point: 2 (z_V - mu) / N (mu does not depend on z_V)
    z = z_v.clone().requires_grad_()
    bridge("online", z, z_t, z_va, t=0.3).backward()
    assert torch.allclose(z.grad, 2 * (z_v - mu) / 5, atol=1e-12)


def optimise_bridge(form, target, steps=300, n=16, d=64, seed=0):
    """Free unit vectors z_V, z_T (Adam) with the bridge loss; the augmented view ``target``:
    ``"momentum"`` = an EMA copy of z_V (0.9), detached, as ALBEF's momentum encoder gives it;
    ``"grad"`` = a free vector of its own that receives gradient, as CLIP's augmented view does."""
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(n, d, generator=g, requires_grad=True)
    t = torch.randn(n, d, generator=g, requires_grad=True)
    a = torch.randn(n, d, generator=g, requires_grad=True)
    ema = v.detach().clone()
    opt = torch.optim.Adam([v, t, a], lr=0.05)
    for _ in range(steps):
        z_v, z_t = F.normalize(v, dim=1), F.normalize(t, dim=1)
        if target == "momentum":
            ema = 0.9 * ema + 0.1 * v.detach()
            z_a = F.normalize(ema, dim=1)
        else:
            z_a = F.normalize(a, dim=1)
        loss = bridge(form, z_v, z_t, z_a)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss)


def test_bridge_online_form_can_be_satisfied_with_a_momentum_target():
    assert optimise_bridge("online", "momentum") < 0.02


def test_bridge_literal_form_is_satisfied_only_when_the_augmented_view_has_gradient():
    assert optimise_bridge("literal", "grad") < 0.02  # CLIP: the augmented view moves onto the bridge
    # ALBEF's literal reading: the target lags behind z_V, and z_V runs away from z_T (see LatentStructure)
    assert optimise_bridge("literal", "momentum") > 0.3


# ---------------------------------------------------------------------------------------------------------------
# sample ids: multi-positive in-modal terms
# ---------------------------------------------------------------------------------------------------------------
def multi_positive_reference(q, k, tau, ids):
    """-1/N sum_j 1/P_j sum_{k: id_k = id_j} log softmax_k(<q_j, k_k> / tau), with python loops."""
    total = 0.0
    for j in range(q.shape[0]):
        logits = [float(q[j] @ k[m]) / tau for m in range(k.shape[0])]
        log_z = math.log(sum(math.exp(x) for x in logits))
        pos = [m for m in range(k.shape[0]) if ids[m] == ids[j]]
        total += -sum(logits[m] - log_z for m in pos) / len(pos)
    return total / q.shape[0]


IDS = [0, 0, 1, 2, 2, 2, 3]


def test_inmodal_with_repeated_ids_equals_loop_reference():
    z_v, z_t, z_va, z_ta = (unit(7, 5, s) for s in range(4))
    ids = torch.tensor(IDS)
    terms = contrastive_terms(z_v, z_t, z_va, z_ta, 0.2, sample_ids=ids)
    for key, (q, k) in {"v2v": (z_v, z_va), "t2t": (z_t, z_ta), "v2t": (z_v, z_t), "t2v": (z_t, z_v)}.items():
        assert terms[key].item() == pytest.approx(multi_positive_reference(q, k, 0.2, IDS), abs=1e-10), key
    out = LatentStructure({"inmodal": {}})(z_v, z_t, z_va, z_ta, 0.2, sample_ids=ids)["loss_inmodal"]
    ref = 0.5 * (multi_positive_reference(z_v, z_va, 0.2, IDS) + multi_positive_reference(z_t, z_ta, 0.2, IDS))
    assert out.item() == pytest.approx(ref, abs=1e-10)
    # the repeated ids change the loss: the other captions of an image are no longer negatives
    plain = LatentStructure({"inmodal": {}})(z_v, z_t, z_va, z_ta, 0.2)["loss_inmodal"]
    assert abs(out.item() - plain.item()) > 1e-3


def test_separation_con_with_repeated_ids_equals_loop_reference():
    zi = [unit(7, 5, s) for s in range(4)]
    sep = FeatureSeparation(1, 1, 5)
    con = sep.loss_terms(zi[0], zi[1], zi[0], zi[1], zi[2], zi[3], 0.2, sample_ids=torch.tensor(IDS))["con"]
    ref = multi_positive_reference(zi[0], zi[2], 0.2, IDS) + multi_positive_reference(zi[1], zi[3], 0.2, IDS)
    assert con.item() == pytest.approx(ref, abs=1e-10)


def test_distinct_ids_give_the_id_free_loss_and_ids_accept_lavis_shapes():
    z_v, z_t, z_va, z_ta = (unit(6, 5, s) for s in range(4))
    free = contrastive_terms(z_v, z_t, z_va, z_ta, 0.1)
    for ids in (torch.arange(6) * 7, torch.arange(6).view(-1, 1), list(range(6))):
        with_ids = contrastive_terms(z_v, z_t, z_va, z_ta, 0.1, sample_ids=ids)
        for key in free:
            assert torch.allclose(with_ids[key], free[key], atol=1e-12), key
    q, k = unit(4, 3, 0), unit(4, 3, 1)
    assert torch.allclose(info_nce(q, k, torch.tensor(0.5, dtype=q.dtype), 0, torch.arange(4), torch.arange(4)),
                          info_nce(q, k, torch.tensor(0.5, dtype=q.dtype)), atol=1e-12)


def test_multi_positive_gradient_and_permutation_invariance():
    z_v, z_va = unit(7, 5, 0).requires_grad_(), unit(7, 5, 1)
    ids = torch.tensor(IDS)
    loss = contrastive_terms(z_v, z_v.detach(), z_va, z_va, 0.2, cross_modal=False, sample_ids=ids)["v2v"]
    loss.backward()
    assert torch.isfinite(z_v.grad).all() and z_v.grad.abs().sum() > 0
    perm = torch.tensor([3, 0, 6, 1, 5, 2, 4])
    permuted = contrastive_terms(z_v.detach()[perm], z_v.detach()[perm], z_va[perm], z_va[perm], 0.2,
                                 cross_modal=False, sample_ids=ids[perm])["v2v"]
    assert torch.allclose(permuted, loss.detach(), atol=1e-12)


@pytest.mark.parametrize("bad, message", [
    (torch.tensor([0.5, 1.0, 2.0]), "integers"),
    (torch.tensor([0, 1]), r"shape \[N\] = \(3,\)"),
    ("abc", "sequence of N integers"),
])
def test_bad_ids_are_errors(bad, message):
    z = unit(3, 4, 0)
    with pytest.raises(ValueError, match=message):
        contrastive_terms(z, z, z, z, 0.1, sample_ids=bad)


# ---------------------------------------------------------------------------------------------------------------
# geometric consistency: paper and batch-invariant normalisations
# ---------------------------------------------------------------------------------------------------------------
def gc_reference(v, t, va, ta, normalization):
    """L_GC + L^a_GC with loops; ``mean``: every double sum / N^2, aug_pair / N; ``paper``: 1/N everywhere."""
    n = v.shape[0]
    dot = lambda a, b: float(a @ b)  # noqa: E731
    double = 0.0
    for j in range(n):
        for k in range(n):
            double += (dot(v[j], t[k]) - dot(v[k], t[j])) ** 2 + (dot(v[j], v[k]) - dot(t[j], t[k])) ** 2
            double += (dot(v[j], v[k]) - dot(va[j], va[k])) ** 2 + (dot(t[j], t[k]) - dot(ta[j], ta[k])) ** 2
    single = sum((dot(v[j], t[j]) - dot(va[j], ta[j])) ** 2 for j in range(n))
    return (double / n + single / n) if normalization == "paper" else (double / n ** 2 + single / n)


@pytest.mark.parametrize("normalization", ["paper", "mean"])
def test_gc_equals_loop_reference(normalization):
    xs = [unit(6, 4, s) for s in range(4)]
    got = geometric_consistency_loss(*xs, normalization=normalization)
    assert got.item() == pytest.approx(gc_reference(*xs, normalization), abs=1e-10)


def test_gc_mean_is_batch_invariant_and_paper_grows_with_the_batch():
    xs = [unit(8, 6, s) for s in range(4)]
    doubled = [torch.cat([x, x]) for x in xs]
    mean, mean2 = (geometric_consistency_terms(*a, normalization="mean") for a in (xs, doubled))
    for key in mean:  # every part, so the mix of the parts does not change with N either
        assert torch.allclose(mean[key], mean2[key], atol=1e-12), key
    paper, paper2 = (geometric_consistency_loss(*a, normalization="paper") for a in (xs, doubled))
    assert paper2.item() > 1.5 * paper.item()
    # the paper's 1/N double sums = N x the mean; aug_pair is 1/N sum_j under both
    p, m = geometric_consistency_terms(*xs, normalization="paper"), mean
    assert torch.allclose(p["cross"], 8 * m["cross"]) and torch.allclose(p["aug_pair"], m["aug_pair"])


def test_gc_paper_form_is_the_previous_formula():
    v, t, va, ta = (unit(5, 3, s) for s in range(4))
    vt, vv, tt = v @ t.t(), v @ v.t(), t @ t.t()
    previous = (((vt - vt.t()) ** 2).sum() + ((vv - tt) ** 2).sum() + ((vv - va @ va.t()) ** 2).sum()
                + ((tt - ta @ ta.t()) ** 2).sum() + (((v * t).sum(1) - (va * ta).sum(1)) ** 2).sum()) / 5
    assert torch.allclose(geometric_consistency_loss(v, t, va, ta), previous, atol=1e-12)
    structure = LatentStructure({"geometric": {"weight": 0.5}})(v, t, va, ta)["loss_geo"]
    assert torch.allclose(structure, 0.5 * previous, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# config keys and model defaults
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cfg, message", [
    ({"bridge": {"form": "reversed"}}, r"'bridge\.form' must be one of literal, online, got 'reversed'"),
    ({"geometric": {"normalization": "sum"}}, r"'geometric\.normalization' must be one of paper, mean, got 'sum'"),
    ({"geometric": {"gather": "yes"}}, r"'geometric\.gather' must be true or false, got 'yes'"),
])
def test_new_keys_are_validated(cfg, message):
    with pytest.raises(ValueError, match=message):
        LatentStructure(cfg)


def test_model_defaults_apply_unless_the_config_says_otherwise():
    defaults = {"bridge": {"form": "online"}}
    assert LatentStructure({"bridge": {}}, defaults=defaults).spec["bridge"]["form"] == "online"
    assert LatentStructure({"bridge": {"form": "literal"}}, defaults=defaults).spec["bridge"]["form"] == "literal"
    assert LatentStructure({"bridge": {}}).spec["bridge"]["form"] == "literal"  # the package default: the paper
    with pytest.raises(ValueError, match="not a default a model may set"):
        LatentStructure({}, defaults={"bridge": {"weight": 2.0}})
