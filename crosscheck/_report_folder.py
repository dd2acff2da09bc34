"""Saving reports to a folder: JSON and HTML per report, plus an index of them all.

For ``(test id, report)`` pairs (what the pytest plugin collects), ``save_reports`` writes
``<test>.json`` and ``<test>.html`` per report, ``index.html`` with every report, and
``run.json`` in the ``crosscheck.run/1`` schema, so that two test runs can be compared with
``crosscheck compare``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Collection, Optional

RESERVED = ("index", "run")   # stems of the files that cover every report


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:120] or "report"


def _unique(stem: str, taken: set) -> str:
    """``stem``, else ``stem-2``, ``stem-3``, ...: the first name no earlier report took.

    Names are compared folded to lower case, as macOS and Windows compare file names, and a
    numbered name is checked like any other (``test_a[x_y-2]`` slugs to what the second
    ``test_a[x/y]`` would be numbered), so no report overwrites another.
    """
    name, n = stem, 1
    while name.lower() in taken:
        n += 1
        name = f"{stem}-{n}"
    taken.add(name.lower())
    return name


def save_reports(directory, pairs, *, command: Optional[str] = None,
                 expected: Collection[int] = ()) -> list:
    """Write ``(test_id, report)`` pairs into ``directory``; return the written paths.

    Args:
        directory: the folder (created if missing).
        pairs: ``(test id or None, Report)`` pairs, in the order they were made.
        command: the command that ran them, for the run's metadata.
        expected: indices into ``pairs`` of flagged reports whose test expected the flag
            (it passed or xfailed all the same); the pages call them "flagged as expected".

    Returns:
        The paths written: per report its JSON and HTML, then ``index.html`` and ``run.json``.
    """
    from ._render_html import render_page
    from ._run_file import Outcome, run_document

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written, outcomes, taken = [], [], set(RESERVED)
    for i, (test_id, report) in enumerate(pairs):
        label = test_id or report.case or "report"
        stem = _unique(_slug(label), taken)
        outcome = Outcome(label, report, None, report.seconds, expected=i in expected)
        data = report.to_dict()
        data["test"] = test_id
        path = out / f"{stem}.json"
        path.write_text(json.dumps(data, indent=2), encoding="utf-8")
        html_path = out / f"{stem}.html"
        html_path.write_text(render_page([outcome], title=label), encoding="utf-8")
        written += [path, html_path]
        outcomes.append(outcome)
    index = out / "index.html"
    index.write_text(render_page(outcomes, title="crosscheck reports"), encoding="utf-8")
    doc = run_document(outcomes, command or "")
    for entry, (test_id, _), outcome in zip(doc["reports"], pairs, outcomes):
        entry["test"] = test_id
        entry["case"] = entry.get("case") or outcome.label   # compare matches on `case`
    run = out / "run.json"
    run.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return written + [index, run]
