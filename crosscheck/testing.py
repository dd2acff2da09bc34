"""Assertions for test suites: ``assert_gradients`` raises with the report table."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from ._check import check
from ._report import Report

# Callables receiving every Report. The pytest plugin pushes one per pytest run and pops it
# when the run ends; only the innermost (the last pushed) records, so a nested run's reports
# never leak into the run around it.
_RECORDERS: list[Callable[[Report], object]] = []


def assert_gradients(loss: Callable[..., Any] | Mapping[str, Callable[..., Any]],
                     grad: Callable[..., Any], params: Mapping[str, Any], *args: Any,
                     **options: Any) -> Report:
    """Check like :func:`crosscheck.check` and raise ``AssertionError`` if a block is flagged.

    Args:
        loss, grad, params, *args: as for :func:`crosscheck.check`.
        **options: keyword options of :func:`crosscheck.check` (``oracles``, ``tolerances``,
            ``seed``, ``case``, ...).

    Returns:
        The :class:`Report`, when no block is flagged (inconclusive blocks do not fail).

    Raises:
        AssertionError: some block is flagged; the message names the flagged blocks and is
            followed by the report table with each block's diagnosis.
        CheckError: the input cannot be checked (never an ``AssertionError``).

    Example:
        >>> import numpy as np
        >>> from crosscheck.testing import assert_gradients
        >>> loss = lambda p: (p["w"] ** 2).sum()
        >>> assert_gradients(loss, lambda p: {"w": 2 * p["w"]}, {"w": np.ones(3)},
        ...                  oracles=["fd"]).ok
        True
    """
    report = check(loss, grad, params, *args, **options)
    if _RECORDERS:
        _RECORDERS[-1](report)
    if not report.ok:
        raise AssertionError(f"hand-written gradient is wrong in block(s) "
                             f"{', '.join(report.flagged)}\n\n{report}")
    return report
