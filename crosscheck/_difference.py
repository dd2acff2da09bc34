"""Comparison: one pair of gradients for one block, element by element and as a whole."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


def relative_difference(a: np.ndarray, b: np.ndarray) -> Optional[float]:
    """The seeds' ``‖a − b‖₂ / (‖a‖₂ + ‖b‖₂)``; 0 when both are zero (that is agreement).

    Returns ``None`` when either side holds NaN or Inf.
    """
    a = np.ravel(a)
    b = np.ravel(b)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return None
    denominator = np.linalg.norm(a) + np.linalg.norm(b)
    if denominator == 0:
        return 0.0
    return float(np.linalg.norm(a - b) / denominator)


@dataclass
class Comparison:
    """``a`` against ``b`` on the elements in ``mask``.

    ``ratio`` is ``|a − b| / tol`` per element (NaN outside ``mask``): how many times above
    the pair's noise floor each disagreement is. ``mismatch`` marks ratio > 1 (and any
    non-finite value).
    """

    difference: Optional[float]
    max_abs: Optional[float]
    worst: Optional[tuple]
    ratio: np.ndarray
    mismatch: np.ndarray
    compared: int

    @property
    def agree(self) -> bool:
        return not bool(self.mismatch.any())

    @property
    def max_ratio(self) -> Optional[float]:
        if self.compared == 0:
            return None
        finite = self.ratio[np.isfinite(self.ratio)]
        if finite.size < self.compared:
            return float("inf")
        return float(finite.max()) if finite.size else 0.0


def compare(a: np.ndarray, b: np.ndarray, tol: np.ndarray,
            mask: Optional[np.ndarray] = None) -> Comparison:
    """Compare two same-shaped gradients element-wise within ``tol`` (same shape)."""
    if mask is None:
        mask = np.ones(a.shape, dtype=bool)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        delta = np.abs(a - b)
        ratio = np.where(tol > 0, delta / np.where(tol > 0, tol, 1.0),
                         np.where(delta > 0, np.inf, 0.0))
    ratio = np.where(mask, ratio, np.nan)
    bad = mask & ~(np.isfinite(a) & np.isfinite(b))
    ratio = np.where(bad, np.inf, ratio)
    mismatch = mask & ((ratio > 1.0) | bad)
    compared = int(mask.sum())
    difference = relative_difference(a[mask], b[mask]) if compared else None
    worst = max_abs = None
    if compared:
        masked = np.where(mask, np.nan_to_num(delta, nan=np.inf), -1.0)
        flat = int(np.argmax(masked))
        worst = tuple(int(i) for i in np.unravel_index(flat, a.shape)) if a.ndim else ()
        max_abs = float(masked.flat[flat])
        if not np.isfinite(max_abs):
            max_abs = None
    return Comparison(difference, max_abs, worst, ratio, mismatch, compared)
