"""Two runs compared: what is new since last night, case by case.

A nightly job that fails on every known bug teaches people to ignore it. So the comparison
separates what is *new* (a case that agreed and now is flagged or crashes; a block newly wrong
in a case already flagged) from what is known (still failing), fixed, re-diagnosed (same wrong
block, a different kind of error), added, removed, or much slower. Only the new fails the
comparison (:attr:`RunComparison.failed`). A case that agreed and now is inconclusive (no block
wrong, but not every block vouched for) has not failed, yet it is no longer proven either: it
is listed on its own (:attr:`RunComparison.inconclusive`), so that the exit status can say so. It reads the report dicts of run files, never
live reports, so that runs from other machines and older versions compare alike; the text
and Markdown views are renderers' (:mod:`crosscheck._render_comparison`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from ._run_file import report_outcome

SLOWER_RATIO = 2.0      # an oracle is "much slower" when its time grew by more than 2× ...
SLOWER_SECONDS = 0.5    # ... and by more than half a second (timer noise on tiny cases)


@dataclass
class RunComparison:
    """What changed between two runs. Every entry names its case.

    ``new_failures``: cases flagged or erroring now that agreed, were inconclusive or were
    absent before; ``new_blocks``: blocks newly wrong in a case that was already flagged;
    ``inconclusive``: cases inconclusive now that were not before (they agreed, were flagged,
    could not be checked, or were absent); ``not_run``: cases of the old run that a new run
    which stopped early (interrupted, killed) never reached; ``fixed``: cases that agree now and did not
    before; ``changed``: same case, same wrong block, a different diagnosis; ``slower``:
    oracles whose time grew past both thresholds.
    """

    new_failures: list = field(default_factory=list)   # {"case", "now", "before"}
    new_blocks: list = field(default_factory=list)     # {"case", "blocks"}
    inconclusive: list = field(default_factory=list)   # {"case", "now", "before"}
    fixed: list = field(default_factory=list)          # {"case", "before"}
    still_failing: list = field(default_factory=list)  # case names
    still_inconclusive: list = field(default_factory=list)  # case names
    changed: list = field(default_factory=list)        # {"case", "block", "before", "now"}
    added: list = field(default_factory=list)          # {"case", "now"}
    removed: list = field(default_factory=list)        # {"case", "before"}
    not_run: list = field(default_factory=list)        # {"case", "before"}: the new run stopped
    slower: list = field(default_factory=list)         # {"case", "oracle", "before", "now"}

    @property
    def failed(self) -> bool:
        """Something fails now that did not before."""
        return bool(self.new_failures or self.new_blocks)

    @property
    def unvouched(self) -> bool:
        """Nothing fails anew, but some case is newly inconclusive."""
        return not self.failed and bool(self.inconclusive)


def _index(reports: list) -> dict:
    """``{case: report}``; a case that repeats is ``case #2``, ``case #3``, … (never
    overwriting another case, even one literally named ``case #2``)."""
    out, seen = {}, {}
    for r in reports:
        key = r["case"]
        while key in out:
            seen[r["case"]] = seen.get(r["case"], 1) + 1
            key = f"{r['case']} #{seen[r['case']]}"
        out[key] = r
    return out


def _status(r: Optional[dict]) -> str:
    """``absent``, ``ok`` (agrees), ``flagged``, ``inconclusive`` or ``error``."""
    if r is None:
        return "absent"
    return {"agrees": "ok", "could not check": "error"}.get(report_outcome(r), report_outcome(r))


def _describe(r: Optional[dict]) -> str:
    status = _status(r)
    if status == "flagged":
        return f"flagged {', '.join(r.get('flagged') or [])}"
    if status == "inconclusive":
        return f"inconclusive {', '.join(r.get('inconclusive') or [])}".rstrip()
    if status == "error":
        return f"could not be checked: {r['error']}"
    return {"ok": "agrees", "absent": "absent"}[status]


def _diagnosis(r: dict, block: str) -> Optional[dict]:
    return ((r.get("blocks") or {}).get(block) or {}).get("diagnosis")


def _diag_text(d: Optional[dict]) -> str:
    if not d:
        return "no diagnosis"
    return f"{d.get('kind')} ×{d['factor']:g}" if d.get("factor") is not None else d.get("kind")


def _same_diagnosis(a: Optional[dict], b: Optional[dict]) -> bool:
    a, b = a or {}, b or {}
    if a.get("kind") != b.get("kind"):
        return False
    fa, fb = a.get("factor"), b.get("factor")
    if fa is None or fb is None:
        return fa is None and fb is None
    return math.isclose(fa, fb, rel_tol=1e-6, abs_tol=1e-12)


def compare_runs(old: list, new: list, *, slower_ratio: float = SLOWER_RATIO,
                 slower_seconds: float = SLOWER_SECONDS, stopped: bool = False) -> RunComparison:
    """Compare two runs' report dicts (as :func:`crosscheck._run_file.read_run` returns
    them), case by case. ``stopped``: the new run ended before its last case (its file is
    ``partial``), so a case it lacks was not run rather than removed."""
    before, after = _index(old), _index(new)
    out = RunComparison()
    for case, r in after.items():
        was, now = before.get(case), _status(r)
        if was is None:
            out.added.append({"case": case, "now": _describe(r)})
        if now in ("flagged", "error") and _status(was) in ("ok", "inconclusive", "absent"):
            out.new_failures.append({"case": case, "now": _describe(r),
                                     "before": _describe(was)})
        elif now in ("flagged", "error"):
            out.still_failing.append(case)
        elif now == "inconclusive" and _status(was) != "inconclusive":
            out.inconclusive.append({"case": case, "now": _describe(r),
                                     "before": _describe(was)})
        elif now == "inconclusive":
            out.still_inconclusive.append(case)
        elif now == "ok" and _status(was) in ("flagged", "error", "inconclusive"):
            out.fixed.append({"case": case, "before": _describe(was)})
        if was is None or now == "error" or _status(was) == "error":
            continue
        if now == "flagged" and _status(was) == "flagged":
            newly = [b for b in r["flagged"] if b not in was["flagged"]]
            if newly:
                out.new_blocks.append({"case": case, "blocks": newly})
            for block in r["flagged"]:
                a, b = _diagnosis(was, block), _diagnosis(r, block)
                if block in was["flagged"] and not _same_diagnosis(a, b):
                    out.changed.append({"case": case, "block": block,
                                        "before": _diag_text(a), "now": _diag_text(b)})
        for oracle, info in (r.get("oracles") or {}).items():
            old_info = (was.get("oracles") or {}).get(oracle) or {}
            t0, t1 = old_info.get("seconds"), (info or {}).get("seconds")
            if (t0 is None or t1 is None or info.get("error") or old_info.get("error")):
                continue
            if t1 > slower_ratio * t0 and t1 - t0 > slower_seconds:
                out.slower.append({"case": case, "oracle": oracle, "before": t0, "now": t1})
    gone = [{"case": c, "before": _describe(r)} for c, r in before.items() if c not in after]
    if stopped:
        out.not_run = gone
    else:
        out.removed = gone
    return out
