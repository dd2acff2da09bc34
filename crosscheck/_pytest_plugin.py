"""pytest plugin (glue only): ``--crosscheck-report DIR``.

Saves the report of every ``crosscheck.testing.assert_gradients`` call made during the run
into DIR: JSON and HTML per assertion, ``index.html`` with them all and ``run.json`` for
``crosscheck compare`` (see :func:`crosscheck._report_folder.save_reports`). The run's state lives
in ``config.stash``, so nested runs (``pytester``) never see each other's reports; rendering
is imported only when the reports are saved.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Optional

import pytest


class _State:
    """One pytest run's reports, and the test that is running."""

    def __init__(self, directory: Optional[Path]):
        self.directory = directory
        self.nodeid: Optional[str] = None
        self.pairs: list = []
        self.written: list = []

    def record(self, report) -> None:
        if self.directory is not None:
            self.pairs.append((self.nodeid, report))


_STATE = pytest.StashKey[_State]()


def pytest_addoption(parser):
    group = parser.getgroup("crosscheck")
    group.addoption("--crosscheck-report", metavar="DIR", default=None,
                    dest="crosscheck_report",
                    help="save the reports of every crosscheck assertion of the run in DIR "
                         "(JSON and HTML)")


def pytest_configure(config):
    directory = config.getoption("crosscheck_report", default=None)
    state = _State(config.invocation_params.dir / directory if directory else None)
    config.stash[_STATE] = state
    from . import testing
    # Registered even without the option: assertions made in this run (a nested pytester run
    # included) belong to this run's recorder, which is the innermost one.
    testing._RECORDERS.append(state.record)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    state = item.config.stash.get(_STATE, None)
    if state is not None:
        state.nodeid = item.nodeid
    yield
    if state is not None:
        state.nodeid = None


def pytest_sessionfinish(session):
    state = session.config.stash.get(_STATE, None)
    if state is None or state.directory is None:
        return
    from ._report_folder import save_reports
    args = shlex.join(["pytest", *map(str, session.config.invocation_params.args)])
    state.written = save_reports(state.directory, state.pairs, command=args)


def pytest_terminal_summary(terminalreporter, config):
    state = config.stash.get(_STATE, None)
    if state is not None and state.directory is not None and state.written:
        terminalreporter.write_line(
            f"crosscheck: saved {len(state.pairs)} report(s) in {state.directory} "
            f"(index.html, run.json)")


def pytest_unconfigure(config):
    state = config.stash.get(_STATE, None)
    if state is None:
        return
    from . import testing
    if state.record in testing._RECORDERS:
        testing._RECORDERS.remove(state.record)
    del config.stash[_STATE]
