"""The Taylor remainder test: a step-free second opinion, per block.

Along a seeded random direction ``d`` confined to one block (element ``i`` scaled by that
element's scale, so the direction respects the block's magnitude), the remainder

    ``r(ε) = |J(θ + εd) − J(θ) − ε · gᵀd|``

shrinks like ``ε²`` as ε halves when ``g`` is the true gradient, and only like ``ε`` when it
is wrong. The observed order is ``log₂(r(ε) / r(ε/2))`` at the finest pair of steps whose
remainders stand clear of the loss's rounding noise (the ladder starts at 0.1, so a block
too small to move the loss at fine steps still gets an order from coarser ones).

Notes:
    A loss that is linear along ``d`` has no remainder to measure (order ``None``, reported as
    such). At a kink of the loss inside the probed segment the remainder is first order even
    for a correct gradient: read the order together with the block's kink count.

References:
    P. E. Farrell et al., "Automated derivation of the adjoint of high-level transient finite
    element programs" (the ``taylor_test`` of dolfin-adjoint / pyadjoint).
"""

from __future__ import annotations

import numpy as np

from .oracles._fd import element_scales, loss_caller

STEPS = tuple(1e-1 / 2 ** k for k in range(12))   # 0.1 … 5e-5, relative to the scale
CLEAR_OF_NOISE = 1e3


def taylor_orders(loss, blocks, args: tuple, grads: dict, f0: float, noise: float,
                  seed: int = 0) -> dict:
    """``{block: {"order": float | None, "steps": [...], "remainders": [...]}}``."""
    work = blocks.copy()
    flat = work.flat
    params = work.as_dict()
    call = loss_caller(loss, params, args, loss(params, *args))
    scale = element_scales(blocks)
    rng = np.random.default_rng(seed)
    out = {}
    for name in blocks.names:
        sl = blocks.slices[name]
        g = np.ravel(grads[name])
        if not np.all(np.isfinite(g)):
            out[name] = {"order": None, "steps": [], "remainders": [], "note": "non-finite gradient"}
            continue
        d = rng.standard_normal(sl.stop - sl.start) * scale[sl]
        slope = float(g @ d)
        base = flat[sl].copy()
        remainders = []
        try:
            for eps in STEPS:
                flat[sl] = base + eps * d
                remainders.append(abs(call() - f0 - eps * slope))
        finally:
            flat[sl] = base
        order = None
        floor = CLEAR_OF_NOISE * noise
        for k in range(len(STEPS) - 2, -1, -1):
            a, b = remainders[k], remainders[k + 1]
            if a > floor and b > floor:
                order = float(np.log2(a / b))
                break
        out[name] = {"order": order, "steps": list(STEPS), "remainders": remainders}
    return out
