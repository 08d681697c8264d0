"""Registration of the plugin in LAVIS's registry (imported by ``import lavis_latent`` when LAVIS is installed).

LAVIS has no plugin discovery: its registry is filled by import side effects. This module imports LAVIS's own
packages (some of which register only on import), then the plugin's processors, datasets, models, runners and
tasks, whose decorators register them.
"""
import lavis  # noqa: F401  (registers LAVIS's own models, tasks, builders, processors)
import lavis.common.optims  # noqa: F401  (LAVIS's lr schedulers are only registered by this import)
import lavis.runners  # noqa: F401  (so are its runners)

from lavis_latent.common.paths import configure_cache_root, register_config_resolver  # noqa: E402

register_config_resolver()
configure_cache_root()

import lavis_latent.processors  # noqa: F401,E402  (registers processors; before models, which use them)
import lavis_latent.datasets  # noqa: F401,E402  (the rest: registration side effects)
import lavis_latent.models  # noqa: F401,E402
import lavis_latent.runners  # noqa: F401,E402
import lavis_latent.tasks  # noqa: F401,E402
