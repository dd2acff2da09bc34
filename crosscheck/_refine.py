"""Stage 3, refine: cheap first, careful where it matters.

After the first pass of every oracle, centered differences look again -- with a Richardson
ladder and the kink test -- only where the hand-written gradient disagrees with a reference
(or everywhere on a small model), and blocks whose directional check failed are drilled
into. The pipeline asks the centered-difference oracle for this explicitly
(``oracles.refiner``); nothing here edits the first pass's results: the refined estimates,
the coverage and the extra cost come back as a new :class:`Refinement`.
"""

from __future__ import annotations

import time
import types
from dataclasses import dataclass
from typing import Mapping, Optional

import numpy as np

from . import oracles as registry
from ._difference import compare
from ._prepare import Prepared
from ._references import References
from ._tolerances import BUDGETS
from .oracles._fd import NAME as FD   # the centered-difference oracle's name


@dataclass(frozen=True)
class Refinement:
    """Centered differences after refinement, per block, and what the probing found."""

    values: Optional[Mapping]   # fd estimates (None when fd did not run)
    errors: Optional[Mapping]
    covered: Optional[Mapping]  # elements fd evaluated, drilled-into blocks included
    kink: Mapping               # elements where the stencil straddles a kink
    lower: Mapping              # one-sided differences there (the subgradient interval)
    upper: Mapping
    refined: Mapping            # elements refined per block
    directions: Mapping         # directional checks per block: {"count", "failed"}
    evaluations: int            # loss evaluations the refinement spent (drilling included)
    ladder_evaluations: int     # of which the Richardson ladder
    seconds: float              # and the time it took
    notes: tuple


def directional(hand: Mapping, fd_result, refs: References) -> dict:
    """Compare hand·d with the centered-difference directional derivatives, per block."""
    out = {}
    table = refs.tol.table
    for b, probes in fd_result.directions.items():
        failed = 0
        for d, value, error, at_kink in probes:
            if at_kink:   # the direction crosses a kink: the estimate says nothing
                continue
            g = np.ravel(hand[b])
            slope = float(g @ d) if np.all(np.isfinite(g)) else float("nan")
            magnitude = float(np.abs(g) @ np.abs(d)) if np.isfinite(slope) else 0.0
            allowed = table["fd_safety"] * error + (table["fd_rtol"] + refs.tol.ad_rtol) * magnitude
            if not abs(slope - value) <= allowed:
                failed += 1
        out[b] = {"count": len(probes), "failed": failed}
    return out


def _drill(prep: Prepared, refs: References, directions: dict, values: dict, errors: dict,
           covered: dict, notes: list) -> int:
    """Every element of a block whose directional check failed (when no autodiff covers it)."""
    blocks, spent, refiner = prep.blocks, 0, None
    autodiff_ran = any(n in registry.autodiff() for n in refs.ran)
    for b, failed in directions.items():
        if failed["failed"] and autodiff_ran:
            notes.append(f"block `{b}`: {failed['failed']} of {failed['count']} directional "
                         f"derivative(s) by centered differences disagreed with the "
                         f"hand-written gradient; autodiff checked every element of the block.")
        elif failed["failed"] and not covered[b].all():
            refiner = refiner or registry.refiner(FD, prep.problem)
            before = refiner.evaluations
            sl = blocks.slices[b]
            v, e = refiner.first_pass(np.arange(sl.start, sl.stop))
            values[b], errors[b] = v.reshape(blocks.shapes[b]), e.reshape(blocks.shapes[b])
            covered[b] = np.ones(blocks.shapes[b], bool)
            spent += refiner.evaluations - before
            notes.append(f"block `{b}`: a directional derivative disagreed with the "
                         f"hand-written gradient; checked every element of the block.")
    return spent


def _to_refine(prep: Prepared, refs: References, values: Optional[dict], errors: Optional[dict],
               covered: Optional[dict], notes: list) -> np.ndarray:
    """Flat indices to refine: every element of a small model, else the suspects per block."""
    blocks, fd = prep.blocks, prep.settings.fd
    if FD in refs.ran and fd == "auto" and blocks.size <= BUDGETS["full_ladder_max"]:
        return np.arange(blocks.size)   # small model: the careful estimate everywhere is cheap
    out = []
    for b in blocks.names:
        suspect = np.zeros(blocks.shapes[b], bool)
        for n, r in refs.ran.items():
            if n == FD:
                mask = np.isfinite(errors[b])
                t = refs.tol.autodiff(values[b], refs.s_all[n]) + refs.tol.fd(values[b], errors[b], mask)
                c = compare(prep.hand[b], values[b], t, mask)
                suspect |= c.mismatch | (covered[b] & ~mask)   # covered, estimate not finite
            else:
                t = 2 * refs.tol.autodiff(r.grads[b], refs.s_all[n])
                suspect |= compare(prep.hand[b], r.grads[b], t).mismatch
        idx = np.flatnonzero(suspect)
        if idx.size > BUDGETS["refine_cap"]:
            notes.append(f"block `{b}`: {idx.size} elements disagree; refined the first "
                         f"{BUDGETS['refine_cap']}.")
            idx = idx[:BUDGETS["refine_cap"]]
        out.append(idx + blocks.slices[b].start)
    return np.concatenate(out) if out else np.array([], int)


def _per_block(prep: Prepared, flat: np.ndarray) -> dict:
    return {b: flat[prep.blocks.slices[b]].reshape(prep.blocks.shapes[b]) for b in prep.blocks.names}


def refine(prep: Prepared, refs: References) -> Refinement:
    """Stage 3: refine (Richardson ladder and kink test) every element where the hand-written
    gradient disagrees with a first-pass reference -- or every element of a small model -- and
    drill into blocks whose directional check failed."""
    blocks = prep.blocks
    fd_result = refs.ran.get(FD)
    values = {b: fd_result.grads[b].copy() for b in blocks.names} if fd_result else None
    errors = {b: fd_result.errors[b].copy() for b in blocks.names} if fd_result else None
    covered = {b: fd_result.covered[b].copy() for b in blocks.names} if fd_result else None
    notes: list = []
    started = time.perf_counter()
    directions = directional(prep.hand, fd_result, refs) if fd_result else {}
    spent = _drill(prep, refs, directions, values, errors, covered, notes) if fd_result else 0
    index = _to_refine(prep, refs, values, errors, covered, notes)
    flat_kink = np.zeros(blocks.size, bool)
    flat_lo, flat_hi = np.full(blocks.size, np.nan), np.full(blocks.size, np.nan)
    refined = {b: 0 for b in blocks.names}
    ladder_spent = 0
    if index.size:
        refiner = registry.refiner(FD, prep.problem)
        best = next((n for n in registry.priority() if n in refs.ran), None)
        gscale = np.zeros(blocks.size)
        for b in blocks.names:
            gscale[blocks.slices[b]] = refs.tol.scale(refs.ran[best].grads[b]) if best else 1.0
        before = refiner.evaluations
        ladder = refiner.refine(index, gscale[index])
        ladder_spent = refiner.evaluations - before
        spent += ladder_spent
        flat_kink[ladder.index] = ladder.kink
        flat_lo[ladder.index], flat_hi[ladder.index] = ladder.lower, ladder.upper
        for b in blocks.names:
            sl = blocks.slices[b]
            local = ladder.index[(ladder.index >= sl.start) & (ladder.index < sl.stop)]
            refined[b] = int(local.size)
            if values is not None and local.size:
                pos = np.searchsorted(ladder.index, local)
                values[b].flat[local - sl.start] = ladder.value[pos]
                errors[b].flat[local - sl.start] = ladder.error[pos]
    freeze = types.MappingProxyType
    return Refinement(
        freeze(values) if values is not None else None, freeze(errors) if errors is not None else None,
        freeze(covered) if covered is not None else None, freeze(_per_block(prep, flat_kink)),
        freeze(_per_block(prep, flat_lo)), freeze(_per_block(prep, flat_hi)), freeze(refined),
        freeze(directions), spent, ladder_spent, time.perf_counter() - started, tuple(notes))
