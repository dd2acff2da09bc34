"""Kinks, ties and conventions: where several values of the gradient are valid, in one place.

At a point where the loss is not differentiable (a ReLU pre-activation exactly 0, ``|w|`` at
``w = 0``, two tied maxima) the hand-written gradient may pick another valid value than the
references: a hand mask ``Z > 0`` gives 0 at a tie where jax and torch give 0.5. Centered
differences straddle such a point; the kink test of their Richardson ladder finds it
(``crosscheck.oracles._fd``) and gives the one-sided differences, the ends of the valid
interval. This module decides what a disagreement there means:

* with autodiff: the check is repeated at a second point just off the ties (every parameter
  moved by a seeded relative ``nudge``), where every convention coincides: a disagreement
  that vanishes there is a convention; one that appears there is a bug the tie had hidden
  (:func:`nudged_comparison`, :func:`autodiff_conventions`);
* with centered differences alone: at a second point ``fd_nudge`` away, with a stencil of
  ``fd_second_step`` (:func:`fd_second_point`, :func:`fd_second_candidates`);
* without a second point: a value between the one-sided differences is a convention;
* two autodiff references that pick different valid values at a kink agree
  (:func:`valid_between`).
"""

from __future__ import annotations

from typing import Callable, Mapping, Optional

import numpy as np

from . import oracles as registry
from ._difference import Comparison, compare
from ._errors import CheckError
from ._tolerances import BUDGETS
from ._prepare import Prepared
from ._references import References
from ._user_calls import hand_gradient
from .oracles import Problem
from .oracles._fd import NAME as FD
from .oracles._fd import element_scales


def _step(prep: Prepared, size_key: str, seed_offset: int) -> np.ndarray:
    """A seeded random relative move of every parameter, ``table[size_key]`` in size."""
    rng = np.random.default_rng(prep.settings.seed + seed_offset)
    blocks = prep.blocks
    return prep.settings.table[size_key] * element_scales(blocks) * rng.standard_normal(blocks.size)


def _moved(prep: Prepared, size_key: str, seed_offset: int):
    """The blocks moved by a seeded random relative step, and the hand gradient there."""
    moved = prep.blocks.copy()
    moved.flat += _step(prep, size_key, seed_offset)
    try:
        hand = hand_gradient(prep.grad, moved, prep.args)[0]
    except CheckError:
        return None, None
    return moved, hand


def _problem_at(prep: Prepared, moved, **options) -> Problem:
    problem = prep.problem
    f0 = problem.loss.numpy(moved.copy().as_dict(), *problem.args)
    return Problem(problem.loss, moved, problem.args, float(np.asarray(f0).reshape(())),
                   problem.noise, {**problem.options, **options})


def nudged_comparison(prep: Prepared, refs: References) -> dict:
    """The hand-written gradient against autodiff just off the kinks: a second check point.

    With several samples at a tie the valid set is every mix of them. Moving every parameter
    by a seeded random relative ``nudge`` leaves all ties: there every convention coincides and
    a correct backward agrees with autodiff -- and a wrong one shows it there too, even where at
    the tie its value happened to coincide with autodiff's. Returns ``{oracle: {block: Comparison}}``.
    """
    moved, hand = _moved(prep, "nudge", 1)
    if moved is None:
        return {}
    nudged = _problem_at(prep, moved)
    out = {}
    for name in (m for m in refs.ran if m in registry.autodiff()):
        res = registry.run(name, nudged)
        if not res.ran:
            continue
        s_all = max(refs.tol.scale(res.grads[b]) for b in prep.blocks.names)
        out[name] = {b: compare(hand[b], res.grads[b], 2 * refs.tol.autodiff(res.grads[b], s_all))
                     for b in prep.blocks.names}
    return out


def fd_second_point(prep: Prepared, refs: References, index: np.ndarray) -> dict:
    """Centered differences against the hand-written gradient at a second, generic point.

    Without autodiff, a disagreement at a point with ties cannot be told from a valid
    convention by centered differences at that point. Moving every parameter by a seeded
    random relative ``fd_nudge`` leaves the ties, and there a correct backward agrees with
    centered differences taken with a step of ``fd_second_step`` (so small against the move
    that the stencil rarely reaches a moved kink). Returns ``{block: Comparison}`` over the
    flat ``index`` elements (others not compared).
    """
    moved, hand = _moved(prep, "fd_nudge", 2)
    if moved is None:
        return {}
    blocks, tol = prep.blocks, refs.tol
    values, errors = _fd_at(prep, moved, index)
    out = {}
    for b in blocks.names:
        sl, shape = blocks.slices[b], blocks.shapes[b]
        v, e = values[sl].reshape(shape), errors[sl].reshape(shape)
        done = np.isfinite(e)
        if done.any():
            t = tol.fd(v, e, done) + tol.autodiff(np.where(done, v, 0.0), tol.scale(v, done))
            out[b] = compare(hand[b], v, t, done)
    return out


def _fd_at(prep: Prepared, moved, index: np.ndarray) -> tuple:
    """Flat ``(values, errors)`` of centered differences at ``moved`` (a stencil of
    ``fd_second_step``) over the flat ``index`` elements; NaN and inf elsewhere."""
    refiner = registry.refiner(FD, _problem_at(prep, moved, executor=None, progress=False))
    values = np.full(prep.blocks.size, np.nan)
    errors = np.full(prep.blocks.size, np.inf)
    values[index], errors[index] = refiner.first_pass(index, prep.settings.table["fd_second_step"])
    return values, errors


def fd_second_candidates(prep: Prepared, refs: References, refinement) -> np.ndarray:
    """Flat indices fd alone must look at again off the ties: kinks, and disagreements there."""
    blocks, tol = prep.blocks, refs.tol
    candidates = []
    for b in blocks.names:
        values, errors, kink = refinement.values[b], refinement.errors[b], refinement.kink[b]
        mask = np.isfinite(errors) & ~kink
        t = tol.fd(values, errors, mask) + tol.autodiff(values, refs.s_all[FD])
        suspect = kink | compare(prep.hand[b], values, t, mask).mismatch
        candidates.append(np.flatnonzero(suspect) + blocks.slices[b].start)
    return np.concatenate(candidates)


def mirror_gaps(prep: Prepared, name: str, index: np.ndarray) -> Optional[np.ndarray]:
    """``(pairs, 2, len(index))``: per flat element ``i`` of ``index`` and per seeded move δ
    that leaves ``i`` itself where it is, ``g_i(θ+δ)`` and ``g_i(θ−δ)`` by the reference
    ``name`` (an autodiff reference, or centered differences).

    Each is a valid value at the tie (the chain rule with each tied sample on the side δ
    put it), so any value between them is valid too.

    A tied sample whose kink depends on other parameters than ``i`` lies on opposite sides at
    θ+δ and θ−δ, on a side δ picks at random, independent of how it depends on ``i``; a
    sample that depends on ``i`` alone stays tied at both and adds nothing to the gap. So
    with one tied sample reaching ``i`` every gap is its jump ``upper − lower`` or 0, whatever
    δ; with several, the gaps take other values as δ splits them differently (see
    :func:`outside_subgradients`). ``None`` when a moved point could not be evaluated.
    """
    size_key = "nudge" if name != FD else "fd_nudge"
    out = np.full((BUDGETS["mirror_pairs"], 2, index.size), np.nan)
    steps = [_step(prep, size_key, 100 + k) for k in range(BUDGETS["mirror_pairs"])]
    for e, i in enumerate(index.tolist()):
        for k, whole in enumerate(steps):
            step = whole.copy()
            step[i] = 0.0
            sides = []
            for sign in (1.0, -1.0):
                moved = prep.blocks.copy()
                moved.flat += sign * step
                if name == FD:
                    sides.append(_fd_at(prep, moved, np.array([i]))[0][i])
                    continue
                res = registry.run(name, _problem_at(prep, moved))
                if not res.ran:
                    return None
                sides.append(np.concatenate([np.ravel(res.grads[b]) for b in prep.blocks.names])[i])
            out[k, :, e] = sides
    return out


def outside_subgradients(hand: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                         candidates: np.ndarray, t: np.ndarray, table: Mapping,
                         gaps: Callable[[np.ndarray], Optional[np.ndarray]],
                         drift: float) -> tuple:
    """``(outside, unbounded)``: tie elements among ``candidates`` whose hand-written value
    lies past both one-sided derivatives.

    The valid values at a tie are what the chain rule gives for every choice at the tied
    samples. With one tied sample reaching an element they are exactly the interval between
    its one-sided derivatives, and a value past it is **wrong** (``outside``). With several,
    their choices combine and may reach past that interval (two samples whose jumps point the
    same way, each on another side): a value past it is then neither proven valid nor wrong
    (``unbounded``: the block cannot be vouched for). :func:`mirror_gaps` decides, for up to
    ``mirror_elements`` elements per block (the rest stay unbounded; one wrong element is
    enough to flag the block): a value between two of the valid values it sees is valid after
    all; otherwise, one tied sample (every gap its jump or 0) makes it wrong. ``drift`` is how
    far (relative) the mirrored moves shift a smooth gradient.
    """
    lo, hi = np.nan_to_num(lower), np.nan_to_num(upper)
    size = np.maximum(np.abs(lo), np.abs(hi))
    margin = t + table["subgradient_margin"] * size
    past = candidates & ((hand < lo - margin) | (hand > hi + margin))
    if not past.any():
        return past, past
    index = np.flatnonzero(past)[:BUDGETS["mirror_elements"]]
    g = gaps(index)
    valid, single = np.zeros(past.size, bool), np.zeros(past.size, bool)
    if g is not None:
        allow = margin.flat[index] + drift * (size.flat[index] + np.max(size))
        h = hand.flat[index]
        # between two valid values seen at the moved points: valid
        valid[index] = (h >= g.min(axis=(0, 1)) - allow) & (h <= g.max(axis=(0, 1)) + allow)
        gap, jump = np.abs(g[:, 0] - g[:, 1]), (hi - lo).flat[index]
        single[index] = np.all((np.abs(gap - jump) <= allow) | (gap <= allow), axis=0)
    valid, single = valid.reshape(past.shape), single.reshape(past.shape)
    past = past & ~valid
    return past & single, past & ~single


def autodiff_conventions(hand: np.ndarray, ref: np.ndarray, t: np.ndarray, mask: np.ndarray,
                         c: Comparison, off: Optional[Comparison], kink: np.ndarray,
                         lower: np.ndarray, upper: np.ndarray, table: Mapping,
                         gaps: Callable[[np.ndarray], Optional[np.ndarray]]) -> tuple:
    """``(comparison, conventions, hidden, outside, unbounded)`` for an autodiff reference at
    a point with ties.

    ``off`` is the comparison just off the ties (``None`` when no second point could be
    computed: then a value between the one-sided derivatives is a convention). ``hidden``
    counts elements wrong only off the ties; ``outside`` and ``unbounded`` count tie elements
    past the one-sided derivatives (:func:`outside_subgradients`): the first are wrong, the
    second cannot be vouched for.
    """
    hidden = outside = unbounded = 0
    if off is None:
        conv = c.mismatch & kink & (hand >= lower - t) & (hand <= upper + t)
    else:
        # (the one-sided derivatives along one axis do not bound the valid set when several
        # samples tie: their slope jumps can cancel, so vanishing off the ties decides, and
        # the interval only where a single tied sample reaches the element)
        conv = c.mismatch & ~off.mismatch
        past, unsure = outside_subgradients(hand, lower, upper, conv & kink, t, table, gaps,
                                            table["nudge"])
        conv = conv & ~past
        outside, unbounded = int(past.sum()), int(unsure.sum())
        hidden_mask = off.mismatch & ~c.mismatch
        if hidden_mask.any():
            hidden = int(hidden_mask.sum())
            c = compare(hand, ref, t, mask)
            c.mismatch = c.mismatch | off.mismatch
            c.ratio = np.fmax(c.ratio, off.ratio)
    conventions = 0
    if conv.any():
        c2 = compare(hand, ref, t, mask & ~conv)
        if off is not None:
            c2.mismatch = c2.mismatch | (off.mismatch & ~conv)
            c2.ratio = np.where(off.mismatch & ~conv, off.ratio, c2.ratio)
        c = c2
        conventions = int(conv.sum()) - unbounded
    return c, conventions, hidden, outside, unbounded


def fd_second_conventions(hand: np.ndarray, ref: np.ndarray, t: np.ndarray, mask: np.ndarray,
                          second: Comparison, kink: np.ndarray, lower: np.ndarray,
                          upper: np.ndarray, tie_t: np.ndarray, table: Mapping,
                          gaps: Callable[[np.ndarray], Optional[np.ndarray]]) -> tuple:
    """``(comparison, conventions, outside, unbounded)`` for fd alone: the candidates' verdict
    from the second point, and at the ties the hand value against the one-sided derivatives
    (:func:`outside_subgradients`; ``tie_t`` is the rounding allowance there: centered
    differences' own tolerance does not apply at a kink)."""
    done = ~np.isnan(second.ratio)
    c = compare(hand, ref, t, mask & ~done)
    c.mismatch = c.mismatch | second.mismatch
    c.ratio = np.where(done, second.ratio, c.ratio)
    c.compared += int(done.sum())
    conv = done & ~second.mismatch & kink
    past, unsure = outside_subgradients(hand, lower, upper, conv, tie_t, table, gaps,
                                        table["fd_nudge"])
    if past.any():
        lo, hi = np.nan_to_num(lower), np.nan_to_num(upper)
        beyond = np.maximum(lo - hand, hand - hi)
        c.mismatch = c.mismatch | past
        margin = tie_t + table["subgradient_margin"] * np.maximum(np.abs(lo), np.abs(hi))
        with np.errstate(over="ignore", divide="ignore"):
            c.ratio = np.where(past, 1.0 + beyond / np.maximum(margin, np.finfo(float).tiny),
                               c.ratio)
    return c, int((conv & ~past & ~unsure).sum()), int(past.sum()), int(unsure.sum())


def valid_between(refs_b: Mapping, p: str, q: str, t: np.ndarray, kink: np.ndarray,
                  lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Kink elements where two autodiff references both picked a valid subgradient (jax and
    torch differ for ``abs`` at 0): agreement, not a disagreement between references."""
    valid = kink
    for v in (refs_b[p], refs_b[q]):
        valid = valid & (v >= lower - t) & (v <= upper + t)
    return valid
