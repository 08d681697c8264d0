"""The quiet console of the demo and the benchmarks: LAVIS's output in a file, one progress bar on the terminal."""
import logging
import warnings

import pytest

from lavis_latent.common import progress
from lavis_latent.common.console import quiet_run


def test_quiet_run_sends_print_logging_and_warnings_to_the_log_and_shows_one_bar(tmp_path, capsys):
    log = tmp_path / "run" / "console.log"
    root = logging.getLogger()
    handlers_before, level_before = root.handlers[:], root.level
    with quiet_run(str(log), "ALBEF bb: pretrain") as bar:
        print("Train: data epoch: [0]  [ 0/75]  loss: 4.2")
        logging.info("Start training epoch 0, 75 iters per inner epoch.")
        warnings.warn("a LAVIS warning", RuntimeWarning)  # (UserWarning is ignored in setup.cfg)
        for step in range(1, 5):
            progress.report("step", epoch=1, step=step, iters_per_epoch=4, max_epoch=2)
        progress.report("phase", name="evaluate test")
        assert bar.total == 8 and bar.n == 8
    out, err = capsys.readouterr()
    text = log.read_text()
    assert "Train: data epoch: [0]" in text and "Start training epoch 0" in text and "a LAVIS warning" in text
    assert "Train: data epoch" not in out + err and "Start training" not in out + err
    assert out == ""
    assert "ALBEF bb: pretrain" in err and "8/8" in err
    assert root.handlers == handlers_before and root.level == level_before
    progress.report("step", epoch=0, step=1, iters_per_epoch=1, max_epoch=1)  # no listener left: a no-op


def test_quiet_run_shows_the_log_tail_and_reraises_on_error(tmp_path, capsys):
    log = tmp_path / "console.log"
    with pytest.raises(RuntimeError, match="boom"):
        with quiet_run(str(log), "failing run"):
            print("the line before the error")
            raise RuntimeError("boom")
    err = capsys.readouterr().err
    assert "the line before the error" in err and str(log) in err


def test_verbose_leaves_the_console_alone(tmp_path, capsys):
    with quiet_run(str(tmp_path / "console.log"), "loud", verbose=True) as bar:
        print("visible")
    assert bar is None and "visible" in capsys.readouterr().out
    assert not (tmp_path / "console.log").exists()


def test_progress_reports_go_to_the_innermost_listener_only():
    outer, inner = [], []
    with progress.listening(lambda event, **f: outer.append(event)):
        with progress.listening(lambda event, **f: inner.append((event, f))):
            progress.report("phase", name="train")
        progress.report("phase", name="evaluate val")
    assert inner == [("phase", {"name": "train"})] and outer == ["phase"]
