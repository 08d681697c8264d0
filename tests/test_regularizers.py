"""Value, gradient and edge-case tests of the loss functions in lavis_latent.regularizers.

Expected numbers are worked out independently: by hand with the math module on 2-3 samples, and by a
loop-based transcription of the printed formulas (paper.md Sec. 2) on random inputs.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from lavis_latent.regularizers import (brownian_bridge_loss, contrastive_loss, contrastive_terms,
                                       geometric_consistency_loss, orthogonal_loss, uniformity_loss)


def unit(*shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=dtype), dim=-1)


def feats(n=5, d=4, seed=0, dtype=torch.float64):
    return [unit(n, d, seed=seed + i, dtype=dtype) for i in range(4)]


def dot(a, b):
    return float(sum(x * y for x, y in zip(a, b)))


# ----------------------------------------------------------------------------------------------------------------
# loop transcriptions of the printed formulas (python floats)
def loop_infonce(q, k, tau):
    """-1/N sum_j log( e^{<q_j,k_j>/tau} / sum_l e^{<q_j,k_l>/tau} )."""
    n = len(q)
    total = 0.0
    for j in range(n):
        num = math.exp(dot(q[j], k[j]) / tau)
        den = sum(math.exp(dot(q[j], k[l]) / tau) for l in range(n))
        total += -math.log(num / den)
    return total / n


def loop_con(v, t, va=None, ta=None, tau=0.07):
    v2t, t2v = loop_infonce(v, t, tau), loop_infonce(t, v, tau)
    if va is None:
        return 0.5 * (v2t + t2v)
    # CyCLIP-code in-modal form: denominator over the augmented features of the other samples
    return 0.25 * (v2t + t2v + loop_infonce(v, va, tau) + loop_infonce(t, ta, tau))


def loop_bridge(v, t, va, tt):
    n = len(v)
    total = 0.0
    for j in range(n):
        m = [tt * a + (1 - tt) * b for a, b in zip(v[j], t[j])]
        nm = math.sqrt(sum(x * x for x in m))
        mu = [x / nm for x in m]
        total += sum((a - b) ** 2 for a, b in zip(va[j], mu))
    return total / n


def loop_gc(v, t, va=None, ta=None):
    n = len(v)
    s = 0.0
    for j in range(n):
        for k in range(n):
            s += (dot(v[j], t[k]) - dot(v[k], t[j])) ** 2 + (dot(v[j], v[k]) - dot(t[j], t[k])) ** 2
    out = s / n
    if va is not None:
        s = 0.0
        for j in range(n):
            for k in range(n):
                s += (dot(v[j], v[k]) - dot(va[j], va[k])) ** 2 + (dot(t[j], t[k]) - dot(ta[j], ta[k])) ** 2
        out += s / n + sum((dot(v[j], t[j]) - dot(va[j], ta[j])) ** 2 for j in range(n)) / n
    return out


def loop_uniformity(z, t=2.0, form="wang_isola"):
    n = len(z)
    s, cnt = 0.0, 0
    for j in range(n):
        for k in range(n):
            if form == "wang_isola" and j == k:
                continue
            s += math.exp(-t * sum((a - b) ** 2 for a, b in zip(z[j], z[k])))
            cnt += 1
    return math.log(s / (cnt if form == "wang_isola" else n))


L = lambda x: x.tolist()  # noqa: E731


# ----------------------------------------------------------------------------------------------------------------
# contrastive
class TestContrastive:
    def test_hand_values_two_samples(self):
        zv = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        zt = torch.tensor([[0.6, 0.8], [0.0, 1.0]])
        # V2T: row0 logits (0.6, 0) pos 0; row1 logits (0.8, 1) pos 1
        v2t = 0.5 * (-math.log(math.exp(0.6) / (math.exp(0.6) + 1)) - math.log(math.e / (math.exp(0.8) + math.e)))
        # T2V: t0=(.6,.8) logits (0.6, 0.8) pos 0; t1=(0,1) logits (0, 1) pos 1
        t2v = 0.5 * (-math.log(math.exp(0.6) / (math.exp(0.6) + math.exp(0.8))) - math.log(math.e / (1 + math.e)))
        assert contrastive_loss(zv, zt, temperature=1.0).item() == pytest.approx(0.5 * (v2t + t2v), abs=1e-6)
        # temperature 0.5 on the symmetric identity case: log(1 + e^{-2})
        eye = torch.eye(2)
        assert contrastive_loss(eye, eye, temperature=0.5).item() == pytest.approx(math.log1p(math.exp(-2)), abs=1e-6)

    def test_hand_values_with_aug(self):
        zv = torch.eye(2)
        zt = torch.eye(2)
        zva = torch.tensor([[0.6, 0.8], [1.0, 0.0]])
        zta = torch.eye(2)
        cross = math.log1p(math.exp(-1))  # V2T = T2V
        # V2V: v0=(1,0) vs aug (0.6, 1) pos 0 ; v1=(0,1) vs aug (0.8, 0) pos 1
        v2v = 0.5 * (-math.log(math.exp(0.6) / (math.exp(0.6) + math.e)) - math.log(1 / (math.exp(0.8) + 1)))
        t2t = math.log1p(math.exp(-1))
        expected = 0.25 * (2 * cross + v2v + t2t)
        got = contrastive_loss(zv, zt, zva, zta, temperature=1.0)
        assert got.item() == pytest.approx(expected, abs=1e-6)
        terms = contrastive_terms(zv, zt, zva, zta, temperature=1.0)
        assert terms["v2v"].item() == pytest.approx(v2v, abs=1e-6)

    @pytest.mark.parametrize("with_aug", [False, True])
    def test_against_loop(self, with_aug):
        v, t, va, ta = feats(6, 5, seed=3)
        tau = 0.3
        if with_aug:
            exp = loop_con(L(v), L(t), L(va), L(ta), tau)
            got = contrastive_loss(v, t, va, ta, temperature=tau)
        else:
            exp = loop_con(L(v), L(t), tau=tau)
            got = contrastive_loss(v, t, temperature=tau)
        assert got.item() == pytest.approx(exp, rel=1e-10)

    def test_gradcheck(self):
        v, t, va, ta = [x.requires_grad_() for x in feats(4, 3, seed=1)]
        tau = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda *a: contrastive_loss(*a), (v, t, va, ta, tau))
        assert torch.autograd.gradcheck(lambda a, b: contrastive_loss(a, b, temperature=0.2), (v, t))

    def test_permutation_invariance(self):
        v, t, va, ta = feats(7, 4, seed=5)
        p = torch.randperm(7, generator=torch.Generator().manual_seed(0))
        a = contrastive_loss(v, t, va, ta)
        b = contrastive_loss(v[p], t[p], va[p], ta[p])
        assert torch.allclose(a, b, rtol=1e-12)

    def test_temperature_scale_invariance(self):
        # every logit is bilinear in (z_v or z_t) and (z_t or aug): scaling z_v and z_t_aug by c and tau by c
        # leaves all four terms unchanged
        v, t, va, ta = feats(5, 4, seed=2)
        c = 3.7
        a = contrastive_loss(v, t, va, ta, temperature=0.1)
        b = contrastive_loss(v * c, t, va, ta * c, temperature=0.1 * c)
        assert torch.allclose(a, b, rtol=1e-10)
        # and the loss does depend on tau
        assert not torch.allclose(a, contrastive_loss(v, t, va, ta, temperature=0.2))

    def test_learnable_temperature_tensor(self):
        v, t = feats(4, 3)[:2]
        tau = torch.tensor(0.07, requires_grad=True)
        loss = contrastive_loss(v.float(), t.float(), temperature=tau)
        loss.backward()
        assert tau.grad is not None and torch.isfinite(tau.grad)
        assert loss.item() == pytest.approx(contrastive_loss(v.float(), t.float(), temperature=0.07).item(), rel=1e-6)

    def test_n1_and_zero_vectors(self):
        v, t, va, ta = feats(1, 3)
        assert contrastive_loss(v, t, va, ta).item() == pytest.approx(0.0, abs=1e-12)
        z = torch.zeros(4, 3, requires_grad=True)
        loss = contrastive_loss(z, torch.zeros(4, 3))
        assert loss.item() == pytest.approx(math.log(4), abs=1e-6)
        loss.backward()
        assert torch.isfinite(z.grad).all()

    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
    def test_half_precision(self, dtype):
        v, t, va, ta = [x.to(dtype).requires_grad_() for x in feats(6, 8, dtype=torch.float32)]
        loss = contrastive_loss(v, t, va, ta, temperature=0.07)
        assert loss.dtype == torch.float32
        ref = contrastive_loss(*(x.detach().float() for x in (v, t, va, ta)), temperature=0.07)
        assert torch.allclose(loss, ref, rtol=1e-6)
        loss.backward()
        assert v.grad.dtype == dtype and torch.isfinite(v.grad.float()).all()

    def test_gather_without_group_is_local(self):
        v, t, va, ta = feats(5, 4)
        assert torch.equal(contrastive_loss(v, t, va, ta, gather=True), contrastive_loss(v, t, va, ta))

    def test_errors(self):
        v, t = torch.randn(4, 3), torch.randn(5, 3)
        with pytest.raises(ValueError, match=r"\(4, 3\).*\(5, 3\)"):
            contrastive_loss(v, t)
        with pytest.raises(ValueError, match="2-D"):
            contrastive_loss(torch.randn(4), torch.randn(4))
        with pytest.raises(ValueError, match="together"):
            contrastive_loss(v, v, z_v_aug=v)
        with pytest.raises(ValueError, match=r"z_t_aug.*\(4, 2\)"):
            contrastive_loss(v, v, v, torch.randn(4, 2))
        with pytest.raises(ValueError, match="temperature"):
            contrastive_loss(v, v, temperature=0.0)


# ----------------------------------------------------------------------------------------------------------------
# Brownian bridge
class TestBridge:
    def test_hand_values(self):
        zv, zt, za = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.0]])
        # t = 0.5: mu = (1, 1)/sqrt2 -> (1 - 1/sqrt2)^2 + 1/2 = 2 - sqrt2
        assert brownian_bridge_loss(zv, zt, za, t=0.5).item() == pytest.approx(2 - math.sqrt(2), abs=1e-6)
        # t = 0.25: m = (0.25, 0.75) -> 2 - 2 * 0.25 / sqrt(0.625)
        assert brownian_bridge_loss(zv, zt, za, t=0.25).item() == pytest.approx(2 - 0.5 / math.sqrt(0.625), abs=1e-6)
        # default t is the paper's 0.25
        assert brownian_bridge_loss(zv, zt, za).item() == pytest.approx(2 - 0.5 / math.sqrt(0.625), abs=1e-6)

    def test_against_loop_and_closed_form(self):
        v, t, va, _ = feats(6, 5, seed=11)
        for tt in (0.0, 0.25, 0.6, 1.0):
            got = brownian_bridge_loss(v, t, va, t=tt).item()
            assert got == pytest.approx(loop_bridge(L(v), L(t), L(va), tt), rel=1e-10)
            # exact expansion for unit vectors (paper.md Sec. 4.2 note)
            vva, tva, vt = (v * va).sum(1), (t * va).sum(1), (v * t).sum(1)
            closed = 2 - 2 * (tt * vva + (1 - tt) * tva) / torch.sqrt(tt ** 2 + (1 - tt) ** 2 + 2 * tt * (1 - tt) * vt)
            assert got == pytest.approx(closed.mean().item(), rel=1e-10)

    def test_t_endpoints(self):
        v, t, va, _ = feats(5, 4, seed=7)
        assert torch.allclose(brownian_bridge_loss(v, t, va, t=0.0), ((va - t) ** 2).sum(1).mean())
        assert torch.allclose(brownian_bridge_loss(v, t, va, t=1.0), ((va - v) ** 2).sum(1).mean())

    def test_per_sample_t_and_uniform(self):
        v, t, va, _ = feats(6, 4, seed=8)
        ts = torch.tensor([0.0, 0.1, 0.25, 0.5, 0.9, 1.0], dtype=torch.float64)
        per = brownian_bridge_loss(v, t, va, t=ts)
        each = sum(brownian_bridge_loss(v[j:j + 1], t[j:j + 1], va[j:j + 1], t=float(ts[j])) for j in range(6)) / 6
        assert torch.allclose(per, each)
        g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
        a = brownian_bridge_loss(v, t, va, t="uniform", generator=g1)
        draws = torch.rand(6, generator=g2, dtype=torch.float64)
        assert torch.allclose(a, brownian_bridge_loss(v, t, va, t=draws))
        torch.manual_seed(0)
        b1 = brownian_bridge_loss(v, t, va, t="uniform")
        b2 = brownian_bridge_loss(v, t, va, t="uniform")
        assert not torch.allclose(b1, b2)  # resampled at every call

    def test_antipodal_no_nan(self):
        v = unit(4, 3, seed=2).requires_grad_()
        t = (-v.detach()).clone().requires_grad_()
        va = unit(4, 3, seed=9).requires_grad_()
        loss = brownian_bridge_loss(v, t, va, t=0.5)
        # mean is zero -> mu = 0 -> each sample contributes ||z_aug||^2 = 1
        assert loss.item() == pytest.approx(1.0, abs=1e-12)
        loss.backward()
        for x in (v, t, va):
            assert torch.isfinite(x.grad).all()
        assert torch.all(v.grad == 0) and torch.all(t.grad == 0)

    def test_zero_vectors(self):
        z = torch.zeros(3, 4, requires_grad=True)
        loss = brownian_bridge_loss(z, z, z)
        assert loss.item() == 0.0
        loss.backward()
        assert torch.isfinite(z.grad).all()

    def test_gradcheck(self):
        v, t, va, _ = [x.requires_grad_() for x in feats(4, 3, seed=4)]
        assert torch.autograd.gradcheck(lambda a, b, c: brownian_bridge_loss(a, b, c, t=0.25), (v, t, va))
        ts = torch.tensor([0.1, 0.4, 0.7, 0.95], dtype=torch.float64)
        assert torch.autograd.gradcheck(lambda a, b, c: brownian_bridge_loss(a, b, c, t=ts), (v, t, va))

    def test_permutation_and_rotation_invariance(self):
        v, t, va, _ = feats(6, 4, seed=12)
        p = torch.randperm(6, generator=torch.Generator().manual_seed(1))
        q, _ = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2)))
        a = brownian_bridge_loss(v, t, va)
        assert torch.allclose(a, brownian_bridge_loss(v[p], t[p], va[p]))
        assert torch.allclose(a, brownian_bridge_loss(v @ q, t @ q, va @ q))

    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
    def test_half_precision(self, dtype):
        v, t, va, _ = [x.to(dtype).requires_grad_() for x in feats(5, 8, dtype=torch.float32)]
        loss = brownian_bridge_loss(v, t, va)
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
        assert torch.allclose(loss, brownian_bridge_loss(v.detach().float(), t.detach().float(), va.detach().float()))
        loss.backward()
        assert torch.isfinite(va.grad.float()).all()

    def test_errors(self):
        v = torch.randn(3, 4)
        for bad in (-0.1, 1.5, float("nan"), "gaussian", True):
            with pytest.raises(ValueError, match="t "):
                brownian_bridge_loss(v, v, v, t=bad)
        with pytest.raises(ValueError, match=r"t must be in \[0, 1\]"):
            brownian_bridge_loss(v, v, v, t=torch.tensor([0.2, 0.5, 1.2]))
        with pytest.raises(ValueError, match=r"shape \[N\]"):
            brownian_bridge_loss(v, v, v, t=torch.tensor([0.2, 0.5]))
        with pytest.raises(ValueError, match=r"z_v_aug.*\(3, 5\)"):
            brownian_bridge_loss(v, v, torch.randn(3, 5))
        with pytest.raises(ValueError, match="2-D"):
            brownian_bridge_loss(v[None], v[None], v[None])


# ----------------------------------------------------------------------------------------------------------------
# geometric consistency
class TestGeometric:
    def test_hand_values(self):
        e1, e2 = [1.0, 0.0], [0.0, 1.0]
        zv, zt = torch.tensor([e1, e2]), torch.tensor([e1, e1])
        # <V_j,T_k> = [[1,1],[0,0]] -> antisym part sum sq = 2, /N = 1; VV = I, TT = ones -> sum sq = 2, /N = 1
        assert geometric_consistency_loss(zv, zt).item() == pytest.approx(2.0)
        assert geometric_consistency_loss(zv, zt, zv, zt).item() == pytest.approx(2.0)  # L^a_GC = 0
        # swapped aug images: VaVa = I (no in-modal change), pair term: <V_j,T_j> = (1, 0), <Va_j,Ta_j> = (0, 1)
        zva = torch.tensor([e2, e1])
        assert geometric_consistency_loss(zv, zt, zva, zt).item() == pytest.approx(3.0)

    @pytest.mark.parametrize("with_aug", [False, True])
    def test_against_loop(self, with_aug):
        v, t, va, ta = feats(5, 3, seed=21)
        if with_aug:
            got, exp = geometric_consistency_loss(v, t, va, ta), loop_gc(L(v), L(t), L(va), L(ta))
        else:
            got, exp = geometric_consistency_loss(v, t), loop_gc(L(v), L(t))
        assert got.item() == pytest.approx(exp, rel=1e-10)

    def test_linear_in_batch_size(self):
        # the 1/N double sums grow with N: duplicating the batch doubles L_GC (4x the pairs, half the 1/N);
        # the single-sum pair term of L^a_GC is a plain mean and stays the same
        v, t, va, ta = feats(4, 3, seed=2)
        d = lambda x: torch.cat([x, x])  # noqa: E731
        assert torch.allclose(geometric_consistency_loss(d(v), d(t)), 2 * geometric_consistency_loss(v, t))
        pair = loop_gc(L(v), L(t), L(va), L(ta)) - loop_gc(L(v), L(t), L(v), L(t))  # = L^a_GC
        big = geometric_consistency_loss(d(v), d(t), d(va), d(ta)) - geometric_consistency_loss(d(v), d(t))
        small_pair = sum((dot(a, b) - dot(c, e)) ** 2 for a, b, c, e in zip(L(v), L(t), L(va), L(ta))) / 4
        assert big.item() == pytest.approx(2 * (pair - small_pair) + small_pair, rel=1e-10)

    def test_gradcheck(self):
        xs = [x.requires_grad_() for x in feats(4, 3, seed=6)]
        assert torch.autograd.gradcheck(geometric_consistency_loss, tuple(xs))

    def test_invariances_and_edges(self):
        v, t, va, ta = feats(6, 4, seed=13)
        p = torch.randperm(6, generator=torch.Generator().manual_seed(3))
        q, _ = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(4)))
        a = geometric_consistency_loss(v, t, va, ta)
        assert torch.allclose(a, geometric_consistency_loss(v[p], t[p], va[p], ta[p]))
        assert torch.allclose(a, geometric_consistency_loss(v @ q, t @ q, va @ q, ta @ q))
        # N = 1: <V,T> - <V,T> = 0 ; <V,V> - <T,T> = 0 for unit vectors
        assert geometric_consistency_loss(v[:1], t[:1]).item() == pytest.approx(0.0, abs=1e-12)
        z = torch.zeros(3, 4, requires_grad=True)
        geometric_consistency_loss(z, z, z, z).backward()
        assert torch.isfinite(z.grad).all()

    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
    def test_half_precision(self, dtype):
        xs = [x.to(dtype) for x in feats(5, 8, dtype=torch.float32)]
        loss = geometric_consistency_loss(*xs)
        assert loss.dtype == torch.float32
        assert torch.allclose(loss, geometric_consistency_loss(*(x.float() for x in xs)))

    def test_errors(self):
        v = torch.randn(3, 4)
        with pytest.raises(ValueError, match="together"):
            geometric_consistency_loss(v, v, v)
        with pytest.raises(ValueError, match=r"\(3, 4\).*\(2, 4\)"):
            geometric_consistency_loss(v, torch.randn(2, 4))


# ----------------------------------------------------------------------------------------------------------------
# orthogonal and uniformity
class TestOrthoUniformity:
    def test_orthogonal_hand_and_loop(self):
        z, zi = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[0.6, 0.8], [1.0, 0.0]])
        assert orthogonal_loss(z, zi).item() == pytest.approx((0.36 + 0.0) / 2)
        a, b = feats(5, 4, seed=30)[:2]
        exp = sum(dot(x, y) ** 2 for x, y in zip(L(a), L(b))) / 5
        assert orthogonal_loss(a, b).item() == pytest.approx(exp, rel=1e-12)
        assert torch.autograd.gradcheck(orthogonal_loss, (a.requires_grad_(), b.requires_grad_()))

    def test_uniformity_hand(self):
        z = torch.eye(2)  # ||z0 - z1||^2 = 2
        assert uniformity_loss(z).item() == pytest.approx(-4.0, abs=1e-6)
        assert uniformity_loss(z, t=1.0).item() == pytest.approx(-2.0, abs=1e-6)
        # printed: log( 1/2 (1 + 1 + 2 e^{-4}) ) = log(1 + e^{-4})
        assert uniformity_loss(z, form="printed").item() == pytest.approx(math.log1p(math.exp(-4)), abs=1e-6)
        # three points: d^2 = (2, 2, 2) for the basis of R^3 -> W&I -4
        assert uniformity_loss(torch.eye(3)).item() == pytest.approx(-4.0, abs=1e-6)

    @pytest.mark.parametrize("form", ["wang_isola", "printed"])
    def test_uniformity_loop_and_gradcheck(self, form):
        z = unit(6, 4, seed=40)
        assert uniformity_loss(z, 2.0, form).item() == pytest.approx(loop_uniformity(L(z), 2.0, form), rel=1e-10)
        p = torch.randperm(6, generator=torch.Generator().manual_seed(0))
        assert torch.allclose(uniformity_loss(z[p], 2.0, form), uniformity_loss(z, 2.0, form))
        assert torch.autograd.gradcheck(lambda x: uniformity_loss(x, 2.0, form), (z.requires_grad_(),))

    def test_uniformity_matches_wang_isola_pdist(self):
        z = unit(7, 5, seed=41)
        ref = torch.pdist(z, p=2).pow(2).mul(-2).exp().mean().log()
        assert torch.allclose(uniformity_loss(z), ref)

    def test_uniformity_edges(self):
        z1 = unit(1, 3).requires_grad_()
        for form in ("wang_isola", "printed"):
            v = uniformity_loss(z1, form=form)
            assert v.item() == 0.0
            v.backward()
            assert torch.all(z1.grad == 0)
        same = unit(1, 3).repeat(4, 1).requires_grad_()  # collapsed batch: distance 0 everywhere
        v = uniformity_loss(same)
        assert v.item() == pytest.approx(0.0, abs=1e-12)
        v.backward()
        assert torch.isfinite(same.grad).all()
        zero = torch.zeros(3, 2, requires_grad=True)
        uniformity_loss(zero).backward()
        assert torch.isfinite(zero.grad).all()
        h = unit(5, 8, dtype=torch.float32).to(torch.bfloat16)
        assert uniformity_loss(h).dtype == torch.float32
        assert torch.allclose(uniformity_loss(h), uniformity_loss(h.float()))

    def test_uniformity_errors(self):
        with pytest.raises(ValueError, match="2-D"):
            uniformity_loss(torch.randn(3))
        with pytest.raises(ValueError, match="> 0"):
            uniformity_loss(torch.randn(3, 2), t=0)
        with pytest.raises(ValueError, match="form"):
            uniformity_loss(torch.randn(3, 2), form="paper")
        with pytest.raises(ValueError, match=r"\(3, 2\).*\(3, 4\)"):
            orthogonal_loss(torch.randn(3, 2), torch.randn(3, 4))


# ----------------------------------------------------------------------------------------------------------------
def test_losses_stay_float32_under_autocast():
    # under AMP the losses switch autocast off for their own body: same float32 value as outside autocast
    v, t, va, ta = feats(8, 16, seed=50, dtype=torch.float32)
    fns = [
        lambda: contrastive_loss(v, t, va, ta, temperature=0.07),
        lambda: brownian_bridge_loss(v, t, va),
        lambda: geometric_consistency_loss(v, t, va, ta),
        lambda: orthogonal_loss(v, va),
        lambda: uniformity_loss(v),
    ]
    ref = [f() for f in fns]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert (v @ t.t()).dtype == torch.bfloat16  # autocast really is on
        got = [f() for f in fns]
    for r, g in zip(ref, got):
        assert g.dtype == torch.float32
        assert torch.equal(r, g)
