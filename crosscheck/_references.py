"""Stage 2, references: run every oracle asked for, and say which of them may decide.

The autodiff references run first; centered differences run last, with an explicit request
to look first where the hand-written gradient disagrees with an exact reference
(:func:`focus`). Then forward parity: a reference whose loss value differs from numpy's
beyond rounding computes something else, and its gradients are shown but do not decide.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from . import oracles as registry
from ._difference import compare
from ._prepare import Prepared
from ._tolerances import BUDGETS, Tolerance
from .oracles import OracleResult, Request


@dataclass(frozen=True)
class References:
    """Every oracle's first answer, and what the comparison needs to weigh them."""

    results: Mapping             # name -> OracleResult, in the order asked for
    ran: Mapping                 # the ones that returned gradients
    parity: Mapping              # name -> True/False (autodiff) or None
    deciding: tuple              # who may decide, most precise first
    tol: Tolerance
    s_all: Mapping               # name -> the model-wide gradient scale
    notes: tuple


def focus(hand: Mapping, autodiff: list, prep: Prepared) -> np.ndarray:
    """Flat indices where the hand-written gradient disagrees with an autodiff reference,
    worst first, at most ``focus_cap`` per block: where centered differences must look."""
    blocks = prep.blocks
    tol = Tolerance(dict(prep.settings.table), prep.f0, prep.noise)
    out = []
    for res in autodiff:
        s_all = max(tol.scale(res.grads[b]) for b in blocks.names)
        for b in blocks.names:
            c = compare(hand[b], res.grads[b], 2 * tol.autodiff(res.grads[b], s_all))
            if c.mismatch.any():
                ratio = np.nan_to_num(np.ravel(c.ratio), nan=0.0, posinf=1e300)
                worst = np.argsort(-ratio)[:min(BUDGETS["focus_cap"], int(c.mismatch.sum()))]
                out.append(worst + blocks.slices[b].start)
    return np.unique(np.concatenate(out)) if out else np.array([], np.int64)


def _run_all(prep: Prepared) -> dict:
    names = prep.settings.oracles
    results = {n: registry.run(n, prep.problem) for n in names if registry.get(n).KIND == "autodiff"}
    exact = [r for r in results.values() if r.ran]
    for n in names:   # estimates last, so that they can focus on where hand and autodiff disagree
        if n not in results:
            request = Request(focus=focus(prep.hand, exact, prep), autodiff=bool(exact))
            results[n] = registry.run(n, prep.problem, request)
    return {n: results[n] for n in names}


def _parity(name: str, res: OracleResult, prep: Prepared, notes: list):
    if registry.get(name).KIND != "autodiff" or not res.ran:
        return None
    f0, noise = prep.f0, prep.noise
    parity = bool(abs(res.forward - f0) <= prep.settings.table["parity_rtol"] * abs(f0) + 1e3 * noise)
    if not parity:
        functional = name == "jax" or res.mode == "functional writes"
        notes.append(
            f"forward parity: {name} computes loss {res.forward!r}, numpy "
            f"{f0!r} — beyond rounding, so {name}'s gradients are shown but do "
            f"not decide (the loss computes something else under {name}"
            + ("; in-place writes ran as functional updates, which differ from numpy "
               "where the code writes through a view held under another name" if functional else "")
            + ").")
    return parity


def stationary_threshold(prep: Prepared) -> float:
    """A gradient scale below which the gradient is zero *for this problem*.

    The loss's own size per unit of parameter, ``max(|J|, noise) / max|θ|``, is the scale a
    gradient of this problem lives on; a gradient ``stationary`` (1e-14) times smaller is
    rounding. An absolute threshold would call every gradient of a small-scale problem (data
    of size 1e-8, a loss of 1e-16) zero and let any bug through.
    """
    theta = max((float(np.max(np.abs(v))) for v in prep.blocks.views.values() if v.size), default=0.0)
    loss_scale = max(abs(prep.f0), prep.noise)
    return prep.settings.table["stationary"] * loss_scale / (theta if theta > 0 else 1.0)


def _scales(ran: dict, tol: Tolerance, prep: Prepared, notes: list) -> dict:
    """The model-wide gradient scale per reference; at a stationary point, absolute rounding."""
    blocks = prep.blocks
    autodiff = registry.autodiff()
    s_all = {n: max(tol.scale(r.grads[b]) for b in blocks.names) for n, r in ran.items()}
    stationary = stationary_threshold(prep)
    if any(n in autodiff for n in s_all) and all(s_all[n] <= stationary
                                                 for n in s_all if n in autodiff):
        notes.append("every autodiff gradient is zero (below 1e-14): the check point is a stationary "
                     "point (a perfect fit, or every unit dead), where a check cannot see "
                     "most bugs; check at random parameters.")
        # a zero model-wide gradient gives no scale: hold the hand-written one to absolute
        # rounding (autodiff_atol in the loss's units per parameter unit)
        s_all = {n: (v if v > stationary else 1.0) for n, v in s_all.items()}
    return s_all


def run_references(prep: Prepared) -> References:
    """Stage 2: every reference's first answer, parity, who decides, and the scales."""
    results = _run_all(prep)
    notes: list = []
    parity = {}
    for name, res in results.items():
        parity[name] = _parity(name, res, prep, notes)
        if res.error:
            notes.append(f"{name}: {res.error}")
        notes += [f"{name}: {n}" for n in res.notes]
    tol = Tolerance(dict(prep.settings.table), prep.f0, prep.noise)
    ran = {n: r for n, r in results.items() if r.ran}
    deciding = tuple(n for n in registry.priority() if n in ran and parity[n] is not False)
    s_all = _scales(ran, tol, prep, notes)
    return References(types.MappingProxyType(results), types.MappingProxyType(ran),
                      types.MappingProxyType(parity), deciding, tol,
                      types.MappingProxyType(s_all), tuple(notes))
