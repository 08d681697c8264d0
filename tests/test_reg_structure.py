"""FeatureSeparation (L_Sep, paper Sec. 4.1) and LatentStructure (config -> weighted dict of losses)."""
import math

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from lavis_latent.regularizers import (FeatureSeparation, LatentStructure, brownian_bridge_loss, contrastive_loss,
                                       contrastive_terms, geometric_consistency_loss, orthogonal_loss,
                                       uniformity_loss)


def unit(n, d, seed, dtype=torch.float64):
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=dtype), dim=-1)


def rnd(n, d, seed, dtype=torch.float64):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def loop_sep(v, t, vi, ti, via, tia, tau, ut=2.0, printed_uni=False):
    """Loop transcription of L_Sep = L_Ortho + L^i_Con + L^i_Uni (aug view of the independent features as the
    in-modal positive and, as in contrastive_loss, as the negatives)."""
    n = len(v)
    ortho = sum(dot(v[j], vi[j]) ** 2 + dot(t[j], ti[j]) ** 2 for j in range(n)) / n

    def nce(q, k):
        return -sum(math.log(math.exp(dot(q[j], k[j]) / tau) / sum(math.exp(dot(q[j], k[m]) / tau)
                                                                    for m in range(n))) for j in range(n)) / n

    con = nce(vi, via) + nce(ti, tia)

    def g(a, b):
        return math.exp(-ut * sum((x - y) ** 2 for x, y in zip(a, b)))

    if printed_uni:
        uni = math.log(sum(g(vi[j], vi[k]) + g(ti[j], ti[k]) for j in range(n) for k in range(n)) / n)
    else:
        uni = sum(math.log(sum(g(z[j], z[k]) for j in range(n) for k in range(n) if j != k) / (n * (n - 1)))
                  for z in (vi, ti))
    return ortho + con + uni


# ----------------------------------------------------------------------------------------------------------------
class TestFeatureSeparation:
    def test_forward_shapes_and_norm(self):
        sep = FeatureSeparation(7, 5, 4)
        zvi, zti = sep(torch.randn(6, 7), torch.randn(6, 5))
        assert zvi.shape == (6, 4) and zti.shape == (6, 4)
        assert torch.allclose(zvi.norm(dim=1), torch.ones(6)) and torch.allclose(zti.norm(dim=1), torch.ones(6))
        with pytest.raises(ValueError, match=r"\(6, 6\).*\[N, 7\]"):
            sep(torch.randn(6, 6), torch.randn(6, 5))
        with pytest.raises(ValueError, match=r"\(6, 7\).*\(5, 5\)"):
            sep(torch.randn(6, 7), torch.randn(5, 5))

    @pytest.mark.parametrize("printed", [False, True])
    def test_loss_against_loop(self, printed):
        sep = FeatureSeparation(3, 3, 4, uniformity_form="printed" if printed else "wang_isola")
        xs = [unit(5, 4, s) for s in range(6)]
        got = sep.loss(*xs, temperature=0.2)
        exp = loop_sep(*(x.tolist() for x in xs), tau=0.2, printed_uni=printed)
        assert got.item() == pytest.approx(exp, rel=1e-10)
        terms = sep.loss_terms(*xs, temperature=0.2)
        ortho = orthogonal_loss(xs[0], xs[2]) + orthogonal_loss(xs[1], xs[3])
        assert terms["ortho"].item() == pytest.approx(ortho.item())
        if printed:
            # the paper's single log over both modalities == logaddexp of the per-modality printed forms
            s_v = torch.exp(-2 * torch.cdist(xs[2], xs[2]) ** 2).sum()
            s_t = torch.exp(-2 * torch.cdist(xs[3], xs[3]) ** 2).sum()
            assert terms["uni"].item() == pytest.approx(math.log((s_v + s_t).item() / 5), rel=1e-8)
        else:
            assert terms["uni"].item() == pytest.approx((uniformity_loss(xs[2]) + uniformity_loss(xs[3])).item())

    def test_hand_value(self):
        # N = 2, independent features = views, exactly orthogonal to the shared ones
        e = torch.eye(4, dtype=torch.float64)
        z_v, z_t = e[[0, 1]], e[[0, 1]]
        zi = e[[2, 3]]
        sep = FeatureSeparation(1, 1, 4)
        # ortho 0; L^i_V2V = L^i_T2T = log(1 + e^{-1/tau}) at tau = 1; uniformity: d^2 = 2 -> -4 per modality
        exp = 2 * math.log1p(math.exp(-1)) + 2 * (-4.0)
        assert sep.loss(z_v, z_t, zi, zi, zi, zi, temperature=1.0).item() == pytest.approx(exp)

    def test_literal_printed_positive_without_aug(self):
        sep = FeatureSeparation(1, 1, 4)
        xs = [unit(4, 4, s) for s in range(4)]
        # without aug the key is the feature itself: positive <z^i_j, z^i_j> = 1
        a = sep.loss_terms(*xs, temperature=0.5)["con"]
        b = sep.loss_terms(*xs, xs[2], xs[3], temperature=0.5)["con"]
        assert torch.allclose(a, b)

    def test_gradcheck_and_permutation(self):
        sep = FeatureSeparation(1, 1, 3)
        xs = [unit(4, 3, s).requires_grad_() for s in range(10, 16)]
        assert torch.autograd.gradcheck(lambda *a: sep.loss(*a, temperature=0.3), tuple(xs))
        p = torch.tensor([2, 0, 3, 1])
        assert torch.allclose(sep.loss(*xs), sep.loss(*(x[p] for x in xs)))

    def test_n1_and_half(self):
        sep = FeatureSeparation(5, 6, 4)
        zvi, zti = sep(torch.randn(1, 5), torch.randn(1, 6))
        zv, zt = unit(1, 4, 0, torch.float32), unit(1, 4, 1, torch.float32)
        loss = sep.loss(zv, zt, zvi, zti, zvi.detach(), zti.detach())
        assert torch.isfinite(loss)
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in sep.parameters())
        xs = [unit(6, 4, s, torch.float32).to(torch.bfloat16) for s in range(6)]
        out = sep.loss(*xs)
        assert out.dtype == torch.float32
        assert torch.allclose(out, sep.loss(*(x.float() for x in xs)))

    def test_momentum_copy(self):
        sep = FeatureSeparation(3, 3, 2)
        m = sep.momentum_copy()
        assert all(not p.requires_grad for p in m.parameters())
        with torch.no_grad():
            for p in sep.parameters():
                p.add_(1.0)
        before = [p.clone() for p in m.parameters()]
        m.momentum_update_(sep, 0.9)
        for b, pm, p in zip(before, m.parameters(), sep.parameters()):
            assert torch.allclose(pm, 0.9 * b + 0.1 * p)

    def test_errors(self):
        with pytest.raises(ValueError, match="embed_dim"):
            FeatureSeparation(3, 3, 0)
        with pytest.raises(ValueError, match="uniformity_t"):
            FeatureSeparation(3, 3, 2, uniformity_t=-1)
        sep = FeatureSeparation(3, 3, 2)
        z = unit(4, 2, 0)
        with pytest.raises(ValueError, match=r"z_v_ind.*\(4, 2\).*z_t_ind.*\(3, 2\)"):
            sep.loss(z, z, z, z[:3])
        with pytest.raises(ValueError, match="together"):
            sep.loss(z, z, z, z, z_v_ind_aug=z)


# ----------------------------------------------------------------------------------------------------------------
class TestLatentStructureConfig:
    @pytest.mark.parametrize("cfg", [None, {}, OmegaConf.create({}), OmegaConf.create({"latent": None}).latent])
    def test_empty(self, cfg):
        s = LatentStructure.from_config(cfg)
        assert not s.enabled and s.names == [] and s.separation is None
        z = unit(3, 4, 0)
        assert s(z, z, z, z, 0.07) == {}
        assert s(z, z) == {}
        assert list(s.parameters()) == []

    def test_full_config_omegaconf_and_defaults(self):
        cfg = OmegaConf.create("""
        inmodal: {weight: 0.5}
        separation: {weight: 2.0, uniformity_t: 3.0}
        bridge: {t: uniform}
        geometric:
        """)
        s = LatentStructure.from_config(cfg, image_dim=6, text_dim=5, embed_dim=4)
        assert s.enabled and s.names == ["inmodal", "separation", "bridge", "geometric"]
        assert s.weights == {"inmodal": 0.5, "separation": 2.0, "bridge": 1.0, "geometric": 1.0}
        assert isinstance(s.separation, FeatureSeparation) and s.separation.uniformity_t == 3.0
        s2 = LatentStructure.from_config({"bridge": {"weight": 0.0}, "geometric": {}})
        assert s2.names == ["geometric"]  # weight 0 = inactive

    @pytest.mark.parametrize("cfg,pattern", [
        ({"brige": {}}, r"unknown key 'brige' \(valid keys: bridge, geometric, inmodal, separation\)"),
        ({"bridge": {"tt": 0.3}}, r"unknown key 'bridge.tt' \(valid keys for 'bridge': form, t, weight\)"),
        ({"geometric": {"weigth": 1}}, r"unknown key 'geometric.weigth' \(valid keys for 'geometric': gather, normalization, weight\)"),
        ({"inmodal": {"weight": -1}}, r"'inmodal.weight' must be a finite number >= 0, got -1"),
        ({"geometric": {"weight": "high"}}, r"'geometric.weight' must be a finite number >= 0, got 'high'"),
        ({"bridge": {"t": 1.5}}, r"'bridge.t' must be a number in \[0, 1\] or \"uniform\", got 1.5"),
        ({"bridge": {"t": -0.1}}, r"'bridge.t' must be a number in \[0, 1\] or \"uniform\", got -0.1"),
        ({"bridge": {"t": "random"}}, r"'bridge.t' must be a number in \[0, 1\] or \"uniform\", got 'random'"),
        ({"separation": {"uniformity_t": 0}}, r"'separation.uniformity_t' must be a number > 0, got 0"),
        ({"separation": {}}, r"'separation' needs image_dim, text_dim and embed_dim \(missing: image_dim, "
                             r"text_dim, embed_dim\)"),
        ({"bridge": 0.25}, r"'bridge' must be a mapping"),
        ([1, 2], r"'latent' must be a mapping"),
    ])
    def test_errors(self, cfg, pattern):
        with pytest.raises(ValueError, match=pattern):
            LatentStructure.from_config(cfg)

    def test_missing_one_dim(self):
        with pytest.raises(ValueError, match=r"missing: embed_dim\)"):
            LatentStructure.from_config({"separation": {}}, image_dim=3, text_dim=3)


class TestLatentStructureForward:
    def setup_method(self):
        self.z = [unit(6, 4, s, torch.float32) for s in range(4)]

    def test_weighted_values(self):
        zv, zt, zva, zta = self.z
        s = LatentStructure.from_config({"inmodal": {"weight": 0.5}, "bridge": {"weight": 2.0, "t": 0.4},
                                         "geometric": {"weight": 0.1}})
        out = s(zv, zt, zva, zta, temperature=0.1)
        assert set(out) == {"loss_inmodal", "loss_bridge", "loss_geo"}
        terms = contrastive_terms(zv, zt, zva, zta, 0.1)
        assert torch.allclose(out["loss_inmodal"], 0.5 * 0.5 * (terms["v2v"] + terms["t2t"]))
        assert torch.allclose(out["loss_bridge"], 2.0 * brownian_bridge_loss(zv, zt, zva, t=0.4))
        assert torch.allclose(out["loss_geo"], 0.1 * geometric_consistency_loss(zv, zt, zva, zta))
        # geometric without aug: L_GC only
        g = LatentStructure.from_config({"geometric": {}})(zv, zt)
        assert torch.allclose(g["loss_geo"], geometric_consistency_loss(zv, zt))

    def test_inmodal_convention_is_twice_l_con(self):
        zv, zt, zva, zta = self.z
        s = LatentStructure.from_config({"inmodal": {"weight": 1.0}})
        base = contrastive_loss(zv, zt, temperature=0.07)  # 1/2 (V2T + T2V)
        total = base + s(zv, zt, zva, zta, 0.07)["loss_inmodal"]
        assert torch.allclose(total, 2 * contrastive_loss(zv, zt, zva, zta, temperature=0.07))

    def test_separation_with_momentum_heads(self):
        zv, zt, zva, zta = self.z
        s = LatentStructure.from_config({"separation": {"weight": 0.5}}, image_dim=8, text_dim=7, embed_dim=4)
        heads_m = s.separation.momentum_copy()
        g = torch.Generator().manual_seed(0)
        ie, te, ie_m, te_m = (torch.randn(6, d, generator=g) for d in (8, 7, 8, 7))
        out = s(zv, zt, zva, zta, 0.07, image_embeds=ie, text_embeds=te, image_embeds_aug=ie_m,
                text_embeds_aug=te_m, sep_heads_aug=heads_m)
        assert set(out) == {"loss_sep"}
        zvi, zti = s.separation(ie, te)
        zvia, ztia = heads_m(ie_m, te_m)
        assert torch.allclose(out["loss_sep"], 0.5 * s.separation.loss(zv, zt, zvi, zti, zvia, ztia, 0.07))
        out["loss_sep"].backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in s.separation.parameters())
        assert all(p.grad is None for p in heads_m.parameters())

    def test_separation_shared_heads_get_aug_gradient(self):
        zv, zt, zva, zta = self.z
        s = LatentStructure.from_config({"separation": {}}, image_dim=8, text_dim=7, embed_dim=4)
        ie, te = rnd(6, 8, 1, torch.float32), rnd(6, 7, 2, torch.float32)
        ie_a = rnd(6, 8, 3, torch.float32).requires_grad_()
        te_a = rnd(6, 7, 4, torch.float32)
        out = s(zv, zt, image_embeds=ie, text_embeds=te, image_embeds_aug=ie_a, text_embeds_aug=te_a)
        out["loss_sep"].backward()
        assert ie_a.grad is not None and ie_a.grad.abs().sum() > 0

    def test_missing_inputs(self):
        zv, zt, zva, zta = self.z
        with pytest.raises(ValueError, match="'inmodal' needs z_v_aug and z_t_aug"):
            LatentStructure.from_config({"inmodal": {}})(zv, zt)
        with pytest.raises(ValueError, match="'bridge' needs z_v_aug"):
            LatentStructure.from_config({"bridge": {}})(zv, zt)
        s = LatentStructure.from_config({"separation": {}}, image_dim=3, text_dim=3, embed_dim=4)
        with pytest.raises(ValueError, match="'separation' needs image_embeds and text_embeds"):
            s(zv, zt, zva, zta)
        with pytest.raises(ValueError, match="sep_heads_aug given without"):
            s(zv, zt, image_embeds=torch.randn(6, 3), text_embeds=torch.randn(6, 3),
              sep_heads_aug=s.separation.momentum_copy())

    def test_half_precision_and_n1(self):
        s = LatentStructure.from_config({"inmodal": {}, "bridge": {}, "geometric": {}, "separation": {}},
                                        image_dim=5, text_dim=5, embed_dim=4)
        for n, dtype in ((1, torch.float32), (6, torch.float16), (6, torch.bfloat16)):
            zs = [x[:n].to(dtype) for x in self.z]
            out = s(*zs, 0.07, image_embeds=torch.randn(n, 5), text_embeds=torch.randn(n, 5),
                    image_embeds_aug=torch.randn(n, 5), text_embeds_aug=torch.randn(n, 5))
            assert set(out) == {"loss_inmodal", "loss_sep", "loss_bridge", "loss_geo"}
            for v in out.values():
                assert v.dtype == torch.float32 and torch.isfinite(v)
