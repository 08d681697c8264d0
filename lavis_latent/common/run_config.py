"""Reading a LAVIS ``run:`` block that may be absent (a task built by hand) or hold nulls."""


def run_value(run_cfg, key, default):
    """``run_cfg[key]``, or ``default`` when there is no run config, no such key, or the value is None."""
    value = run_cfg.get(key, default) if run_cfg is not None and hasattr(run_cfg, "get") else default
    return default if value is None else value
