"""The terminal table: plain text (``str(report)``) or rich (on a terminal, unless NO_COLOR)."""

from __future__ import annotations

import os
import sys
from typing import Optional

MARK = {"ok": "ok", "wrong": "WRONG", "inconclusive": "??"}


def visible(text, *, newlines: bool = True) -> str:
    """``text`` safe for a terminal: every character that does not print (escape bytes,
    carriage returns, bidirectional overrides, lone surrogates) shown as its Python escape,
    ``\\x1b``, so that a block or case name can neither drive the terminal nor disguise
    itself. Line breaks are kept when ``newlines`` (free text), escaped otherwise (names in
    a table row)."""
    text = str(text)
    if text.isprintable() and "\n" not in text:
        return text
    return "".join(ch if ch.isprintable() or (newlines and ch == "\n")
                   else ch.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for ch in text)


def _name(text) -> str:
    return visible(text, newlines=False)


def _free_text(text: str, report) -> str:
    """One piece of free text (a diagnosis, a reason, a note, an oracle's error) made
    :func:`visible`; the block and case names it quotes are escaped whole, line breaks in
    them included."""
    odd = [n for n in [*report.blocks, report.case or ""] if n and not n.isprintable()]
    for name in sorted(odd, key=len, reverse=True):
        text = text.replace(name, _name(name))
    return visible(text)


def _num(x: Optional[float]) -> str:
    if x is None:
        return "—"
    return "0" if x == 0 else f"{x:.2e}"


def references_phrase(report) -> str:
    """Which references decided, when not every one asked for ran: ``""`` when all did.

    ``"by centered differences alone (jax, torch did not run)"``, ``"by fd, torch (jax did
    not run)"`` -- a verdict from fewer references than the box says is a weaker proof, and
    the headline says so.
    """
    ran = report.references
    missing = [name for name in report.oracles if name not in ran]
    if ran == ["fd"]:
        return "by centered differences alone" + (f" ({', '.join(missing)} did not run)" if missing else "")
    if missing:
        return f"by {', '.join(ran) or 'no reference'} ({', '.join(missing)} did not run)"
    return ""


def headline(report) -> str:
    """The case's outcome in one line: ``FLAGGED 2 of 6 block(s): b1, W2``, ``INCONCLUSIVE 1
    of 3 block(s): W; none flagged``, ``all 6 block(s) agree``; then which references
    decided, when not all those asked for ran. Where the backward's intermediates were
    checked, the entry points follow the blocks: ``… b1, W2 — the error enters at dW2, db1``."""
    name = f"{_name(report.case)}: " if report.case else ""
    n = len(report.blocks)
    by = references_phrase(report)
    by = (f" — the error enters at {', '.join(map(_name, report.entry_points))}"
          if report.entry_points else "") + (f" — {by}" if by else "")
    unsure = ', '.join(map(_name, report.inconclusive))
    if report.flagged:
        also = f"; inconclusive: {unsure}" if unsure else ""
        return (f"{name}FLAGGED {len(report.flagged)} of {n} block(s): "
                f"{', '.join(map(_name, report.flagged))}{also}{by}")
    if report.inconclusive:
        return (f"{name}INCONCLUSIVE {len(report.inconclusive)} of {n} block(s): {unsure}; "
                f"none flagged{by}")
    return f"{name}all {n} block(s) agree{by}"


def notes(report) -> list:
    """The report's notes, less those that only repeat an oracle's error: the footer shows
    each oracle's error on the oracle's own line, and one error said twice reads as two."""
    errors = {f"{name}: {info.error}" for name, info in report.oracles.items() if info.error}
    return [note for note in report.notes if note not in errors]


def _coverage(block) -> Optional[str]:
    cov = block.coverage.get("fd")
    if not cov:
        return None
    text = f"{cov['elements']}/{cov['size']}"
    if cov.get("directions"):
        text += f" +{cov['directions']}dir"
    return text


def _rows(report) -> tuple:
    oracles = list(report.oracles)
    sampled = any((b.coverage.get("fd") or {}).get("elements", b.size) < b.size
                  for b in report.blocks.values())
    header = ["block", "shape", *oracles, *(["fd coverage"] if sampled else []), "verdict"]
    rows = []
    for block in report.blocks.values():
        cells = [_name(block.name), "×".join(map(str, block.shape)) or "()"]
        cells += [_num(block.difference.get(o)) for o in oracles]
        if sampled:
            cells.append(_coverage(block) or "—")
        cells.append(MARK[block.verdict])
        rows.append(cells)
    return header, rows


QUANTITY_MARK = {"right": "ok", "wrong": "WRONG", "unsure": "??"}


def _factor(x: Optional[float]) -> str:
    return "—" if x is None else f"{x:g}" if x == round(x) else f"{x:.4g}"


def quantity_rows(report) -> tuple:
    """The second table: the backward's quantities in backward order (intermediates and the
    parameters' gradients), the seeds' difference per reference, verdict, factor hand ÷
    reference, and what a wrong one follows from. ``([], [])`` when nothing was located."""
    quantities = report.intermediates
    if not quantities:
        return [], []
    seen = {r for q in quantities for r in q.differences}
    references = [o for o in report.oracles if o in seen] + sorted(seen - set(report.oracles))
    header = ["backward", "of", "shape", *references, "verdict", "factor", "follows from"]
    rows = []
    for q in quantities:
        cells = [_name(q.key), _name(q.of), "×".join(map(str, q.shape)) or "()"]
        cells += [_num(q.differences.get(r)) for r in references]
        cells += [QUANTITY_MARK[q.verdict], _factor(q.factor), ", ".join(map(_name, q.follows_from))]
        rows.append(cells)
    return header, rows


def located_lines(report) -> list:
    """The convention, then where the error enters (file:line, function, the line's text) and
    what follows from it, then the localisation's notes: ``str(report.localisation)``."""
    if report.localisation is None:
        return []
    return [_free_text(line, report) for line in str(report.localisation).splitlines()]


def _table(header, rows) -> list:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*header).rstrip(), fmt.format(*("-" * w for w in widths)).rstrip(),
            *(fmt.format(*r).rstrip() for r in rows)]


def _details(report) -> list:
    lines = []
    for block in report.blocks.values():
        if block.diagnosis is not None:
            lines.append(f"  {_name(block.name)}: {_free_text(block.diagnosis.text, report)}")
            for e in block.diagnosis.elements[:3]:
                lines.append(f"      at {tuple(e['index'])}: hand {e['hand']:.6g}  "
                             f"{block.diagnosis.reference} {e['reference']:.6g}")
            lines.append(f"      ({_free_text(block.reason, report)})")
        elif block.verdict == "inconclusive" or block.odd or block.kinks or block.conventions:
            lines.append(f"  {_name(block.name)}: {_free_text(block.reason, report)}")
    return lines


def oracle_line(name: str, info) -> str:
    """``fd: numpy 2.4.6, 0.020 s, 471 loss evaluations``, ``jax: …, forward parity ok``; an
    oracle that failed: its error."""
    if info.error:
        return f"{name}: {info.error}"
    parity = ""
    if info.parity is not None:
        parity = ", forward parity ok" if info.parity else ", FORWARD DIFFERS"
    evals = f", {info.evaluations} loss evaluations" if info.evaluations else ""
    return f"{name}: {info.version}, {info.seconds:.3f} s{evals}{parity}"


def forward_line(report) -> str:
    fw = ", ".join(f"{k} {v:.17g}" for k, v in report.forward.items() if v is not None)
    return f"forward loss: {fw}"


def taylor_line(report) -> Optional[str]:
    """``Taylor remainder order (2 = consistent, 1 = wrong): W1 2.00, b1 1.00``, or None."""
    orders = [f"{b.name} {b.taylor['order']:.2f}" for b in report.blocks.values()
              if b.taylor and b.taylor.get("order") is not None]
    if not orders:
        return None
    return f"Taylor remainder order (2 = consistent, 1 = wrong): {', '.join(orders)}"


def _footer(report) -> list:
    lines = [f"  {_free_text(oracle_line(_name(name), info), report)}"
             for name, info in report.oracles.items()]
    lines.append(f"  {forward_line(report)}")
    taylor = taylor_line(report)
    if taylor:
        lines.append(f"  {_free_text(taylor, report)}")
    lines.append(f"  params {report.fingerprint}, seed {report.seed}, {report.seconds:.2f} s")
    for note in notes(report):
        lines.append(f"  note: {_free_text(note, report)}")
    return lines


def render_plain(report) -> str:
    header, rows = _rows(report)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [headline(report), "", fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r) for r in rows]
    q_header, q_rows = quantity_rows(report)
    if q_rows:
        lines += ["", *_table(q_header, q_rows)]
    located = located_lines(report)
    if located:
        lines += ["", *(f"  {line}" for line in located)]
    details = _details(report)
    if details:
        lines += ["", *details]
    lines += ["", *_footer(report)]
    return visible("\n".join(lines))   # names and free text are escaped where placed


def render_rich(report):
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    # every string reaches rich as a Text, never as console markup: a block named
    # "[red]W" is shown as it is named
    header, rows = _rows(report)
    table = Table(title=Text(headline(report)), title_justify="left")
    for h in header:
        table.add_column(Text(h), justify="right" if h not in ("block", "verdict") else "left")
    styles = {"ok": "green", "WRONG": "bold red", "??": "yellow"}
    for r in rows:
        table.add_row(*(Text(c) for c in r[:-1]), Text(r[-1], style=styles[r[-1]]))
    parts = [table]
    q_header, q_rows = quantity_rows(report)
    if q_rows:
        second = Table(title=Text("where the error enters, in backward order"), title_justify="left")
        for h in q_header:
            second.add_column(Text(h))
        marks = {"ok": "green", "WRONG": "bold red", "??": "yellow"}
        verdict = q_header.index("verdict")
        for r in q_rows:
            second.add_row(*(Text(c, style=marks.get(c, "") if i == verdict else "")
                             for i, c in enumerate(r)))
        parts.append(second)
    located = located_lines(report)
    if located:
        parts.append(Text(visible("\n".join(located))))
    details = _details(report)
    if details:
        parts.append(Text(visible("\n".join(details))))
    parts.append(Text(visible("\n".join(_footer(report))), style="dim"))
    return Group(*parts)


def use_rich(stream=None) -> bool:
    stream = stream or sys.stdout
    return (stream.isatty() and not os.environ.get("NO_COLOR")
            and os.environ.get("TERM") != "dumb")


def print_report(report, stream=None) -> None:
    stream = stream or sys.stdout
    if use_rich(stream):
        from rich.console import Console
        Console(file=stream).print(render_rich(report))
    else:
        print(render_plain(report), file=stream)
