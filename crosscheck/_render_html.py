"""HTML: one self-contained page for a run, and a report's view in Jupyter.

Per case: its outcome, the block table, a chart of every oracle's difference per block on a
log scale with each block's tolerance (each oracle's tick labelled), and for every wrong block
a heat-map of where its elements disagree beside its worst elements; the footer carries what
the text report's does (versions, the Taylor orders, notes). The page takes the window's
width: wide models need it.
Charts are drawn with matplotlib (Agg, imported only here) and embedded as
``data:image/png;base64`` images, so the page fetches nothing. Every user-supplied string is
escaped with :func:`html.escape`, and a Content-Security-Policy forbids scripts outright.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Optional

import numpy as np

from ._render_text import (MARK, _num, forward_line, headline, located_lines, notes, oracle_line,
                           quantity_rows, taylor_line)
from ._run_file import as_outcomes, summary

NO_MATPLOTLIB = ('Charts need matplotlib, which is not installed: '
                 '<code>pip install "crosscheck-grad[report]"</code>.')
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
FLOOR = 1e-17   # where a difference of exactly 0 is drawn on the log scale
CSS = """
.crosscheck { font-family: system-ui, sans-serif; color: #1f2328; }
body.crosscheck { margin: 1em 2em; }
.crosscheck .scroll { overflow-x: auto; }
.crosscheck table { border-collapse: collapse; margin: .5em 0 1em; }
.crosscheck th, .crosscheck td { border: 1px solid #d0d7de; padding: .25em .6em; }
.crosscheck th { background: #f6f8fa; text-align: left; }
.crosscheck td.num { text-align: right; font-family: ui-monospace, monospace;
  white-space: nowrap; }
.crosscheck .ok { color: #1a7f37; } .crosscheck .wrong { color: #cf222e; font-weight: bold; }
.crosscheck .inconclusive, .crosscheck .error { color: #9a6700; }
.crosscheck .expected { color: #59636e; }
.crosscheck section { border-top: 2px solid #d0d7de; margin-top: 1.5em; }
.crosscheck img { max-width: 100%; display: block; margin: .5em 0; }
.crosscheck .wrong-block { display: inline-block; vertical-align: top; margin: 0 2em 1em 0; }
.crosscheck .wrong-block img { display: block; }
.crosscheck table.worst td, .crosscheck table.worst th { font-size: .9em; }
.crosscheck .note, .crosscheck .meta { color: #59636e; font-size: .9em; }
.crosscheck pre { background: #f6f8fa; padding: .5em; white-space: pre-wrap; }
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _figure():
    """A matplotlib Figure on an Agg canvas, or None without matplotlib (imported lazily)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None

    def make(**kwargs):
        fig = Figure(**kwargs)
        FigureCanvasAgg(fig)
        return fig
    return make


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _label(text) -> str:
    """Text for matplotlib: ``$`` would start mathtext."""
    return str(text).replace("$", r"\$")


def _tolerance_ticks(ax, blocks: list, oracle: str, k: int, width: float) -> None:
    """Each block's tolerance for ``oracle``, a tick over its bar; the first tick of each
    oracle labelled with the oracle's name, so the fd tick (loose: an estimate) is not
    mistaken for the autodiff one (tight: exact up to rounding)."""
    labelled = False
    for i, block in enumerate(blocks):
        tol = block.tolerance.get(oracle)
        if not tol:
            continue
        x = i - 0.4 + width * (k + 0.5)
        ax.hlines(tol, x - width / 2, x + width / 2, colors="black", linewidths=2)
        if not labelled:
            ax.annotate(f"{_label(oracle)} tol.", (x, tol), xytext=(0, 3),
                        textcoords="offset points", ha="center", va="bottom",
                        fontsize=8, bbox={"boxstyle": "round,pad=0.1", "fc": "white",
                                                  "ec": "none", "alpha": 0.8})
            labelled = True


def difference_chart(report, figure) -> Optional[str]:
    """Every oracle's difference per block (log scale), each bar with its tolerance tick."""
    oracles = list(report.oracles)
    blocks = list(report.blocks.values())
    values = [v for b in blocks for o in oracles
              for v in (b.difference.get(o), b.tolerance.get(o)) if v]
    if not values:
        return None
    fig = figure(figsize=(min(14.0, 2.5 + 0.9 * len(blocks) * max(1, len(oracles)) / 2), 3.4))
    ax = fig.add_subplot()
    width = 0.8 / len(oracles)
    colors = ["#0969da", "#8250df", "#bf8700", "#1a7f37", "#57606a"]
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    handles = []
    for k, oracle in enumerate(oracles):
        xs, ys, edges = [], [], []
        for i, block in enumerate(blocks):
            d = block.difference.get(oracle)
            if d is not None:
                xs.append(i - 0.4 + width * (k + 0.5))
                ys.append(max(d, FLOOR))
                edges.append("#cf222e" if oracle in block.disagree else "none")
        _tolerance_ticks(ax, blocks, oracle, k, width)
        color = colors[k % len(colors)]
        ax.bar(xs, ys, width=width * 0.9, color=color, edgecolor=edges, linewidth=1.5)
        handles.append(Patch(facecolor=color, label=_label(oracle)))
    low = max(FLOOR, min(values) / 10)
    ax.set_yscale("log")
    ax.set_ylim(low / 10, max(values) * 10)
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    ax.yaxis.set_major_locator(LogLocator(base=10.0, numticks=8))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0e}"))  # mathtext is slow
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(range(len(blocks)), [_label(b.name) for b in blocks],
                  rotation=45 if len(blocks) > 8 else 0, ha="right" if len(blocks) > 8 else "center")
    ax.set_ylabel("relative difference to hand")
    ax.grid(axis="y", alpha=0.3)
    handles += [Line2D([], [], color="black", linewidth=2, label="tolerance (per oracle)"),
                Patch(facecolor="white", edgecolor="#cf222e", label="disagrees with hand")]
    ax.legend(handles=handles, fontsize="small", ncols=len(handles), loc="upper left",
              bbox_to_anchor=(0, 1.2), frameon=False)
    return _png(fig)


def as_2d(values: np.ndarray) -> np.ndarray:
    """A block's per-element map as 2-d for display: 0-d → 1×1, 1-d → 1×n, n-d → rows × rest."""
    values = np.asarray(values, dtype=float)
    if values.ndim == 0:
        return values.reshape(1, 1)
    if values.ndim == 1:
        return values.reshape(1, -1)
    return values.reshape(values.shape[0], -1)


def _map_axes(ax, block, rows: int, cols: int) -> None:
    """Axis ticks and names a reader can use: every index when there are few, whole numbers
    otherwise; ``row``/``column`` for 2-d blocks (rest flattened), ``element`` for 1-d."""
    from matplotlib.ticker import MaxNLocator
    for axis, n in ((ax.xaxis, cols), (ax.yaxis, rows)):
        if n <= 12:
            axis.set_ticks(range(n))
        else:
            axis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(labelsize=9)
    ndim = np.ndim(block.mismatch)
    if ndim < 2:
        ax.set_yticks([])
        ax.set_xlabel("element" if ndim == 1 else "", fontsize=9)
    else:
        ax.set_xlabel("column" if ndim == 2 else "columns (later axes flattened)", fontsize=9)
        ax.set_ylabel("row", fontsize=9)


def mismatch_map(block, figure) -> Optional[str]:
    """Heat-map of ``|hand − ref| / tolerance`` (log colour scale) over a wrong block's
    elements: red beyond the tolerance, blue within, grey where nothing was compared."""
    if block.mismatch is None:
        return None
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.ticker import FuncFormatter

    ratio = as_2d(block.mismatch)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(np.isnan(ratio), np.nan, np.log10(np.maximum(ratio, 1e-3)))
    finite = logs[np.isfinite(logs)]
    top = float(finite.max()) if finite.size else 1.0
    logs = np.where(np.isposinf(logs), top + 1, logs)
    norm = TwoSlopeNorm(vcenter=0.0, vmin=min(-3.0, float(np.nanmin(logs)) - 0.1)
                        if np.isfinite(logs).any() else -3.0, vmax=max(1.0, top + 1))
    rows, cols = ratio.shape
    fig = figure(figsize=(min(10.0, 4.0 + 0.35 * cols), min(8.0, 2.4 + 0.4 * rows)))
    ax = fig.add_subplot()
    from matplotlib import colormaps
    cmap = colormaps["coolwarm"].with_extremes(bad="#d0d7de")
    image = ax.imshow(np.ma.masked_invalid(logs), cmap=cmap, norm=norm,
                      aspect="auto" if max(rows, cols) > 40 or min(rows, cols) < 3 else "equal",
                      interpolation="nearest")
    bar = fig.colorbar(image, ax=ax, format=FuncFormatter(lambda v, _: f"{10 ** v:.0e}"))
    bar.set_label("|hand − ref| / tolerance (above 1: beyond)", fontsize=9)
    bar.ax.tick_params(labelsize=9)
    ref = block.diagnosis.reference if block.diagnosis is not None else None
    bad = int(np.sum(ratio > 1))
    ax.set_title(f"{_label(block.name)}: {bad} of {ratio.size} element(s) beyond tolerance"
                 + (f" vs {_label(ref)}" if ref else ""), fontsize=10, loc="left")
    _map_axes(ax, block, rows, cols)
    return _png(fig)


def _table(report) -> str:
    oracles = list(report.oracles)
    head = "".join(f"<th>{_e(h)}</th>" for h in ["block", "shape", *oracles, "verdict",
                                                   "diagnosis"])
    rows = []
    for block in report.blocks.values():
        cells = [f"<td>{_e(block.name)}</td>",
                 f'<td class="num">{_e("×".join(map(str, block.shape)) or "()")}</td>']
        for o in oracles:
            tol = block.tolerance.get(o)
            title = f' title="tolerance {_e(_num(tol))}"' if tol else ""
            cells.append(f'<td class="num"{title}>{_e(_num(block.difference.get(o)))}</td>')
        cells.append(f'<td class="{_e(block.verdict)}">{_e(MARK[block.verdict])}</td>')
        if block.diagnosis is not None:
            text = block.diagnosis.text
        else:
            text = block.reason if block.verdict != "ok" or block.odd else ""
        cells.append(f"<td>{_e(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _located(report) -> str:
    """The backward's quantities in backward order, then the convention and the entry points."""
    header, rows = quantity_rows(report)
    if not rows:
        return ""
    verdict = {"ok": "ok", "WRONG": "wrong", "??": "inconclusive"}
    at = header.index("verdict")
    body = "".join("<tr>" + "".join(
        f'<td class="{verdict[c]}">{_e(c)}</td>' if i == at else f"<td>{_e(c)}</td>"
        for i, c in enumerate(r)) + "</tr>" for r in rows)
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    items = "".join(f"<li>{_e(line)}</li>" for line in located_lines(report))
    return (f'<div class="scroll"><table class="located"><tr>{head}</tr>{body}</table></div>'
            f'<ul class="located">{items}</ul>')


def _footer(report) -> str:
    """What the text report's footer says: each oracle (or its error, once), the forward
    loss, the Taylor orders, the fingerprint and the notes."""
    items = [f"<li>{_e(oracle_line(name, info))}</li>" for name, info in report.oracles.items()]
    items.append(f"<li>{_e(forward_line(report))}</li>")
    taylor = taylor_line(report)
    if taylor:
        items.append(f"<li>{_e(taylor)}</li>")
    items.append(f"<li>params {_e(report.fingerprint)}, seed {_e(report.seed)}, "
                 f"{report.seconds:.2f} s</li>")
    items += [f"<li>note: {_e(note)}</li>" for note in notes(report)]
    return f'<ul class="meta">{"".join(items)}</ul>'


def _value(x) -> str:
    return "—" if x is None else f"{x:.6g}"


def _worst(block) -> str:
    """The wrong block's worst elements side by side, as the text report lists them."""
    d = block.diagnosis
    if d is None or not d.elements:
        return ""
    rows = ""
    for e in d.elements[:3]:
        cells = [tuple(e["index"]), _value(e["hand"]), _value(e["reference"])]
        rows += "<tr>" + "".join(f'<td class="num">{_e(c)}</td>' for c in cells) + "</tr>"
    return (f'<table class="worst"><tr><th>element</th><th>hand</th>'
            f'<th>{_e(d.reference or "reference")}</th></tr>{rows}</table>')


def _wrong_block(block, figure) -> str:
    """A wrong block: its heat-map (when it can be drawn) beside its worst elements."""
    image = ""
    if figure is not None:
        try:
            uri = mismatch_map(block, figure)
            if uri:
                image = f'<img src="{uri}" alt="where {_e(block.name)} disagrees">'
        except Exception as exc:  # noqa: BLE001 - a chart never costs the tables
            image = (f'<p class="note">A chart could not be drawn: '
                     f'{_e(type(exc).__name__)}: {_e(exc)}</p>')
    return f'<div class="wrong-block">{image}{_worst(block)}</div>'


def _charts(report, figure) -> str:
    if figure is None:
        parts = [f'<p class="note">{NO_MATPLOTLIB}</p>']
    else:
        try:
            uri = difference_chart(report, figure)
            parts = [f'<img src="{uri}" alt="difference per block and oracle, log scale, '
                     f'with tolerances">'] if uri else []
        except Exception as exc:  # noqa: BLE001 - a chart never costs the tables
            parts = [f'<p class="note">A chart could not be drawn: '
                     f'{_e(type(exc).__name__)}: {_e(exc)}</p>']
    parts += [_wrong_block(report.blocks[name], figure) for name in report.flagged]
    return "".join(parts)


# outcome -> (CSS class, the word the summary table shows)
OUTCOME = {"agrees": ("ok", "agrees"), "flagged": ("wrong", "FLAGGED"),
           "inconclusive": ("inconclusive", "INCONCLUSIVE"),
           "could not check": ("error", "could not check")}
EXPECTED = ("expected", "flagged as expected")   # a flag its test expected (the test passed)


def _section(report, figure, anchor: str = "", label: Optional[str] = None) -> str:
    """One report: its headline, table, charts and footer. The headline starts with
    ``label`` (a pytest test id) when that names the case otherwise than the headline does
    (``as_outcomes`` labels a report without a case "crosscheck")."""
    ident = f' id="{_e(anchor)}"' if anchor else ""
    test = (f"<code>{_e(label)}</code> " if label and label != (report.case or "crosscheck")
            else "")
    return (f"<section{ident}><h2 class=\"{OUTCOME[report.outcome][0]}\">"
            f"{test}{_e(headline(report))}</h2><div class=\"scroll\">{_table(report)}</div>"
            f"{_located(report)}{_charts(report, figure)}{_footer(report)}</section>")


def render_report_html(report) -> str:
    """One report as an HTML fragment (Jupyter's ``_repr_html_``): table and charts."""
    return (f'<div class="crosscheck"><style>{CSS}</style>'
            f"{_section(report, _figure())}</div>")


def render_page(reports, title: str = "crosscheck", *, metadata: Optional[dict] = None) -> str:
    """A self-contained HTML page for several reports (or run outcomes).

    Args:
        reports: :class:`crosscheck.Report` or :class:`crosscheck._run_file.Outcome` objects;
            outcomes without a report are listed with their error.
        title: the page's title and heading.
        metadata: a run's metadata (``crosscheck._run_file.metadata``), shown at the bottom.

    Returns:
        The page; it loads nothing from elsewhere and runs no script.
    """
    outcomes = as_outcomes(reports)
    figure = _figure() if any(o.report is not None for o in outcomes) else None
    rows, sections = [], []
    for i, o in enumerate(outcomes, 1):
        anchor = f"case-{i}"
        cls, word = EXPECTED if o.expected and o.outcome == "flagged" else OUTCOME[o.outcome]
        flagged = ", ".join(o.report.flagged) if o.report is not None else ""
        rows.append(f'<tr><td><a href="#{anchor}">{_e(o.label)}</a></td>'
                    f'<td class="{cls}">{word}</td><td>{_e(flagged)}</td></tr>')
        if o.report is not None:
            sections.append(_section(o.report, figure, anchor, o.label))
        else:
            sections.append(f'<section id="{anchor}"><h2 class="error">{_e(o.label)}: could '
                            f'not be checked</h2><pre>{_e(o.error)}</pre></section>')
    meta = ""
    if metadata:
        versions = ", ".join(f"{k} {v}" for k, v in metadata.get("versions", {}).items() if v)
        meta = (f'<p class="meta">{_e(metadata.get("time", ""))} on '
                f'{_e(metadata.get("host", ""))}: {_e(versions)}<br>'
                f'<code>{_e(metadata.get("command", ""))}</code></p>')
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{CSS}</style></head>\n"
            f'<body class="crosscheck"><h1>{_e(title)}</h1>'
            f'<p><strong>{_e(summary(outcomes))}</strong></p>'
            f'<table><tr><th>case</th><th>outcome</th><th>flagged blocks</th></tr>'
            f'{"".join(rows)}</table>\n{"".join(sections)}\n{meta}</body></html>\n')
