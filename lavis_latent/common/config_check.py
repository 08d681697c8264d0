"""Check a LAVIS run config against the registry before any work starts, with errors that say how to fix it.

LAVIS's registry getters return ``None`` for unknown names and the run then fails later with
``'NoneType' object has no attribute ...``; these checks fail first and list the valid names.
"""
import difflib
import os

from lavis.common.registry import registry
from omegaconf import OmegaConf


class ConfigError(ValueError):
    """A run config names something that does not exist or is malformed."""


def _unknown(kind, name, valid, key):
    close = difflib.get_close_matches(str(name), valid, n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return ConfigError(
        f"Unknown {kind} {name!r} at {key}.{hint} Registered {kind}s: {', '.join(sorted(valid))}. "
        "(Plugin names exist only after `import lavis_latent`.)"
    )


def load_run_config(cfg_path, options=None):
    """Load a yaml run config and apply ``key=value`` overrides (LAVIS's ``--options``) as OmegaConf dotlist."""
    if not os.path.isfile(cfg_path):
        raise ConfigError(f"Config file {cfg_path!r} does not exist (--cfg-path).")
    cfg = OmegaConf.load(cfg_path)
    if options:
        bad = [o for o in options if "=" not in o]
        if bad:
            raise ConfigError(f"--options takes key=value items, got {bad}")
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(options)))
    return cfg


def check_run_config(cfg):
    """Raise ``ConfigError`` for a missing section or an unregistered model, model type, task, builder or runner.

    Args:
        cfg: the OmegaConf of a run yaml (``model`` / ``datasets`` / ``run`` sections).
    """
    for section in ("model", "run"):
        if cfg.get(section) is None:
            raise ConfigError(f"The config has no '{section}:' section (LAVIS yaml layout: model / datasets / run).")
    arch = cfg.model.get("arch")
    if arch is None:
        raise ConfigError("model.arch is missing: name a registered model, e.g. albef_latent_retrieval.")
    model_cls = registry.get_model_class(arch)
    if model_cls is None:
        raise _unknown("model", arch, list(registry.mapping["model_name_mapping"]), "model.arch")
    model_type = cfg.model.get("model_type")
    if model_type is not None and model_type not in model_cls.PRETRAINED_MODEL_CONFIG_DICT:
        raise _unknown("model type", model_type, list(model_cls.PRETRAINED_MODEL_CONFIG_DICT), "model.model_type")
    task = cfg.run.get("task")
    if task is None or registry.get_task_class(task) is None:
        raise _unknown("task", task, list(registry.mapping["task_name_mapping"]), "run.task")
    runner = cfg.run.get("runner")
    if runner is not None and registry.get_runner_class(runner) is None:
        raise _unknown("runner", runner, list(registry.mapping["runner_name_mapping"]), "run.runner")
    for name in (cfg.get("datasets") or {}):
        if registry.get_builder_class(name) is None:
            raise _unknown("dataset builder", name, list(registry.mapping["builder_name_mapping"]), "datasets")
    check_latent_config(cfg.model.get("latent"))


def check_latent_config(latent):
    """Raise ``ConfigError`` for a ``model.latent`` block that ``LatentStructure`` would refuse (unknown or
    misspelled keys, with suggestions; a negative weight; ``bridge.t`` outside [0, 1]), before data or model are
    built."""
    from lavis_latent.regularizers.structure import UnknownKeyError, parse_config

    if latent is None:
        return
    try:
        parse_config(latent)
    except UnknownKeyError as err:
        close = difflib.get_close_matches(str(err.key), err.valid, n=2)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ConfigError(f"Unknown key {err.key!r} in model.{err.where}.{hint} Valid keys: "
                          f"{', '.join(sorted(err.valid))}.") from None
    except ValueError as err:
        raise ConfigError(f"model.latent: {err}") from None
