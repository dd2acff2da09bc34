"""pytest plugin (glue only): ``--crosscheck-report DIR``.

Saves the report of every ``crosscheck.testing.assert_gradients`` call made during the run
into DIR: JSON and HTML per assertion, ``index.html`` with them all and ``run.json`` for
``crosscheck compare`` (see :func:`crosscheck._report_folder.save_reports`). The run's state lives
in ``config.stash``, so nested runs (``pytester``) never see each other's reports; rendering
is imported only when the reports are saved.

Each saved report gets one status, counted in the terminal summary and shown in the index:

- ``agrees``: every block agrees;
- ``inconclusive``: no block flagged, but at least one could not be vouched for;
- ``flagged``: some block flagged, and its test failed (or was skipped);
- ``flagged as expected``: some block flagged, and its test passed or xfailed: a test that
  asserts a planted bug is caught (``with pytest.raises(AssertionError):``) did its job, so
  the run does not count it as a failure.

Under pytest-xdist each worker runs its own tests and saves its own reports, into
``DIR/<worker id>/`` (``DIR/gw0/``, ...), so that no worker overwrites another's index; the
controller, which runs no test, writes nothing and names the workers' folders.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Optional

import pytest

STATUSES = ("agrees", "inconclusive", "flagged", "flagged as expected")


def status(report, expected: bool) -> str:
    """The report's status in this run (see the module docstring): the report's own outcome,
    with a flag its test expected told apart."""
    outcome = getattr(report, "outcome", None) or (
        "flagged" if report.flagged else "inconclusive" if report.inconclusive else "agrees")
    return "flagged as expected" if outcome == "flagged" and expected else outcome


class _State:
    """One pytest run's reports, the test that is running, and how each test ended.

    It is registered as a plugin of its run, so that ``pytest_runtest_logreport`` (which
    receives no config) reaches the right run's state.
    """

    def __init__(self, directory: Optional[Path]):
        self.directory = directory
        self.nodeid: Optional[str] = None
        self.pairs: list = []
        self.expected: set = set()    # indices into `pairs` whose flag their test expected
        self.written: list = []
        self.workers: list = []       # under pytest-xdist: what each worker saved
        self._first = 0               # index of the running test's first pair
        self._failed = False
        self._passed = False

    def record(self, report) -> None:
        if self.directory is not None:
            self.pairs.append((self.nodeid, report))

    def start(self, nodeid: str) -> None:
        self.nodeid, self._first = nodeid, len(self.pairs)
        self._failed = self._passed = False

    def pytest_runtest_logreport(self, report) -> None:
        """Note whether the running test passed: a failing phase fails it; the call passing
        (or xfailing, ``wasxfail``) passes it."""
        if report.failed:
            self._failed = True
        elif report.when == "call" and (report.passed or hasattr(report, "wasxfail")):
            self._passed = True

    def finish(self) -> None:
        """The test ended: a report it flagged was expected when the test passed anyway."""
        if self._passed and not self._failed:
            self.expected.update(i for i in range(self._first, len(self.pairs))
                                 if self.pairs[i][1].flagged)
        self.nodeid = None

    def counts(self) -> str:
        """``2 agree, 1 flagged as expected``: how many reports have each status."""
        found = [status(report, i in self.expected) for i, (_, report) in enumerate(self.pairs)]
        parts = []
        for word in STATUSES:
            n = found.count(word)
            if n:
                parts.append(f"{n} {'agree' if word == 'agrees' and n > 1 else word}")
        return ", ".join(parts)


_STATE = pytest.StashKey[_State]()


def pytest_addoption(parser):
    group = parser.getgroup("crosscheck")
    group.addoption("--crosscheck-report", metavar="DIR", default=None,
                    dest="crosscheck_report",
                    help="save the reports of every crosscheck assertion of the run in DIR "
                         "(JSON and HTML)")


def pytest_configure(config):
    directory = config.getoption("crosscheck_report", default=None)
    directory = config.invocation_params.dir / directory if directory else None
    worker = getattr(config, "workerinput", None)     # set in a pytest-xdist worker
    if directory is not None and worker is not None:
        directory = directory / str(worker.get("workerid", "worker"))
    state = _State(directory)
    config.stash[_STATE] = state
    config.pluginmanager.register(state)
    from . import testing
    # Registered even without the option: assertions made in this run (a nested pytester run
    # included) belong to this run's recorder, which is the innermost one.
    testing._RECORDERS.append(state.record)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    state = item.config.stash.get(_STATE, None)
    if state is not None:
        state.start(item.nodeid)
    yield
    if state is not None:
        state.finish()


def _is_xdist_controller(config) -> bool:
    """True in the process that hands tests to pytest-xdist workers and runs none itself."""
    return config.pluginmanager.has_plugin("dsession")


def pytest_sessionfinish(session):
    config = session.config
    state = config.stash.get(_STATE, None)
    if state is None or state.directory is None or _is_xdist_controller(config):
        return
    from ._report_folder import save_reports
    args = shlex.join(["pytest", *map(str, config.invocation_params.args)])
    state.written = save_reports(state.directory, state.pairs, command=args,
                                 expected=state.expected)
    output = getattr(config, "workeroutput", None)    # sent back to the xdist controller
    if output is not None:
        output["crosscheck_report"] = {"directory": str(state.directory),
                                       "saved": len(state.pairs), "counts": state.counts()}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """pytest-xdist: a worker finished; keep what it saved for the controller's summary."""
    state = node.config.stash.get(_STATE, None)
    saved = getattr(node, "workeroutput", {}).get("crosscheck_report")
    if state is not None and saved:
        state.workers.append(saved)


def pytest_terminal_summary(terminalreporter, config):
    state = config.stash.get(_STATE, None)
    if state is None or state.directory is None:
        return
    if state.written:
        counts = f": {state.counts()}" if state.pairs else ""
        terminalreporter.write_line(
            f"crosscheck: saved {len(state.pairs)} report(s) in {state.directory} "
            f"(index.html, run.json){counts}")
    for saved in sorted(state.workers, key=lambda s: s["directory"]):
        counts = f": {saved['counts']}" if saved["saved"] else ""
        terminalreporter.write_line(
            f"crosscheck: a pytest-xdist worker saved {saved['saved']} report(s) in "
            f"{saved['directory']} (index.html, run.json){counts}")


def pytest_unconfigure(config):
    state = config.stash.get(_STATE, None)
    if state is None:
        return
    from . import testing
    if state.record in testing._RECORDERS:
        testing._RECORDERS.remove(state.record)
    if config.pluginmanager.is_registered(state):
        config.pluginmanager.unregister(state)
    del config.stash[_STATE]
