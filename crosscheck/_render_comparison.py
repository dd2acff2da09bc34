"""Two runs compared, as text: a headline, then one line per finding, the new first.

What ``crosscheck compare`` prints. The Markdown view (:mod:`crosscheck._render_markdown`)
lays out the same findings, so both read :func:`comparison_lines` and
:func:`comparison_headline` from here and say the same thing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._run_comparison import RunComparison


def comparison_lines(cmp: RunComparison) -> list:
    """``(kind, text)`` pairs, one per finding, most important first."""
    lines = [("NEW FAILURE", f"{f['case']}: {f['now']} (before: {f['before']})")
             for f in cmp.new_failures]
    lines += [("NEWLY WRONG", f"{f['case']}: block(s) {', '.join(f['blocks'])}")
              for f in cmp.new_blocks]
    lines += [("NOT VOUCHED", f"{f['case']}: {f['now']} (before: {f['before']})")
              for f in cmp.inconclusive]
    lines += [("DIAGNOSIS", f"{c['case']}: `{c['block']}` was {c['before']}, now {c['now']}")
              for c in cmp.changed]
    lines += [("FIXED", f"{f['case']}: agrees now (before: {f['before']})") for f in cmp.fixed]
    lines += [("SLOWER", f"{s['case']}: {s['oracle']} {s['before']:.3f} s → {s['now']:.3f} s "
                         f"({s['now'] / s['before']:.1f}×)" if s['before'] > 0 else
               f"{s['case']}: {s['oracle']} 0 s → {s['now']:.3f} s") for s in cmp.slower]
    lines += [("ADDED", f"{a['case']}: {a['now']}") for a in cmp.added]
    lines += [("REMOVED", f"{r['case']}: (before: {r['before']})") for r in cmp.removed]
    lines += [("NOT RUN", f"{r['case']}: the new run stopped before it (before: {r['before']})")
              for r in cmp.not_run]
    return lines


def comparison_headline(cmp: RunComparison) -> str:
    """``crosscheck compare: 1 new failure(s) (a/x), 0 fixed, …``: every count, in one line
    (cases with newly wrong blocks, and newly inconclusive cases, only when there are any)."""
    parts = [f"{len(cmp.new_failures)} new failure(s)"
             + (f" ({', '.join(f['case'] for f in cmp.new_failures)})" if cmp.new_failures
                else "")]
    if cmp.new_blocks:
        parts.append(f"{len(cmp.new_blocks)} case(s) with newly wrong blocks "
                     f"({', '.join(f['case'] for f in cmp.new_blocks)})")
    if cmp.inconclusive:
        parts.append(f"{len(cmp.inconclusive)} newly inconclusive "
                     f"({', '.join(f['case'] for f in cmp.inconclusive)})")
    parts += [f"{len(cmp.fixed)} fixed", f"{len(cmp.changed)} changed diagnosis(es)",
              f"{len(cmp.slower)} slower oracle(s)", f"{len(cmp.added)} added",
              f"{len(cmp.removed)} removed", f"{len(cmp.still_failing)} still failing"]
    if cmp.still_inconclusive:   # not new, but never to be read as "all agree"
        parts.append(f"{len(cmp.still_inconclusive)} still inconclusive "
                     f"({', '.join(cmp.still_inconclusive)})")
    if cmp.not_run:
        parts.append(f"{len(cmp.not_run)} not run (the new run stopped early: "
                     f"{', '.join(r['case'] for r in cmp.not_run)})")
    return "crosscheck compare: " + ", ".join(parts)


def render_comparison(cmp: RunComparison) -> str:
    """The plain-text comparison: a headline, then one line per finding."""
    lines = [comparison_headline(cmp)]
    findings = comparison_lines(cmp)
    lines += [f"  {kind:<11}  {text}" for kind, text in findings]
    if not findings:
        lines.append("  nothing changed")
    return "\n".join(lines)
