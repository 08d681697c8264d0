"""A quiet console for long LAVIS runs: one progress bar per run, LAVIS's own output in a log file.

LAVIS prints its run parameters, every dataset and model message and a line every ``log_freq`` steps (through
``print`` and the root logger). :func:`quiet_run` sends all of that to a file for the duration of one run and shows
one tqdm bar instead, fed by the runner's progress events (:mod:`lavis_latent.common.progress`): the phase being
run, the steps done and the time left. Used by the demo and the benchmarks' long runs; ``verbose=True`` keeps
LAVIS's console output as it is.
"""
import contextlib
import logging
import os
import sys

from lavis_latent.common import progress

LOG_FORMAT = "%(asctime)s [%(levelname)s] %(message)s"  # LAVIS's setup_logger format
_KNOWN_TOTAL = "{desc}: {percentage:3.0f}%|{bar:24}| {n_fmt}/{total_fmt} steps [{elapsed}<{remaining}{postfix}]"
_UNKNOWN_TOTAL = "{desc}: [{elapsed}{postfix}]"


class _BarListener:
    """Turns the runner's progress events into updates of one tqdm bar."""

    def __init__(self, bar):
        self.bar = bar

    def __call__(self, event, **fields):
        bar = self.bar
        if event == "step":
            total = fields["max_epoch"] * fields["iters_per_epoch"]
            if bar.total != total:
                bar.total = total
                bar.bar_format = _KNOWN_TOTAL
            bar.set_postfix_str(f"train epoch {fields['epoch'] + 1}/{fields['max_epoch']}", refresh=False)
            # update (not n + refresh) redraws at most every mininterval
            bar.update(fields["epoch"] * fields["iters_per_epoch"] + fields["step"] - bar.n)
        elif event == "phase":
            bar.set_postfix_str(fields["name"])


def _tail(path, lines=20):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


@contextlib.contextmanager
def quiet_run(log_path, desc, verbose=False):
    """Run the block (one LAVIS run) with its console output in ``log_path`` and one progress bar on the terminal.

    Within the block, ``print`` output, Python warnings and the root logger's records (LAVIS's run parameters and
    per-iteration lines) are appended to ``log_path``; the terminal (the current ``sys.stderr``) shows a tqdm bar
    named ``desc`` with the phase, the training steps done of ``max_epoch x iters_per_epoch`` and the time left. If
    the block raises, the log's last lines and its path are printed before the error propagates. With
    ``verbose=True`` nothing is redirected and no bar is shown. Yields the bar (``None`` when verbose).
    """
    if verbose:
        yield None
        return
    from tqdm import tqdm

    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    terminal = sys.stderr
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    with open(log_path, "a", buffering=1) as log:
        handler = logging.StreamHandler(log)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        # LAVIS's setup_logger calls logging.basicConfig, which leaves a root logger that has a handler alone
        root.handlers = [handler]
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)  # warnings as records of the root handler, whoever replaced showwarning
        bar = tqdm(total=None, desc=desc, file=terminal, bar_format=_UNKNOWN_TOTAL, dynamic_ncols=True,
                   mininterval=0.5 if terminal.isatty() else 10.0)
        bar.set_postfix_str("building")
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log), \
                    progress.listening(_BarListener(bar)):
                yield bar
            bar.set_postfix_str("done")
        except BaseException:
            bar.set_postfix_str("failed")
            bar.close()
            terminal.write(f"--- last lines of {log_path} ---\n{_tail(log_path)}--- (full log: {log_path})\n")
            raise
        finally:
            bar.close()  # a second close is a no-op
            logging.captureWarnings(False)
            root.handlers = saved_handlers
            root.setLevel(saved_level)


def run_quietly(entry, cfg_path, output_dir, options=(), desc=None, verbose=False):
    """``python -m lavis_latent.<entry> --cfg-path cfg_path --options run.output_dir=output_dir *options``, in this
    process, under :func:`quiet_run` (LAVIS's console output in ``output_dir/console.log``).

    Args:
        entry: ``"train"`` (returns the runner) or ``"evaluate"`` (returns ``(runner, results by split)``).
        cfg_path: the run's yaml; output_dir: ``run.output_dir`` (LAVIS adds a job folder under it).
        options: further ``key=value`` overrides (applied after ``run.output_dir``).
        desc: the bar's name (default: the yaml's file name); verbose: keep LAVIS's console output, no bar.
    """
    if entry == "train":
        from lavis_latent.train import main
    elif entry == "evaluate":
        from lavis_latent.evaluate import main
    else:
        raise ValueError(f"entry must be 'train' or 'evaluate', not {entry!r}")
    desc = desc or os.path.basename(cfg_path)
    with quiet_run(os.path.join(output_dir, "console.log"), desc, verbose):
        return main(["--cfg-path", cfg_path, "--options", "run.output_dir=" + output_dir, *options])
