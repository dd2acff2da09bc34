"""Markdown summaries (crosscheck._render_markdown)."""

from __future__ import annotations

import numpy as np

import crosscheck
from crosscheck._render_markdown import escape, render_comparison_markdown, render_markdown
from crosscheck._run_comparison import compare_runs
from crosscheck._run_file import Outcome


def test_run_summary_names_cases_blocks_and_diagnoses(reports):
    correct = reports.get("seed_net", "correct", oracles=("fd",))
    buggy = reports.get("seed_net", "buggy", oracles=("fd",))
    md = render_markdown([correct, buggy, Outcome("x.py:y", None, "no file `x.py`.")],
                         title="nightly", metadata={"time": "T", "host": "H",
                                                    "versions": {"numpy": "2.0", "jax": None}})
    lines = md.splitlines()
    assert lines[0] == "## nightly"
    assert ("**3 case(s): 1 agree, 1 flagged (seed_net/buggy), 1 could not be checked "
            "(x.py:y)**") in lines
    assert "| case | outcome | flagged blocks | references |" in lines
    assert "| seed_net/correct | ✅ agrees |  | by centered differences alone |" in lines
    assert "| seed_net/buggy | ❌ flagged | b1, W2 | by centered differences alone |" in lines
    assert "| x.py:y | ⚠️ could not check |  |  |" in lines
    assert "### seed_net/buggy" in lines
    assert "| b1 | 5×1 | 6.00e-01 | **WRONG** |" in lines
    assert "| W1 | 5×4 | " in md
    assert any(line.startswith("- **W2**: hand = 2.000 × reference (fd)") for line in lines)
    assert "### seed_net/correct" not in md   # only flagged cases get details
    assert "- **x.py:y**: no file `x.py`." in lines
    assert "<sub>T on H: numpy 2.0</sub>" in lines


def test_escape_keeps_tables_and_html_safe():
    assert escape("a|b\nc<script>&") == "a\\|b c&lt;script&gt;&amp;"


def test_user_text_is_escaped():
    p = {"<script>x|y</script>": np.array([1.0, 2.0])}
    report = crosscheck.check(lambda p: (p["<script>x|y</script>"] ** 2).sum(),
                              lambda p: {"<script>x|y</script>": 3 * p["<script>x|y</script>"]},
                              p, oracles=("fd",), case="case|<b>")
    md = render_markdown([report])
    assert "<script>" not in md and "<b>" not in md
    assert "&lt;script&gt;x\\|y&lt;/script&gt;" in md
    assert "| case\\|&lt;b&gt; | ❌ flagged |" in md


def test_comparison_markdown():
    old = [{"schema": "crosscheck.report/1", "case": "a", "ok": True, "flagged": []}]
    new = old + [{"case": "b|<c>", "error": "boom"}]
    md = render_comparison_markdown(compare_runs(old, new), "old.json", "new.json")
    assert md.startswith("## crosscheck compare: old.json → new.json")
    assert "**1 new failure(s) (b|<c>)" not in md
    assert "**1 new failure(s) (b\\|&lt;c&gt;)" in md
    assert "| NEW FAILURE | b\\|&lt;c&gt;: could not be checked: boom (before: absent) |" in md
    same = render_comparison_markdown(compare_runs(old, old))
    assert "Nothing changed." in same
