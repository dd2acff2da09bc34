"""pytest plugin (glue only): ``--crosscheck-report DIR`` saves every report that
``crosscheck.testing.assert_gradients`` produced during the run, as JSON (and HTML when
matplotlib is installed). Heavy imports are deferred until a report is saved.
"""

from __future__ import annotations

import pytest

_REPORTS = pytest.StashKey[list]()


def pytest_addoption(parser):
    group = parser.getgroup("crosscheck")
    group.addoption("--crosscheck-report", metavar="DIR", default=None,
                    help="save the reports of every crosscheck assertion of the run in DIR "
                         "(JSON and HTML)")


def pytest_configure(config):
    if not config.getoption("--crosscheck-report", default=None):
        return
    config.stash[_REPORTS] = []
    from . import testing

    def record(report):
        config.stash[_REPORTS].append((_current_test.get(config), report))

    config._crosscheck_recorder = record
    testing._RECORDERS.append(record)


class _current_test:
    nodeid = None

    @classmethod
    def get(cls, config):
        return cls.nodeid


def pytest_runtest_setup(item):
    _current_test.nodeid = item.nodeid


def pytest_unconfigure(config):
    directory = config.getoption("--crosscheck-report", default=None)
    record = getattr(config, "_crosscheck_recorder", None)
    if not directory or record is None:
        return
    from . import testing
    if record in testing._RECORDERS:
        testing._RECORDERS.remove(record)
    from ._suite_io import save_reports
    save_reports(directory, config.stash[_REPORTS])
