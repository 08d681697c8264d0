"""lavis-latent: latent modality structures (Jiang et al., CVPR 2023, arXiv 2303.05952) as a LAVIS plugin.

Importing this package registers the plugin's models, tasks, dataset builders and runner in LAVIS's registry
(LAVIS has no plugin discovery, so ``import lavis_latent`` is required before ``load_model_and_preprocess``).
"""
__version__ = "0.1.0"

import lavis  # noqa: F401  (registers LAVIS's own models, tasks, builders, processors)
import lavis.common.optims  # noqa: F401  (LAVIS's lr schedulers are only registered by this import)
import lavis.runners  # noqa: F401  (so are its runners)

from lavis_latent.common.paths import configure_cache_root, register_config_resolver  # noqa: E402

register_config_resolver()
configure_cache_root()

from lavis_latent import processors  # noqa: F401,E402  (registers processors; before models, which use them)
from lavis_latent import datasets, models, runners, tasks  # noqa: F401,E402  (registration side effects)
