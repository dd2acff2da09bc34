"""Where the error enters a backward: check its intermediates, order them, point at the line.

:func:`locate` runs the hand-written gradient, keeps the keys that are not parameters' (the
seeds' ``dZ3``, ``dA2`` …), taps the matching intermediates of the forward (``dX`` → ``X``,
see :mod:`crosscheck._taps`), and asks each reference for ∂J/∂X and ∂J/∂θ
(:mod:`crosscheck._tap_gradients`: centered differences, jax, torch). ``check()`` reaches the
same judging through :mod:`crosscheck._localise`, with the parameters judged by its blocks.

Judging. A parameter's gradient is right when it matches the reference. An intermediate is
judged modulo the backward's *convention*: the seeds compute ``dZ = m·∂J/∂Z`` and apply
``1/m`` only when forming ``dW``. For each intermediate that is a scalar multiple ``c`` of the
reference, ``c`` is a candidate; the convention is the candidate shared by the most
intermediates (ties: the one nearest the loss), and an intermediate is right when it equals
``convention × reference``.

Order and entry points. Intermediates come in the reverse of the forward's order; each
parameter's gradient comes right after the last intermediate its assigning line reads. The
*inputs* of a quantity are the checked quantities its line in the backward reads (found by
running the backward once under a line tracer, so loops work; read from the source as a
fallback: :mod:`crosscheck._backward_lines`). An entry point is a wrong quantity whose inputs are all
right; any other wrong quantity "follows from" the entry points its wrong inputs lead to.

Notes: where the hand value and the reference are both zero (a ReLU's dead units) any
factor fits; such intermediates do not vote on the convention. A kink of the forward at the
check point (a ReLU input at exactly 0) makes centered differences on the tapped value
straddle it; autodiff references are then the ones to trust.
"""

from __future__ import annotations

import dataclasses
import types
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import numpy as np

from ._backward_lines import SourceLine, static_lines, traced
from ._errors import CheckError
from ._inputs import GRAD_KEY_STYLES, batch_size, prepare_args, prepare_params, unpack_grad
from ._tap_gradients import RUNNERS, Tapped
from ._taps import assignments, function_tree, reached, reassigned, tappable
from ._tolerances import DEFAULTS
from ._user_calls import private_copy

REFERENCES = ("fd", "jax", "torch")


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
def grad_param_keys(params: Mapping, out: Mapping) -> dict:
    """``{grad key: parameter}`` for the keys of ``out`` that are parameters' gradients."""
    keys = {}
    for name in params:
        key = next((st.format(name) for st in GRAD_KEY_STYLES if st.format(name) in out), None)
        if key is not None:
            keys[key] = name
    return keys


def assigning_function(fn: Any, names, given: Optional[types.FunctionType]) -> Optional[types.FunctionType]:
    """``given``, or the function ``fn`` reaches that assigns the most of ``names`` (None if none does)."""
    if given is not None:
        return given
    best, score = None, (0, 0)
    for f in reached(fn):
        found = function_tree(f)
        if not found:
            continue
        # the most names it can tap (assigned once, plainly), then the most it assigns at all
        hits = (len(tappable(f, names)[0]), len(set(names) & set(assignments(found[0]))))
        if hits > score:
            best, score = f, hits
    return best


# ------------------------------------------------------------------ judging
def _factor(hand: np.ndarray, ref: np.ndarray) -> Optional[float]:
    """``c`` with ``hand ≈ c·ref`` (least squares), or None when ``ref`` vanishes."""
    rr = float(np.vdot(ref, ref))
    if rr == 0:
        return None
    c = float(np.vdot(hand, ref)) / rr
    near = round(c)
    return float(near) if near != 0 and abs(c - near) <= 1e-6 * abs(c) else c


def _agrees(hand, ref, err, c, table: Mapping = DEFAULTS) -> bool:
    """``|hand − c·ref| ≤ tol`` element-wise: ``autodiff_rtol``·scale for autodiff references,
    ``fd_safety``·|c|·err + ``tap_fd_resolution``·scale for centered differences (scale: the
    larger maximum; ``table`` the tolerance table, see ``crosscheck._tolerances``)."""
    target = c * ref
    scale = max(float(np.max(np.abs(target), initial=0)), float(np.max(np.abs(hand), initial=0)))
    tol = (table["autodiff_rtol"] * scale if err is None
           else table["fd_safety"] * abs(c) * err + table["tap_fd_resolution"] * scale)
    return bool(np.all(np.abs(hand - target) <= tol))


def _relative(hand, target) -> float:
    den = np.linalg.norm(hand) + np.linalg.norm(target)
    return 0.0 if den == 0 else float(np.linalg.norm(hand - target) / den)


def _convention(order, hands, refs, table: Mapping = DEFAULTS) -> Optional[float]:
    """The factor the most intermediates share (ties: nearest the loss); None without intermediates."""
    candidates = []
    for key in order:
        ref, err = refs[key]
        c = _factor(hands[key], ref)
        if c is not None and c != 0 and _agrees(hands[key], ref, err, c, table):
            candidates.append(c)
    if not candidates:
        return None
    votes = [sum(abs(c - d) <= 1e-6 * abs(c) for d in candidates) for c in candidates]
    return candidates[votes.index(max(votes))]


def _confirmed(c: float, batch: Optional[int], judged: Mapping, inputs: Mapping,
               intermediates: set) -> bool:
    """Whether the common factor ``c`` is a convention, not a bug early in the backward that
    every later intermediate inherits (``dZ3 = 2 * (A3 - Y)`` makes them all 2m × ∂J/∂Z): it
    is 1 or the batch size m (the seeds'), or some parameter's gradient computed from the
    intermediates is right -- so the backward does turn them into right gradients."""
    if abs(c - 1.0) <= 1e-6 or (batch and abs(c - batch) <= 1e-6 * batch):
        return True
    return any(judged[k][0] == "right" and intermediates & set(inputs[k])
               for k in judged if k not in intermediates)


def _verdict(hand, by_reference: Mapping, c: float, table: Mapping = DEFAULTS) -> tuple:
    """``(verdict, factor, differences)`` of one quantity against every reference's estimate."""
    differences, agree = {}, []
    for name, (ref, err) in by_reference.items():
        differences[name] = _relative(hand, c * ref)
        agree.append(_agrees(hand, ref, err, c, table))
    decider, decider_error = next(iter(by_reference.values()))  # the most precise reference
    factor = _factor(hand, decider)
    if factor is not None and not _agrees(hand, decider, decider_error, factor, table):
        factor = None  # not a scalar multiple: no factor to report
    verdict = "right" if all(agree) else "wrong" if not any(agree) else "unsure"
    return verdict, factor, differences


# ------------------------------------------------------------------ order and entry points
def _order(intermediates: list, params: list, lines: Mapping, ran: Optional[Mapping] = None) -> list:
    """Backward order: intermediates as given (reverse forward order), each parameter's gradient
    right after the last intermediate its line reads; others last. Among those, the order in
    which the traced run computed them (``ran``: a loop's line serves every pass), then the
    line number of the lines read from the source only."""
    position = {k: i for i, k in enumerate(intermediates)}
    slots: dict = {}
    for key in params:
        read = lines.get(key, (None, set()))[1]
        after = max((position[k] for k in read if k in position), default=len(intermediates))
        slots.setdefault(after, []).append(key)
    ran = ran or {}
    line = {k: (0, ran[k]) if k in ran else (1, lines[k][0].line if k in lines else float("inf"))
            for k in params}
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


def _affecting(entries: tuple, follows: Mapping, params: set, judged: Mapping, notes: list) -> tuple:
    """The entry points through which an error reaches a parameter's gradient. A wrong
    intermediate no wrong parameter follows from is a value the backward returns but does not
    use (or uses only where it cancels): said in a note, not named where an error enters --
    the gradients crosscheck vouches for are right."""
    reaching = [e for e in entries if e in params or any(
        k in params and judged[k][0] == "wrong" and e in follows.get(k, ()) for k in follows)]
    for e in entries:
        if e not in reaching:
            notes.append(f"`{e}` as `grad` returns it disagrees with the references, but no "
                         f"parameter's gradient is wrong through it: a value the backward "
                         f"returns without using it?")
    return tuple(reaching)


def _validate_references(references) -> tuple:
    """The references as a tuple of known names, most precise first."""
    if isinstance(references, str):
        references = (references,)
    try:
        references = tuple(references)
    except TypeError:
        references = None
    if not references or any(not isinstance(r, str) or r not in RUNNERS for r in references):
        raise CheckError(f"`references` must be a non-empty subset of {REFERENCES}, not "
                         f"{references!r}; pass e.g. `references=(\"fd\", \"torch\")`.")
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
        backward: the function computing the gradients; default: the user's functions
            ``grad`` runs are traced, and the one where most returned values first appear
            is read (see :mod:`crosscheck._backward_lines`).

    Returns:
        a :class:`Localisation`.

    Raises:
        CheckError: bad ``params``, ``args`` or ``references`` (checked at the door, as
            :func:`crosscheck.check` checks them), a ``grad`` output that is no dict, or user
            code that raised (named, with what it raised).
    """
    order_refs = _validate_references(references)
    params = prepare_params(params).as_dict()
    args = prepare_args(args)
    try:
        out, lines = traced(lambda: unpack_grad(grad(private_copy(params), *private_copy(args))), backward)
    except CheckError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's grad: named, never a raw traceback
        raise CheckError(f"`grad` raised {type(exc).__name__}: {exc}; it must return the "
                         f"gradient for the given params and args.") from exc
    if not isinstance(out, Mapping):
        raise CheckError(f"`grad` returned {type(out).__name__}; `locate` needs a dict of "
                         f"the parameters' and the intermediates' gradients (the seeds' "
                         f"`{{\"dW1\": ..., \"dZ1\": ...}}`).")
    try:
        return _located(loss, grad, params, args, out, lines, order_refs, forward, backward)
    except CheckError:
        raise
    except Exception as exc:  # noqa: BLE001 - the loss under a reference: named
        raise CheckError(f"could not locate: {type(exc).__name__}: {exc}") from exc


def _located(loss, grad, params, args, out, lines, order_refs, forward, backward) -> Localisation:
    """:func:`locate` after its door: the taps, the references, the judgement."""
    hands = {k: np.asarray(v, np.float64) for k, v in out.items()}
    param_keys = grad_param_keys(params, hands)
    wanted = {k[1:]: k for k in hands if k not in param_keys and k.startswith("d") and len(k) > 1}
    notes: list = []
    tapped = Tapped(loss, assigning_function(loss, wanted, forward), list(wanted), notes)
    shapes = {n: s for n, s in tapped.shapes(params, args).items() if n in wanted}
    notes.extend(untapped(wanted, shapes, loss))
    estimates = {r: RUNNERS[r](tapped, params, args, shapes) for r in order_refs}
    batch = batch_size(tuple(a for a in args if isinstance(a, np.ndarray)))
    found = judge_quantities(hands, param_keys, wanted, shapes, estimates,
                             assigning_function(grad, hands, backward), notes, traced=lines,
                             batch=batch)
    return dataclasses.replace(found, batch=batch)


def untapped(wanted: Mapping, shapes: Mapping, loss: Any = None, loops_only: bool = False) -> list:
    """The note naming the intermediates the grad returned that no tap reached (empty if none).

    When nothing was tapped and ``loss`` is given, the note also says why a loop defeats
    the automatic taps: the forward reassigns the names the keys stem from (``Z`` for
    ``dZ3``, ``dZ2`` …; :func:`crosscheck._taps.reassigned`), with their lines.
    ``loops_only``: that note or nothing (extra keys that name nothing in the forward, an
    input's gradient say, are not worth a word unasked).
    """
    missing = [wanted[n] for n in wanted if n not in shapes]
    if not missing:
        return []
    loops = reassigned(reached(loss), [k[1:] for k in missing]) if loss is not None and not shapes else None
    if loops:
        fn, found, counter = loops
        missing = [k for k in missing if k[1:].rstrip("0123456789") in found]
        said = " and ".join(f"`{name}` (lines {', '.join(map(str, lines))})" for name, lines in found.items())
        stem = next(iter(found))
        example = (f"crosscheck.tap(f\"{stem}{{{counter}}}\", {stem})" if counter
                   else f"crosscheck.tap(\"{missing[0][1:]}\", {stem})")
        return ["not checked, their intermediate has no tap: " + ", ".join(f"`{k}`" for k in missing)
                + "; the forward assigns no " + ", ".join(f"`{k[1:]}`" for k in missing)
                + f" but `{fn.__qualname__}` reassigns {said}, as a loop does: tap each value under "
                f"a name of its own after it is computed, e.g. `{example}`."]
    if loops_only:
        return []
    return ["not checked, their intermediate has no tap: " + ", ".join(f"`{k}`" for k in missing)
            + f"; tap it in the forward, e.g. `crosscheck.tap(\"{missing[0][1:]}\", {missing[0][1:]})`."]


def judge_quantities(hands, param_keys, wanted, shapes, estimates, backward, notes,
                     given: Optional[Mapping] = None, table: Mapping = DEFAULTS,
                     traced: Optional[Mapping] = None, batch: Optional[int] = None) -> Localisation:
    """Verdicts, convention, order and entry points from the hand values and the references' estimates.

    ``given`` holds the parameters' ``(verdict, factor, differences)`` when they are judged
    already (``check()``'s blocks: localisation adds to them and never re-judges them);
    ``estimates`` then need hold the taps' gradients only. ``traced`` holds the lines found
    by running the backward (:func:`crosscheck._backward_lines.traced`); they take precedence
    over the lines read from ``backward``'s source, which serve for the keys the trace missed.
    """
    given = given or {}

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
    refs.update({key: by_ref(key, name) for key, name in param_keys.items() if key not in given})
    c = _convention(intermediates, hands, {k: next(iter(refs[k].values())) for k in intermediates}, table)
    checked = set(refs) | set(given)
    lines = {k: v for k, v in (traced or {}).items() if k in checked}
    if set(checked) - set(lines):   # the source is read only for what the trace did not find
        lines = {**static_lines(backward, checked), **lines}
    ran = {k: i for i, k in enumerate(traced or {})}
    order = _order(intermediates, [k for k in hands if k in param_keys], lines, ran)
    inputs = {k: tuple(sorted(lines.get(k, (None, set()))[1] & checked - {k})) for k in order}

    def judge(c):
        return {k: given[k] if k in given
                else _verdict(hands[k], refs[k], (c or 1.0) if k in intermediates else 1.0, table)
                for k in order}
    judged = judge(c)
    if c is not None and not _confirmed(c, batch, judged, inputs, set(intermediates)):
        notes.append(f"the intermediates share a factor {c:g} × ∂J/∂Z, but no parameter's "
                     f"gradient computed from them is right and {c:g} is neither 1 nor the "
                     f"batch size: no convention; they are judged as ∂J/∂Z"
                     + (f" × m (m = {batch})" if batch else ""))
        judged, c = judge(float(batch) if batch else None), None   # (no convention to report)
    entries, follows = _entries(order, {k: v[0] for k, v in judged.items()}, inputs)
    entries = _affecting(entries, follows, set(param_keys), judged, notes)
    quantities = tuple(
        Quantity(key=k, of=k[1:] if k in intermediates else param_keys[k],
                 kind="intermediate" if k in intermediates else "parameter", shape=tuple(hands[k].shape),
                 verdict=judged[k][0], factor=judged[k][1], differences=judged[k][2], inputs=inputs[k],
                 source=lines[k][0] if k in lines else None, follows_from=follows.get(k, ()))
        for k in order)
    return Localisation(quantities, entries, c if intermediates else None, tuple(estimates), tuple(notes))
