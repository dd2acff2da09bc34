"""Diagnosis: what a wrong block's error looks like, in one sentence with a hint.

Runs only on blocks already judged wrong (cheap first, expensive only to explain), against
the reference that decided the verdict. The tests, in order: non-finite values, an all-zero
gradient, a block of one element (where no pattern can show), a constant factor (``sign``
when it is −1, ``scale`` otherwise), a transpose, a weight-decay term with the wrong
coefficient (hand − reference ∝ the parameter), a small relative drift on every element,
some elements only (``partial``), and otherwise ``other``. For ``partial`` and ``other`` on a
block of two or more axes, the text also says how the disagreement lies along an axis: a
contiguous range of rows or columns, and a relative error growing monotonically toward one
end; mismatches filling the first indices while the last agree raise the question of a
backward loop stopped early (truncated backpropagation through time).

Notes:
    The words claim no more than the numbers show. A fitted factor is only as exact as the
    reference: it is called round (m, 1/m, 2, 1/2, −1) when it is within the reference's own
    error of that value, and that error is named when it is not negligible. One element always
    has a ratio, so a one-element block is described by its two values; a round ratio is
    offered as a hint, never as a finding. A factor within 1e-3 of 1 is a drift (a constant
    such as ``eps`` used differently), not a stray factor. A decay coefficient c in
    hand − reference = c × parameter cannot tell a missing term from one with the wrong sign
    (the reference's own coefficient is unknown): both readings are given, with their numbers.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ._difference import relative_difference
from ._report import Diagnosis, DiagnosisKind

TOP_ELEMENTS = 5     # elements shown side by side
MAX_INDICES = 20     # mismatched indices listed, worst first
PATTERN_RTOL = 1e-6  # how exactly a pattern (factor, transpose, decay) must fit, relative
ROUND_LIMIT = 0.05   # a factor is called round only when the reference pins it this well
DRIFT = 1e-3         # relative errors below this are a drift (eps-like), not a stray factor
NO_PATTERN = "one element cannot show a pattern"


def _idx(shape: tuple, flat: int) -> tuple:
    return tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()


def _fits(residual: np.ndarray, tol: np.ndarray, scale: float) -> bool:
    """Every element of ``residual`` within the pair tolerance plus a relative slack."""
    return bool(np.all(np.abs(residual) <= 2.0 * tol + PATTERN_RTOL * scale))


def value_text(x: float) -> str:
    """A gradient value in six significant digits, negative zero printed as ``0``: a ``-0``
    reads as a sign the number does not have (renderers may use it for the same reason)."""
    return f"{float(x) + 0.0:.6g}"


def _factor_text(c: float) -> str:
    """Three decimals when they hold the factor to 1e-6; otherwise six significant digits,
    or as many more as it takes not to round the factor back to its three-decimal form
    (1.00017 must not read as 1.000, nor 1.000002 as 1)."""
    if not 1e-3 <= abs(c) < 1e4:
        return f"{c:.3e}"
    three = f"{c:.3f}"
    if abs(c - float(three)) <= 1e-6 * abs(c):
        return three
    for digits in range(6, 17):
        text = f"{c:.{digits}g}"
        if float(text) != float(three):
            return text
    return repr(c)


def _factor_value(c: float) -> float:
    """The factor as the report records it: the digits the text shows (so 1.000002 is not
    stored as 1.0), and six significant digits where the text uses an exponent."""
    return float(_factor_text(c)) if 1e-3 <= abs(c) < 1e4 else float(f"{c:.6g}")


def _factor_error(tol: np.ndarray, ref: np.ndarray) -> float:
    """Relative error of a factor fitted against ``ref``.

    The pair tolerance bounds the reference's own error element by element (centered
    differences' error estimate with its safety factor, autodiff's rounding); by
    Cauchy–Schwarz the fitted c = ⟨hand, ref⟩ / ⟨ref, ref⟩ moves by at most ‖tol‖ / ‖ref‖ of
    itself. A bound, not a typical error: a factor called round within it is round as far
    as the reference can tell, and the text gives the bound.
    """
    norm = float(np.linalg.norm(ref))
    return PATTERN_RTOL + (float(np.linalg.norm(tol)) / norm if norm else np.inf)


def _round(a: float, err: float, batch: Optional[int]) -> Optional[tuple]:
    """``(value, label)`` of the round magnitude (m, 1/m, 2, 1/2, 1) that ``a`` equals within
    the relative error ``err``; None when none does, or when the reference is too coarse to
    tell (``err`` above ``ROUND_LIMIT``)."""
    if err > ROUND_LIMIT:
        return None
    candidates = [(float(batch), f"{batch}", "m"), (1.0 / batch, f"1/{batch}", "1/m")] \
        if batch and batch > 1 else []
    candidates += [(2.0, "2", "2"), (0.5, "1/2", "1/2"), (1.0, "1", "1")]
    for value, text, label in candidates:
        if abs(a - value) <= err * value:
            return value, text, label
    return None


def _within(c: float, rounded: Optional[tuple], err: float) -> str:
    """`` (50 within the reference's error, ±0.06)`` when the factor is round only within the
    reference's error; empty when it is round to rounding, or not round."""
    if rounded is None or abs(abs(c) - rounded[0]) <= PATTERN_RTOL * rounded[0]:
        return ""
    sign = "−" if c < 0 else ""
    return f" ({sign}{rounded[1]} within the reference's error, ±{err * rounded[0]:.2g})"


def _hint(c: float, rounded: Optional[tuple], batch: Optional[int],
          what: str = "factor") -> str:
    """What the factor ``c`` says, then where to look: ``"<observation> — <suggestion>"``.

    A factor above 1 in size means the hand-written value is too large (a missing division),
    below 1 too small (an extra division); m and 1/m are named when the batch size is known.
    """
    a = abs(c)
    label = rounded[2] if rounded else None
    if label == "m":
        text = f"the {what} equals the batch size m = {batch} — a missing 1/m"
    elif label == "1/m":
        text = f"the {what} is 1/m for the batch size m = {batch} — an extra 1/m"
    elif label == "2":
        text = (f"the {what} is 2 — a stray factor 2 (the 2 of d(x²)/dx where the loss has "
                f"½·x², or a term counted twice)")
    elif label == "1/2":
        text = (f"the {what} is 1/2 — an extra division by 2, or a dropped factor 2 (the 2 "
                f"of d(x²)/dx)")
    elif abs(a - 1.0) < DRIFT:
        text = (f"every element is off by the same relative {abs(a - 1.0):.2g}, the "
                f"hand-written value {'larger' if a > 1 else 'smaller'} — a constant such as "
                f"`eps` used differently in the forward and the backward, not a stray factor")
    elif a > 1:
        text = ("the hand-written value is too large — look for a missing division (by a "
                "count, a size or a norm) or a stray factor")
    else:
        text = ("the hand-written value is too small — look for an extra division (by a "
                "count, a size or a norm) or a missing factor")
    return f"the sign is flipped, and {text}" if c < 0 else text


def _constant_factor(name: str, label: str, size: int, c: float, err: float,
                     batch: Optional[int]) -> tuple:
    """``(kind, text, factor)`` for hand = c × reference on every element."""
    rounded = _round(abs(c), err, batch)
    lead = f"hand = {_factor_text(c)} × {label} on all {size} elements of `{name}`"
    if c < 0 and rounded and rounded[2] == "1":
        if not _within(c, rounded, err):
            lead = f"hand = −1 × {label} on all {size} elements of `{name}`"
        return ("sign", f"{lead}{_within(c, rounded, err)}: a sign error (ŷ − y against "
                        f"y − ŷ, or the gradient of −loss).", -1.0)
    if rounded and rounded[2] == "1":
        rounded = None        # a factor of +1 within the reference's error is a drift
    return ("scale", f"{lead}{_within(c, rounded, err)}: {_hint(c, rounded, batch)}.",
            _factor_value(c))


def _single(name: str, label: str, h: float, r: float, err: float,
            batch: Optional[int]) -> tuple:
    """``(kind, text, factor)`` for a block of one element: any two numbers have a ratio, so
    the ratio is evidence of a scale error only when it is round, and even then a hint."""
    values = f"hand = {value_text(h)}, {label} = {value_text(r)}"
    if r == 0:
        return ("other", f"{values} for the single element of `{name}`: the reference "
                         f"gradient is 0 here — look for a term the loss does not have.", None)
    c = h / r
    rounded = _round(abs(c), err, batch)
    lead = f"{values} (ratio {c:.4g}) for the single element of `{name}`"
    if rounded is None or (c > 0 and rounded[2] == "1"):
        return ("other", f"{lead}: {NO_PATTERN}, and any two values have a ratio, so this is "
                         f"no evidence of a scale error — recheck each term of this "
                         f"gradient.", None)
    if c < 0 and rounded[2] == "1":
        return ("sign", f"{lead}: a sign error, perhaps ({NO_PATTERN}; the ratio −1 is the "
                        f"only hint).", -1.0)
    return ("scale", f"{lead}: {_hint(c, rounded, batch, 'ratio')}, perhaps ({NO_PATTERN}; "
                     f"the round ratio is the only hint).", _factor_value(c))


def _decay(name: str, label: str, size: int, c: float, batch: Optional[int]) -> str:
    """hand − reference = c × parameter. The reference's own decay coefficient is unknown, so
    a coefficient too small by |c| is either a missing term (λ = |c|) or one with the wrong
    sign (λ = |c|/2); too large, either a term the loss lacks, 2λ where λ = c belongs, or λ
    where λ/m belongs (λ·(1 − 1/m) = c, named when the batch size is known). Every reading
    is given, with its numbers, for the user to match against the code."""
    a, half = f"{abs(c):.3g}", f"{abs(c) / 2:.3g}"
    lead = f"hand − {label} = {_factor_text(c)} × `{name}` on all {size} elements"
    if c < 0:
        return (f"{lead}: the hand-written decay coefficient is {a} too small — a decay term "
                f"{a}·`{name}` missing, or one with the wrong sign (−{half}·`{name}` where "
                f"+{half}·`{name}` belongs).")
    per_batch = "λ where λ/m belongs"
    if batch and batch > 1:
        lam = c * batch / (batch - 1)
        per_batch = f"λ = {lam:.3g} where λ/m = {lam / batch:.3g} belongs (m = {batch})"
    return (f"{lead}: the hand-written decay coefficient is {a} too large — a decay term "
            f"{a}·`{name}` the loss does not have, 2λ where λ = {a} belongs, or {per_batch}.")


def _per_axis(hand: np.ndarray, ref: np.ndarray, tol: np.ndarray) -> Optional[str]:
    """``"one per column"`` (row, index of axis k) when hand = c_i × reference holds with one
    factor per index along an axis: a per-feature constant, as a per-column ``eps``."""
    if hand.ndim < 2:
        return None
    scale = float(np.max(np.abs(ref)))
    for axis in range(hand.ndim):
        other = tuple(k for k in range(hand.ndim) if k != axis)
        rr = np.sum(ref * ref, axis=other, keepdims=True)
        c = np.sum(hand * ref, axis=other, keepdims=True) / np.where(rr > 0, rr, 1.0)
        if _fits(hand - c * ref, tol, scale):
            if hand.ndim == 2:
                return "one per column" if axis == 1 else "one per row"
            return f"one per index of axis {axis}"
    return None


def _drift(name: str, label: str, hand: np.ndarray, ref: np.ndarray, tol: np.ndarray,
           n_bad: int) -> Optional[str]:
    """Every element with a gradient off by a small relative amount (below ``DRIFT``) that is
    not one factor: a constant such as ``eps`` that differs per feature, or an approximation.
    None when any element is off by more, or when few elements disagree (that is ``partial``)."""
    live = np.abs(ref) > 2.0 * tol
    if n_bad < 2 or 2 * n_bad < int(live.sum()) or not _fits(hand[~live] - ref[~live],
                                                               tol[~live], 0.0):
        return None
    rel = (hand[live] - ref[live]) / ref[live]
    if not rel.size or float(np.max(np.abs(rel))) >= DRIFT:
        return None
    side = ("larger" if np.all(rel > 0) else "smaller" if np.all(rel < 0)
            else "sometimes larger, sometimes smaller")
    lo, hi = float(np.min(np.abs(rel))), float(np.max(np.abs(rel)))
    shape = _per_axis(hand, ref, tol)
    how = f", {shape}" if shape else ""
    cause = ("a constant such as `eps` used differently in the forward and the backward"
             if shape else "a constant such as `eps` used differently in the forward and the "
                           "backward, or an approximation in one of them")
    where = "every element" if n_bad == hand.size else f"{n_bad} of {hand.size} elements"
    return (f"hand and {label} differ on {where} of `{name}` by a small relative "
            f"amount{how} ({lo:.2g} to {hi:.2g}, the hand-written value {side}): {cause}, "
            f"not a stray factor.")


GROWTH = 4.0         # a profile "grows" when its far end is at least this many times its near end
MIN_TREND = 4        # indices an axis needs before a monotone profile counts as a trend


def _axis_words(ndim: int, axis: int) -> tuple:
    """``("row", "rows")`` … how an index along ``axis`` is named in the text."""
    if ndim == 2:
        return ("row", "rows") if axis == 0 else ("column", "columns")
    return (f"axis {axis} index", f"axis {axis} indices")


def _span(ndim: int, axis: int, lo: int, hi: int) -> str:
    """``"column 7"``, ``"columns 0–2"``."""
    one, many = _axis_words(ndim, axis)
    return f"{one} {lo}" if lo == hi else f"{many} {lo}–{hi}"


def _profile(hand: np.ndarray, ref: np.ndarray, mismatch: np.ndarray, axis: int) -> tuple:
    """``(bad, error)`` per index along ``axis``: whether any element disagrees there, and
    ‖hand − reference‖ / ‖reference‖ over that slice (0 where every element agrees: within
    tolerance the slice has no error to speak of; ‖hand‖ stands in where ‖reference‖ is 0)."""
    other = tuple(k for k in range(hand.ndim) if k != axis)
    bad = np.any(mismatch, axis=other)
    diff = np.sqrt(np.sum((hand - ref) ** 2, axis=other))
    norm = np.sqrt(np.sum(ref ** 2, axis=other))
    norm = np.where(norm > 0, norm, np.sqrt(np.sum(hand ** 2, axis=other)))
    error = np.where(bad, diff / np.where(norm > 0, norm, 1.0), 0.0)
    return bad, error


def _growth(error: np.ndarray) -> Optional[int]:
    """The end (0 or −1) toward which ``error`` grows monotonically, by at least ``GROWTH``
    times from its smallest non-zero value; None when it does not. Needs ``MIN_TREND``
    indices: n unrelated numbers fall in order one time in n!/2 (3 numbers: one in three),
    so a short axis would report trends that are chance."""
    live = error[error > 0]
    if error.size < MIN_TREND or live.size < 2:
        return None
    steps = np.diff(error)
    if np.all(steps <= 0) and error[0] >= GROWTH * live.min():
        return 0
    if np.all(steps >= 0) and error[-1] >= GROWTH * live.min():
        return -1
    return None


def _axis_pattern(hand: np.ndarray, ref: np.ndarray, mismatch: np.ndarray) -> tuple:
    """``(where, hint)`` about how the disagreement lies along the block's axes.

    ``where``: the contiguous range of one axis the mismatches are confined to ("all in
    columns 0–2", with "zero in the hand-written gradient" when the hand is 0 there) and/or
    the end toward which the per-index relative error grows monotonically ("growing toward
    column 0 (relative error 0.047 at column 2, 2.2 at column 0)"). Columns are tried before
    rows (a time or batch axis is usually the last). ``hint`` is set only for the shape a
    backward loop that stops early leaves: the mismatches fill the first indices of the axis
    (at least two), the last ones agree. That is truncated backpropagation through time when
    the axis is time; nothing here knows it is, hence the question mark.
    """
    if hand.ndim < 2:
        return "", ""
    for axis in reversed(range(hand.ndim)):
        bad, error = _profile(hand, ref, mismatch, axis)
        ids = np.flatnonzero(bad)
        if not ids.size:
            continue
        lo, hi = int(ids[0]), int(ids[-1])
        confined = hi - lo + 1 == ids.size and ids.size < bad.size
        end = _growth(error)
        if not confined and end is None:
            continue
        one, many = _axis_words(hand.ndim, axis)
        parts = []
        if confined:
            block = np.take(hand, np.arange(lo, hi + 1), axis=axis)
            zeroed = " — zero in the hand-written gradient" if not np.any(block) else ""
            parts.append(f"all in {_span(hand.ndim, axis, lo, hi)}{zeroed}")
        if end is not None:
            near, far = (hi, lo) if end == 0 else (lo, hi)
            parts.append(f"growing toward {one} {far} (relative error {error[near]:.2g} at "
                         f"{one} {near}, {error[far]:.2g} at {one} {far})")
        hint = ""
        if confined and lo == 0 and hi >= 1:
            hint = (f"the first {many} disagree and the last agree, as when a backward loop "
                    f"over them stops before the first: backpropagation through time cut "
                    f"short, if the {many} are time steps?")
        return ", ".join(parts), hint
    return "", ""


def _partial(name: str, label: str, size: int, n_bad: int, hand: np.ndarray, ref: np.ndarray,
             mismatch: np.ndarray, w: dict) -> str:
    """Some elements only: where they lie along the axes (a range of rows or columns, zeroed
    or not, the error growing toward one end), the worst, and where to look."""
    what = "one element" if n_bad == 1 else f"{n_bad} of {size} elements"
    where, hint = _axis_pattern(hand, ref, mismatch) if n_bad > 1 else ("", "")
    verb, at = ("disagrees", "at") if n_bad == 1 else ("disagree", "worst at")
    where = f", {where}" if where else ""
    look = (f"{hint} Otherwise look for an indexing slip, a missed term or a wrong mask."
            if hint else "look for an indexing slip, a missed term or a wrong mask.")
    return (f"{what} of `{name}` {verb}{where} ({at} {w['index']}: hand "
            f"{value_text(w['hand'])} vs {label} {value_text(w['reference'])}); the rest agree: "
            f"{look}")


def _pattern(name: str, label: str, hand: np.ndarray, ref: np.ndarray, tol: np.ndarray,
             param: np.ndarray, batch: Optional[int]) -> Optional[tuple]:
    """``(kind, text, factor)`` for a block of more than one element whose every element
    follows one pattern: a constant factor, a transpose or a decay term; None otherwise."""
    size, shape = int(hand.size), hand.shape
    scale = float(np.max(np.abs(ref))) if size else 0.0
    rr = float(np.vdot(ref, ref))
    if rr > 0:
        c = float(np.vdot(hand, ref) / rr)
        if c != 0 and _fits(hand - c * ref, tol * max(1.0, abs(c)), abs(c) * scale):
            return _constant_factor(name, label, size, c, _factor_error(tol, ref), batch)
    if hand.ndim == 2 and shape[0] == shape[1] > 1:
        if (not _fits(ref - ref.T, tol, scale)) and _fits(hand - ref.T, tol, scale):
            return ("transpose", f"hand = {label}ᵀ on `{name}`: the block is transposed "
                                 f"(e.g. `X.T @ dZ` for `dZ @ X.T`).", None)
    pp = float(np.vdot(param, param))
    delta = hand - ref
    if pp > 0:
        c = float(np.vdot(delta, param) / pp)
        if c != 0 and _fits(delta - c * param, tol, PATTERN_RTOL * float(np.max(np.abs(delta)))):
            return "regularization", _decay(name, label, size, c, batch), _factor_value(c)
    return None


def diagnose(name: str, hand: np.ndarray, ref: np.ndarray, ref_name: str, tol: np.ndarray,
             mismatch: np.ndarray, ratio: np.ndarray, param: np.ndarray,
             batch: Optional[int] = None) -> Diagnosis:
    """Classify the disagreement between ``hand`` and ``ref`` for block ``name``.

    Args:
        tol: per-element tolerance of the pair (it bounds the reference's own error, which
            decides how exactly a factor is known); ``mismatch``/``ratio`` come from the
            comparison.
        param: the parameter block's values (for the weight-decay test).
        batch: the batch size m, if known (factors m and 1/m are called out).
    """
    size, shape = int(hand.size), hand.shape
    n_bad = int(mismatch.sum())
    order = np.argsort(-np.nan_to_num(np.where(mismatch, ratio, -1.0), nan=-1.0, posinf=1e300),
                       axis=None)[:n_bad]
    indices = [_idx(shape, int(i)) for i in order[:MAX_INDICES]]
    elements = [{"index": _idx(shape, int(i)), "hand": float(hand.flat[i]) + 0.0,
                 "reference": float(ref.flat[i]) + 0.0} for i in order[:TOP_ELEMENTS]]
    label = f"reference ({ref_name})"

    def make(kind: DiagnosisKind, text: str, factor: Optional[float] = None) -> Diagnosis:
        return Diagnosis(kind, text, size, n_bad, indices[0] if indices else None, factor,
                         ref_name, indices, elements)

    bad = ~np.isfinite(hand)
    if bad.any():
        first = _idx(shape, int(np.flatnonzero(bad)[0]))
        return make("nonfinite",
                    f"hand-written `{name}` holds NaN/Inf at {int(bad.sum())} of {size} "
                    f"element(s) (first at {first}): look for a division by zero, log of 0, "
                    f"or an overflowing exp.")
    if not np.any(hand) and np.any(ref):
        if size == 1:
            return make("zero", f"hand-written `{name}` is 0 while {label} is "
                                f"{value_text(ref.flat[0])}: the gradient is never "
                                f"accumulated, or a mask removes it.")
        return make("zero", f"hand-written `{name}` is all zeros while {label} is not: "
                            f"the gradient is never accumulated, or a mask removes all of it.")
    if size == 1:
        return make(*_single(name, label, float(hand.flat[0]), float(ref.flat[0]),
                             _factor_error(tol, ref), batch))
    found = _pattern(name, label, hand, ref, tol, param, batch)
    if found:
        return make(*found)
    drift = _drift(name, label, hand, ref, tol, n_bad)
    if drift:
        return make("other", drift)
    if 0 < n_bad < size:
        return make("partial", _partial(name, label, size, n_bad, hand, ref, mismatch,
                                             elements[0]))
    if not np.any(ref):
        return make("other", f"hand-written `{name}` is non-zero while {label} is all zeros: "
                             f"the loss does not depend on `{name}` here — look for a term the "
                             f"loss does not have, or a gradient written to the wrong block.")
    rd = relative_difference(hand, ref)
    where = _axis_pattern(hand, ref, mismatch)[0]
    return make("other", f"hand and {label} differ on all {size} elements of `{name}` "
                         f"with no simple pattern (relative difference {rd:.3g})"
                         + (f", the error {where}." if where else "."))
