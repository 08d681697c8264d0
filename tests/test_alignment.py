"""alignment_loss: the Figure-2 gap-study term L_Align = 1 / (max(<Z_T, Z_V>, 0)^2 + eps), checked by hand."""
import pytest
import torch
import torch.nn.functional as F

from lavis_latent.regularizers import alignment_loss


def test_value_by_hand():
    z_v = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z_t = torch.tensor([[0.6, 0.8], [0.0, 1.0]])  # paired cosines 0.6 and 1.0 -> mean 0.8
    assert alignment_loss(z_v, z_t, eps=0.01).item() == pytest.approx(1.0 / (0.64 + 0.01))


def test_orthogonal_pairs_are_finite_and_bounded():
    z_v = torch.tensor([[1.0, 0.0]])
    z_t = torch.tensor([[0.0, 1.0]])
    loss = alignment_loss(z_v, z_t, eps=0.05)
    assert loss.item() == pytest.approx(20.0)


def test_anti_aligned_pairs_get_the_bound_without_gradient():
    z_v = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z_t = (-z_v).clone().requires_grad_(True)
    loss = alignment_loss(z_v, z_t, eps=0.01)
    assert loss.item() == pytest.approx(100.0)
    loss.backward()
    assert torch.count_nonzero(z_t.grad) == 0


def test_gradient_increases_paired_cosine():
    torch.manual_seed(0)
    z_v = F.normalize(torch.randn(8, 4), dim=1)
    z_t = F.normalize(z_v + 0.8 * torch.randn(8, 4), dim=1).requires_grad_(True)
    before = (z_v * z_t).sum(1).mean()
    alignment_loss(z_v, z_t).backward()
    stepped = F.normalize(z_t - 0.01 * z_t.grad, dim=1)
    assert (z_v * stepped).sum(1).mean() > before


def test_permutation_invariant_and_fp16():
    torch.manual_seed(1)
    z_v, z_t = F.normalize(torch.randn(6, 5), dim=1), F.normalize(torch.randn(6, 5), dim=1)
    perm = torch.randperm(6)
    assert torch.allclose(alignment_loss(z_v, z_t), alignment_loss(z_v[perm], z_t[perm]))
    half = alignment_loss(z_v.half(), z_t.half())
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(alignment_loss(z_v, z_t).item(), rel=1e-2)


def test_bad_input():
    with pytest.raises(ValueError, match="shape mismatch"):
        alignment_loss(torch.randn(3, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match="eps"):
        alignment_loss(torch.randn(3, 4), torch.randn(3, 4), eps=0)
