"""Markdown: a run's summary fit for a GitHub step summary, and a comparison of two runs.

User-supplied text (case and block names, diagnoses, errors) is escaped so that it can
neither break a table (``|``, newlines) nor inject HTML (``<``, ``>``, ``&``).
"""

from __future__ import annotations

import html
from typing import Optional

from ._render_comparison import comparison_headline, comparison_lines
from ._render_text import MARK, _num, headline, located_lines, notes, quantity_rows, references_phrase
from ._run_file import as_outcomes, summary

# outcome -> its cell: a mark a reader tells apart at a glance, and the word. Only a case
# every block of which was vouched for gets the green tick.
SIGN = {"agrees": "✅", "flagged": "❌", "inconclusive": "❔", "could not check": "⚠️"}
VERDICT = {outcome: f"{sign} {outcome}" for outcome, sign in SIGN.items()}


def escape(text) -> str:
    """Markdown-safe text for a paragraph or a table cell."""
    text = html.escape(str(text), quote=False)
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _block_table(report) -> list:
    oracles = list(report.oracles)
    lines = ["| block | shape | " + " | ".join(escape(o) for o in oracles) + " | verdict |",
             "|---|---|" + "---:|" * len(oracles) + "---|"]
    for block in report.blocks.values():
        shape = "×".join(map(str, block.shape)) or "()"
        diffs = " | ".join(_num(block.difference.get(o)) for o in oracles)
        mark = MARK[block.verdict]
        mark = f"**{mark}**" if block.verdict == "wrong" else mark
        lines.append(f"| {escape(block.name)} | {shape} | {diffs} | {mark} |")
    return lines


def _located(report) -> list:
    """The backward's quantities in backward order, then the convention and where the error
    enters (each line of the text report's, code in backticks kept as code)."""
    header, rows = quantity_rows(report)
    if not rows:
        return []
    out = ["| " + " | ".join(escape(h) for h in header) + " |",
           "|" + "---|" * len(header)]
    out += ["| " + " | ".join(f"**{escape(c)}**" if c == "WRONG" else escape(c) for c in r) + " |"
            for r in rows]
    return out + [""] + [f"- {escape(line)}" for line in located_lines(report)] + [""]


def _case_details(report, level: str = "###") -> list:
    lines = [f"{level} {escape(report.case or 'report')}", "",
             f"{SIGN[report.outcome]} {escape(headline(report))}", "",
             *_block_table(report), "", *_located(report)]
    for name in report.flagged:
        block = report.blocks[name]
        text = block.diagnosis.text if block.diagnosis is not None else block.reason
        lines.append(f"- **{escape(name)}**: {escape(text)}")
    for name in report.inconclusive:
        lines.append(f"- {escape(name)} (inconclusive): {escape(report.blocks[name].reason)}")
    for note in notes(report):
        lines.append(f"- note: {escape(note)}")
    lines += [f"- {escape(n)}: {escape(i.error)}" for n, i in report.oracles.items() if i.error]
    return lines + [""]


def render_markdown(items, *, title: str = "crosscheck",
                    metadata: Optional[dict] = None) -> str:
    """A run's Markdown summary.

    Args:
        items: :class:`crosscheck.Report` or :class:`crosscheck._run_file.Outcome` objects.
        title: the heading.
        metadata: a run's metadata (``crosscheck._run_file.metadata``), shown as a footer.

    Returns:
        A headline, a table case × outcome × flagged blocks, then, per flagged or
        inconclusive case, its block table and the reasons, and the errors of cases that
        could not be checked.
    """
    outcomes = as_outcomes(items)
    lines = [f"## {escape(title)}", "", f"**{escape(summary(outcomes))}**", "",
             "| case | outcome | flagged blocks | references |", "|---|---|---|---|"]
    for o in outcomes:
        flagged = ", ".join(o.report.flagged) if o.report is not None else ""
        refs = (references_phrase(o.report) or "by " + ", ".join(o.report.references)) \
            if o.report is not None else ""
        lines.append(f"| {escape(o.label)} | {VERDICT[o.outcome]} | {escape(flagged)} | "
                     f"{escape(refs)} |")
    lines.append("")
    for o in outcomes:
        if o.outcome in ("flagged", "inconclusive"):
            lines += _case_details(o.report)
    errors = [o for o in outcomes if o.report is None]
    if errors:
        lines += ["### Could not be checked", ""]
        lines += [f"- **{escape(o.label)}**: {escape(o.error)}" for o in errors]
        lines.append("")
    if metadata:
        versions = ", ".join(f"{k} {v}" for k, v in metadata.get("versions", {}).items() if v)
        lines.append(f"<sub>{escape(metadata.get('time', ''))} on "
                     f"{escape(metadata.get('host', ''))}: {escape(versions)}</sub>")
        lines.append("")
    return "\n".join(lines)


def render_report_markdown(report) -> str:
    """One report as Markdown (``report.save("r.md")``): its outcome and headline, the block
    table, the diagnoses and reasons, notes and oracle errors."""
    return "\n".join(_case_details(report, "##"))


def render_comparison_markdown(cmp, old: str = "old", new: str = "new") -> str:
    """Two runs compared (a :class:`crosscheck._run_comparison.RunComparison`), as Markdown."""
    lines = [f"## crosscheck compare: {escape(old)} → {escape(new)}", "",
             f"**{escape(comparison_headline(cmp).split(': ', 1)[1])}**", ""]
    findings = comparison_lines(cmp)
    if findings:
        lines += ["| change | detail |", "|---|---|"]
        lines += [f"| {kind} | {escape(text)} |" for kind, text in findings]
    else:
        lines.append("Nothing changed.")
    return "\n".join(lines) + "\n"
