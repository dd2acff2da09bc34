"""Stage 7, assemble: the :class:`~crosscheck.Report`, from what the earlier stages returned.

Nothing is decided here: the numbers every output shows (the seeds' relative difference per
reference, the worst element, the noise ratio, the tolerance in difference units, coverage)
are read off the comparisons, and each reference's facts are gathered, the refinement's cost
added to the centered-difference oracle's.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from . import oracles
from ._agreement import BlockAgreement
from ._difference import relative_difference
from ._judge import Judged
from ._prepare import Prepared
from ._references import References
from ._refine import FD, Refinement
from ._report import Block, OracleInfo, Report



def oracle_infos(refs: References, refinement: Refinement) -> dict:
    """Each reference's facts for the report; centered differences include their refinement."""
    infos = {}
    for name, res in refs.results.items():
        seconds, evaluations = res.seconds, res.evaluations
        if name == FD and res.ran:
            seconds += refinement.seconds
            evaluations = (evaluations or 0) + refinement.evaluations
        infos[name] = OracleInfo(name, res.version, seconds, res.error, res.skipped, res.forward,
                                 refs.parity[name], evaluations, list(res.notes), res.mode)
    return infos


def _numbers(b: str, prep: Prepared, refs: References, agreement: BlockAgreement) -> tuple:
    """Per reference: difference, max |error|, worst element, noise ratio, tolerance."""
    hand, shape = prep.hand[b], prep.blocks.shapes[b]
    difference, max_abs, worst, ratio, tol_diff = {}, {}, {}, {}, {}
    for n in prep.settings.oracles:
        c = agreement.vs.get(n)
        difference[n] = max_abs[n] = worst[n] = ratio[n] = tol_diff[n] = None
        if not c:
            continue
        cover = agreement.masks[n] if n == FD else np.ones(shape, bool)   # fd leaves out kinks
        difference[n] = relative_difference(hand[cover], agreement.refs[n][cover]) if cover.any() else None
        max_abs[n] = c.max_abs
        worst[n] = list(c.worst) if c.worst is not None else None
        ratio[n] = c.max_ratio
        if c.compared:
            mask = agreement.masks[n]
            t = (agreement.tols[n] + refs.tol.autodiff(agreement.refs[n], refs.s_all[n]))[mask]
            denom = np.linalg.norm(hand[mask]) + np.linalg.norm(agreement.refs[n][mask])
            tol_diff[n] = float(np.linalg.norm(t) / denom) if denom > 0 else None
    return difference, max_abs, worst, ratio, tol_diff


def _coverage(b: str, prep: Prepared, refs: References, refinement: Refinement) -> dict:
    if FD not in refs.ran:
        return {}
    size = int(np.prod(prep.blocks.shapes[b], dtype=np.int64))
    directions = refinement.directions.get(b, {})
    return {FD: {"elements": int(refinement.covered[b].sum()), "size": size,
                 "refined": refinement.refined[b], "directions": directions.get("count", 0),
                 "directions_failed": directions.get("failed", 0)}}


def block(b: str, prep: Prepared, refs: References, refinement: Refinement,
          agreement: BlockAgreement, judged: Judged) -> Block:
    """One block of the report."""
    difference, max_abs, worst, ratio, tol_diff = _numbers(b, prep, refs, agreement)
    j = judged.judgement
    return Block(
        name=b, shape=prep.blocks.shapes[b], verdict=j.verdict, reason=judged.reason,
        difference=difference, max_abs=max_abs, worst=worst, noise_ratio=ratio,
        tolerance=tol_diff, agree=j.agree, disagree=j.disagree, odd=j.odd,
        kinks=int(refinement.kink[b].sum()), conventions=agreement.conventions,
        coverage=_coverage(b, prep, refs, refinement), diagnosis=judged.diagnosis,
        hand=prep.hand[b], references=dict(agreement.refs), mismatch=judged.mismatch)


def assemble(prep: Prepared, refs: References, refinement: Refinement, blocks: Mapping,
             taylor: Mapping, seconds: float, located: tuple = (None, ())) -> Report:
    """Stage 7: the report. ``blocks`` are this stage's :func:`block` results, ``taylor`` the
    Taylor remainder orders per block (empty when the test was not asked for), ``located``
    the localisation stage's ``(Localisation or None, notes)``."""
    blocks = {b: (dataclasses.replace(blk, taylor={"order": taylor[b]["order"]}) if b in taylor
                  else blk) for b, blk in blocks.items()}
    forward = {"numpy": prep.f0}
    forward.update({n: r.forward for n, r in refs.results.items() if n in oracles.autodiff()})
    chosen = prep.settings
    options = {"oracles": list(chosen.oracles), "seed": chosen.seed, "taylor": chosen.taylor,
               "refined_evaluations": refinement.ladder_evaluations}
    return Report(blocks, oracle_infos(refs, refinement), forward, prep.blocks.fingerprint(),
                  case=chosen.case, notes=[*prep.notes, *refs.notes, *refinement.notes, *located[1]],
                  seconds=seconds, seed=chosen.seed, noise=prep.noise,
                  tolerances={**chosen.table, "autodiff_rtol_effective": refs.tol.ad_rtol},
                  options=options, localisation=located[0])
