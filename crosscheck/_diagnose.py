"""Diagnosis: what a wrong block's error looks like, in one sentence with a hint.

Runs only on blocks already judged wrong (cheap first, expensive only to explain), against
the reference that decided the verdict. The tests, in order: non-finite values, an all-zero
gradient, a constant factor (``sign`` when it is −1, ``scale`` otherwise), a transpose, a
weight-decay term with the wrong coefficient (hand − reference ∝ the parameter), some
elements only (``partial``), and otherwise ``other``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ._report import Diagnosis

TOP_ELEMENTS = 5     # elements shown side by side
MAX_INDICES = 20     # mismatched indices listed, worst first
PATTERN_RTOL = 1e-6  # how exactly a pattern (factor, transpose, decay) must fit, relative


def _idx(shape: tuple, flat: int) -> tuple:
    return tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()


def _fits(residual: np.ndarray, tol: np.ndarray, scale: float) -> bool:
    """Every element of ``residual`` within the pair tolerance plus a relative slack."""
    return bool(np.all(np.abs(residual) <= 2.0 * tol + PATTERN_RTOL * scale))


def _factor_text(c: float) -> str:
    """Three decimals, or six significant digits when three would round the factor away
    (1.00017 must not read as 1.000)."""
    if not 1e-3 <= abs(c) < 1e4:
        return f"{c:.3e}"
    text = f"{c:.3f}"
    return text if abs(c - float(text)) <= 1e-6 * abs(c) else f"{c:.6g}"


def _batch_hint(c: float, batch: Optional[int]) -> str:
    if batch and abs(c - batch) <= 1e-6 * batch:
        return f"the factor equals the batch size m = {batch}: a missing 1/m"
    if batch and abs(c - 1.0 / batch) <= 1e-6 / batch:
        return f"the factor is 1/m for the batch size m = {batch}: an extra 1/m"
    return "look for a stray factor or a missing 1/m"


# long: the kinds are tried in one order, each test reading the ones before it; split, the
# order would live in two places
def diagnose(name: str, hand: np.ndarray, ref: np.ndarray, ref_name: str, tol: np.ndarray,
             mismatch: np.ndarray, ratio: np.ndarray, param: np.ndarray,
             batch: Optional[int] = None) -> Diagnosis:
    """Classify the disagreement between ``hand`` and ``ref`` for block ``name``.

    Args:
        tol: per-element tolerance of the pair; ``mismatch``/``ratio`` come from the comparison.
        param: the parameter block's values (for the weight-decay test).
        batch: the batch size m, if known (factors m and 1/m are called out).
    """
    size = int(hand.size)
    shape = hand.shape
    n_bad = int(mismatch.sum())
    order = np.argsort(-np.nan_to_num(np.where(mismatch, ratio, -1.0), nan=-1.0, posinf=1e300),
                       axis=None)[:n_bad]
    indices = [_idx(shape, int(i)) for i in order[:MAX_INDICES]]
    worst = indices[0] if indices else None
    elements = [{"index": _idx(shape, int(i)), "hand": float(hand.flat[i]),
                 "reference": float(ref.flat[i])} for i in order[:TOP_ELEMENTS]]

    label = f"reference ({ref_name})"

    def make(kind: str, text: str, factor: Optional[float] = None) -> Diagnosis:
        return Diagnosis(kind, text, size, n_bad, worst, factor, ref_name, indices, elements)

    bad = ~np.isfinite(hand)
    if bad.any():
        first = _idx(shape, int(np.flatnonzero(bad)[0]))
        return make("nonfinite",
                    f"hand-written `{name}` holds NaN/Inf at {int(bad.sum())} of {size} "
                    f"element(s) (first at {first}): look for a division by zero, log of 0, "
                    f"or an overflowing exp.")
    scale = float(np.max(np.abs(ref))) if size else 0.0
    if not np.any(hand) and np.any(ref):
        return make("zero", f"hand-written `{name}` is all zeros while {label} is not: "
                            f"the gradient is never accumulated, or a mask removes all of it.")
    rr = float(np.vdot(ref, ref))
    if rr > 0:
        c = float(np.vdot(hand, ref) / rr)
        if c != 0 and _fits(hand - c * ref, tol * max(1.0, abs(c)), abs(c) * scale):
            if abs(c + 1.0) <= PATTERN_RTOL:
                return make("sign", f"hand = −1 × {label} on all {size} elements of `{name}`: "
                                    f"a sign error (ŷ − y against y − ŷ, or the gradient of "
                                    f"−loss).", -1.0)
            c_round = float(f"{c:.6g}")
            return make("scale", f"hand = {_factor_text(c)} × {label} on all {size} "
                                 f"elements of `{name}`: {_batch_hint(c, batch)}.", c_round)
    if hand.ndim == 2 and shape[0] == shape[1] > 1:
        if (not _fits(ref - ref.T, tol, scale)) and _fits(hand - ref.T, tol, scale):
            return make("transpose", f"hand = {label}ᵀ on `{name}`: the block is "
                                     f"transposed (e.g. `X.T @ dZ` for `dZ @ X.T`).")
    pp = float(np.vdot(param, param))
    delta = hand - ref
    if pp > 0 and size > 1:
        c = float(np.vdot(delta, param) / pp)
        if c != 0 and _fits(delta - c * param, tol,
                            PATTERN_RTOL * float(np.max(np.abs(delta)))):
            hint = ("the decay term is missing" if c < 0 and abs(c) > 0
                    else "a weight-decay term with the wrong coefficient (λ for λ/m?)")
            return make("regularization",
                        f"hand − {label} = {_factor_text(c)} × `{name}` on all {size} "
                        f"elements: {hint}.", float(f"{c:.6g}"))
    if 0 < n_bad < size:
        w = elements[0]
        what = "one element" if n_bad == 1 else f"{n_bad} of {size} elements"
        if hand.ndim == 2 and n_bad > 1:
            rows, cols = np.nonzero(mismatch)
            for axis, ids in (("column", cols), ("row", rows)):
                if np.all(ids == ids[0]):
                    line = hand[:, ids[0]] if axis == "column" else hand[ids[0], :]
                    zeroed = " — zero in the hand-written gradient" if not np.any(line) else ""
                    what += f" (all in {axis} {int(ids[0])}{zeroed})"
                    break
        return make("partial",
                    f"{what} of `{name}` disagree (worst at {w['index']}: hand "
                    f"{w['hand']:.6g} vs {label} {w['reference']:.6g}); the rest agree: "
                    f"look for an indexing slip, a missed term or a wrong mask.")
    from ._difference import relative_difference
    rd = relative_difference(hand, ref)
    return make("other", f"hand and {label} differ on all {size} elements of `{name}` "
                         f"with no simple pattern (relative difference {rd:.3g}).")
