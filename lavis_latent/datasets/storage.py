"""Storage paths of dataset configs, resolved as LAVIS resolves them (relative to its ``cache_root``)."""
import os

from lavis.common.registry import registry


def cache_root():
    """LAVIS's registered ``cache_root`` (relative storage paths are joined to it)."""
    return registry.get_path("cache_root")


def resolve_storage(path):
    """A storage path as LAVIS resolves it: absolute paths pass through, relative ones are joined to ``cache_root``."""
    path = os.path.expanduser(str(path))
    if os.path.isabs(path):
        return path
    return os.path.join(os.path.expanduser(cache_root()), path)


def config_entries(value):
    """A config value that names one entry (a string), several (a list) or none (``None``), as a list: the
    ``storage`` and ``url`` keys of LAVIS's ``build_info`` take any of the three."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)

