"""Stage 4, agreement: per block, the hand-written gradient against every reference, and the
references against each other, each element within its own tolerance.

The tolerances come from the one table (``crosscheck._tolerances``); centered differences
leave out the elements where their stencil straddles a kink. At a point with ties, what a
disagreement there means is decided in ``crosscheck._kinks``.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Mapping, Optional

import numpy as np

from . import oracles as registry
from ._difference import compare
from ._kinks import (autodiff_conventions, fd_second_candidates, fd_second_conventions,
                     fd_second_point, mirror_gaps, nudged_comparison, valid_between)
from ._prepare import Prepared
from ._references import References
from ._refine import FD, Refinement



@dataclass(frozen=True)
class BlockAgreement:
    """One block: each reference's values, tolerance and mask, and every comparison."""

    refs: Mapping          # name -> reference gradient
    tols: Mapping          # name -> the reference's own per-element tolerance
    masks: Mapping         # name -> elements it compared
    vs: Mapping            # name -> Comparison(hand, reference)
    between: Mapping       # (p, q) -> Comparison(reference p, reference q)
    conventions: int       # kink elements where the hand picked another valid value
    hidden: int            # elements wrong only just off the ties
    outside: int = 0       # tie elements past the valid set (one tied sample): wrong
    unbounded: int = 0     # tie elements past the one-sided derivatives where several tied
                           # samples may widen the valid set: cannot be vouched for


@dataclass(frozen=True)
class _Context:
    """What every block's comparison shares: the second points at a point with ties."""

    ties: bool
    nudge: Optional[dict]
    fd_second: Optional[dict]
    gaps: "_MirrorGaps"


class _MirrorGaps:
    """:func:`crosscheck._kinks.mirror_gaps` of one reference and block, asked for only when
    a hand value at a tie lies past the one-sided derivatives."""

    def __init__(self, prep: Prepared):
        self.prep = prep

    def of(self, name: str, block: str):
        start = self.prep.blocks.slices[block].start
        return lambda index: mirror_gaps(self.prep, name, index + start)


def _context(prep: Prepared, refs: References, refinement: Refinement) -> _Context:
    ties = any(k.any() for k in refinement.kink.values())   # kinks found: the point is not generic
    autodiff = registry.autodiff()
    nudge = None
    if ties and any(n in autodiff for n in refs.ran):
        nudge = nudged_comparison(prep, refs)
    fd_second = None
    if ties and FD in refs.deciding and not any(n in autodiff for n in refs.deciding):
        index = fd_second_candidates(prep, refs, refinement)
        if index.size:
            fd_second = fd_second_point(prep, refs, index)
    return _Context(ties, nudge, fd_second, _MirrorGaps(prep))


def _references(b: str, prep: Prepared, refs: References, refinement: Refinement) -> tuple:
    shape, tol = prep.blocks.shapes[b], refs.tol
    values, tols, masks = {}, {}, {}
    for n, r in refs.ran.items():
        if n == FD:
            values[n] = refinement.values[b]
            masks[n] = np.isfinite(refinement.errors[b]) & ~refinement.kink[b]
            tols[n] = tol.fd(values[n], refinement.errors[b], masks[n])
        else:
            values[n] = r.grads[b]
            masks[n] = np.ones(shape, bool)
            tols[n] = tol.autodiff(r.grads[b], refs.s_all[n])
    return values, tols, masks


def _block(b: str, prep: Prepared, refs: References, refinement: Refinement,
           context: _Context) -> BlockAgreement:
    values, tols, masks = _references(b, prep, refs, refinement)
    hand, tol, autodiff = prep.hand[b], refs.tol, registry.autodiff()
    kink, lower, upper = refinement.kink[b], refinement.lower[b], refinement.upper[b]
    vs, conventions, hidden, outside, unbounded = {}, 0, 0, 0, 0
    table = prep.settings.table
    for n in values:
        t = tols[n] + tol.autodiff(values[n], refs.s_all[n])
        if b in prep.hand_rtol:
            t = t + prep.hand_rtol[b] * (np.abs(values[n]) + tol.scale(values[n]))
        c = compare(hand, values[n], t, masks[n])
        if n in autodiff and context.ties:
            off = (context.nudge or {}).get(n, {}).get(b)
            c, conv, hid, out, unb = autodiff_conventions(
                hand, values[n], t, masks[n], c, off, kink, lower, upper, table,
                context.gaps.of(n, b))
            conventions, hidden = max(conventions, conv), max(hidden, hid)
            outside, unbounded = max(outside, out), max(unbounded, unb)
        if n == FD and context.fd_second is not None and b in context.fd_second:
            tie_t = tol.autodiff(values[n], refs.s_all[n])
            c, conv, out, unb = fd_second_conventions(
                hand, values[n], t, masks[n], context.fd_second[b], kink, lower, upper, tie_t,
                table, context.gaps.of(n, b))
            conventions = max(conventions, conv)
            outside, unbounded = max(outside, out), max(unbounded, unb)
        vs[n] = c
    between = {}
    names = list(values)
    for i, p in enumerate(names):
        for q in names[i + 1:]:
            t = tols[p] + tols[q]
            mask = masks[p] & masks[q]
            if p in autodiff and q in autodiff and kink.any():
                mask = mask & ~valid_between(values, p, q, t, kink, lower, upper)
            between[(p, q)] = compare(values[p], values[q], t, mask)
    freeze = types.MappingProxyType
    return BlockAgreement(freeze(values), freeze(tols), freeze(masks), freeze(vs), freeze(between),
                          conventions, hidden, outside, unbounded)


def agreement(prep: Prepared, refs: References, refinement: Refinement) -> Mapping:
    """Stage 4: ``{block: BlockAgreement}`` in the order of the parameters."""
    context = _context(prep, refs, refinement)
    return types.MappingProxyType({b: _block(b, prep, refs, refinement, context)
                                   for b in prep.blocks.names})
