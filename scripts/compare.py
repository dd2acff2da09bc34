"""Run every reference case through crosscheck and print a Markdown table.

One row per (case, block): the seeds' relative difference against each oracle, the verdict,
and the diagnosis of wrong blocks. Usage::

    python scripts/compare.py [--oracles fd,jax,torch] [--out FILE]

Exit status: 0 when every reference case came out as its module's ``EXPECTED`` says
(correct cases clean, planted bugs flagged on exactly their blocks), 1 otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _modules():
    from crosscheck._targets import _load_file
    for path in sorted((ROOT / "reference").glob("*.py")):
        if path.name.startswith("_"):
            continue
        module = _load_file(path)
        if hasattr(module, "cases") or hasattr(module, "layer_cases"):
            yield path.stem, module


def _reports(stem, module, oracles):
    """``(case name, report)`` for every case of a reference module, layers included."""
    import crosscheck
    for case in getattr(module, "cases", []):
        yield case.name, crosscheck.check(case.loss, case.grad, case.params, *case.args,
                                          oracles=oracles, case=f"{stem}/{case.name}",
                                          **case.options)
    for layer in getattr(module, "layer_cases", list)():
        yield layer.name, layer.check(oracles=oracles, case=f"{stem}/{layer.name}")


def _fmt(x) -> str:
    return "—" if x is None else ("0" if x == 0 else f"{x:.1e}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--oracles", default="fd,jax,torch")
    parser.add_argument("--out", default=None, help="also write the table to FILE")
    ns = parser.parse_args(argv)
    oracles = [o for o in ns.oracles.split(",") if o]
    lines = ["| case | block | " + " | ".join(oracles) + " | verdict | diagnosis |",
             "|---|---|" + "---|" * len(oracles) + "---|---|"]
    surprises = []
    for stem, module in _modules():
        expected = getattr(module, "EXPECTED", {})
        for name, report in _reports(stem, module, oracles):
            label = f"{stem}/{name}"
            want = expected.get(name, {}).get("flagged")
            if want is None:
                surprises.append(f"{label}: no EXPECTED entry")
            elif report.flagged != want:
                surprises.append(f"{label}: flagged {report.flagged}, expected {want}")
            for block_name, block in report.blocks.items():
                diff = " | ".join(_fmt(block.difference.get(o)) for o in oracles)
                verdict = {"ok": "ok", "wrong": "**wrong**"}.get(block.verdict, block.verdict)
                diag = ""
                if block.diagnosis:
                    d = block.diagnosis
                    diag = d.kind + (f" {d.factor:g}" if d.factor is not None else "")
                elif block.kinks:
                    diag = f"{block.kinks} kink(s)"
                lines.append(f"| {label} | {block_name} | {diff} | {verdict} | {diag} |")
    table = "\n".join(lines)
    print(table)
    if ns.out:
        Path(ns.out).write_text(table + "\n")
    for s in surprises:
        print(f"UNEXPECTED: {s}", file=sys.stderr)
    return 1 if surprises else 0


if __name__ == "__main__":
    sys.exit(main())
