"""Refinement: cheap first, careful where it matters.

After the first pass of every oracle, centered differences look again — with a Richardson
ladder and the kink test — only where the hand-written gradient disagrees with a reference
(or everywhere on a small model); directional checks that fail are drilled into; and a
disagreement confined to kinks is re-examined just off the ties.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from . import oracles as registry
from ._calls import hand_gradient
from ._compare import compare
from ._errors import CheckError
from ._inputs import Blocks
from ._tolerances import Tolerance
from .oracles import AUTODIFF, PRIORITY, Problem
from .oracles._fd import Engine, element_scales

REFINE_CAP = 4096                   # elements refined per block
FOCUS_CAP = 256                     # fd="auto": elements per block where hand ≠ autodiff, worst first
FULL_LADDER_MAX = 2000              # fd="auto": up to this many elements, refine every one
                                    # (8 more loss evaluations each: 16,000 at most)
NUDGE = 1e-6                        # relative size of the random move off the kinks


def focus(hand: dict, autodiff: list, blocks: Blocks, table: dict, f0: float,
           noise: float) -> np.ndarray:
    """Flat indices where the hand-written gradient disagrees with an autodiff reference,
    worst first, at most ``FOCUS_CAP`` per block: where centered differences must look."""
    tol = Tolerance(table, f0, noise)
    out = []
    for res in autodiff:
        s_all = max(tol.scale(res.grads[b]) for b in blocks.names)
        for b in blocks.names:
            c = compare(hand[b], res.grads[b], 2 * tol.autodiff(res.grads[b], s_all))
            if c.mismatch.any():
                ratio = np.nan_to_num(np.ravel(c.ratio), nan=0.0, posinf=1e300)
                worst = np.argsort(-ratio)[:min(FOCUS_CAP, int(c.mismatch.sum()))]
                out.append(worst + blocks.slices[b].start)
    return np.unique(np.concatenate(out)) if out else np.array([], np.int64)


def directional(hand: dict, ran: dict, blocks: Blocks, tol: Tolerance,
                 s_all: dict) -> dict:
    """Compare hand·d with the centered-difference directional derivatives, per block."""
    out = {}
    fd_res = ran["fd"]
    table = tol.table
    for b, probes in fd_res.extra.get("directions", {}).items():
        failed = 0
        for d, value, error, at_kink in probes:
            if at_kink:   # the direction crosses a kink: the estimate says nothing
                continue
            g = np.ravel(hand[b])
            slope = float(g @ d) if np.all(np.isfinite(g)) else float("nan")
            magnitude = float(np.abs(g) @ np.abs(d)) if np.isfinite(slope) else 0.0
            allowed = table["fd_safety"] * error + (table["fd_rtol"] + tol.ad_rtol) * magnitude
            if not abs(slope - value) <= allowed:
                failed += 1
        out[b] = {"count": len(probes), "failed": failed}
    return out


@dataclass
class Refinement:
    """Centered differences after refinement, per block, and what the probing found."""

    values: Optional[dict]      # fd estimates (None when fd did not run)
    errors: Optional[dict]
    kink: dict                  # elements where the stencil straddles a kink
    lower: dict                 # one-sided differences there (the subgradient interval)
    upper: dict
    refined: dict               # elements refined per block
    directions: dict            # directional checks per block: {"count", "failed"}
    evaluations: int            # loss evaluations the refinement spent


def refine(problem: Problem, ran: dict, hand: dict, tol: Tolerance, s_all: dict, fd: Any,
           notes: list, infos: dict) -> Refinement:
    """Cheap first, careful where it matters: refine (Richardson ladder and kink test) every
    element where the hand-written gradient disagrees with a first-pass reference — or every
    element of a small model — and drill into blocks whose directional check failed."""
    blocks = problem.blocks
    fd_values = {b: ran["fd"].grads[b].copy() for b in blocks.names} if "fd" in ran else None
    fd_errors = {b: ran["fd"].errors[b].copy() for b in blocks.names} if "fd" in ran else None
    kink = {b: np.zeros(blocks.shapes[b], bool) for b in blocks.names}
    lower = {b: np.full(blocks.shapes[b], np.nan) for b in blocks.names}
    upper = {b: np.full(blocks.shapes[b], np.nan) for b in blocks.names}
    refined = {b: 0 for b in blocks.names}
    to_refine = []
    full_ladder = "fd" in ran and fd == "auto" and blocks.size <= FULL_LADDER_MAX
    directions = directional(hand, ran, blocks, tol, s_all) if "fd" in ran else {}
    autodiff_ran = any(n in AUTODIFF for n in ran)
    for b, failed in directions.items():
        if failed["failed"] and autodiff_ran:
            notes.append(f"block `{b}`: {failed['failed']} of {failed['count']} directional "
                         f"derivative(s) by centered differences disagreed with the "
                         f"hand-written gradient; autodiff checked every element of the block.")
        elif failed["failed"] and not ran["fd"].covered[b].all():   # drill into the block
            engine = ran["fd"].extra["engine"]
            sl = blocks.slices[b]
            idx = np.arange(sl.start, sl.stop)
            v, e = engine.first_pass(idx)
            fd_values[b] = v.reshape(blocks.shapes[b])
            fd_errors[b] = e.reshape(blocks.shapes[b])
            ran["fd"].covered[b][...] = True
            notes.append(f"block `{b}`: a directional derivative disagreed with the "
                         f"hand-written gradient; checked every element of the block.")
    for b in blocks.names:
        sl = blocks.slices[b]
        if full_ladder:   # small model: the careful estimate everywhere is cheap
            to_refine.append((b, np.arange(sl.start, sl.stop)))
            continue
        suspect = np.zeros(blocks.shapes[b], bool)
        for n, r in ran.items():
            if n == "fd":
                mask = np.isfinite(fd_errors[b])
                t = tol.autodiff(fd_values[b], s_all[n]) + tol.fd(fd_values[b], fd_errors[b], mask)
            else:
                mask = np.ones(blocks.shapes[b], bool)
                t = 2 * tol.autodiff(r.grads[b], s_all[n])
            c = compare(hand[b], fd_values[b] if n == "fd" else r.grads[b], t, mask)
            suspect |= c.mismatch
            if n == "fd":   # covered elements whose estimate is not finite
                suspect |= ran["fd"].covered[b] & ~mask
        idx = np.flatnonzero(suspect)
        if idx.size > REFINE_CAP:
            notes.append(f"block `{b}`: {idx.size} elements disagree; refined the first "
                         f"{REFINE_CAP}.")
            idx = idx[:REFINE_CAP]
        to_refine.append((b, idx + sl.start))
    all_idx = np.concatenate([i for _, i in to_refine]) if to_refine else np.array([], int)
    engine_evals = 0
    if all_idx.size:
        engine = ran["fd"].extra["engine"] if "fd" in ran else Engine(problem)
        best = next((n for n in PRIORITY if n in ran), None)
        gscale = np.zeros(blocks.size)
        for b in blocks.names:
            gscale[blocks.slices[b]] = tol.scale(ran[best].grads[b]) if best else 1.0
        before, started = engine.evaluations, time.perf_counter()
        ladder = engine.refine(all_idx, gscale[all_idx])
        engine_evals = engine.evaluations - before
        if "fd" in infos:
            infos["fd"].seconds += time.perf_counter() - started
        flat_kink = np.zeros(blocks.size, bool)
        flat_kink[ladder.index] = ladder.kink
        flat_lo = np.full(blocks.size, np.nan)
        flat_hi = np.full(blocks.size, np.nan)
        flat_lo[ladder.index] = ladder.lower
        flat_hi[ladder.index] = ladder.upper
        for b in blocks.names:
            sl, shape = blocks.slices[b], blocks.shapes[b]
            kink[b] = flat_kink[sl].reshape(shape)
            lower[b] = flat_lo[sl].reshape(shape)
            upper[b] = flat_hi[sl].reshape(shape)
            local = ladder.index[(ladder.index >= sl.start) & (ladder.index < sl.stop)]
            refined[b] = int(local.size)
            if fd_values is not None and local.size:
                pos = np.searchsorted(ladder.index, local)
                fd_values[b].flat[local - sl.start] = ladder.value[pos]
                fd_errors[b].flat[local - sl.start] = ladder.error[pos]
        if "fd" in infos:
            infos["fd"].evaluations = engine.evaluations
    return Refinement(fd_values, fd_errors, kink, lower, upper, refined, directions,
                       engine_evals)


def nudged_comparison(grad, problem: Problem, autodiff: list, tol: Tolerance,
                      seed: int) -> dict:
    """The hand-written gradient against autodiff just off the kinks: a second check point.

    At a point where the loss is not differentiable several values are valid (a hand-written
    mask ``Z > 0`` gives 0 at a tie, jax and torch give 0.5, and with several samples at a tie
    the valid set is every mix of them). Moving every parameter by a seeded random relative
    1e-6 leaves all ties: there every convention coincides and a correct backward agrees with
    autodiff — and a backward that is wrong shows it there too, even where at the tie its
    value happened to coincide with autodiff's. Returns ``{oracle: {block: Comparison}}``.
    """
    blocks = problem.blocks
    rng = np.random.default_rng(seed + 1)
    moved = blocks.copy()
    moved.flat += NUDGE * element_scales(blocks) * rng.standard_normal(blocks.size)
    try:
        hand = hand_gradient(grad, moved, problem.args)[0]
    except CheckError:
        return {}
    f0 = problem.loss.numpy(moved.copy().as_dict(), *problem.args)
    nudged = Problem(problem.loss, moved, problem.args, float(np.asarray(f0).reshape(())),
                     problem.noise, problem.options)
    out = {}
    for name in autodiff:
        res = registry.run(name, nudged)
        if not res.ran:
            continue
        s_all = max(tol.scale(res.grads[b]) for b in blocks.names)
        out[name] = {}
        for b in blocks.names:
            t = 2 * tol.autodiff(res.grads[b], s_all)
            out[name][b] = compare(hand[b], res.grads[b], t)
    return out


FD_NUDGE = 1e-2   # the fd second point moves this far ...
FD_SECOND_STEP = 1e-6   # ... and its stencil spans 1e-6: ten thousand times less


def fd_second_point(grad, problem: Problem, index: np.ndarray, tol: Tolerance,
                    seed: int) -> dict:
    """Centered differences against the hand-written gradient at a second, generic point.

    Without autodiff, a disagreement at a point with ties (ReLU pre-activations exactly 0)
    cannot be told from a valid convention by centered differences at that point. Moving
    every parameter by a seeded random relative 1e-2 leaves the ties, and there a correct
    backward agrees with centered differences taken with a step of 1e-6 (a ten-thousandth of
    that move, so the stencil rarely reaches a moved kink).
    Returns ``{block: Comparison}`` over the flat ``index`` elements (others not compared).
    """
    blocks = problem.blocks
    rng = np.random.default_rng(seed + 2)
    moved = blocks.copy()
    moved.flat += FD_NUDGE * element_scales(blocks) * rng.standard_normal(blocks.size)
    try:
        hand = hand_gradient(grad, moved, problem.args)[0]
    except CheckError:
        return {}
    f0 = float(np.asarray(problem.loss.numpy(moved.copy().as_dict(), *problem.args)).reshape(()))
    options = {**problem.options, "executor": None, "progress": False}
    engine = Engine(Problem(problem.loss, moved, problem.args, f0, problem.noise, options))
    values = np.full(blocks.size, np.nan)
    errors = np.full(blocks.size, np.inf)
    values[index], errors[index] = engine.first_pass(index, FD_SECOND_STEP)
    out = {}
    for b in blocks.names:
        sl, shape = blocks.slices[b], blocks.shapes[b]
        v, e = values[sl].reshape(shape), errors[sl].reshape(shape)
        done = np.isfinite(e)
        if done.any():
            s_b = tol.scale(v, done)
            t = tol.fd(v, e, done) + tol.autodiff(np.where(done, v, 0.0), s_b)
            out[b] = compare(hand[b], v, t, done)
    return out
