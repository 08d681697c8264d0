"""The pure-torch core (regularizers, metrics, the open_clip-style loss) without LAVIS or its stack."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lavis_latent.regularizers import LatentStructure, LatentStructureLoss

ROOT = Path(__file__).resolve().parents[1]
#: what a torch-only environment lacks: LAVIS and the stack it pins, and the optional libraries
BLOCKED = ["lavis", "transformers", "timm", "omegaconf", "sklearn", "torchvision", "matplotlib", "fairscale", "PIL",
           "pandas", "tqdm"]
BLOCK = f"import sys\nfor _m in {BLOCKED!r}:\n    sys.modules[_m] = None  # import of it raises ImportError\n"


def run_without_lavis(code: str) -> str:
    """Run ``code`` in a fresh interpreter where LAVIS and the libraries of BLOCKED cannot be imported."""
    out = subprocess.run([sys.executable, "-c", BLOCK + code], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_core_imports_and_runs_without_lavis():
    code = """
import json, torch
import lavis_latent
from lavis_latent.regularizers import (contrastive_loss, brownian_bridge_loss, geometric_consistency_loss,
    orthogonal_loss, uniformity_loss, LatentStructure, LatentStructureLoss)
from lavis_latent.metrics import modality_gap
torch.manual_seed(0)
z = [torch.nn.functional.normalize(torch.randn(6, 4), dim=1) for _ in range(4)]
values = [contrastive_loss(*z), brownian_bridge_loss(z[0], z[1], z[2]), geometric_consistency_loss(*z),
          orthogonal_loss(z[0], z[1]), uniformity_loss(z[0])]
s = LatentStructure({"inmodal": {}, "bridge": {}, "geometric": {}})(*z)
gap = modality_gap(z[0], z[1], backend="torch")
loaded = sorted({m.split(".")[0] for m, v in sys.modules.items() if v is not None} & set(%r))
print(json.dumps({"finite": all(bool(torch.isfinite(v)) for v in values + list(s.values())),
                  "keys": sorted(s), "gap": sorted(gap), "loaded": loaded,
                  "plugin": "lavis_latent.plugin" in sys.modules, "lavis_installed": lavis_latent.lavis_installed()}))
""" % (BLOCKED,)
    got = json.loads(run_without_lavis(code).strip().splitlines()[-1])
    assert got["finite"]
    assert got["keys"] == ["loss_bridge", "loss_geo", "loss_inmodal"]
    assert "centroid_distance" in got["gap"]
    assert got["loaded"] == [] and got["plugin"] is False and got["lavis_installed"] is False


def readme_example() -> str:
    """The README's plain-torch example: the python block after the ``<!-- example:plain-torch -->`` marker."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- example:plain-torch -->\s*```python\n(.*?)```", text, re.S)
    assert match, "README.md lost its plain-torch example (marker <!-- example:plain-torch -->)"
    return match.group(1)


def test_readme_plain_torch_example_runs_without_lavis():
    out = run_without_lavis(readme_example() + "\nprint('LOSSES', sorted(losses))\n")
    keys = out.strip().splitlines()[-1]
    assert keys.startswith("LOSSES") and "contrastive_loss" in keys and "loss_bridge" in keys


def _feats(n=5, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1) for _ in range(4)]


def test_loss_module_contrastive_term_is_clip_loss_by_hand():
    v, t, _, _ = _feats()
    scale = torch.tensor(1 / 0.07, dtype=torch.float64)
    logits = scale * v @ t.T
    labels = torch.arange(5)
    expected = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
    out = LatentStructureLoss()(v, t, scale, output_dict=True)
    assert list(out) == ["contrastive_loss"]
    assert torch.allclose(out["contrastive_loss"], expected, atol=1e-12)
    assert torch.allclose(LatentStructureLoss(contrastive_weight=0.5)(v, t, scale), 0.5 * expected, atol=1e-12)


def test_loss_module_adds_the_structure_losses_at_temperature_one_over_scale():
    v, t, va, ta = _feats()
    latent = {"inmodal": {"weight": 0.5}, "bridge": {"weight": 0.3}, "geometric": {"weight": 0.1}}
    scale = 20.0
    got = LatentStructureLoss(latent)(v, t, scale, va, ta, output_dict=True)
    expected = LatentStructure(latent)(v, t, va, ta, temperature=1 / scale)
    assert set(got) == {"contrastive_loss"} | set(expected)
    for k, value in expected.items():
        assert torch.allclose(got[k], value, atol=1e-12), k
    total = LatentStructureLoss(latent)(v, t, scale, va, ta)
    assert torch.allclose(total, sum(got.values()), atol=1e-12)


def test_loss_module_separation_heads_get_gradients_and_bad_settings_are_named():
    v, t, va, ta = (x.float().requires_grad_() for x in _feats())
    fn = LatentStructureLoss({"separation": {}}, image_dim=3, text_dim=2, embed_dim=4)
    losses = fn(v, t, 10.0, image_embeds=torch.randn(5, 3), text_embeds=torch.randn(5, 2), output_dict=True)
    sum(losses.values()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in fn.parameters())
    assert v.grad is not None and t.grad is not None
    with pytest.raises(ValueError, match="nothing to compute"):
        LatentStructureLoss(contrastive_weight=0)
    with pytest.raises(ValueError, match="contrastive_weight must be a number > 0"):
        LatentStructureLoss(contrastive_weight=-1)
    with pytest.raises(ValueError, match="unknown key 'brige'"):
        LatentStructureLoss({"brige": {}})
