"""Where the plugin's files live and where LAVIS's cache root points.

LAVIS joins relative dataset paths to ``registry.get_path("cache_root")``, which its packaged ``default.yaml`` sets to
``/export/home/.cache/lavis`` (an internal Salesforce path), and joins relative ``default_config_path`` entries to
its own package root. The plugin keeps its yaml inside its own package and hands LAVIS absolute paths.
"""
import os

from lavis.common.registry import registry

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_ROOT = os.path.join(PACKAGE_ROOT, "configs")
LAVIS_SHIPPED_CACHE_ROOT = "/export/home/.cache/lavis"
CACHE_ROOT_ENV = "LAVIS_CACHE_ROOT"


def config_path(*parts):
    """Absolute path of a file under ``lavis_latent/configs`` (package data)."""
    return os.path.join(CONFIG_ROOT, *parts)


def set_cache_root(path):
    """Point LAVIS's ``cache_root`` at ``path`` (made absolute); returns the absolute path.

    ``registry.register_path`` refuses to overwrite, so the mapping is edited directly.
    """
    path = os.path.abspath(os.path.expanduser(path))
    registry.mapping["paths"]["cache_root"] = path
    return path


def configure_cache_root():
    """Resolve LAVIS's cache root for this process and return it.

    ``$LAVIS_CACHE_ROOT`` wins when set. Otherwise a cache root that a user configured in LAVIS's ``default.yaml`` is
    kept, and only LAVIS's shipped default (an internal path nobody has) is replaced by ``./cache`` under the current
    working directory, so nothing is ever written inside site-packages or under ``/export``.
    """
    env = os.environ.get(CACHE_ROOT_ENV)
    if env:
        return set_cache_root(env)
    current = registry.get_path("cache_root")
    if current is None or (os.path.normpath(current) == LAVIS_SHIPPED_CACHE_ROOT and not os.path.isdir(current)):
        return set_cache_root("cache")
    return current


def _resolve_package_config(relative_path=""):
    """OmegaConf resolver ``${lavis_latent:relative/path}`` -> absolute path under ``lavis_latent/configs``."""
    return config_path(relative_path) if relative_path else CONFIG_ROOT


def register_config_resolver():
    """Register the ``${lavis_latent:...}`` interpolation so package yaml can name package files portably."""
    import omegaconf
    from omegaconf import OmegaConf

    if OmegaConf.has_resolver("lavis_latent"):
        return
    # omegaconf >= 2.4 deprecates register_new_resolver; before 2.4, register_resolver is the legacy API.
    if tuple(int(x) for x in omegaconf.__version__.split(".")[:2]) >= (2, 4):
        OmegaConf.register_resolver("lavis_latent", _resolve_package_config)
    else:
        OmegaConf.register_new_resolver("lavis_latent", _resolve_package_config)
