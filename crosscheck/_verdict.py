"""Verdict: who is wrong, per block, and why — said in words.

Autodiff references are exact up to rounding; centered differences carry their own error.
So the precise references decide when they can, and the others explain:

* every deciding reference agrees with the hand-written gradient → ``ok`` (a single
  disagreeing centered-difference estimate is named as the odd one, with the reason);
* jax and torch disagree with each other → ``inconclusive`` (a framework difference or a
  forward that differs; never a guess);
* the hand-written gradient disagrees with autodiff → ``wrong``, unless centered differences
  side with the hand-written gradient against a single autodiff reference (one against one:
  ``inconclusive``);
* only centered differences ran → their comparison, judged against their own error, decides.

A reference whose forward loss differs from numpy's beyond rounding (forward parity) is
shown but does not decide.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from . import oracles


@dataclass
class Judgement:
    verdict: str
    reason: str
    agree: list = field(default_factory=list)
    disagree: list = field(default_factory=list)
    consensus: Optional[str] = None      # the reference the diagnosis compares against
    odd: Optional[dict] = None


def _names(refs) -> str:
    refs = list(refs)
    return refs[0] if len(refs) == 1 else ", ".join(refs[:-1]) + " and " + refs[-1]


def judge(vs: dict, between: dict, deciding: list, nonfinite: int = 0) -> Judgement:
    """Decide one block.

    Args:
        vs: reference name -> Comparison of the hand-written block against it.
        between: (ref_a, ref_b) -> Comparison of two references (both orders accepted).
        deciding: references that ran and passed forward parity, in priority order.
        nonfinite: number of NaN/Inf elements in the hand-written block.
    """
    agree = [r for r in deciding if vs[r].agree]
    disagree = [r for r in deciding if not vs[r].agree]

    def pair(a, b) -> bool:
        c = between.get((a, b)) or between.get((b, a))
        return c is None or c.agree

    if nonfinite:
        return Judgement("wrong", f"the hand-written gradient holds NaN/Inf at {nonfinite} "
                                  f"element(s)", agree, disagree or list(deciding),
                         deciding[0] if deciding else None)
    if not deciding:
        return Judgement("inconclusive", "no reference could decide (see the oracles' errors "
                                         "and forward parity)")
    autodiff = [r for r in deciding if r in oracles.autodiff()]
    fd = "fd" if "fd" in deciding else None
    if len(autodiff) == 2 and not pair(*autodiff):
        return Judgement(
            "inconclusive",
            f"{autodiff[0]} and {autodiff[1]} disagree with each other on this block although "
            f"their forward losses match numpy's: a framework difference (e.g. a different "
            f"convention at a non-differentiable point); crosscheck does not guess",
            agree, disagree)
    if not disagree:
        return Judgement("ok", f"agrees with {_names(agree)}", agree, disagree, agree[0])
    if autodiff:
        ad_agree = [r for r in autodiff if r in agree]
        if len(ad_agree) == len(autodiff):
            # only centered differences disagree, while the precise references agree
            c = vs[fd]
            why = (f"centered differences disagree at {int(c.mismatch.sum())} element(s) "
                   f"(up to {c.max_ratio:.3g}× their error estimate) while {_names(autodiff)} "
                   f"agree with the hand-written gradient: rounding or truncation beyond the "
                   f"estimate, or a non-differentiable point")
            return Judgement("ok", f"agrees with {_names(autodiff)}; {why}", agree, disagree,
                             autodiff[0], {"oracle": fd, "why": why,
                                           "elements": int(c.mismatch.sum())})
        if ad_agree:
            return Judgement(
                "inconclusive",
                f"the hand-written gradient is within tolerance of {_names(ad_agree)} but not "
                f"of {_names([r for r in autodiff if r not in ad_agree])}, which agree with "
                f"each other: the difference is at the edge of the tolerance", agree, disagree)
        if fd and fd in agree and not all(pair(fd, r) for r in autodiff):
            if len(autodiff) == 1:
                return Judgement(
                    "inconclusive",
                    f"centered differences agree with the hand-written gradient, "
                    f"{autodiff[0]} does not: one reference against the other", agree, disagree)
            why = (f"centered differences side with the hand-written gradient, but "
                   f"{_names(autodiff)} agree with each other")
            return Judgement("wrong", f"{len(autodiff)} of {len(deciding)} references agree; "
                                      f"the hand-written gradient does not ({why})",
                             agree, disagree, autodiff[0],
                             {"oracle": fd, "why": why, "elements": 0})
        agreeing = list(autodiff) + ([fd] if fd and fd in disagree else [])
        coarse = f" ({fd} is within its error of both)" if fd and fd in agree else ""
        return Judgement(
            "wrong", f"{len(agreeing)} of {len(deciding)} references agree "
                     f"({_names(agreeing)}); the hand-written gradient does not{coarse}",
            agree, disagree, autodiff[0])
    return Judgement("wrong", "centered differences disagree with the hand-written gradient "
                              "beyond their error estimate (the only reference)",
                     agree, disagree, fd)
