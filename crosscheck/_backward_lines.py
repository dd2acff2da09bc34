"""Which line of the backward computes each checked quantity, and from which other quantities.

Why at run time. A backward written as a loop (seed 002: ``for l in reversed(range(1, L)):
dZ = …; grads['dW' + str(l)] = …``) stores its quantities under computed keys and reassigns
one local per layer, so no line of its source names ``dZ2`` or ``dW1``. Running it once under
a line tracer ties each returned array to the line that made it: at each line event of a
traced frame the previous line's effects are visible, and an object seen there for the first
time -- among the frame's locals, or one level inside a dict, list or tuple local such as
``grads`` -- was made by that previous line. The first appearance wins, so ``dZ = …`` is
found rather than ``grads['dZ2'] = dZ``, which only stores it. A quantity's *inputs* are the
names its line reads whose values, just before that execution of the line, were other
returned quantities (by identity: in a loop, one line reads ``dZ3`` on one pass and ``dZ2``
on the next).

Scope and cost. Only frames of the user's code (:func:`crosscheck._user_code.is_user_frame`)
get a line tracer; library frames get none, so numpy runs untraced. The tracer wraps the one
call of ``grad`` localisation makes anyway, and the previous tracer (a debugger, coverage) is
restored afterwards. Every object recorded stays referenced until the trace is read, so that
no id is reused by a later object.

Fallback. Where the trace finds no line for a quantity (tracing unavailable, an argument
returned as it came, code without source), :func:`static_lines` reads the backward's source
for a plain ``key = …`` assigning the key once, as the seeds write ``dZ3 = A3 - Y``.
"""

from __future__ import annotations

import ast
import functools
import linecache
import os
import sys
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

from ._taps import assignments, function_tree
from ._tolerances import BUDGETS
from ._user_code import is_user_frame

#: Objects never taken for a quantity: shared by the interpreter (small ints, interned
#: strings, None) or not arrays at all, so identity would tie unrelated lines together.
NOT_QUANTITIES = (int, str, bytes, type(None), type, types.FunctionType, types.ModuleType)


@dataclass(frozen=True)
class SourceLine:
    """Where a quantity is assigned in the backward: file, line number, the line's text, the function.

    ``during`` tells a loop's passes apart: the loop counters' values when the line computed
    the quantity (``"l = 2"``); empty outside loops and when the line was read, not run.
    """

    file: str
    line: int
    text: str
    function: str
    during: str = ""

    def __str__(self) -> str:
        during = f", {self.during}" if self.during else ""
        return f"{_shown(self.file)}:{self.line} (`{self.function}`{during}): `{self.text}`"


def _shown(path: str) -> str:
    """``path`` relative to the working directory when it lies under it (as editors link it)."""
    try:
        relative = os.path.relpath(path)
    except ValueError:      # another drive
        return path
    return path if relative.startswith("..") else relative


def _text(filename: str, number: int, fallback: str = "") -> str:
    lines = linecache.getlines(filename)
    return lines[number - 1].strip() if 0 < number <= len(lines) else fallback


# ------------------------------------------------------------------ reading the source (fallback)
def static_lines(backward: Optional[types.FunctionType], keys) -> dict:
    """``{key: (SourceLine, names read on its right-hand side)}`` for keys assigned once in ``backward``."""
    if backward is None:
        return {}
    found = function_tree(backward)
    if found is None:
        return {}
    definition, first = found
    code = backward.__code__
    out = {}
    for key, nodes in assignments(definition).items():
        if key not in keys or len(nodes) != 1 or not isinstance(nodes[0], ast.Assign):
            continue
        number = nodes[0].lineno + first - definition.lineno
        text = _text(code.co_filename, number, ast.unparse(nodes[0]))
        read = {n.id for n in ast.walk(nodes[0].value) if isinstance(n, ast.Name)}
        out[key] = (SourceLine(code.co_filename, number, text, backward.__qualname__), read)
    return out


def _statements(filename: str) -> dict:
    """``{line: (first line of its statement, names it reads, loop counters around it)}``.

    A compound statement (``for``, ``if`` …) counts its header only: the line event of
    ``for l in …`` reads ``l``'s iterable, not the loop body. Each line maps to its innermost
    statement. The counters are the names the enclosing ``for`` loops assign (``l``), whose
    values at run time tell one pass of a loop line from another.
    """
    return _parsed("".join(linecache.getlines(filename)))


@functools.lru_cache(maxsize=32)
def _parsed(source: str) -> dict:
    """:func:`_statements` of one source text, parsed once per text (files rarely change in a session)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return {}
    out: dict = {}

    def visit(statements, counters: tuple) -> None:
        for node in statements:
            if not isinstance(node, ast.stmt):
                continue
            bodies = [(k, v) for k, v in ast.iter_fields(node) if k in BODIES and isinstance(v, list)]
            if bodies:      # the header: up to the line before the first body statement
                parts = [v for k, v in ast.iter_fields(node) if k not in BODIES]
                first_body = min((v[0].lineno for _, v in bodies if v), default=node.lineno + 1)
                end = max(node.lineno, first_body - 1)
            else:
                parts, end = [node], node.end_lineno or node.lineno
            names = frozenset(n.id for part in parts for p in (part if isinstance(part, list) else [part])
                              if isinstance(p, ast.AST) for n in ast.walk(p)
                              if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load))
            for number in range(node.lineno, end + 1):
                out[number] = (node.lineno, names, counters)
            inner = counters + _targets(node) if isinstance(node, (ast.For, ast.AsyncFor)) else counters
            for key, body in bodies:
                visit([h for h in body if isinstance(h, ast.stmt)] +
                      [s for h in body if isinstance(h, (ast.ExceptHandler, ast.match_case)) for s in h.body],
                      inner if key == "body" else counters)

    visit(tree.body, ())
    return out


#: The fields of a compound statement that hold statements rather than its header.
BODIES = ("body", "orelse", "finalbody", "handlers", "cases")


def _targets(loop) -> tuple:
    return tuple(n.id for n in ast.walk(loop.target) if isinstance(n, ast.Name))


# ------------------------------------------------------------------ the trace
@dataclass
class _Frame:
    """What one traced frame showed: each object's first appearance ``(line, ids read there,
    loop counters)``, when it appeared (``ticks``), and the objects themselves (``keep``: no id
    is reused while the trace lives)."""

    code: types.CodeType
    seen: dict = field(default_factory=dict)
    ticks: dict = field(default_factory=dict)
    keep: list = field(default_factory=list)
    pending: tuple = (None, frozenset(), "")


class Trace:
    """The record of one traced call of the backward; :meth:`lines` reads it for the returned keys."""

    def __init__(self, only: Optional[types.CodeType] = None):
        self.only = only
        self.frames: list = []
        self.tick = 0
        self.events = 0     # line events seen: past BUDGETS["trace_lines"] the trace stops
        self._wanted: dict = {}
        self._statements: dict = {}

    def call(self, run: Callable[[], Any]) -> Any:
        """``run()`` with this trace recording the user's frames; the previous tracer restored after."""
        previous = sys.gettrace()
        sys.settrace(self._global)
        try:
            return run()
        finally:
            sys.settrace(previous)

    def _global(self, frame, event, arg):
        code = frame.f_code
        wanted = self._wanted.get(code)
        if wanted is None:
            wanted = self._wanted[code] = (code is self.only) if self.only is not None else is_user_frame(frame)
        if event != "call" or not wanted or self.events > BUDGETS["trace_lines"]:
            return None
        record = _Frame(code)
        self.frames.append(record)
        self._scan(record, frame.f_locals.values())

        def local(frame, event, arg):
            if event == "line":
                # (a backward of long Python loops -- a naive convolution -- would cost
                # seconds per million lines: past the budget its lines are read from the
                # source instead, as for a backward that cannot be traced)
                self.events += 1
                if self.events > BUDGETS["trace_lines"]:
                    return None
                self._scan(record, frame.f_locals.values())
                record.pending = self._reading(frame)
            elif event == "return" and self.events <= BUDGETS["trace_lines"]:
                self._scan(record, [*frame.f_locals.values(), arg])
            return local
        return local

    def _scan(self, record: _Frame, values) -> None:
        """Record every object first visible now (one level inside dicts, lists, tuples too)."""
        for value in values:
            self._see(record, value)
            if isinstance(value, dict):
                for item in value.values():
                    self._see(record, item)
            elif isinstance(value, (list, tuple)):
                for item in value:
                    self._see(record, item)

    def _see(self, record: _Frame, value) -> None:
        if isinstance(value, NOT_QUANTITIES) or id(value) in record.seen:
            return
        record.seen[id(value)] = record.pending
        record.ticks[id(value)] = self.tick
        record.keep.append(value)
        self.tick += 1

    def _reading(self, frame) -> tuple:
        """``(statement's first line, ids of the locals it reads, loop counters)`` for the line about to run."""
        filename = frame.f_code.co_filename
        if filename not in self._statements:
            self._statements[filename] = _statements(filename)
        start, names, counters = self._statements[filename].get(frame.f_lineno, (frame.f_lineno, (), ()))
        values = frame.f_locals
        during = ", ".join(f"{n} = {values[n]!r}" for n in counters
                           if isinstance(values.get(n), (int, str)) and len(repr(values[n])) <= 20)
        return start, frozenset(id(values[n]) for n in names if n in values), during

    def lines(self, out: Mapping) -> dict:
        """``{key: (SourceLine, keys of the other quantities its line read)}``, in the order computed.

        The frame read is the one where most of ``out``'s values first appear on a line (ties:
        the frame where they appeared first -- the backward itself rather than a caller that
        only received its result).
        """
        def score(record: _Frame) -> tuple:
            found = [record.ticks[id(v)] for v in out.values()
                     if id(v) in record.seen and record.seen[id(v)][0] is not None]
            return len(found), -sum(found)

        best = max(self.frames, key=score, default=None)
        if best is None or score(best)[0] == 0:
            return {}
        code = best.code
        function = getattr(code, "co_qualname", code.co_name)
        found = {}
        for key, value in sorted(out.items(), key=lambda kv: best.ticks.get(id(kv[1]), -1)):
            line, read, during = best.seen.get(id(value), (None, frozenset(), ""))
            if line is None:
                continue
            inputs = {k for k, v in out.items() if k != key and id(v) in read}
            where = SourceLine(code.co_filename, line, _text(code.co_filename, line), function, during)
            found[key] = (where, inputs)
        return found


def traced(run: Callable[[], Any], only: Optional[types.FunctionType] = None) -> tuple:
    """``(run(), {key: (SourceLine, inputs)})``: the backward's result and its quantities' lines.

    ``only`` limits the trace to that function's frames; default: every frame of user code.
    A ``run`` that returns no mapping yields no lines.
    """
    trace = Trace(getattr(only, "__code__", None))
    out = trace.call(run)
    return out, (trace.lines(out) if isinstance(out, Mapping) else {})
