"""JUnit XML: one ``testcase`` per case, for CI systems that show test results.

A flagged case is a ``failure`` whose message names the wrong blocks and their diagnoses; a
case that could not be checked is an ``error``; an inconclusive case (no block wrong, some
block no reference could vouch for) is ``skipped``, with the reason as the message -- a CI
page must not show it as a pass. The full table is the failure's text, or ``system-out`` for
the other checked cases.
"""

from __future__ import annotations

import datetime
import platform
import re
import xml.etree.ElementTree as ET
from typing import Optional

from ._render_text import references_phrase
from ._run_file import as_outcomes

# Characters XML 1.0 cannot hold at all (not even escaped).
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value) -> str:
    return _INVALID.sub("\ufffd", str(value))


def failure_message(report) -> str:
    """``flagged b1, W2 — b1: hand = 4.000 × reference …; W2: … — the error enters at dW2 (…)``."""
    parts = []
    for name in report.flagged:
        block = report.blocks[name]
        text = block.diagnosis.text if block.diagnosis is not None else block.reason
        parts.append(f"{name}: {text.rstrip('.')}")
    by = references_phrase(report)
    return (f"flagged {', '.join(report.flagged)} — " + "; ".join(parts) + (f" ({by})" if by else "")
            + entered(report))


def entered(report) -> str:
    """`` — the error enters at dW2 at reference/seed_numpy.py:114 (`fn`): `dW2 = …`, …``, or ``""``."""
    if not report.entry_points:
        return ""
    where = []
    for key in report.entry_points:
        q = next((q for q in report.intermediates if q.key == key), None)
        source = q.source if q is not None else None
        where.append(f"{key} at {source}" if source else key)
    return " — the error enters at " + ", ".join(where)


def skipped_message(report) -> str:
    """``inconclusive w — w: agrees with centered differences, but they resolve only …``."""
    parts = [f"{name}: {report.blocks[name].reason.rstrip('.')}" for name in report.inconclusive]
    by = references_phrase(report)
    return (f"inconclusive {', '.join(report.inconclusive)} — " + "; ".join(parts)
            + (f" ({by})" if by else ""))


def _testcase(suite, o) -> None:
    """One ``testcase``: ``error``, ``failure``, ``skipped`` or a pass, by the outcome."""
    case = ET.SubElement(suite, "testcase", {
        "classname": _text(o.source), "name": _text(o.label), "time": f"{o.seconds:.3f}"})
    if o.report is None:
        error = ET.SubElement(case, "error", {"message": _text(o.error),
                                              "type": "crosscheck.CheckError"})
        error.text = _text(o.error)
        return
    if o.outcome == "flagged":
        failure = ET.SubElement(case, "failure", {
            "message": _text(failure_message(o.report)), "type": "crosscheck.flagged"})
        failure.text = _text(str(o.report))
        return
    if o.outcome == "inconclusive":
        ET.SubElement(case, "skipped", {"message": _text(skipped_message(o.report)),
                                        "type": "crosscheck.inconclusive"})
    out = ET.SubElement(case, "system-out")
    out.text = _text(str(o.report))


def render_junit(items, *, name: str = "crosscheck", timestamp: Optional[str] = None,
                 hostname: Optional[str] = None) -> str:
    """The JUnit XML document for reports or run outcomes.

    Args:
        items: :class:`crosscheck.Report` objects or :class:`crosscheck._run_file.Outcome` objects
            (outcomes also carry the cases that could not be checked).
        name: the test suite's name.
        timestamp: ISO time of the run (default: now, UTC).
        hostname: the machine (default: ``platform.node()``).

    Returns:
        The XML text, with its declaration.
    """
    outcomes = as_outcomes(items)
    if timestamp is None:
        timestamp = datetime.datetime.now(datetime.timezone.utc).replace(
            microsecond=0, tzinfo=None).isoformat()
    found = [o.outcome for o in outcomes]
    total = f"{sum(o.seconds for o in outcomes):.3f}"
    counts = {"tests": str(len(outcomes)), "failures": str(found.count("flagged")),
              "errors": str(found.count("could not check")),
              "skipped": str(found.count("inconclusive")), "time": total}
    root = ET.Element("testsuites", {"name": _text(name), **counts})
    suite = ET.SubElement(root, "testsuite", {
        "name": _text(name), **counts, "timestamp": timestamp,
        "hostname": _text(hostname if hostname is not None else platform.node())})
    for o in outcomes:
        _testcase(suite, o)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode")
