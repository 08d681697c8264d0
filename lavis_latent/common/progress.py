"""Progress events from the runner to whoever shows them (the demo's and the benchmarks' progress bars).

``runner_latent`` reports each applied training step and each phase (training, evaluating a split) through
:func:`report`; nothing listens by default, so a plain ``python -m lavis_latent.train`` is unchanged. A caller that
wants to show progress installs a listener for the duration of a run with :func:`listening`. Only the main process
reports.
"""
import contextlib

_listeners = []


def report(event, **fields):
    """Send ``event`` (``"step"`` or ``"phase"``) with its fields to the innermost listener, if any.

    ``step``: ``epoch``, ``step`` (steps of the epoch done), ``iters_per_epoch``, ``max_epoch``.
    ``phase``: ``name`` (e.g. ``"train"``, ``"evaluate test"``).
    """
    if _listeners:
        _listeners[-1](event, **fields)


@contextlib.contextmanager
def listening(listener):
    """Within the block, :func:`report` calls ``listener(event, **fields)``."""
    _listeners.append(listener)
    try:
        yield listener
    finally:
        _listeners.remove(listener)
