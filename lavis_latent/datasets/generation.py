"""Builders whose data a generator writes (the demo world, the digits) under ``build_info.generator.root``."""
import logging
import os

from omegaconf import OmegaConf

from lavis_latent.datasets.demo_data import generate
from lavis_latent.datasets.storage import config_entries, resolve_storage
from lavis_latent.datasets.world import world_params

GENERATOR_CONTROL_KEYS = ("enabled", "root")

# root -> params of the generated data (demo worlds, digits) the builders of this process have generated or checked
_GENERATED_IN_USE = {}


def generator_settings(builder_config, validate=None, what="demo world"):
    """``(enabled, absolute root, params)`` of a builder config's ``build_info.generator`` block.

    ``params`` are the generator's keyword arguments, validated and normalised by ``validate`` (default
    :func:`~lavis_latent.datasets.demo_data.world_params`, for :func:`~lavis_latent.datasets.demo_data.generate`);
    ``(False, None, None)`` when the block is absent or ``enabled: false``. Raises ``ValueError`` naming the config
    key on an unknown parameter; ``what`` names the data in messages.
    """
    gen = builder_config.get("build_info", {}).get("generator")
    if gen is None:
        return False, None, None
    gen = OmegaConf.to_container(gen, resolve=True) if not isinstance(gen, dict) else dict(gen)
    if not gen.get("enabled", True):
        return False, None, None
    root = gen.get("root")
    if not root:
        raise ValueError(f"build_info.generator.root is not set: the folder (relative to cache_root) of the {what}")
    params = {k: v for k, v in gen.items() if k not in GENERATOR_CONTROL_KEYS}
    try:
        params = (validate or world_params)(**params)
    except ValueError as e:
        raise ValueError(f"build_info.generator: {e}") from None
    return True, resolve_storage(root), params


def _declared_paths(builder_config):
    """Every storage path (annotation files, image folder) a builder config declares, resolved."""
    build_info = builder_config.build_info
    paths = []
    anns = build_info.get("annotations") or {}
    for split in anns.keys():
        paths.extend(resolve_storage(p) for p in config_entries(anns[split].get("storage")))
    vis = build_info.get(builder_config.get("data_type", "images"))
    if vis is not None and vis.get("storage") is not None:
        paths.append(resolve_storage(vis.get("storage")))
    return paths


def _is_under(path, root):
    path, root = os.path.abspath(path), os.path.abspath(root)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class GeneratedDataMixin:
    """``prepare_demo_data`` for a builder whose data a generator writes under ``build_info.generator.root``.

    A subclass names its generator: ``generate_data(root, **params)`` (idempotent; returns the paths), the
    ``generator_params`` validator of the config block, and ``generated_what`` for messages.
    """

    name = None  # registered name, for messages
    generated_what = "demo world"
    generator_params = staticmethod(world_params)
    generate_data = staticmethod(generate)

    def prepare_demo_data(self):
        """Generate the data when the config's files live under ``build_info.generator.root`` and it is missing or
        was generated with other parameters; returns the generator's paths dict (``None`` if not generating)."""
        enabled, root, params = generator_settings(self.config, self.generator_params, self.generated_what)
        if not enabled:
            return None
        if not any(_is_under(p, root) for p in _declared_paths(self.config)):
            return None  # the config points at other data: nothing to generate
        previous = _GENERATED_IN_USE.get(root)
        if previous is not None and previous != params:
            logging.warning(
                "%s: regenerating the %s in %s with different parameters than another dataset of this process "
                "used (%s -> %s); give each parameter set its own build_info.generator.root", self.name,
                self.generated_what, root, previous, params)
        paths = self.generate_data(root, **params)
        _GENERATED_IN_USE[root] = params
        return paths
