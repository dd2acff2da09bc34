"""The one tolerance table: how far apart two gradients may be and still agree.

Every comparison is element-wise: ``|a − b| ≤ tol_a + tol_b`` where each side brings its
own accuracy. Overrides (``check(..., tolerances={...})``) merge into ``DEFAULTS``.

Derivations:

* **hand-written gradient**: it is a float64 computation like autodiff's, so it brings the
  autodiff tolerance (below); nothing else.
* **autodiff** (``jax``, ``torch``): exact up to the forward computation's own rounding. A
  well-conditioned float64 loss has relative noise near ε = 2.2e-16, but an ill-conditioned
  one (the seeds' ``log(1 − A3)`` with ``A3`` close to 1) rounds far worse, and its gradients
  differ by more (2.5e-14 measured between the seeds' correct backward and ``jax.grad``).
  So the relative tolerance grows with the measured conditioning ``κ = noise / (ε·|J|)``:
  ``rtol = max(autodiff_rtol, autodiff_kappa · ε · κ)``, applied to
  ``|value| + max|block|`` (the block's scale, so an element that is near zero through
  cancellation is not held to a relative standard), plus ``autodiff_atol · max|model|``
  for blocks whose whole gradient vanishes by cancellation. The floor 1e-10 leaves four
  orders of magnitude above rounding and six below the smallest real bug we know (a 1.7e-4
  relative error in a GELU derivative).
* **centered differences**: ``fd_safety ×`` the estimate's own error (rounding + truncation,
  see ``crosscheck.oracles._fd``) plus ``fd_rtol · max|block|``, the resolution below which
  a difference quotient says nothing.
"""

from __future__ import annotations

from typing import Mapping, Optional

import numpy as np

from ._errors import CheckError

EPS = float(np.finfo(np.float64).eps)
KAPPA_MAX = 1e8   # beyond this the loss rounds like float32 or worse: autodiff rtol ≤ 2.2e-5

DEFAULTS = {
    "autodiff_rtol": 1e-10,
    "autodiff_kappa": 1e3,
    "autodiff_atol": 1e-13,
    "fd_safety": 4.0,
    "fd_rtol": 1e-9,
    "fd_resolution": 1e-3,  # fd alone: "ok" only if it could see a relative error this small
    "parity_rtol": 1e-10,   # forward parity: |J_framework − J_numpy| ≤ this·|J| + 1e3·noise
    "stationary": 1e-14,    # every autodiff gradient below this·max(1, |J|): a stationary point
    "kink_rtol": 1e-6,      # a gap jump below this fraction of the block's gradient scale is smooth
    "nudge": 1e-6,          # ties: autodiff's second check point, a relative move off the kinks
    "fd_nudge": 1e-2,       # ties, fd alone: the second point moves this far ...
    "fd_second_step": 1e-6,  # ... and its stencil spans this: ten thousand times less
    "subgradient_margin": 1e-3,  # ties: a hand value this far (relative) past the one-sided
                                 # derivatives is outside the subdifferential
    # Localisation, centered differences on a tap: at h = ε^(1/3) the rounding error of a loss
    # κ times noisier than ε·|J| is about κ·ε^(2/3)·|J|/|g|; the seeds' log(1 − A3) has κ up to
    # ~1e3, so 1e3·ε^(2/3) ≈ 3.7e-8 of the quantity's scale. The |D(h) − D(2h)| estimate alone
    # can come out small by chance (measured: 4.7e-9 relative misses on the seeds' db3).
    "tap_fd_resolution": 1e3 * EPS ** (2 / 3),
}

#: How much centered differences may spend (counts, not tolerances: a bigger budget never makes
#: a verdict less strict, only surer).
BUDGETS = {
    "full_max": 5000,          # fd="auto": up to this many elements, every element
    "tap_fd_max": 5000,        # localisation without autodiff: tap elements (4 loss calls each)
    "full_ladder_max": 2000,   # fd="auto": up to this many, refine every element (8 calls each)
    "no_autodiff_budget": 200_000,   # fd="auto" without autodiff: loss calls before sampling
    "sample": 32,              # fd="auto" with autodiff: stratified sample per block
    "directions": 2,           # fd="auto" with autodiff: random directional derivatives per block
    "focus_cap": 256,          # elements per block where hand ≠ autodiff that fd looks at, worst first
    "refine_cap": 4096,        # elements refined per block
    "executor_min": 256,       # fewer elements than this run in-process even with an executor
    "mirror_pairs": 4,         # ties: mirrored moves that tell one tied sample from several
    "mirror_elements": 16,     # ties: elements per block given those moves (one wrong flags it)
    "trace_lines": 200_000,    # localisation: line events of the backward traced, at most
}


def merged(overrides: Mapping | None) -> dict:
    """``DEFAULTS`` with ``overrides`` merged in, each value checked.

    A tolerance is a finite, non-negative real number: ``nan`` compares false with
    everything and ``inf`` lets everything through, so either would make the verdicts
    meaningless without a word; a bool is a mistake for a number (``True`` would be 1.0).
    numpy scalars (``np.float32(1e-6)``) are numbers like any other.

    Raises:
        CheckError: ``overrides`` is not a mapping, names an unknown tolerance, or holds a
            value that is not a finite non-negative number.
    """
    if overrides is None:
        return dict(DEFAULTS)
    if not isinstance(overrides, Mapping):
        shown = repr(overrides) if len(repr(overrides)) <= 40 else repr(overrides)[:37] + "..."
        raise CheckError(f"`tolerances` must be a dict of overrides such as "
                         f"`{{'fd_safety': 8.0}}`, got {type(overrides).__name__} {shown}; "
                         f"name the tolerance each value is for.")
    import numbers

    table = dict(DEFAULTS)
    for key, value in overrides.items():
        if key not in DEFAULTS:
            raise CheckError(f"unknown tolerance `{key}`; known: {', '.join(sorted(DEFAULTS))}.")
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise CheckError(f"tolerance `{key}` must be a non-negative number, got "
                             f"{type(value).__name__} {shown}; pass a number such as "
                             f"{DEFAULTS[key]!r}.")
        try:
            number = float(value)
        except OverflowError:   # an int beyond float64's range
            number = float("inf")
        if not np.isfinite(number):
            raise CheckError(f"tolerance `{key}` must be a finite number, got {shown}: a "
                             f"nan tolerance flags everything and an infinite one passes "
                             f"everything; pass a number such as {DEFAULTS[key]!r}.")
        if number < 0:
            raise CheckError(f"tolerance `{key}` must be a non-negative number, got {shown}; "
                             f"pass a number such as {DEFAULTS[key]!r}.")
        table[key] = number
    return table


class Tolerance:
    """Per-element tolerances of each kind of gradient, from the table and the measured noise."""

    def __init__(self, table: dict, f0: float, noise: float):
        # conditioning: how many times worse than ε·|J| the loss rounds; a loss that is
        # exactly 0 (a perfect fit) rounds like its own terms, whose size is unknown: κ = 1
        kappa = noise / (EPS * abs(f0)) if f0 != 0 else 1.0
        kappa = min(max(kappa, 1.0), KAPPA_MAX)
        self.table = table
        self.ad_rtol = max(table["autodiff_rtol"], table["autodiff_kappa"] * EPS * kappa)

    @staticmethod
    def scale(value: np.ndarray, mask: Optional[np.ndarray] = None) -> float:
        v = np.abs(value[mask] if mask is not None else value)
        v = v[np.isfinite(v)]
        return float(v.max()) if v.size else 0.0

    def autodiff(self, value: np.ndarray, s_all: float) -> np.ndarray:
        s_b = self.scale(value)
        return (self.ad_rtol * (np.abs(np.nan_to_num(value)) + s_b)
                + self.table["autodiff_atol"] * s_all)

    def fd(self, value: np.ndarray, error: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return (self.table["fd_safety"] * error
                + self.table["fd_rtol"] * self.scale(value, mask))
