"""Assertions for test suites: ``assert_gradients`` raises with the report table.

Every function here that sits between a user's test and the ``raise`` sets
``__tracebackhide__``: pytest then shows the test's own line and the report table, not this
module's source and the values of its arguments.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from ._check import check
from ._errors import CheckError
from ._report import Report

# Callables receiving every Report. The pytest plugin pushes one per pytest run and pops it
# when the run ends; only the innermost (the last pushed) records, so a nested run's reports
# never leak into the run around it.
_RECORDERS: list[Callable[[Report], object]] = []


def assert_gradients(loss: Callable[..., Any] | Mapping[str, Callable[..., Any]],
                     grad: Callable[..., Any], params: Mapping[str, Any], *args: Any,
                     allow_inconclusive: bool = False, **options: Any) -> Report:
    """Check like :func:`crosscheck.check`; raise ``AssertionError`` unless every block agrees.

    A block is *inconclusive* when no reference contradicts the hand-written gradient but
    none can vouch for it either (centered differences alone on a float32 loss resolve only
    about 1e-3, so a bug that size would pass). That is not proof, so by default it fails
    the assertion too, with the reason the report gives for each such block.

    Args:
        loss, grad, params, *args: as for :func:`crosscheck.check`.
        allow_inconclusive: pass when no block is flagged even if some are inconclusive
            (a test that accepts a float32 loss checked by centered differences alone).
        **options: keyword options of :func:`crosscheck.check` (``oracles``, ``tolerances``,
            ``seed``, ``case``, ...).

    Returns:
        The :class:`Report`, when no block is flagged and (unless ``allow_inconclusive``)
        none is inconclusive.

    Raises:
        AssertionError: some block is flagged (the message names the flagged blocks and is
            followed by the report table with each block's diagnosis), or, without
            ``allow_inconclusive``, some block is inconclusive (the message names those
            blocks; the table below it says why each could not be vouched for).
        CheckError: the input cannot be checked (never an ``AssertionError``).

    Example:
        >>> import numpy as np
        >>> from crosscheck.testing import assert_gradients
        >>> loss = lambda p: (p["w"] ** 2).sum()
        >>> assert_gradients(loss, lambda p: {"w": 2 * p["w"]}, {"w": np.ones(3)},
        ...                  oracles=["fd"]).ok
        True
    """
    __tracebackhide__ = True
    if not isinstance(allow_inconclusive, bool):
        raise CheckError(f"`allow_inconclusive` must be True or False, not "
                         f"{allow_inconclusive!r}; pass `allow_inconclusive=True` to let "
                         f"inconclusive blocks pass")
    report = check(loss, grad, params, *args, **options)
    if _RECORDERS:
        _RECORDERS[-1](report)
    _raise_unless_vouched(report, allow_inconclusive)
    return report


def _raise_unless_vouched(report: Report, allow_inconclusive: bool) -> None:
    """Raise the ``AssertionError`` of a report that does not vouch for every block.

    A separate function so that ``assert_gradients`` reads as check, record, judge; it hides
    its frame from pytest's traceback like its caller does.
    """
    __tracebackhide__ = True
    if report.flagged:
        raise AssertionError(f"hand-written gradient is wrong in block(s) "
                             f"{', '.join(report.flagged)}\n\n{report}")
    if report.inconclusive and not allow_inconclusive:
        raise AssertionError(f"crosscheck could not vouch for the hand-written gradient in "
                             f"block(s) {', '.join(report.inconclusive)}: no block is "
                             f"flagged, but the references cannot confirm these (why is "
                             f"below); pass `allow_inconclusive=True` to accept that\n\n"
                             f"{report}")
