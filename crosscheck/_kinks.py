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

from typing import Mapping, Optional

import numpy as np

from . import oracles as registry
from ._difference import Comparison, compare
from ._errors import CheckError
from ._prepare import Prepared
from ._references import References
from ._user_calls import hand_gradient
from .oracles import Problem
from .oracles._fd import NAME as FD
from .oracles._fd import element_scales


def _moved(prep: Prepared, size_key: str, seed_offset: int):
    """The blocks moved by a seeded random relative step, and the hand gradient there."""
    blocks = prep.blocks
    rng = np.random.default_rng(prep.settings.seed + seed_offset)
    moved = blocks.copy()
    moved.flat += prep.settings.table[size_key] * element_scales(blocks) * rng.standard_normal(blocks.size)
    try:
        hand = hand_gradient(prep.grad, moved, prep.args)[0]
    except CheckError:
        return None, None
    return moved, hand


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
    problem = prep.problem
    f0 = problem.loss.numpy(moved.copy().as_dict(), *problem.args)
    nudged = Problem(problem.loss, moved, problem.args, float(np.asarray(f0).reshape(())),
                     problem.noise, problem.options)
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
    problem, blocks, tol = prep.problem, prep.blocks, refs.tol
    f0 = float(np.asarray(problem.loss.numpy(moved.copy().as_dict(), *problem.args)).reshape(()))
    options = {**problem.options, "executor": None, "progress": False}
    refiner = registry.refiner(FD, Problem(problem.loss, moved, problem.args, f0, problem.noise,
                                             options))
    values = np.full(blocks.size, np.nan)
    errors = np.full(blocks.size, np.inf)
    values[index], errors[index] = refiner.first_pass(index, prep.settings.table["fd_second_step"])
    out = {}
    for b in blocks.names:
        sl, shape = blocks.slices[b], blocks.shapes[b]
        v, e = values[sl].reshape(shape), errors[sl].reshape(shape)
        done = np.isfinite(e)
        if done.any():
            t = tol.fd(v, e, done) + tol.autodiff(np.where(done, v, 0.0), tol.scale(v, done))
            out[b] = compare(hand[b], v, t, done)
    return out


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


def autodiff_conventions(hand: np.ndarray, ref: np.ndarray, t: np.ndarray, mask: np.ndarray,
                         c: Comparison, off: Optional[Comparison], kink: np.ndarray,
                         lower: np.ndarray, upper: np.ndarray) -> tuple:
    """``(comparison, conventions, hidden)`` for an autodiff reference at a point with ties.

    ``off`` is the comparison just off the ties (``None`` when no second point could be
    computed: then a value between the one-sided differences is a convention). ``hidden``
    counts elements wrong only off the ties.
    """
    hidden = 0
    if off is None:
        conv = c.mismatch & kink & (hand >= lower - t) & (hand <= upper + t)
    else:
        # (the one-sided derivatives along one axis do not bound the valid set when several
        # samples tie: their slope jumps can cancel, so vanishing off the ties decides)
        conv = c.mismatch & ~off.mismatch
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
        conventions = int(conv.sum())
    return c, conventions, hidden


def fd_second_conventions(hand: np.ndarray, ref: np.ndarray, t: np.ndarray, mask: np.ndarray,
                          second: Comparison, kink: np.ndarray) -> tuple:
    """``(comparison, conventions)`` for fd alone: the candidates' verdict from the second point."""
    done = ~np.isnan(second.ratio)
    c = compare(hand, ref, t, mask & ~done)
    c.mismatch = c.mismatch | second.mismatch
    c.ratio = np.where(done, second.ratio, c.ratio)
    c.compared += int(done.sum())
    return c, int((done & ~second.mismatch & kink).sum())


def valid_between(refs_b: Mapping, p: str, q: str, t: np.ndarray, kink: np.ndarray,
                  lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Kink elements where two autodiff references both picked a valid subgradient (jax and
    torch differ for ``abs`` at 0): agreement, not a disagreement between references."""
    valid = kink
    for v in (refs_b[p], refs_b[q]):
        valid = valid & (v >= lower - t) & (v <= upper + t)
    return valid
