"""Taps: named zero offsets in a forward, so a reference can differentiate the loss by an intermediate.

A hand-written backward computes ∂J/∂Z for intermediates ``Z`` of the forward (the seeds'
``dZ3``, ``dA2`` …) before it reaches the parameters. To check those values a reference needs
∂J/∂Z too, and ``Z`` is not an input of the loss. A tap makes it one:
``Z1 = tap("Z1", W1 @ X + b1)`` returns ``Z1 + δ`` with ``δ = 0`` registered under ``"Z1"``,
and ∂J/∂δ at δ = 0 is ∂J/∂Z1. Centered differences perturb ``δ``; jax and torch
differentiate with respect to it.

Outside a localisation run :func:`tap` returns its argument itself: one context-variable
read, no copy, no arithmetic. Inside one (:func:`session`), the active :class:`Session`
either records each tap's shape (``offsets is None``) or adds the offset given for its name.

:func:`tapped_function` taps code as written: a local assigned exactly once by a plain
``Z1 = …`` is rewritten to ``Z1 = __crosscheck_tap__("Z1", …)`` in a recompiled copy of the
function (the user's function and module are untouched; file name and line numbers are kept).
:func:`retarget` rebuilds the loss so that it reaches the tapped copy instead of the original.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import contextvars
import copy
import functools
import inspect
import textwrap
import types
import warnings
import weakref
from typing import Any, Mapping, Optional

from ._errors import CheckError
from ._functional import HELPERS as FUNCTIONAL_HELPERS
from ._functional import _Rewriter as FunctionalRewriter
from ._functional import recompiled
from ._user_code import is_user_code

TAP = "__crosscheck_tap__"

#: The active localisation run, or None (a plain run).
_SESSION: contextvars.ContextVar = contextvars.ContextVar("crosscheck_tap_session", default=None)


class Session:
    """One localisation run: what the taps saw (``shapes``, in call order) and the offsets to add.

    ``offsets`` None records; a mapping adds ``offsets[name]`` to the tapped value (names it
    lacks pass through). A name tapped twice in one run is refused: its offset would stand
    for two different values, and ∂J/∂offset would be the sum of two derivatives.
    """

    def __init__(self, offsets: Optional[Mapping[str, Any]] = None):
        self.offsets = offsets
        self.shapes: dict = {}
        self.by_hand: set = set()     # names the user's own crosscheck.tap calls tapped

    def add(self, name: str, value: Any, by_hand: bool = False) -> Any:
        if name in self.shapes:
            raise CheckError(
                f"`tap({name!r}, ...)` ran twice in one evaluation of the loss; a tap's name must "
                f"be unique per forward pass. In a loop, compute the name: `tap(f\"{name}{{l}}\", ...)`.")
        self.shapes[name] = tuple(getattr(value, "shape", ()))
        if by_hand:
            self.by_hand.add(name)
        if self.offsets is None or name not in self.offsets:
            return value
        return value + self.offsets[name]


def tap(name: str, value: Any) -> Any:
    """``value``, marked as the intermediate ``name`` of the forward for localisation.

    In a plain run this returns ``value`` itself (one context-variable lookup). While
    :func:`crosscheck.check` or :func:`crosscheck.locate` localises, it returns ``value + δ``
    with a zero ``δ`` (a numpy, jax or torch array, whichever the run differentiates) so
    that the references can compute ∂J/∂value.

    Args:
        name: the intermediate's name; the hand-written gradient's key is ``"d" + name``.
            Names may be computed (``tap(f"A{l}", A)`` in a loop) but must be unique per pass.
        value: the intermediate itself.

    Returns:
        ``value`` (plain run) or ``value + δ`` (localisation run).

    Examples:
        >>> import numpy as np
        >>> a = np.ones(3)
        >>> tap("a", a) is a
        True
    """
    active = _SESSION.get()
    if active is None:
        return value
    return active.add(name, value, by_hand=True)


def _automatic_tap(name: str, value: Any) -> Any:
    """The tap the recompiled forward calls on a plain assignment: :func:`tap`, unless the
    user's own ``crosscheck.tap`` already tapped that name in this pass (``Z1 = tap("Z1", …)``
    written by hand is then left as the user wrote it, not tapped twice). A name the automatic
    taps meet twice (a forward run twice per loss) is refused as :meth:`Session.add` says."""
    active = _SESSION.get()
    if active is None or name in active.by_hand:
        return value
    return active.add(name, value)


@contextlib.contextmanager
def session(active: Session):
    """Within: :func:`tap` reports to ``active`` (this thread/context only)."""
    token = _SESSION.set(active)
    try:
        yield active
    finally:
        _SESSION.reset(token)


# ------------------------------------------------------------------ reading source
def function_tree(fn: types.FunctionType):
    """``(FunctionDef, first line)`` of ``fn``'s source, or None for lambdas and code without source."""
    code = getattr(fn, "__code__", None)
    if code is None or code.co_name == "<lambda>":
        return None
    try:
        tree = ast.parse(_source(code))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    if not tree.body or not isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef)) \
            or tree.body[0].name != code.co_name:
        return None
    return tree.body[0], code.co_firstlineno


@functools.lru_cache(maxsize=512)
def _source(code: types.CodeType) -> str:
    """A function's source, dedented, read once per code object (reading it is the slow part
    of a localisation on a small model; a function redefined has a new code object)."""
    return textwrap.dedent(inspect.getsource(code))


def assignments(definition) -> dict:
    """``{name: [assigning nodes]}`` for every local the function body stores (nested functions aside).

    Plain ``X = …`` appear as their ``ast.Assign``; any other store of the name (a loop
    target, ``X += …``, tuple unpacking) as the storing node, so a count above one, or a
    node that is not a plain assignment, says the name is ambiguous.
    """
    found: dict = {}

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                continue
            if isinstance(child, ast.Assign) and len(child.targets) == 1 \
                    and isinstance(child.targets[0], ast.Name):
                found.setdefault(child.targets[0].id, []).append(child)
                visit(child.value)
                continue
            if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                found.setdefault(child.id, []).append(child)
            visit(child)

    for statement in definition.body:
        visit(ast.Module(body=[statement], type_ignores=[]))
    return found


# ------------------------------------------------------------------ the rewrite
class _Tapper(ast.NodeTransformer):
    """``X = expr`` → ``X = __crosscheck_tap__("X", expr)`` for the chosen nodes only."""

    def __init__(self, nodes):
        self.nodes = {(n.lineno, n.col_offset): n.targets[0].id for n in nodes}

    def visit_Assign(self, node):
        name = self.nodes.get((node.lineno, node.col_offset))
        if name is None or not (isinstance(node.targets[0], ast.Name) and node.targets[0].id == name):
            return self.generic_visit(node)
        call = ast.Call(ast.Name(TAP, ast.Load()), [ast.Constant(name), node.value], [])
        return ast.copy_location(ast.Assign(node.targets, ast.copy_location(call, node.value)), node)


def tappable(fn: types.FunctionType, names) -> tuple:
    """``(single, notes)``: which of ``names`` ``fn`` assigns once by a plain assignment; why not the others."""
    found = function_tree(fn)
    if found is None:
        return {}, [f"`{getattr(fn, '__qualname__', fn)}` has no readable source: no automatic taps."]
    definition, first = found
    stores = assignments(definition)
    single, notes = {}, []
    for name in names:
        nodes = stores.get(name, [])
        if len(nodes) == 1 and isinstance(nodes[0], ast.Assign):
            single[name] = nodes[0]
        elif nodes:
            lines = ", ".join(str(n.lineno + first - definition.lineno) for n in nodes)
            notes.append(f"`{name}` is assigned {len(nodes)} time(s) in `{fn.__qualname__}` "
                         f"(line(s) {lines}), not once by a plain assignment: add "
                         f"`crosscheck.tap(\"{name}\", {name})` after the assignment meant.")
    return single, notes


def reassigned(functions, names) -> Optional[tuple]:
    """Why ``names`` (``Z3``, ``Z2`` …) cannot be tapped automatically: a loop reassigning their stem.

    Returns ``(function, {stem: [line numbers]}, loop counter or None)`` for the function of
    ``functions`` that stores the most of the names' stems (``Z`` for ``Z3``: the name less its
    trailing digits) more than once, or None when none does. The counter is the target of
    the ``for`` around the first stem's first store (``l`` in seed 002's
    ``for l in range(1, L)``): the name a computed tap would use.
    """
    # (a name without an index, reassigned itself, is :func:`tappable`'s to explain)
    stems = list(dict.fromkeys(n.rstrip("0123456789") for n in names
                               if n.rstrip("0123456789") != n))
    best: Optional[tuple] = None
    for fn in functions:
        found = function_tree(fn)
        if found is None:
            continue
        definition, first = found
        stores = assignments(definition)
        lines = {s: [n.lineno + first - definition.lineno for n in stores[s]]
                 for s in stems if s and len(stores.get(s, ())) > 1}
        if lines and (best is None or len(lines) > len(best[1])):
            best = (fn, lines, _counter(definition, stores[next(iter(lines))][0]))
    return best


def _counter(definition, node) -> Optional[str]:
    """The name a ``for`` loop around ``node`` counts with (innermost loop), or None."""
    counters = [f.target.id for f in ast.walk(definition) if isinstance(f, (ast.For, ast.AsyncFor))
                and isinstance(f.target, ast.Name) and any(n is node for n in ast.walk(f))]
    return counters[-1] if counters else None


def _overlay(source: dict, extra: Mapping) -> dict:
    """Globals that read ``extra`` first, then ``source`` live (the user's module dict is not touched)."""
    view = _Overlay(extra)
    view._source = source
    view.setdefault("__builtins__", source.get("__builtins__", builtins))
    for key in ("__name__", "__file__", "__package__", "__spec__", "__loader__"):
        if key in source:
            view[key] = source[key]
    return view


class _Overlay(dict):
    __slots__ = ("_source",)
    _source: dict

    def __missing__(self, key):
        return self._source[key]


_TAPPED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def tapped_function(fn: types.FunctionType, nodes: Mapping[str, ast.Assign]):
    """A copy of ``fn`` whose assignments ``nodes`` (from :func:`tappable`) go through :func:`tap`.

    In-place writes are made functional in the same rewrite (:mod:`crosscheck._functional`),
    so that jax runs the copy as it is (its own rewrite would re-read the untapped source).
    Memoised per function and set of names: the rebinding caches key on function objects.
    """
    key = (fn.__code__, tuple(sorted(nodes)))
    cached = _TAPPED.get(fn)
    if cached is not None and cached[0] == key:
        return cached[1]
    definition, _ = function_tree(fn)
    definition.decorator_list = []
    definition = _Tapper(nodes.values()).visit(definition)
    FunctionalRewriter().visit(definition)
    code = fn.__code__
    new_code = recompiled(definition, code)
    cells = dict(zip(code.co_freevars, fn.__closure__ or ()))
    closure = tuple(cells[n] for n in new_code.co_freevars) or None
    new = types.FunctionType(new_code, _overlay(fn.__globals__, {TAP: _automatic_tap, **FUNCTIONAL_HELPERS}),
                             fn.__name__, fn.__defaults__, closure)
    new.__kwdefaults__, new.__qualname__, new.__module__ = fn.__kwdefaults__, fn.__qualname__, fn.__module__
    _TAPPED[fn] = (key, new)
    return new


# ------------------------------------------------------------------ reaching the forward
def reached(fn: Any, depth: int = 3) -> list:
    """The user's functions ``fn`` reaches through globals and closures (``fn`` first), breadth
    first; through ``module.function`` calls too, and, when ``fn`` is a bound method, through
    the methods of its object's class that it names (``self.forward``)."""
    seen, order, frontier = set(), [], [fn]
    owner = type(fn.__self__) if isinstance(fn, types.MethodType) else None
    for _ in range(depth + 1):
        following: list = []
        for f in frontier:
            if isinstance(f, types.MethodType):
                f = f.__func__
            if not isinstance(f, types.FunctionType) or id(f) in seen or not is_user_code(f):
                continue
            seen.add(id(f))
            order.append(f)
            following.extend(_callees(f).values())
            following.extend(_module_functions(f))
            following.extend(_methods(f, owner))
        frontier = following
    return order


def _methods(fn: types.FunctionType, owner: Optional[type]) -> list:
    """The methods of ``owner`` (the class of the bound method a walk started from) that
    ``fn`` names: ``self.forward(...)`` inside ``loss``."""
    if owner is None:
        return []
    found = (inspect.getattr_static(owner, n, None) for n in code_names(fn.__code__))
    return [f for f in found if isinstance(f, types.FunctionType)]


def _module_functions(fn: types.FunctionType) -> list:
    """Functions ``fn`` reaches as ``module.name`` (``seed.backward(...)``): read, never rebuilt."""
    names = code_names(fn.__code__)
    out: list = []
    for name in names:
        module = fn.__globals__.get(name)
        if isinstance(module, types.ModuleType):
            with warnings.catch_warnings():      # (numpy warns on `np.str` & co.)
                warnings.simplefilter("ignore")
                found = [getattr(module, n, None) for n in names]
            out.extend(v for v in found if isinstance(v, types.FunctionType))
    return out


def code_names(code: types.CodeType) -> set:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= code_names(const)
    return names


def _callees(fn: types.FunctionType) -> dict:
    """``{("global" | "cell", name or index): function}`` for the user functions ``fn`` refers to."""
    out = {}
    for name in code_names(fn.__code__):
        value = fn.__globals__.get(name)
        if isinstance(value, types.FunctionType):
            out[("global", name)] = value
    for i, cell in enumerate(fn.__closure__ or ()):
        with contextlib.suppress(ValueError):
            if isinstance(cell.cell_contents, types.FunctionType):
                out[("cell", i)] = cell.cell_contents
    return out


def retarget(fn: Any, old: types.FunctionType, new: types.FunctionType, depth: int = 3) -> Any:
    """``fn`` rebuilt so that wherever it reaches ``old`` (through globals or closures) it reaches ``new``.

    Functions on the path to ``old`` are copied with overlay globals and fresh cells; the
    user's functions and modules are not modified. Returns ``fn`` itself when it never reaches ``old``.
    """
    if fn is old:
        return new
    if isinstance(fn, types.MethodType):
        return _retarget_method(fn, old, new)
    cached = _RETARGETED.get(fn) if isinstance(fn, types.FunctionType) else None
    if cached is not None and cached[0] == (fn.__code__, old, new):
        return cached[1]  # one copy per loss: the rebinding's caches hold on to what they see
    copy = _retarget(fn, old, new, depth)
    if copy is not fn:
        _RETARGETED[fn] = ((fn.__code__, old, new), copy)
    return copy


_RETARGETED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _retarget_method(bound: types.MethodType, old: types.FunctionType,
                     new: types.FunctionType) -> Any:
    """A bound-method loss (``net.loss``) whose object reaches ``new`` where its class has the
    method ``old`` (``self.forward``): bound to a shallow copy of the object whose class is a
    subclass overriding that one method. The user's object and class stay as they are."""
    obj = bound.__self__
    names = [n for n, v in vars(type(obj)).items() if v is old] if hasattr(type(obj), "__dict__") else []
    names = names or [n for n in dir(type(obj)) if inspect.getattr_static(type(obj), n, None) is old]
    if not names:
        return bound if bound.__func__ is not old else types.MethodType(new, obj)
    cls = type(obj)
    tapped_cls = type(cls.__name__, (cls,), {names[0]: new, "__module__": cls.__module__,
                                             "__qualname__": cls.__qualname__})
    twin = copy.copy(obj)
    try:
        twin.__class__ = tapped_cls
    except TypeError:       # (a class with __slots__ or a C layout): no automatic taps
        return bound
    func = bound.__func__ if bound.__func__ is not old else new
    return types.MethodType(func, twin)


def _retarget(fn, old, new, depth):
    if depth == 0 or not isinstance(fn, types.FunctionType) or not is_user_code(fn):
        return fn
    changed = {}
    for key, callee in _callees(fn).items():
        replaced = retarget(callee, old, new, depth - 1)
        if replaced is not callee:
            changed[key] = replaced
    if not changed:
        return fn
    extra = {name: f for (kind, name), f in changed.items() if kind == "global"}
    cells = list(fn.__closure__ or ())
    for (kind, index), f in changed.items():
        if kind == "cell":
            cells[index] = types.CellType(f)
    copy = types.FunctionType(fn.__code__, _overlay(fn.__globals__, extra) if extra else fn.__globals__,
                              fn.__name__, fn.__defaults__, tuple(cells) or None)
    copy.__kwdefaults__, copy.__qualname__, copy.__module__ = fn.__kwdefaults__, fn.__qualname__, fn.__module__
    return copy
