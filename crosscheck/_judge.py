"""Stage 5, judge and diagnose: per block, the verdict, what the error looks like, and why.

The verdict rules are in ``crosscheck._verdict``, the kinds of error in
``crosscheck._diagnose``; this stage applies them to one block's agreement and words the
reason, adding what the earlier stages found (the noise ratio, kinks, conventions, bugs seen
only off the ties).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import numpy as np

from ._agreement import BlockAgreement
from ._diagnose import diagnose
from ._inputs import batch_size
from ._prepare import Prepared
from ._references import References
from ._refine import FD, Refinement
from ._verdict import Judgement, judge



@dataclass(frozen=True)
class Judged:
    """One block's verdict, diagnosis and reason."""

    judgement: Judgement
    diagnosis: Any            # a Diagnosis, or None
    mismatch: Optional[np.ndarray]
    reason: str


def resolution(j: Judgement, deciding: list, agreement: BlockAgreement, hand: np.ndarray,
               table: Mapping, covered: Optional[np.ndarray] = None) -> Judgement:
    """An ``ok`` from centered differences alone is only as good as their resolution and their
    coverage: when their tolerance exceeds ``fd_resolution`` (relative, in the seeds'
    difference units), a bug of that size would pass unseen, and when they sampled the block,
    a bug in an element they did not see would pass: the block is ``inconclusive`` -- with
    the number."""
    if j.verdict != "ok" or deciding != [FD]:
        return j
    if covered is not None and not covered.all():
        return dataclasses.replace(
            j, verdict="inconclusive",
            reason=(f"agrees with centered differences, but they alone checked only "
                    f"{int(covered.sum()):,} of {covered.size:,} element(s) (a sample) — a bug "
                    f"in the others would pass: pass fd='all' or add an autodiff reference"))
    # per element, the smallest relative error the comparison could see; the block's
    # resolution is the median over elements with a gradient (a few elements near a kink
    # with wide error estimates do not blind the rest)
    mask = ~np.isnan(agreement.vs[FD].ratio) & agreement.masks[FD]   # (ties: decided elsewhere)
    size = np.abs(hand[mask]) + np.abs(agreement.refs[FD][mask])
    rel = agreement.tols[FD][mask][size > 0] / size[size > 0]
    value = float(np.median(rel)) if rel.size else 0.0
    if value <= table["fd_resolution"]:
        return j
    return dataclasses.replace(
        j, verdict="inconclusive",
        reason=(f"agrees with centered differences, but they resolve only {value:.2g} "
                f"(relative) here — a bug that size would pass: add an autodiff reference or "
                f"compute the loss in float64"))


def _reason(j: Judgement, agreement: BlockAgreement, kinks: int) -> str:
    reason = j.reason
    fd_ratio = agreement.vs[FD].max_ratio if FD in agreement.vs else None
    if j.verdict == "wrong" and fd_ratio and np.isfinite(fd_ratio) and fd_ratio > 1:
        reason += (f"; centered differences put the disagreement {fd_ratio:.3g}× above "
                   f"their own noise floor")
    if kinks:
        reason += (f"; {kinks} element(s) at a kink of the loss "
                   f"(centered differences straddle a non-differentiable point there)")
    if agreement.hidden:
        reason += (f"; just off the ties (a seeded 1e-6 move of every parameter) "
                   f"{agreement.hidden} element(s) disagree with autodiff although they agree "
                   f"at the check point itself")
    if agreement.conventions:
        reason += (f"; at {agreement.conventions} kink element(s) the hand-written value is another "
                   f"valid subgradient than the references' (a convention, not an error)")
    if agreement.outside:
        reason += (f"; at {agreement.outside} kink element(s) the hand-written value lies outside "
                   f"the subdifferential (past both one-sided derivatives): not a valid subgradient")
    return reason


def unbounded(j: Judgement, agreement: BlockAgreement) -> Judgement:
    """An ``ok`` that rests on tie elements past the one-sided derivatives where several tied
    samples meet is not a proof: their choices may span that value, or may not. Say so."""
    if j.verdict != "ok" or not agreement.unbounded:
        return j
    return dataclasses.replace(
        j, verdict="inconclusive",
        reason=(j.reason + f"; but at {agreement.unbounded} kink element(s) the hand-written value "
                f"lies past both one-sided derivatives where several tied samples meet — it may "
                f"be a valid mix of their subgradients or an error: check at a point without "
                f"ties"))


def judge_block(b: str, prep: Prepared, refs: References, refinement: Refinement,
                agreement: BlockAgreement) -> Judged:
    """Stage 5 for one block."""
    hand = prep.hand[b]
    nonfinite = int((~np.isfinite(hand)).sum())
    # centered differences that compared no element here (every one at a kink, or not
    # finite) cannot decide; autodiff always compares (kink conventions were validated)
    deciding = [r for r in refs.deciding if r != FD or agreement.vs[r].compared > 0]
    j = judge(dict(agreement.vs), dict(agreement.between), deciding, nonfinite)
    covered = refinement.covered[b] if refinement.covered is not None else None
    j = resolution(j, deciding, agreement, hand, prep.settings.table, covered)
    j = unbounded(j, agreement)
    diagnosis = mismatch = None
    if j.verdict == "wrong" and j.consensus:
        c, name = agreement.vs[j.consensus], j.consensus
        mismatch = c.ratio
        tolerance = agreement.tols[name] + refs.tol.autodiff(agreement.refs[name], refs.s_all[name])
        diagnosis = diagnose(b, hand, agreement.refs[name], name, tolerance, c.mismatch, c.ratio,
                             prep.blocks.views[b], prep.settings.batch or batch_size(prep.args))
    return Judged(j, diagnosis, mismatch, _reason(j, agreement, int(refinement.kink[b].sum())))
