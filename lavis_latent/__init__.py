"""lavis-latent: latent modality structures (Jiang et al., CVPR 2023, arXiv 2303.05952) as a LAVIS plugin.

Two layers:

* the core, :mod:`lavis_latent.regularizers` and :mod:`lavis_latent.metrics`: pure torch, importable and usable
  in any training loop with torch alone (open_clip-style loss module: :class:`~lavis_latent.regularizers.
  LatentStructureLoss`);
* the LAVIS plugin (:mod:`lavis_latent.plugin`): where LAVIS is installed, importing this package registers the
  plugin's models, tasks, dataset builders and runner in LAVIS's registry (LAVIS has no plugin discovery, so
  ``import lavis_latent`` is required before ``load_model_and_preprocess``).

Where LAVIS is not installed, the registration is skipped and only the core is usable; where it is installed,
any error while importing it or registering propagates (a broken LAVIS stack must not pass silently).
"""
import importlib.util

__version__ = "0.1.0"


def lavis_installed() -> bool:
    """Whether the ``lavis`` package can be imported here (found on the path; not imported by this check)."""
    return importlib.util.find_spec("lavis") is not None


if lavis_installed():
    from lavis_latent import plugin  # noqa: F401,E402  (registration side effects)
