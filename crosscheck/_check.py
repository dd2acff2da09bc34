"""``check()``: inputs → oracles → comparison → refinement → verdict → diagnosis → Report."""

from __future__ import annotations

import time
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from . import oracles as registry
from ._compare import Comparison, compare, relative_difference
from ._diagnose import diagnose
from ._errors import CheckError
from ._inputs import (batch_size, prepare_args, prepare_loss,
                      prepare_params, scalar_loss)
from ._report import Block, OracleInfo, Report
from ._taylor import taylor_orders
from ._calls import base_loss, hand_gradient
from ._tolerances import Tolerance, merged
from ._refine import fd_second_point, focus, nudged_comparison, refine
from ._verdict import judge
from .oracles import AUTODIFF, PRIORITY, Problem
from .oracles._fd import element_scales, loss_caller, measure_noise

STATIONARY = 1e-14                  # autodiff gradients all below this (× max(1, |J|)): zero


def _resolution(j, deciding: list, vs: dict, tols: dict, hand: np.ndarray, refs: dict,
                table: dict):
    """An ``ok`` from centered differences alone is only as good as their resolution: when
    their tolerance exceeds ``fd_resolution`` (relative, in the seeds' difference units), a
    bug of that size would pass unseen, so the block is ``inconclusive`` — with the number."""
    if j.verdict != "ok" or deciding != ["fd"]:
        return j
    # per element, the smallest relative error the comparison could see; the block's
    # resolution is the median over elements with a gradient (a few elements near a kink
    # with wide error estimates do not blind the rest)
    mask = ~np.isnan(vs["fd"].ratio)
    size = np.abs(hand[mask]) + np.abs(refs["fd"][mask])
    rel = tols["fd"][mask][size > 0] / size[size > 0]
    resolution = float(np.median(rel)) if rel.size else 0.0
    if resolution <= table["fd_resolution"]:
        return j
    j.verdict = "inconclusive"
    j.reason = (f"agrees with centered differences, but they resolve only {resolution:.2g} "
                f"(relative) here — a bug that size would pass: add an autodiff reference or "
                f"compute the loss in float64")
    return j


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
          executor: Any = None, progress: Optional[bool] = None,
          rebind_modules: Sequence[str] = ()) -> Report:
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
            parameters, refined by Richardson extrapolation up to 2,000; on bigger ones, when autodiff covers every element, the elements
            where hand and autodiff disagree, a stratified sample of 32 per block and two
            random directions per block), ``"all"`` (every element, one centered difference
            each, refined where it disagrees), or an int (the per-block sample).
        executor: a ``concurrent.futures.Executor`` or ``dask.distributed.Client`` that
            evaluates centered differences in chunks (results identical to in-process).
        progress: show a progress bar for long centered-difference work (default: on a
            terminal only).
        rebind_modules: library modules (``"sklearn.linear_model"``, a package name covers
            its submodules) whose Python code jax and torch run as the user's own, with
            ``np`` rebound — to check a library's own hand-written gradient. Compiled code
            in them still cannot be differentiated.

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
    if isinstance(rebind_modules, str) or not all(isinstance(m, str) and m for m in rebind_modules):
        raise CheckError(f"`rebind_modules` must be a list of module names such as "
                         f"['sklearn.linear_model'], got {rebind_modules!r}.")
    options = {"seed": seed, "fd": fd, "executor": executor, "progress": progress,
               "rebind_modules": tuple(rebind_modules)}
    problem = Problem(spec, blocks, args, f0, noise, options)
    results = {name: registry.run(name, problem) for name in names if name != "fd"}
    if "fd" in names:   # last, so that it can focus on where hand and autodiff disagree
        autodiff_ran = [r for r in results.values() if r.ran]
        options["autodiff"] = bool(autodiff_ran)
        options["focus"] = focus(hand, autodiff_ran, blocks, table, f0, noise)
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
                        f"not decide (the loss computes something else under {name}"
                        + ("; in-place writes ran as functional updates, which differ from numpy "
                           "where the code writes through a view held under another name"
                           if name == "jax" or res.extra.get("mode") == "functional writes" else "")
                        + ").")
        infos[name] = OracleInfo(name, res.version, res.seconds, res.error, res.skipped,
                                 res.forward, parity, res.extra.get("evaluations"),
                                 list(res.notes), res.extra.get("mode"))
        if res.error:
            notes.append(f"{name}: {res.error}")
        notes += [f"{name}: {n}" for n in res.notes]

    tol = Tolerance(table, f0, noise)
    ran = {n: r for n, r in results.items() if r.ran}
    deciding = [n for n in PRIORITY if n in ran and infos[n].parity is not False]
    s_all = {n: max(tol.scale(r.grads[b]) for b in blocks.names) for n, r in ran.items()}
    stationary = STATIONARY * max(1.0, abs(f0))   # below this, a model-wide gradient is 0
    if any(n in AUTODIFF for n in s_all) and all(s_all[n] <= stationary
                                                 for n in s_all if n in AUTODIFF):
        notes.append("every autodiff gradient is zero (below 1e-14): the check point is a stationary "
                     "point (a perfect fit, or every unit dead), where a check cannot see "
                     "most bugs; check at random parameters.")
        # a zero model-wide gradient gives no scale: hold the hand-written one to absolute
        # rounding (autodiff_atol in the loss's units per parameter unit)
        s_all = {n: (v if v > stationary else 1.0) for n, v in s_all.items()}

    refinement = refine(problem, ran, hand, tol, s_all, fd, notes, infos)
    fd_values, fd_errors = refinement.values, refinement.errors
    kink, lower, upper = refinement.kink, refinement.lower, refinement.upper
    refined, directions = refinement.refined, refinement.directions
    engine_evals = refinement.evaluations
    # --- final comparisons ---------------------------------------------------------------
    report_blocks = {}
    nudge = None
    ties = any(k.any() for k in kink.values())   # kinks found: the point is not generic
    off_ties = {}                                 # block -> elements wrong only off the ties
    fd_second = None
    if ties and "fd" in deciding and not any(n in AUTODIFF for n in deciding):
        candidates = []
        for b in blocks.names:
            mask = np.isfinite(fd_errors[b]) & ~kink[b]
            t = tol.fd(fd_values[b], fd_errors[b], mask) + tol.autodiff(fd_values[b], s_all["fd"])
            suspect = kink[b] | compare(hand[b], fd_values[b], t, mask).mismatch
            candidates.append(np.flatnonzero(suspect) + blocks.slices[b].start)
        index = np.concatenate(candidates)
        if index.size:
            fd_second = fd_second_point(grad, problem, index, tol, seed)
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
            if n in AUTODIFF and ties:
                # the loss has kinks at this point, where several values are valid: check
                # again just off the ties, where every convention coincides. A disagreement
                # that vanishes there is a convention; one that appears there is a bug that
                # the tie happened to hide. (Without that second point: a value between the
                # one-sided differences is a convention.)
                if nudge is None:
                    nudge = nudged_comparison(grad, problem, [m for m in ran if m in AUTODIFF],
                                              tol, seed)
                off = nudge.get(n, {}).get(b)
                if off is None:
                    conv = c.mismatch & kink[b] & (hand[b] >= lower[b] - t) & (hand[b] <= upper[b] + t)
                else:
                    conv = c.mismatch & ~off.mismatch
                    hidden = off.mismatch & ~c.mismatch
                    if hidden.any():
                        off_ties[b] = max(off_ties.get(b, 0), int(hidden.sum()))
                        c = compare(hand[b], refs[n], t, masks[n])
                        c.mismatch = c.mismatch | off.mismatch
                        c.ratio = np.fmax(c.ratio, off.ratio)
                if conv.any():
                    c2 = compare(hand[b], refs[n], t, masks[n] & ~conv)
                    if off is not None:
                        c2.mismatch = c2.mismatch | (off.mismatch & ~conv)
                        c2.ratio = np.where(off.mismatch & ~conv, off.ratio, c2.ratio)
                    c = c2
                    conventions = max(conventions, int(conv.sum()))
            if n == "fd" and fd_second is not None and b in fd_second:
                # fd decides alone at a point with ties: its verdict on the candidates
                # (kinks, and disagreements at the tie) comes from the second point
                second = fd_second[b]
                done = ~np.isnan(second.ratio)
                c = compare(hand[b], refs[n], t, masks[n] & ~done)
                c.mismatch = c.mismatch | second.mismatch
                c.ratio = np.where(done, second.ratio, c.ratio)
                c.compared += int(done.sum())
                conventions = max(conventions, int((done & ~second.mismatch & kink[b]).sum()))
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
        # centered differences that compared no element here (every one at a kink, or not
        # finite) cannot decide; autodiff always compares (kink conventions were validated)
        deciding_b = [r for r in deciding if r != "fd" or vs[r].compared > 0]
        j = judge(vs, between, deciding_b, nonfinite)
        j = _resolution(j, deciding_b, vs, tols, hand[b], refs, table)
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
                difference[n] = (relative_difference(hand[b][cover], refs[n][cover])
                                 if cover.any() else None)
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
        if off_ties.get(b):
            reason += (f"; just off the ties (a seeded 1e-6 move of every parameter) "
                       f"{off_ties[b]} element(s) disagree with autodiff although they agree "
                       f"at the check point itself")
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
