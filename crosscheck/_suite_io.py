"""Saving reports to a folder: one JSON file per report (and HTML when it can)."""

from __future__ import annotations

import json
import re
from pathlib import Path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:120] or "report"


def save_reports(directory, pairs) -> list:
    """Write ``(test_id, report)`` pairs into ``directory``; return the written paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written, seen = [], {}
    for test_id, report in pairs:
        stem = _slug(test_id or report.case or "report")
        seen[stem] = seen.get(stem, 0) + 1
        if seen[stem] > 1:
            stem = f"{stem}-{seen[stem]}"
        data = report.to_dict()
        data["test"] = test_id
        path = out / f"{stem}.json"
        path.write_text(json.dumps(data, indent=2))
        written.append(path)
        try:
            from ._render_html import render_page
        except ImportError:
            continue
        html_path = out / f"{stem}.html"
        html_path.write_text(render_page([report], title=test_id or report.case or "crosscheck"))
        written.append(html_path)
    return written
