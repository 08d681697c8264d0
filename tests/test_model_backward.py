"""Every model the plugin registers, at its tiny type, with each regularizer: builds offline, runs forward and
backward on its own dummy batch, and every trainable parameter receives a gradient (DDP without
``find_unused_parameters`` requires it). Driven by LAVIS's registry, as timm's ``test_model_backward``: a new
model is covered as soon as it is registered (it must have a ``tiny`` type and ``dummy_inputs``)."""
import pytest
import torch

import lavis_latent  # noqa: F401  (registration)
from conftest import tiny_config
from lavis.common.registry import registry

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LATENTS = {
    "plain": {},
    "inmodal": {"inmodal": {}},
    "separation": {"separation": {}},
    "bridge": {"bridge": {}},
    "geometric": {"geometric": {}},
    "sep+bridge+geo": {"separation": {}, "bridge": {}, "geometric": {}},
}


def plugin_models():
    """Names of the models registered by this package (LAVIS's own are left out)."""
    return sorted(name for name, cls in registry.mapping["model_name_mapping"].items()
                  if cls.__module__.startswith("lavis_latent."))


def test_the_plugin_registers_models():
    assert len(plugin_models()) >= 6, plugin_models()


@pytest.mark.parametrize("latent", list(LATENTS))
@pytest.mark.parametrize("name", plugin_models())
def test_model_backward(name, latent):
    cls = registry.get_model_class(name)
    assert "tiny" in cls.PRETRAINED_MODEL_CONFIG_DICT, f"{name} has no offline 'tiny' type"
    _, cfg = tiny_config(name, latent=LATENTS[latent])
    torch.manual_seed(0)
    try:
        model = cls.from_config(cfg)
    except ValueError as err:  # a combination the model refuses by design must say so, naming its config key
        assert str(err).startswith("model."), err
        pytest.skip(f"{name} refuses latent {latent}: {err}")
    model.train()
    out = model(model.dummy_inputs(n=2, seed=0))
    loss = out["loss"]
    assert loss.dim() == 0 and torch.isfinite(loss)
    expected = {"inmodal": "loss_inmodal", "separation": "loss_sep", "bridge": "loss_bridge", "geometric": "loss_geo"}
    assert {v for k, v in expected.items() if k in LATENTS[latent]} <= set(out.keys())
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not no_grad, f"{name} ({latent}): trainable parameters without gradient: {no_grad[:10]}"
