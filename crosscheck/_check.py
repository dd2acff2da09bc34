"""``check()``: inputs → oracles → comparison → refinement → verdict → diagnosis → Report."""

from __future__ import annotations

import time
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from . import oracles as registry
from ._compare import Comparison, compare, relative_difference
from ._diagnose import diagnose
from ._errors import CheckError
from ._inputs import (Blocks, batch_size, prepare_args, prepare_loss,
                      prepare_params, scalar_loss)
from ._report import Block, OracleInfo, Report
from ._taylor import taylor_orders
from ._calls import base_loss, hand_gradient
from ._tolerances import Tolerance, merged
from ._verdict import judge
from .oracles import AUTODIFF, Problem
from .oracles._fd import FULL_MAX, Engine, element_scales, loss_caller, measure_noise

EPS = float(np.finfo(np.float64).eps)
PRIORITY = ("jax", "torch", "fd")   # which reference a diagnosis compares against, first
REFINE_CAP = 4096                   # elements refined per block, worst first
FOCUS_CAP = 256                     # fd="auto": elements per block where hand ≠ autodiff
FULL_LADDER_MAX = FULL_MAX          # fd="auto": up to this many elements, refine every one


def _focus(hand: dict, autodiff: list, blocks: Blocks, table: dict, f0: float,
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


def _directional(hand: dict, ran: dict, blocks: Blocks, tol: "Tolerance",
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


NUDGE = 1e-6   # relative size of the random move off the kinks


def _nudged_agreement(grad, problem: Problem, autodiff: list, tol: "Tolerance",
                      seed: int) -> dict:
    """Does the hand-written gradient agree with autodiff just off the kinks?

    At a point where the loss is not differentiable several values are valid (a hand-written
    mask ``Z > 0`` gives 0 at a tie, jax and torch give 0.5, and with several samples at a tie
    the valid set is every mix of them). Moving every parameter by a seeded random relative
    1e-6 leaves all ties: there every convention coincides and a correct backward agrees with
    autodiff. Returns ``{oracle: {block: bool array}}`` marking elements that agree there.
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
            out[name][b] = compare(hand[b], res.grads[b], t).mismatch == False  # noqa: E712
    return out


def _validate_oracles(oracles: Any) -> list:
    if isinstance(oracles, str):
        oracles = [o.strip() for o in oracles.split(",") if o.strip()]
    oracles = list(oracles)
    unknown = [o for o in oracles if o not in registry.REGISTRY]
    if unknown or not oracles:
        raise CheckError(f"unknown oracle(s) {unknown or oracles!r}; choose from "
                         f"{', '.join(registry.REGISTRY)}.")
    return list(dict.fromkeys(oracles))


def check(loss: Any, grad: Any, params: Mapping, *args: Any,
          oracles: Sequence[str] = ("fd", "jax", "torch"),
          tolerances: Optional[Mapping] = None, seed: int = 0, case: Optional[str] = None,
          batch: Optional[int] = None, taylor: bool = True, fd: Any = "auto",
          executor: Any = None, progress: Optional[bool] = None) -> Report:
    """Check a hand-written gradient against up to three references, block by block.

    Args:
        loss: ``loss(params, *args) -> scalar``. Written once against the array API
            (``xp = array_namespace(X)``) or in plain numpy, it runs on numpy arrays (centered
            differences), under ``jax.grad`` and under ``torch.autograd``. A dict
            ``{"numpy": f, "jax": g, "torch": h}`` gives per-framework losses instead
            (``numpy`` is required; missing frameworks use the numpy one).
        grad: ``grad(params, *args)``: the hand-written numpy gradient, a dict keyed like
            ``params`` or the seeds' way (``dW1``; extra keys ignored), or ``(loss, dict)``.
        params: dict of named parameter blocks (never modified; checked in float64).
        *args: extra arguments for ``loss`` and ``grad`` (data, labels, hyper-parameters).
        oracles: references to run, among ``fd``, ``jax``, ``torch``.
        tolerances: overrides merged into ``crosscheck._tolerances.DEFAULTS``.
        seed: seeds every random choice (directions of the Taylor test).
        case: a name for the report.
        batch: the batch size m, to call out factors of m or 1/m (guessed from ``args``).
        taylor: run the Taylor remainder test per block.
        fd: centered-difference coverage: ``"auto"`` (every element of a model up to 5,000
            parameters; on bigger ones, when autodiff covers every element, the elements
            where hand and autodiff disagree, a stratified sample of 32 per block and two
            random directions per block), ``"all"`` (every element, one centered difference
            each, refined where it disagrees), or an int (the per-block sample).
        executor: a ``concurrent.futures.Executor`` or ``dask.distributed.Client`` that
            evaluates centered differences in chunks (results identical to in-process).
        progress: show a progress bar for long centered-difference work (default: on a
            terminal only).

    Returns:
        A :class:`Report`; ``report.ok``, ``report.flagged``, ``report.blocks[name]``.

    Raises:
        CheckError: input that cannot be checked (the message names the block and the fix).

    Example:
        >>> import numpy as np, crosscheck
        >>> loss = lambda p, x: (p["w"] * x).sum() ** 2
        >>> grad = lambda p, x: {"w": 2 * (p["w"] * x).sum() * x}
        >>> crosscheck.check(loss, grad, {"w": np.array([1.0, 2.0])}, np.array([3.0, -1.0]),
        ...                  oracles=["fd"]).ok
        True
    """
    start = time.perf_counter()
    names = _validate_oracles(oracles)
    if not (fd in ("auto", "all") or (isinstance(fd, int) and not isinstance(fd, bool)
                                      and fd > 0)):
        raise CheckError(f"`fd` must be 'auto', 'all' or a positive int (elements sampled per "
                         f"block), got {fd!r}.")
    table = merged(tolerances)
    spec = prepare_loss(loss)
    blocks = prepare_params(params)
    args = prepare_args(args)
    notes = list(blocks.notes)
    f0 = base_loss(spec.numpy, blocks, args)
    hand, hand_loss, hand_notes, low = hand_gradient(grad, blocks, args)
    notes += hand_notes
    # a float32/float16 hand-written block carries its own rounding: allow 64 ulps of it
    hand_rtol = {b: 64 * float(np.finfo(np.dtype(dt)).eps) for b, dt in low.items()}
    for b, dt in low.items():
        notes.append(f"`grad` returned {dt} for block `{b}`; compared in float64 with its "
                     f"{dt} rounding allowed (relative {hand_rtol[b]:.1e}).")

    work = blocks.copy()
    scales = element_scales(blocks)
    call = loss_caller(spec.numpy, work.as_dict(), args, spec.numpy(work.as_dict(), *args))
    noise = measure_noise(call, work.flat, scales, f0, seed=seed)
    if hand_loss is not None:
        value = scalar_loss(hand_loss, "as returned by `grad`")
        if abs(value - f0) > table["parity_rtol"] * abs(f0) + 1e3 * noise:
            notes.append(f"`grad` returned loss {value!r} but `loss` computes {f0!r}: are they "
                         f"the same model?")
    options = {"seed": seed, "fd": fd, "executor": executor, "progress": progress}
    problem = Problem(spec, blocks, args, f0, noise, options)
    results = {name: registry.run(name, problem) for name in names if name != "fd"}
    if "fd" in names:   # last, so that it can focus on where hand and autodiff disagree
        autodiff_ran = [r for r in results.values() if r.ran]
        options["autodiff"] = bool(autodiff_ran)
        options["focus"] = _focus(hand, autodiff_ran, blocks, table, f0, noise)
        results["fd"] = registry.run("fd", problem)
        results = {name: results[name] for name in names}

    forward = {"numpy": f0}
    infos = {}
    for name, res in results.items():
        parity = None
        if name in AUTODIFF:
            forward[name] = res.forward
            if res.ran:
                parity = bool(abs(res.forward - f0) <= table["parity_rtol"] * abs(f0) + 1e3 * noise)
                if not parity:
                    notes.append(
                        f"forward parity: {name} computes loss {res.forward!r}, numpy "
                        f"{f0!r} — beyond rounding, so {name}'s gradients are shown but do "
                        f"not decide (the loss computes something else under {name}).")
        infos[name] = OracleInfo(name, res.version, res.seconds, res.error, res.skipped,
                                 res.forward, parity, res.extra.get("evaluations"),
                                 list(res.notes))
        if res.error:
            notes.append(f"{name}: {res.error}")
        notes += [f"{name}: {n}" for n in res.notes]

    tol = Tolerance(table, f0, noise)
    ran = {n: r for n, r in results.items() if r.ran}
    deciding = [n for n in PRIORITY if n in ran and infos[n].parity is not False]
    s_all = {n: max(tol.scale(r.grads[b]) for b in blocks.names) for n, r in ran.items()}

    # --- cheap first: which elements disagree, by the first pass? -----------------------
    fd_values = {b: ran["fd"].grads[b].copy() for b in blocks.names} if "fd" in ran else None
    fd_errors = {b: ran["fd"].errors[b].copy() for b in blocks.names} if "fd" in ran else None
    kink = {b: np.zeros(blocks.shapes[b], bool) for b in blocks.names}
    lower = {b: np.full(blocks.shapes[b], np.nan) for b in blocks.names}
    upper = {b: np.full(blocks.shapes[b], np.nan) for b in blocks.names}
    refined = {b: 0 for b in blocks.names}
    to_refine = []
    full_ladder = "fd" in ran and fd == "auto" and blocks.size <= FULL_LADDER_MAX
    directions = _directional(hand, ran, blocks, tol, s_all) if "fd" in ran else {}
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
            c = compare(hand[b], r.grads[b], t, mask)
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
    # --- final comparisons ---------------------------------------------------------------
    report_blocks = {}
    nudge = None
    for b in blocks.names:
        shape = blocks.shapes[b]
        refs, tols, masks = {}, {}, {}
        for n, r in ran.items():
            if n == "fd":
                refs[n] = fd_values[b]
                masks[n] = np.isfinite(fd_errors[b]) & ~kink[b]
                tols[n] = tol.fd(fd_values[b], fd_errors[b], masks[n])
            else:
                refs[n] = r.grads[b]
                masks[n] = np.ones(shape, bool)
                tols[n] = tol.autodiff(r.grads[b], s_all[n])
        vs, conventions = {}, 0
        for n in refs:
            t = tols[n] + tol.autodiff(refs[n], s_all[n])
            if b in hand_rtol:
                t = t + hand_rtol[b] * (np.abs(refs[n]) + tol.scale(refs[n]))
            c = compare(hand[b], refs[n], t, masks[n])
            if n in AUTODIFF and kink[b].any():
                inside = (hand[b] >= lower[b] - t) & (hand[b] <= upper[b] + t)
                if (c.mismatch & kink[b] & ~inside).any():
                    if nudge is None:
                        nudge = _nudged_agreement(grad, problem, [m for m in ran if m in AUTODIFF],
                                                  tol, seed)
                    inside = inside | nudge.get(n, {}).get(b, False)
                conv = c.mismatch & kink[b] & inside
                if conv.any():
                    c = compare(hand[b], refs[n], t, masks[n] & ~conv)
                    conventions = max(conventions, int(conv.sum()))
            vs[n] = c
        between = {}
        ref_names = list(refs)
        for i, p in enumerate(ref_names):
            for q in ref_names[i + 1:]:
                t = tols[p] + tols[q]
                mask = masks[p] & masks[q]
                if p in AUTODIFF and q in AUTODIFF and kink[b].any():
                    # two frameworks may pick different subgradients at a kink (jax and
                    # torch differ for `abs` at 0): both valid is agreement
                    valid = kink[b]
                    for v in (refs[p], refs[q]):
                        valid = valid & (v >= lower[b] - t) & (v <= upper[b] + t)
                    mask = mask & ~valid
                between[(p, q)] = compare(refs[p], refs[q], t, mask)
        nonfinite = int((~np.isfinite(hand[b])).sum())
        j = judge(None, vs, between, deciding, nonfinite)
        diagnosis = None
        mismatch_map = None
        if j.verdict == "wrong" and j.consensus:
            c = vs[j.consensus]
            mismatch_map = c.ratio
            diagnosis = diagnose(b, hand[b], refs[j.consensus], j.consensus,
                                 tols[j.consensus] + tol.autodiff(refs[j.consensus],
                                                                  s_all[j.consensus]),
                                 c.mismatch, c.ratio, blocks.views[b], batch or batch_size(args))
        difference, max_abs, worst, ratio, tol_diff = {}, {}, {}, {}, {}
        for n in names:
            c: Optional[Comparison] = vs.get(n)
            if c:   # the seeds' formula; fd leaves out its kink elements
                cover = masks[n] if n == "fd" else np.ones(shape, bool)
                difference[n] = relative_difference(hand[b][cover], refs[n][cover])
            else:
                difference[n] = None
            max_abs[n] = c.max_abs if c else None
            worst[n] = list(c.worst) if c and c.worst is not None else None
            ratio[n] = c.max_ratio if c else None
            if c and c.compared:
                t = (tols[n] + tol.autodiff(refs[n], s_all[n]))[masks[n]]
                denom = np.linalg.norm(hand[b][masks[n]]) + np.linalg.norm(refs[n][masks[n]])
                tol_diff[n] = float(np.linalg.norm(t) / denom) if denom > 0 else None
            else:
                tol_diff[n] = None
        size = int(np.prod(shape, dtype=np.int64))
        coverage = {}
        if "fd" in ran:
            coverage["fd"] = {"elements": int(ran["fd"].covered[b].sum()), "size": size,
                              "refined": refined[b],
                              "directions": directions.get(b, {}).get("count", 0),
                              "directions_failed": directions.get(b, {}).get("failed", 0)}
        reason = j.reason
        fd_ratio = ratio.get("fd")
        if j.verdict == "wrong" and fd_ratio and np.isfinite(fd_ratio) and fd_ratio > 1:
            reason += (f"; centered differences put the disagreement {fd_ratio:.3g}× above "
                       f"their own noise floor")
        if kink[b].any():
            reason += (f"; {int(kink[b].sum())} element(s) at a kink of the loss "
                       f"(centered differences straddle a non-differentiable point there)")
        if conventions:
            reason += (f"; at {conventions} kink element(s) the hand-written value is another "
                       f"valid subgradient than autodiff's (a convention, not an error)")
        report_blocks[b] = Block(
            name=b, shape=shape, verdict=j.verdict, reason=reason, difference=difference,
            max_abs=max_abs, worst=worst, noise_ratio=ratio, tolerance=tol_diff,
            agree=j.agree, disagree=j.disagree, odd=j.odd, kinks=int(kink[b].sum()),
            conventions=conventions, coverage=coverage, diagnosis=diagnosis,
            hand=hand[b], references=refs, mismatch=mismatch_map)
    if taylor:
        orders = taylor_orders(spec.numpy, blocks, args, hand, f0, noise, seed=seed)
        for b, t in orders.items():
            report_blocks[b].taylor = {"order": t["order"]}
    options = {"oracles": names, "seed": seed, "taylor": taylor, "refined_evaluations":
               engine_evals}
    return Report(report_blocks, infos, forward, blocks.fingerprint(), case=case, notes=notes,
                  seconds=time.perf_counter() - start, seed=seed, noise=noise,
                  tolerances={**table, "autodiff_rtol_effective": tol.ad_rtol}, options=options)
