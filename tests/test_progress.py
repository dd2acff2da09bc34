"""The progress bar: on a terminal after a second of work, quiet in CI logs unless asked."""

import sys

import crosscheck._progress as progress_module
from crosscheck._progress import Progress


def test_quiet_when_stderr_is_not_a_terminal(capsys):
    bar = Progress()            # pytest captures stderr: not a terminal, as in CI logs
    assert not bar.enabled
    with bar.stage(1000, "centered differences"):
        bar.advance(500)
    assert capsys.readouterr().err == ""


def test_never_shown_when_disabled(monkeypatch, capsys):
    monkeypatch.setattr(progress_module, "DELAY", 0.0)
    bar = Progress(False)
    with bar.stage(1000, "centered differences"):
        bar.advance(500)
    assert bar._bar is None and capsys.readouterr().err == ""


def test_shown_on_request_after_the_delay_and_removed_afterwards(monkeypatch):
    monkeypatch.setattr(progress_module, "DELAY", 0.0)
    bar = Progress(True)
    with bar.stage(1000, "centered differences"):
        bar.advance(100)
        assert bar._bar is not None
        assert bar._done == 200          # two loss evaluations per element
        bar.advance(10_000)
        assert bar._done == 1000         # never past the total
    assert bar._bar is None


def test_not_shown_before_the_delay(monkeypatch):
    monkeypatch.setattr(progress_module, "DELAY", 3600.0)
    bar = Progress(True)
    with bar.stage(1000, "centered differences"):
        bar.advance(100)
        assert bar._bar is None


def test_check_accepts_progress_and_stays_quiet_by_default(capsys):
    import numpy as np
    import crosscheck
    report = crosscheck.check(lambda p: np.sum(p["w"] ** 3), lambda p: {"w": 3 * p["w"] ** 2},
                              {"w": np.arange(1.0, 5.0)}, oracles=("fd",), progress=False)
    assert report.ok
    assert capsys.readouterr().err == ""
    assert not sys.stderr.isatty()
