"""What every dataset builder of the plugin shares: registration under its name, with its default yaml inside the
plugin's package (``lavis_latent/configs/datasets/<name>/defaults.yaml``)."""
from lavis.common.registry import registry

from lavis_latent.common.paths import config_path


class PluginBuilderMixin:
    """Mixed in before a LAVIS builder class: its default yaml is the plugin's, as an absolute path."""

    name = None  # registered name (set by :func:`register_plugin_builder`)
    DATASET_CONFIG_DICT = {}

    @classmethod
    def default_config_path(cls, type="default"):
        """Absolute path of the default yaml (LAVIS would join a relative one to its own package root)."""
        return cls.DATASET_CONFIG_DICT[type]


def register_plugin_builder(name):
    """Class decorator: set the builder's ``name`` and its default yaml
    (``lavis_latent/configs/datasets/<name>/defaults.yaml``), and register it in LAVIS's registry under ``name``."""

    def register(cls):
        cls.name = name
        cls.DATASET_CONFIG_DICT = {"default": config_path("datasets", name, "defaults.yaml")}
        return registry.register_builder(name)(cls)

    return register
