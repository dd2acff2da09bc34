"""What a command leaves behind: the outputs a run writes (``--json`` as it goes, JUnit,
Markdown, HTML at the end), its one-line summary and exit status, and what happens when it is
stopped (Ctrl-C, SIGTERM): the finished cases saved, one line, 130 or 143.

Kept apart from :mod:`crosscheck._cli`, which finds and checks the cases: this module only
writes what they gave.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from pathlib import Path

from ._cli_args import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, gravest
from ._run_file import summary


def stdout_outputs(ns) -> list:
    """The output options given as `-`: written to standard output instead of a file."""
    return [f"--{key}" for key in ("json", "junit", "markdown", "html")
            if getattr(ns, key, None) == "-"]


def journal(ns, command: str, suite=None):
    """The ``save`` of a :class:`crosscheck._cli.RunState` for ``--json FILE``: rewrite the file atomically as
    a partial run file (``partial.state`` ``running``) -- so a run killed outright leaves its
    finished cases, and never yesterday's file, on disk. ``None`` without a file."""
    path = getattr(ns, "json", None)
    if not path or path == "-":
        return None
    from ._run_file import partial_document, write_atomically
    broken: list = []

    def save(state) -> None:
        if broken:
            return
        doc = partial_document(state.results, command, suite, current=state.current,
                               not_run=state.not_run, not_loaded=state.not_loaded)
        try:
            write_atomically(path, json.dumps(doc, indent=2))
        except OSError as exc:
            broken.append(exc)
            print(f"crosscheck: cannot write `{path}` as the run goes "
                  f"({exc.strerror or exc}); trying again at the end.", file=sys.stderr)
    return save


def interrupted(ns, state, title: str, command: str, suite=None,
                 exc: BaseException = KeyboardInterrupt()) -> int:
    """After Ctrl-C (or SIGTERM): every output asked for, with the finished cases; one line;
    exit 130 (143)."""
    from ._run_file import metadata, partial_document
    results, counted = state.results, state.counted()
    meta = metadata(command) if (ns.markdown or ns.html) else None

    def doc() -> str:
        return json.dumps(partial_document(
            results, command, suite, state="interrupted", current=state.current,
            not_run=state.not_run, not_loaded=state.not_loaded), indent=2)
    code, word = interrupted_code(exc)
    written = write_outputs(ns, results, f"{title} ({word} after {counted} case(s))",
                             meta, doc)
    finish(EXIT_OK, results, written, sys.stderr if stdout_outputs(ns) else None)
    saved = [("standard output" if p == "-" else p)
             for p in (ns.json, ns.junit, ns.markdown, ns.html) if p]
    line = f"crosscheck: {word} after {counted} case(s)"
    if saved and written == EXIT_OK:
        line += f"; finished results saved to {', '.join(saved)}"
    print(line, file=sys.stderr)
    return code


def check_json(results) -> str:
    """``check --json``: a report dict for one case, a list for several."""
    from ._run_file import error_entry
    items = []
    for outcome in results:
        if outcome.report is not None:
            items.append(outcome.report.to_dict())
        else:
            items.append({"schema": "crosscheck.report/1",
                          **error_entry(outcome.label, outcome.error)})
    return json.dumps(items[0] if len(items) == 1 else items, indent=2)


def write(path: str, text: str) -> None:
    if path == "-":   # `--json -`: standard output (the tables went to standard error)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")


def write_outputs(ns, results, title: str, meta, json_text) -> int:
    """Write every output the command line asked for; 2 when one cannot be written.

    Files are replaced atomically: the run file written as the run went stays whole."""
    from ._run_file import write_atomically
    jobs = []
    if ns.json:
        jobs.append((ns.json, json_text))
    if ns.junit:
        from ._render_junit import render_junit
        jobs.append((ns.junit, lambda: render_junit(results)))
    if ns.markdown:
        from ._render_markdown import render_markdown
        jobs.append((ns.markdown, lambda: render_markdown(results, title=title, metadata=meta)))
    if ns.html:
        from ._render_html import render_page
        jobs.append((ns.html, lambda: render_page(results, title=title, metadata=meta)))
    for path, render in jobs:
        try:
            (write if path == "-" else write_atomically)(path, render())
        except OSError as exc:
            print(f"crosscheck: cannot write `{path}`: {exc.strerror or exc}.", file=sys.stderr)
            return EXIT_ERROR
    return EXIT_OK


def finish(code: int, results, write_code: int, stream=None) -> int:
    """Print the one-line summary; the exit code, the gravest of the run's and the writing's
    (an unwritable output, 2, outranks an inconclusive case, 3)."""
    from ._render_text import visible   # case labels may hold terminal escapes
    print(f"crosscheck: {visible(summary(results))}", file=stream or sys.stdout)
    return gravest(code, write_code)


class Terminated(KeyboardInterrupt):
    """SIGTERM -- what a CI job's timeout or ``kill`` sends -- taken like Ctrl-C: the finished
    cases are saved to every output asked for, then exit 143 (128 + SIGTERM)."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


@contextlib.contextmanager
def sigterm_as_interrupt():
    """While a command runs, SIGTERM raises :class:`Terminated` (where Python can handle it:
    the main thread, and a handler nobody else installed)."""
    try:
        previous = signal.getsignal(signal.SIGTERM)
        if previous != signal.SIG_DFL:
            previous = None
        else:
            signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:      # not the main thread
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def interrupted_code(exc: BaseException) -> tuple:
    """``(exit code, word)`` for an interruption: Ctrl-C or SIGTERM."""
    if isinstance(exc, Terminated):
        return EXIT_TERMINATED, "terminated (SIGTERM)"
    return EXIT_INTERRUPTED, "interrupted"
