"""Where the error enters a backward: check its intermediates, order them, point at the line.

:func:`locate` runs the hand-written gradient, keeps the keys that are not parameters' (the
seeds' ``dZ3``, ``dA2`` …), taps the matching intermediates of the forward (``dX`` → ``X``,
see :mod:`crosscheck._taps`), and asks each reference for ∂J/∂X and ∂J/∂θ:

* ``"fd"``: centered differences on the numpy loss, perturbing one element of one offset
  (or parameter) at a time, step ``h = ε^(1/3)·max(1, |x|)``; the error estimate is
  ``|D(h) − D(2h)|`` (the truncation error of D(2h) is four times D(h)'s) plus the rounding
  ``ε·|J|/h``. Two loss calls per element and step: fine for the seeds' networks, costly
  beyond a few thousand elements (the later wiring into ``check()`` should reuse its
  references for the parameter blocks).
* ``"jax"`` / ``"torch"``: the user's numpy code rebound (:mod:`crosscheck._rebind`), then
  ``jax.grad`` / ``torch.autograd.grad`` with respect to the parameters and the offsets.

Judging. A parameter's gradient is right when it matches the reference. An intermediate is
judged modulo the backward's *convention*: the seeds compute ``dZ = m·∂J/∂Z`` and apply
``1/m`` only when forming ``dW``. For each intermediate that is a scalar multiple ``c`` of the
reference, ``c`` is a candidate; the convention is the candidate shared by the most
intermediates (ties: the one nearest the loss), and an intermediate is right when it equals
``convention × reference``.

Order and entry points. Intermediates come in the reverse of the forward's order; each
parameter's gradient comes right after the last intermediate its assigning line reads. The
*inputs* of a quantity are the checked quantities named on the right-hand side of the line
that assigns it in the backward. An entry point is a wrong quantity whose inputs are all
right; any other wrong quantity "follows from" the entry points its wrong inputs lead to.

Notes: where the hand value and the reference are both zero (a ReLU's dead units) any
factor fits; such intermediates do not vote on the convention. A kink of the forward at the
check point (a ReLU input at exactly 0) makes centered differences on the tapped value
straddle it; autodiff references are then the ones to trust.
"""

from __future__ import annotations

import ast
import dataclasses
import linecache
import os
import types
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import numpy as np

from ._errors import CheckError
from ._inputs import GRAD_KEY_STYLES, batch_size
from ._taps import Session, assignments, function_tree, reached, retarget, session, tappable, tapped_function
from ._tolerances import DEFAULTS, EPS

REFERENCES = ("fd", "jax", "torch")


@dataclass(frozen=True)
class SourceLine:
    """Where a quantity is assigned in the backward: file, line number, the line's text, the function."""

    file: str
    line: int
    text: str
    function: str

    def __str__(self) -> str:
        return f"{_shown(self.file)}:{self.line} (`{self.function}`): `{self.text}`"


def _shown(path: str) -> str:
    """``path`` relative to the working directory when it lies under it (as editors link it)."""
    try:
        relative = os.path.relpath(path)
    except ValueError:      # another drive
        return path
    return path if relative.startswith("..") else relative


@dataclass(frozen=True)
class Quantity:
    """One checked quantity of the backward: an intermediate's gradient or a parameter's.

    ``factor`` is hand ÷ reference when the hand value is a scalar multiple of the reference
    (None otherwise); ``differences`` holds, per reference, the seeds' relative difference
    ``‖h − c·r‖/(‖h‖ + ‖c·r‖)`` after the convention ``c`` (1 for parameters).
    ``verdict`` is ``"right"``, ``"wrong"`` or ``"unsure"`` (the references disagree).
    """

    key: str
    of: str
    kind: str
    shape: tuple
    verdict: str
    factor: Optional[float]
    differences: Mapping[str, float]
    inputs: tuple
    source: Optional[SourceLine]
    follows_from: tuple = ()


@dataclass(frozen=True)
class Localisation:
    """What :func:`locate` found: quantities in backward order, entry points, the convention, notes."""

    quantities: tuple
    entry_points: tuple
    convention: Optional[float]
    references: tuple
    notes: tuple = field(default=())
    batch: Optional[int] = None

    def __getitem__(self, key: str) -> Quantity:
        for q in self.quantities:
            if q.key == key:
                return q
        raise KeyError(key)

    def __str__(self) -> str:
        lines = [self.convention_text()] if self.convention is not None else []
        for q in self.quantities:
            if q.key in self.entry_points:
                lines.append(f"the error enters at `{q.key}`, {q.source}" if q.source
                             else f"the error enters at `{q.key}` (its line was not found)")
        lines += [f"`{q.key}` follows from " + ", ".join(f"`{k}`" for k in q.follows_from)
                  for q in self.quantities if q.follows_from]
        return "\n".join(lines + list(self.notes)) or "every checked quantity is right"

    def convention_text(self) -> str:
        """"intermediates are 3 × ∂J/∂Z (m = 3, the batch size: the seeds' convention)"."""
        c = self.convention
        if c is None:
            return "no intermediates were checked"
        if c == 1:
            return "intermediates are ∂J/∂Z"
        shown = f"{c:g}" if c == round(c) else f"{c:.6g}"
        if self.batch is not None and c == self.batch:
            return f"intermediates are {shown} × ∂J/∂Z (m = {shown}, the batch size: the seeds' convention)"
        return f"intermediates are {shown} × ∂J/∂Z"


# ------------------------------------------------------------------ finding the code
def _param_keys(params: Mapping, out: Mapping) -> dict:
    """``{grad key: parameter}`` for the keys of ``out`` that are parameters' gradients."""
    keys = {}
    for name in params:
        key = next((st.format(name) for st in GRAD_KEY_STYLES if st.format(name) in out), None)
        if key is not None:
            keys[key] = name
    return keys


def _best(fn: Any, names, given: Optional[types.FunctionType]) -> Optional[types.FunctionType]:
    """``given``, or the function ``fn`` reaches that assigns the most of ``names`` (None if none does)."""
    if given is not None:
        return given
    best, score = None, 0
    for f in reached(fn):
        found = function_tree(f)
        hits = len(set(names) & set(assignments(found[0]))) if found else 0
        if hits > score:
            best, score = f, hits
    return best


def _backward_lines(backward: Optional[types.FunctionType], keys) -> dict:
    """``{key: (SourceLine, names read on its right-hand side)}`` for keys assigned once in ``backward``."""
    if backward is None:
        return {}
    found = function_tree(backward)
    if found is None:
        return {}
    definition, first = found
    code = backward.__code__
    lines = [line.rstrip("\n") for line in linecache.getlines(code.co_filename)]
    out = {}
    for key, nodes in assignments(definition).items():
        if key not in keys or len(nodes) != 1 or not isinstance(nodes[0], ast.Assign):
            continue
        number = nodes[0].lineno + first - definition.lineno
        text = lines[number - 1].strip() if 0 < number <= len(lines) else ast.unparse(nodes[0])
        read = {n.id for n in ast.walk(nodes[0].value) if isinstance(n, ast.Name)}
        out[key] = (SourceLine(code.co_filename, number, text, backward.__qualname__), read)
    return out


# ------------------------------------------------------------------ the references
class _Tapped:
    """The loss with its forward's intermediates tapped: what every reference differentiates."""

    def __init__(self, loss, forward, names, notes):
        self.loss, self.notes = loss, notes
        if forward is None:
            return  # explicit taps only; what stays untapped is named after the recording run
        single, why = tappable(forward, names)
        notes.extend(why)
        if single:
            self.loss = retarget(loss, forward, tapped_function(forward, single))

    def shapes(self, params, args) -> dict:
        """``{tap name: shape}`` in the order the forward runs them (one recording evaluation)."""
        with session(Session()) as recording:
            self.loss(_copies(params), *_copies(args))
        return recording.shapes


def _copies(value):
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: _copies(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and value.__class__ in (list, tuple):
        return value.__class__(_copies(v) for v in value)
    return value


def _fd(tapped: _Tapped, params, args, shapes) -> tuple:
    """Centered differences of J by every parameter and tap offset: ``({name: estimate}, {name: error})``."""
    offsets = {n: np.zeros(s) for n, s in shapes.items()}
    point = {n: np.asarray(v, np.float64).copy() for n, v in params.items()}
    base = {n: np.asarray(v) for n, v in _values(tapped, point, args).items()}

    def J(p, o):
        with session(Session(o)):
            return float(tapped.loss(_copies(p), *_copies(args)))

    j0 = abs(J(point, offsets))
    estimates, errors = {}, {}
    for name, array, where in [*((n, point[n], "p") for n in point), *((n, offsets[n], "o") for n in offsets)]:
        scale = base[name] if where == "o" else array
        est, err = np.zeros(array.shape), np.zeros(array.shape)
        for index in np.ndindex(array.shape):
            h = EPS ** (1 / 3) * max(1.0, abs(float(np.reshape(scale, array.shape)[index])))
            d = []
            for step in (h, 2 * h):
                saved = array[index]
                array[index] = saved + step
                up = J(point, offsets)
                array[index] = saved - step
                down = J(point, offsets)
                array[index] = saved
                d.append((up - down) / (2 * step))
            est[index], err[index] = d[0], abs(d[0] - d[1]) + EPS * max(j0, 1e-300) / h
        estimates[name], errors[name] = est, err
    return estimates, errors


def _values(tapped, point, args) -> dict:
    """The tapped intermediates' values at ``point`` (for the step rule), by a zero-offset run."""
    values = {}

    class Keep(Session):
        def add(self, name, value):
            values[name] = value
            return value

    with session(Keep()):
        tapped.loss(_copies(point), *_copies(args))
    return values


def _jax(tapped: _Tapped, params, args, shapes) -> tuple:
    """``jax.grad`` of the rebound, tapped loss by parameters and offsets (float64)."""
    import jax
    import jax.numpy as jnp

    from ._rebind import rebind_object, run_rebound

    loss = run_rebound(tapped.loss, "jax")
    with jax.enable_x64(True):
        jargs = tuple(_to(a, jnp.asarray, lambda v: rebind_object(v, "jax")) for a in args)

        def J(p, o):
            with session(Session(o)):
                return jnp.reshape(loss(p, *jargs), ())

        p = {n: jnp.asarray(np.asarray(v, np.float64)) for n, v in params.items()}
        o = {n: jnp.zeros(s, jnp.float64) for n, s in shapes.items()}
        gp, go = jax.grad(J, argnums=(0, 1))(p, o)
        out = {n: np.asarray(g, np.float64) for n, g in {**gp, **go}.items()}
    return out, None


def _torch(tapped: _Tapped, params, args, shapes) -> tuple:
    """``torch.autograd.grad`` of the rebound, tapped loss by parameters and offsets (float64)."""
    import torch

    from . import _torch_numpy
    from ._rebind import rebind_object, run_rebound
    from .oracles._torch import _DEFAULT_DTYPE

    loss = run_rebound(tapped.loss, "torch")
    with _DEFAULT_DTYPE:
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            leaves = {n: torch.tensor(np.asarray(v, np.float64), requires_grad=True) for n, v in params.items()}
            zeros = {n: torch.zeros(s, dtype=torch.float64, requires_grad=True) for n, s in shapes.items()}
            targs = tuple(_to(a, lambda v: _torch_numpy.constant(v.copy()),
                              lambda v: rebind_object(_torch_numpy.wrap(v), "torch")) for a in args)
            with session(Session({n: _torch_numpy.wrap(t) for n, t in zeros.items()})):
                value = _torch_numpy.unwrap(loss({n: _torch_numpy.wrap(t) for n, t in leaves.items()}, *targs))
            names = [*leaves, *zeros]
            grads = torch.autograd.grad(value.reshape(()), [*leaves.values(), *zeros.values()], allow_unused=True)
        finally:
            torch.set_default_dtype(previous)
    shape = {**{n: np.shape(v) for n, v in params.items()}, **shapes}
    return {n: np.zeros(shape[n]) if g is None else g.detach().cpu().numpy().astype(np.float64)
            for n, g in zip(names, grads)}, None


def _to(value, array, other):
    if isinstance(value, np.ndarray):
        return array(value)
    if isinstance(value, dict):
        return {k: _to(v, array, other) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and value.__class__ in (list, tuple):
        return value.__class__(_to(v, array, other) for v in value)
    return value if isinstance(value, (int, float, complex, str, type(None))) else other(value)


_RUNNERS = {"fd": _fd, "jax": _jax, "torch": _torch}


# ------------------------------------------------------------------ judging
def _factor(hand: np.ndarray, ref: np.ndarray) -> Optional[float]:
    """``c`` with ``hand ≈ c·ref`` (least squares), or None when ``ref`` vanishes."""
    rr = float(np.vdot(ref, ref))
    if rr == 0:
        return None
    c = float(np.vdot(hand, ref)) / rr
    near = round(c)
    return float(near) if near != 0 and abs(c - near) <= 1e-6 * abs(c) else c


#: Centered differences' relative resolution here: at h = ε^(1/3) the rounding error of a
#: loss whose evaluation is κ times noisier than ε·|J| is about κ·ε^(2/3)·|J|/|g|; the seeds'
#: ``log(1 − A3)`` has κ up to ~1e3, so 1e3·ε^(2/3) ≈ 3.7e-8 of the block's scale. The
#: |D(h) − D(2h)| estimate alone can come out small by chance (measured: 4.7e-9 relative
#: misses on the seeds' ``db3``), hence this floor.
FD_RESOLUTION = 1e3 * EPS ** (2 / 3)


def _agrees(hand, ref, err, c) -> bool:
    """``|hand − c·ref| ≤ tol`` element-wise: ``autodiff_rtol``·scale for autodiff references,
    ``fd_safety``·|c|·err + ``FD_RESOLUTION``·scale for centered differences (scale: the larger maximum)."""
    target = c * ref
    scale = max(float(np.max(np.abs(target), initial=0)), float(np.max(np.abs(hand), initial=0)))
    tol = (DEFAULTS["autodiff_rtol"] * scale if err is None
           else DEFAULTS["fd_safety"] * abs(c) * err + FD_RESOLUTION * scale)
    return bool(np.all(np.abs(hand - target) <= tol))


def _relative(hand, target) -> float:
    den = np.linalg.norm(hand) + np.linalg.norm(target)
    return 0.0 if den == 0 else float(np.linalg.norm(hand - target) / den)


def _convention(order, hands, refs) -> Optional[float]:
    """The factor the most intermediates share (ties: nearest the loss); None without intermediates."""
    candidates = []
    for key in order:
        ref, err = refs[key]
        c = _factor(hands[key], ref)
        if c is not None and c != 0 and _agrees(hands[key], ref, err, c):
            candidates.append(c)
    if not candidates:
        return None
    votes = [sum(abs(c - d) <= 1e-6 * abs(c) for d in candidates) for c in candidates]
    return candidates[votes.index(max(votes))]


def _verdict(hand, by_reference: Mapping, c: float) -> tuple:
    """``(verdict, factor, differences)`` of one quantity against every reference's estimate."""
    differences, agree = {}, []
    for name, (ref, err) in by_reference.items():
        differences[name] = _relative(hand, c * ref)
        agree.append(_agrees(hand, ref, err, c))
    decider, decider_error = next(iter(by_reference.values()))  # the most precise reference
    factor = _factor(hand, decider)
    if factor is not None and not _agrees(hand, decider, decider_error, factor):
        factor = None  # not a scalar multiple: no factor to report
    verdict = "right" if all(agree) else "wrong" if not any(agree) else "unsure"
    return verdict, factor, differences


# ------------------------------------------------------------------ order and entry points
def _order(intermediates: list, params: list, lines: Mapping) -> list:
    """Backward order: intermediates as given (reverse forward order), each parameter's gradient
    right after the last intermediate its line reads (by line number among those); others last."""
    position = {k: i for i, k in enumerate(intermediates)}
    slots: dict = {}
    for key in params:
        read = lines.get(key, (None, set()))[1]
        after = max((position[k] for k in read if k in position), default=len(intermediates))
        slots.setdefault(after, []).append(key)
    line = {k: lines[k][0].line if k in lines else float("inf") for k in params}
    out = []
    for i in range(len(intermediates) + 1):
        out += intermediates[i:i + 1] + sorted(slots.get(i, []), key=lambda k: line[k])
    return out


def _entries(order: list, verdicts: Mapping, inputs: Mapping) -> tuple:
    """``(entry points, {key: entry points it follows from})`` in backward order."""
    entries: list = []
    follows: dict = {}
    for key in order:
        if verdicts[key] != "wrong":
            continue
        wrong_inputs = [k for k in inputs[key] if verdicts.get(k) == "wrong"]
        if not wrong_inputs:
            entries.append(key)
            continue
        sources = []
        for k in wrong_inputs:
            for s in follows.get(k, (k,) if k in entries else ()):
                if s not in sources:
                    sources.append(s)
        follows[key] = tuple(sources)
    return tuple(entries), follows


def _validate(params, references, grad_out) -> tuple:
    """The references as a tuple of known names, most precise first; raises for bad input."""
    if isinstance(references, str):
        references = (references,)
    unknown = [r for r in references if r not in _RUNNERS]
    if unknown or not references:
        raise ValueError(f"`references` must be a non-empty subset of {REFERENCES}, not {tuple(references)!r}.")
    if not isinstance(params, Mapping) or not isinstance(grad_out, Mapping):
        raise TypeError("`locate` needs `params` as a dict of arrays and `grad` returning a dict "
                        "(the seeds' `{\"dW1\": ..., \"dZ1\": ...}`).")
    return tuple(r for r in ("jax", "torch", "fd") if r in references)


def locate(loss, grad, params, *args, references=REFERENCES, forward=None, backward=None) -> Localisation:
    """Check the backward's intermediates and name the quantities where its error enters.

    Args:
        loss: ``loss(params, *args)``, a scalar; numpy code as written (rebound for jax/torch).
        grad: the hand-written ``grad(params, *args)`` returning a dict of parameters'
            gradients (keyed like ``check``'s) and intermediates ``"d" + name``.
        params: dict of parameter arrays.
        *args: the loss's other arguments.
        references: any of ``"fd"``, ``"jax"``, ``"torch"``; the most precise decides the convention.
        forward: the function assigning the intermediates; default: the function the loss
            reaches that assigns the most of them.
        backward: the function assigning the gradients; default: found from ``grad`` alike.

    Returns:
        a :class:`Localisation`.

    Raises:
        ValueError, TypeError: bad ``references``, ``params`` or ``grad`` output.
    """
    params = {n: np.asarray(v, np.float64) for n, v in params.items()} if isinstance(params, Mapping) else params
    out = grad(_copies(params), *_copies(args))
    order_refs = _validate(params, references, out)
    hands = {k: np.asarray(v, np.float64) for k, v in out.items()}
    param_keys = _param_keys(params, hands)
    wanted = {k[1:]: k for k in hands if k not in param_keys and k.startswith("d") and len(k) > 1}
    notes: list = []
    tapped = _Tapped(loss, _best(loss, wanted, forward), list(wanted), notes)
    shapes = {n: s for n, s in tapped.shapes(params, args).items() if n in wanted}
    missing = [wanted[n] for n in wanted if n not in shapes]
    if missing:
        notes.append("not checked, their intermediate has no tap: " + ", ".join(f"`{k}`" for k in missing)
                     + f"; tap it in the forward, e.g. `crosscheck.tap(\"{missing[0][1:]}\", {missing[0][1:]})`.")
    estimates = {r: _RUNNERS[r](tapped, params, args, shapes) for r in order_refs}
    found = _judge(hands, param_keys, wanted, shapes, estimates, _best(grad, hands, backward), notes)
    return dataclasses.replace(found, batch=batch_size(tuple(a for a in args if isinstance(a, np.ndarray))))


def _judge(hands, param_keys, wanted, shapes, estimates, backward, notes) -> Localisation:
    """Verdicts, convention, order and entry points from the hand values and the references' estimates."""
    def by_ref(key, name):
        return {r: (np.reshape(g[name], hands[key].shape),
                    None if e is None else np.reshape(e[name], hands[key].shape))
                for r, (g, e) in estimates.items()}

    intermediates = [wanted[n] for n in reversed(list(shapes))]
    for key in intermediates:
        if hands[key].size != int(np.prod(shapes[key[1:]])):
            raise CheckError(f"`grad` returned shape {hands[key].shape} for `{key}`, whose intermediate "
                             f"`{key[1:]}` has shape {shapes[key[1:]]}; return an array of that shape.")
    refs = {key: by_ref(key, key[1:]) for key in intermediates}
    refs.update({key: by_ref(key, name) for key, name in param_keys.items()})
    decider = {k: next(iter(v.values())) for k, v in refs.items()}
    c = _convention(intermediates, hands, decider)
    checked = set(refs)
    lines = _backward_lines(backward, checked)
    order = _order(intermediates, [k for k in hands if k in param_keys], lines)
    judged = {k: _verdict(hands[k], refs[k], (c or 1.0) if k in intermediates else 1.0) for k in order}
    inputs = {k: tuple(sorted(lines.get(k, (None, set()))[1] & checked - {k})) for k in order}
    entries, follows = _entries(order, {k: v[0] for k, v in judged.items()}, inputs)
    quantities = tuple(
        Quantity(key=k, of=k[1:] if k in intermediates else param_keys[k],
                 kind="intermediate" if k in intermediates else "parameter", shape=hands[k].shape,
                 verdict=judged[k][0], factor=judged[k][1], differences=judged[k][2], inputs=inputs[k],
                 source=lines[k][0] if k in lines else None, follows_from=follows.get(k, ()))
        for k in order)
    return Localisation(quantities, entries, c if intermediates else None, tuple(estimates), tuple(notes))
