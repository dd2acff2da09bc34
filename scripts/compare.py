"""Run every reference case through crosscheck and print a Markdown table.

One row per (case, block): the seeds' relative difference against each oracle, the verdict,
and the diagnosis of wrong blocks; then one line, the verdict of the whole comparison.
Usage::

    python scripts/compare.py [--oracles fd,jax,torch] [--out FILE]

Every case is found and checked as ``crosscheck check reference/<module>.py:cases`` finds and
checks it (layers too: ``reference/layers.py`` defines its cases with ``Case.layer``).

Exit status: 0 when every reference case came out as its module's ``EXPECTED`` says
(correct cases clean, planted bugs flagged on exactly their blocks, no block inconclusive
that ``EXPECTED`` does not list under ``inconclusive``), 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _modules():
    """``(path, module)`` of every reference module that defines ``cases``."""
    from crosscheck._targets import _load_file
    for path in sorted((ROOT / "reference").glob("*.py")):
        if path.name.startswith("_"):
            continue
        module = _load_file(path)
        if hasattr(module, "cases"):
            yield path, module


def _reports(path, oracles):
    """``(label, case name, report)`` for every case of a reference module, through the
    command line's own loader and call."""
    import crosscheck
    from crosscheck._targets import load
    for target in load(f"{path}:cases"):
        case = target.case
        options = {**case.options, "oracles": oracles}
        yield target.label, case.name, crosscheck.check(case.loss, case.grad, case.params,
                                                        *case.args, case=target.label, **options)


def _fmt(x) -> str:
    return "—" if x is None else ("0" if x == 0 else f"{x:.1e}")


def _rows(label, report, oracles) -> list:
    rows = []
    for block_name, block in report.blocks.items():
        diff = " | ".join(_fmt(block.difference.get(o)) for o in oracles)
        verdict = {"ok": "ok", "wrong": "**wrong**"}.get(block.verdict, block.verdict)
        diag = ""
        if block.diagnosis:
            d = block.diagnosis
            diag = d.kind + (f" {d.factor:g}" if d.factor is not None else "")
        elif block.kinks:
            diag = f"{block.kinks} kink(s)"
        rows.append(f"| {label} | {block_name} | {diff} | {verdict} | {diag} |")
    return rows


def _surprise(label, report, entry):
    """Why a case did not come out as its ``EXPECTED`` entry says, or None when it did.

    ``flagged`` lists the blocks a planted bug touches; every other block must be vouched
    for (``ok``), not merely unflagged, unless the entry lists it under ``inconclusive``.
    """
    if entry is None:
        return f"{label}: no EXPECTED entry"
    want = entry.get("flagged")
    if report.flagged != want:
        return f"{label}: flagged {report.flagged}, expected {want}"
    unsure = [n for n, b in report.blocks.items() if b.verdict == "inconclusive"]
    allowed = list(entry.get("inconclusive", []))
    if unsure != allowed:
        return f"{label}: inconclusive on {unsure}, expected {allowed}"
    return None


def verdict(correct: int, bugs: int, modules: int, oracles, surprises) -> str:
    """The closing line: how much was compared, and whether everything came out as expected."""
    head = (f"compare: {correct + bugs} cases from {modules} reference modules × "
            f"{len(oracles)} oracle{'s' if len(oracles) != 1 else ''} ({', '.join(oracles)})")
    if not surprises:
        return (f"{head}: all {correct} correct cases agree, all {bugs} planted bugs flagged "
                f"on exactly their blocks")
    return f"{head}: {len(surprises)} unexpected: {'; '.join(surprises)}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--oracles", default="fd,jax,torch")
    parser.add_argument("--out", default=None, help="also write the table to FILE")
    ns = parser.parse_args(argv)
    oracles = [o for o in ns.oracles.split(",") if o]
    lines = ["| case | block | " + " | ".join(oracles) + " | verdict | diagnosis |",
             "|---|---|" + "---|" * len(oracles) + "---|---|"]
    surprises, counts, modules = [], {"correct": 0, "bugs": 0}, 0
    for path, module in _modules():
        modules += 1
        expected = getattr(module, "EXPECTED", {})
        for label, name, report in _reports(path, oracles):
            entry = expected.get(name)
            counts["bugs" if entry and entry.get("flagged") else "correct"] += 1
            surprise = _surprise(label, report, entry)
            if surprise:
                surprises.append(surprise)
            lines.extend(_rows(label, report, oracles))
    table = "\n".join(lines)
    print(table)
    if ns.out:
        Path(ns.out).write_text(table + "\n")
    for s in surprises:
        print(f"UNEXPECTED: {s}", file=sys.stderr)
    print(verdict(counts["correct"], counts["bugs"], modules, oracles, surprises))
    return 1 if surprises else 0


if __name__ == "__main__":
    sys.exit(main())
