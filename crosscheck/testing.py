"""Assertions for test suites: ``assert_gradients`` raises with the report table."""

from __future__ import annotations

from typing import Any, Mapping

from ._check import check
from ._report import Report

_RECORDERS: list = []   # callables receiving every Report (the pytest plugin registers one)


def assert_gradients(loss: Any, grad: Any, params: Mapping, *args: Any, **options: Any) -> Report:
    """Check like :func:`crosscheck.check` and raise ``AssertionError`` if a block is flagged.

    The message is the report table: the flagged blocks, each with its diagnosis.

    Returns:
        The :class:`Report`, when nothing is flagged.
    """
    report = check(loss, grad, params, *args, **options)
    for record in list(_RECORDERS):
        record(report)
    if not report.ok:
        raise AssertionError(f"hand-written gradient is wrong in block(s) "
                             f"{', '.join(report.flagged)}\n\n{report}")
    return report
