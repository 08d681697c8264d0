"""Shared fixtures: offline environment, a per-session LAVIS cache root, and the repository's paths."""
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECTS_DIR = os.path.join(REPO_ROOT, "projects")

# fairscale 0.4.4 (a LAVIS dependency) installs a top-level package named ``benchmarks``: the repository's comes first
# (setup.cfg's pytest ``pythonpath`` does the same when pytest reads it)
if sys.path[0] != REPO_ROOT:
    sys.path.insert(0, REPO_ROOT)
if "benchmarks" in sys.modules and not sys.modules["benchmarks"].__file__.startswith(REPO_ROOT):
    del sys.modules["benchmarks"]


def tiny_config(name, **overrides):
    """A registered model's class and its ``tiny`` model config with ``overrides`` applied."""
    from lavis.common.registry import registry
    from omegaconf import OmegaConf

    cls = registry.get_model_class(name)
    cfg = OmegaConf.load(cls.default_config_path("tiny")).model
    for key, value in overrides.items():
        cfg[key] = value
    return cls, cfg


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op torch thread for a test module: deterministic and, on a loaded 2-core machine, many times faster
    than two. Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def session_cache_root(tmp_path_factory):
    """LAVIS's cache root for the whole test session (the embedded data is generated there once)."""
    import lavis_latent  # noqa: F401
    from lavis.common.registry import registry
    from lavis_latent.common.paths import set_cache_root

    previous = registry.get_path("cache_root")
    root = set_cache_root(tmp_path_factory.mktemp("lavis_cache"))
    yield root
    set_cache_root(previous)
