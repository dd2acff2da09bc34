"""Centered finite differences on the numpy loss, with an error estimate per element.

Stencil:
    ``D(h) = (J(θ + h eᵢ) − J(θ − h eᵢ)) / (2h)``, one element at a time, perturbed *in place*
    on a private float64 copy and restored bit for bit afterwards (never a copy of the whole
    parameter vector per element, as the seeds' loop makes).

Step rule:
    ``h = c · sᵢ`` where ``sᵢ = max(|θᵢ|, rms(θ_block))`` (the whole model's rms for an all-zero
    block, 1 when everything is zero), so the step scales with the parameter: a block of
    weights around 1e4 gets a step of the same relative size as one around 1e-4. ``θ ± h`` are
    rounded to representable numbers and the true distance between them is the denominator.
    The first pass uses ``c = 1e-4``. Its error is dominated by rounding, estimated as
    ``noise / h`` where ``noise`` is the loss's *measured* rounding noise at the check point
    (sixth differences along a few short rays, see ``measure_noise``; at least ``ε·|J|``),
    plus an allowance for the truncation error ``h²·J‴/6``, unknown after one pass.

Refinement (only where the hand-written gradient disagrees with the first pass or with an
autodiff reference — cheap first, careful where it matters):
    a ladder ``h, h/2, h/4, h/8`` with ``c = 4e-3`` gives three Richardson extrapolations
    ``Rₖ = (4 D(hₖ₊₁) − D(hₖ)) / 3`` (truncation error O(h⁴)). Each ``Rₖ`` (but the last) has
    the error estimate ``|Rₖ − Rₖ₊₁| + 3 · noise / hₖ``, and the value is the one whose
    estimate is smallest: large steps win on ill-conditioned losses, whose rounding dwarfs
    ε·|J| (the seeds' network), small steps on strongly curved ones.
    Models up to ``FULL_LADDER_MAX`` elements (see ``_refine``) get the ladder on every
    element.

Kinks:
    where the loss is not differentiable (ReLU at 0, ``abs``, ``max``) inside the stencil, the
    one-sided differences ``D±`` jump instead of converging: for a smooth loss the gap
    ``g(h) = D₊(h) − D₋(h) = (J₊ − 2J₀ + J₋)/h`` halves with the step, at a kink it stays. An
    element whose gap does not halve (beyond rounding) is a kink; the interval between its
    one-sided differences at the smallest step bounds the valid subgradients there.

Where it breaks:
    centered differences cannot resolve an error smaller than their own noise (the report
    says how many times above that floor each disagreement is); a loss with a kink closer to
    θ than the step is flagged as a kink rather than measured; a loss that is not
    deterministic (dropout, unseeded randomness) makes every difference meaningless and is
    refused up front.

References:
    Nocedal & Wright, *Numerical Optimization*, §8.1 (step choice); Richardson extrapolation;
    chainer's ``check_backward(detect_nondifferentiable=True)`` for the kink test idea.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from .._inputs import Blocks
from .._progress import Progress, as_progress
from .._tolerances import BUDGETS, DEFAULTS
from ._base import OracleResult, Problem, Request

NAME = "fd"
REQUIRES = None
KIND = "differences"
RANK = 2          # estimates: decide only where no exact reference does
FIRST_STEP = 1e-4       # relative step of the first pass
LADDER_STEP = 4e-3      # largest relative step of the refinement ladder (then /2, /4, /8)
RUNGS = 4
NOISE_PROBE = 1e-6      # relative step of the rays that measure the loss's rounding noise
NOISE_DIRECTIONS = 3    # rays in each direction from the check point
# thresholds and budgets live in the one table (crosscheck._tolerances)
KINK_RTOL = DEFAULTS["kink_rtol"]
FULL_MAX = BUDGETS["full_max"]
BUDGET = BUDGETS["no_autodiff_budget"]
SAMPLE = BUDGETS["sample"]
DIRECTIONS = BUDGETS["directions"]
EXECUTOR_MIN = BUDGETS["executor_min"]


def version() -> str:
    return f"numpy {np.__version__}"


def element_scales(blocks: Blocks) -> np.ndarray:
    """Per element ``max(|θᵢ|, rms(block))``; see the module docstring."""
    flat = blocks.flat
    total_rms = float(np.sqrt(np.mean(flat ** 2))) if flat.size else 0.0
    scale = np.abs(flat).copy()
    for name in blocks.names:
        sl = blocks.slices[name]
        rms = float(np.sqrt(np.mean(flat[sl] ** 2))) if flat[sl].size else 0.0
        scale[sl] = np.maximum(scale[sl], rms or total_rms or 1.0)
    return scale


def loss_caller(loss, params: dict, args: tuple, sample):
    """A zero-argument function evaluating the loss at ``params`` as a Python float."""
    if isinstance(sample, (float, np.floating)):
        return lambda: float(loss(params, *args))
    return lambda: loss(params, *args).item()


def measure_noise(call, flat: np.ndarray, scale: np.ndarray, f0: float, seed: int = 0,
                  directions: int = NOISE_DIRECTIONS,
                  progress: Union[Progress, Optional[bool]] = False) -> float:
    """Rounding noise of the loss at θ, from high-order differences along short rays.

    Along a seeded random direction ``d`` (element ``i`` scaled by its scale), the loss is
    evaluated at ``θ + j·δ·d`` for ``j = 1 … 8`` and ``j = −1 … −8`` (``δ`` is
    ``NOISE_PROBE``). The sixth differences of eight consecutive values cancel every smooth
    part of the loss (they scale like ``δ⁶ J⁽⁶⁾``) and keep its rounding: for independent
    errors of deviation σ, ``E[(Δ⁶J)²] = C(12, 6) σ²``. Each ray stays on one side of ``θ``,
    so a kink *at* the check point (a ReLU pre-activation exactly 0) does not count as noise;
    the median over rays discards one that crosses a kink nearby. The noise is ``3σ``, at
    least ``ε·|J|``. The ``16 · directions`` evaluations run as the progress stage ``noise``
    (``progress``: a :class:`Progress`, or the ``progress=`` setting of ``check``).

    References:
        J. J. Moré and S. M. Wild, "Estimating computational noise", SIAM J. Sci. Comput.
        33 (2011) — the ECnoise idea, simplified.
    """
    rng = np.random.default_rng(seed)
    base = flat.copy()
    sigmas = []
    bar = as_progress(progress)
    try:
        with bar.stage(2 * 8 * directions, "noise"):
            for _ in range(directions):
                d = NOISE_PROBE * scale * rng.choice((-1.0, 1.0), size=flat.size)
                for side in (1.0, -1.0):
                    values = []
                    for j in range(1, 9):
                        flat[:] = base + side * j * d
                        values.append(call())
                        bar.evaluated(1)
                    sixth = np.diff(np.array(values), n=6)
                    if np.all(np.isfinite(sixth)):
                        sigmas.append(float(np.sqrt(np.mean(sixth ** 2) / 924.0)))
    finally:
        flat[:] = base
    sigma = float(np.median(sigmas)) if sigmas else 0.0
    return max(3.0 * sigma, np.finfo(np.float64).eps * abs(f0), np.finfo(np.float64).tiny)


@dataclass
class Ladder:
    """Refined estimates for a set of flat indices."""

    index: np.ndarray
    value: np.ndarray
    error: np.ndarray
    kink: np.ndarray
    lower: np.ndarray   # one-sided derivatives, each side's error included (the subgradient interval)
    upper: np.ndarray


class Engine:
    """Evaluates centered differences on a private copy of the parameters."""

    def __init__(self, problem: Problem):
        self.blocks = problem.blocks.copy()
        self.flat = self.blocks.flat
        self.args = problem.args
        self.f0 = problem.loss_value
        self.noise = problem.noise
        self.scale = element_scales(problem.blocks)
        params = self.blocks.as_dict()
        sample = problem.loss.numpy(params, *problem.args)
        self.call = loss_caller(problem.loss.numpy, params, problem.args, sample)
        self.loss = problem.loss.numpy
        self.executor = problem.options.get("executor")
        self.progress = Progress(problem.options.get("progress"))
        self.evaluations = 1

    def centered(self, index: np.ndarray, rel_step: float) -> tuple:
        """``(J₊, J₋, 2h)`` at each flat index, perturbing in place and restoring."""
        flat, call = self.flat, self.call
        x0 = flat[index]
        xp = x0 + rel_step * self.scale[index]
        xm = x0 - rel_step * self.scale[index]
        if self.executor is not None and index.size >= EXECUTOR_MIN:
            from .._executors import map_chunks
            done = [0]

            def tick(total: int) -> None:   # map_chunks reports a running total
                self.progress.advance(total - done[0])
                done[0] = total

            fp, fm = map_chunks(self.executor, self.loss, self.blocks.names,
                                [self.blocks.shapes[n] for n in self.blocks.names], flat,
                                self.args, index, xp, xm, progress=tick)
        else:
            fp = np.empty(index.size)
            fm = np.empty(index.size)
            tick = self.progress.advance
            try:
                for k, i in enumerate(index.tolist()):
                    flat[i] = xp[k]
                    fp[k] = call()
                    flat[i] = xm[k]
                    fm[k] = call()
                    flat[i] = x0[k]
                    tick(1)
            finally:
                flat[index] = x0
        self.evaluations += 2 * index.size
        return fp, fm, xp - xm

    def first_pass(self, index: np.ndarray, rel_step: float = FIRST_STEP) -> tuple:
        """``(values, error estimates)``: one centered difference per element.

        The error estimate is the rounding term ``noise / h`` plus a truncation allowance
        ``FIRST_STEP² · (|D| + max|D|)``: the truncation ``h² J‴ / 6`` is unknown after one
        pass, so this assumes a third derivative no larger than the gradient's scale in units
        of the step; elements that disagree beyond it are refined anyway.
        """
        with self.progress.stage(2 * index.size, "centered differences"):
            fp, fm, width = self.centered(index, rel_step)
        with np.errstate(invalid="ignore", over="ignore"):
            value = (fp - fm) / width
            error = 2.0 * self.noise / width
        finite = np.isfinite(value)
        scale = float(np.max(np.abs(value[finite]))) if finite.any() else 0.0
        error = error + rel_step ** 2 * (np.abs(np.nan_to_num(value)) + scale)
        error[~finite] = np.inf
        return value, error

    def refine(self, index: np.ndarray, grad_scale: np.ndarray) -> Ladder:
        """Richardson ladder and kink test at each flat index (see the module docstring).

        ``grad_scale`` is, per index, the size of the block's gradient: a gap jump below
        ``KINK_RTOL`` of it is treated as smooth.
        """
        with self.progress.stage(2 * RUNGS * index.size, "refinement"):
            rungs = [self.centered(index, LADDER_STEP / 2 ** k) for k in range(RUNGS)]
        value, error, kink, left, right = _extrapolate(rungs, self.f0, self.noise, grad_scale)
        return Ladder(index, value, error, kink, left, right)

    def directional(self, sl: slice, direction: np.ndarray) -> tuple:
        """``(value, error, kink)``: the derivative of the loss along ``direction`` within block
        slice ``sl``, by the same Richardson ladder (two evaluations per rung)."""
        flat, base = self.flat, self.flat[sl].copy()
        rungs = []
        try:
            for k in range(RUNGS):
                h = LADDER_STEP / 2 ** k
                flat[sl] = base + h * direction
                fp = self.call()
                flat[sl] = base - h * direction
                fm = self.call()
                self.progress.evaluated(2)
                rungs.append((np.array([fp]), np.array([fm]), np.array([2.0 * h])))
        finally:
            flat[sl] = base
        self.evaluations += 2 * RUNGS
        value, error, kink, _, _ = _extrapolate(rungs, self.f0, self.noise, np.zeros(1))
        return float(value[0]), float(error[0]), bool(kink[0])


def _extrapolate(rungs: list, f0: float, noise: float, grad_scale: np.ndarray) -> tuple:
    """Richardson extrapolation over a ladder of centered differences, with the kink test."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        d = [(fp - fm) / w for fp, fm, w in rungs]
        half = [w / 2.0 for _, _, w in rungs]
        gap = [(fp - 2.0 * f0 + fm) / h for (fp, fm, _), h in zip(rungs, half)]
        rich = [(4.0 * d[k + 1] - d[k]) / 3.0 for k in range(RUNGS - 1)]
        # error of rich[k]: its distance to the next extrapolation plus its rounding
        errs = np.array([np.abs(rich[k] - rich[k + 1]) + 3.0 * noise / half[k]
                         for k in range(RUNGS - 2)])
        errs[~np.isfinite(errs)] = np.inf
        best = np.argmin(errs, axis=0)
        cols = np.arange(best.size)
        value = np.array(rich[:RUNGS - 2])[best, cols]
        error = errs[best, cols]
        jump = np.max([np.abs(gap[k] - 2.0 * gap[k + 1]) for k in range(RUNGS - 1)], axis=0)
        kink = jump > 64.0 * noise / half[-1] + KINK_RTOL * grad_scale
        # one-sided differences at the two smallest steps, extrapolated (their O(h) terms
        # cancel), each widened by its own error so the interval holds the true derivatives
        (fp, fm, _), (fp2, fm2, _) = rungs[-1], rungs[-2]
        r1, r2 = (fp - f0) / half[-1], (fp2 - f0) / half[-2]
        l1, l2 = (f0 - fm) / half[-1], (f0 - fm2) / half[-2]
        right, left = 2.0 * r1 - r2, 2.0 * l1 - l2
        sided = np.maximum(np.abs(r1 - r2), np.abs(l1 - l2)) + 4.0 * noise / half[-1]
        left, right = np.minimum(left, right) - sided, np.maximum(left, right) + sided
    error[~np.isfinite(value)] = np.inf
    return value, error, kink, left, right


def stratified(size: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` indices in ``range(size)``: one drawn at random from each of ``k`` equal strata."""
    if k >= size:
        return np.arange(size)
    edges = np.linspace(0, size, k + 1).astype(np.int64)
    return np.unique(edges[:-1] + (rng.random(k) * (edges[1:] - edges[:-1])).astype(np.int64))


def select(problem: Problem, blocks: Blocks, request: Request = Request()) -> tuple:
    """Which elements the first pass evaluates, how many directions per block, and a note.

    ``fd="all"``: every element. ``fd="auto"`` (default): every element of a small model
    (``FULL_MAX``), or when no autodiff reference covers the elements and the budget allows;
    otherwise the elements where the hand-written gradient and autodiff disagree
    (``request.focus``), a stratified sample of ``SAMPLE`` per block, and
    ``DIRECTIONS`` random directional derivatives per block. ``fd=<int>``: that sample size.
    """
    mode = problem.options.get("fd", "auto")
    n = blocks.size
    if mode == "all" or (mode == "auto" and n <= FULL_MAX):
        return np.arange(n), 0, None
    if mode == "auto" and not request.autodiff:
        budget = BUDGET
        if 2 * n <= budget:
            return np.arange(n), 0, None
        per_block = max(1, budget // (2 * len(blocks.names)))
        note = (f"no autodiff reference: centered differences sampled up to {per_block} "
                f"element(s) per block to stay within {budget} loss evaluations (pass "
                f"fd='all' for every element)")
    else:
        per_block = SAMPLE if mode == "auto" else int(mode)
        note = None
    rng = np.random.default_rng(problem.options.get("seed", 0) + 7)
    chosen = [np.asarray(request.focus, np.int64)]
    for name in blocks.names:
        sl = blocks.slices[name]
        chosen.append(sl.start + stratified(sl.stop - sl.start, per_block, rng))
    return np.unique(np.concatenate(chosen)), DIRECTIONS, note


def refiner(problem: Problem) -> Engine:
    """Centered differences on request: the pipeline refines (ladder and kink test) or drills
    into a block through this, on its own private copy of the parameters."""
    return Engine(problem)


def run(problem: Problem, request: Request = Request()) -> OracleResult:
    start = time.perf_counter()
    engine = Engine(problem)
    blocks = engine.blocks
    index, directions, note = select(problem, blocks, request)
    value = np.full(blocks.size, np.nan)
    error = np.full(blocks.size, np.inf)
    value[index], error[index] = engine.first_pass(index)
    cover = np.zeros(blocks.size, bool)
    cover[index] = True
    grads, errors, covered = {}, {}, {}
    for name in blocks.names:
        sl, shape = blocks.slices[name], blocks.shapes[name]
        grads[name] = value[sl].reshape(shape)
        errors[name] = error[sl].reshape(shape)
        covered[name] = cover[sl].reshape(shape)
    dirs = {}
    if directions:
        rng = np.random.default_rng(problem.options.get("seed", 0) + 11)
        total = 2 * RUNGS * directions * len(blocks.names)
        with engine.progress.stage(total, "directional derivatives"):
            for name in blocks.names:
                sl = blocks.slices[name]
                dirs[name] = []
                for _ in range(directions):
                    d = rng.standard_normal(sl.stop - sl.start)
                    d *= engine.scale[sl] / (np.linalg.norm(d) / np.sqrt(d.size))
                    dirs[name].append((d,) + engine.directional(sl, d))
    return OracleResult(
        NAME, version=version(), grads=grads, errors=errors, covered=covered,
        forward=problem.loss_value, seconds=time.perf_counter() - start,
        notes=[note] if note else [], evaluations=engine.evaluations, directions=dirs)


def explain(exc: BaseException, problem: Problem) -> str:
    """The numpy loss itself failed under a perturbation: say so, with numpy's words."""
    return f"centered differences could not run the loss: {type(exc).__name__}: {exc}"
