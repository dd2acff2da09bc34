"""Runs: the suite a ``pyproject.toml`` declares, what one run found, and two runs compared.

A *suite* is the ``[tool.crosscheck]`` table::

    [tool.crosscheck]
    cases = ["reference/seed_net.py:correct", "reference/seed_net.py:buggy"]
    oracles = ["fd", "torch"]          # optional; default: every oracle
    seed = 0                           # optional
    tolerances = {fd_safety = 8.0}     # optional; merged into check's `tolerances=`

A *run* checks every case and keeps one :class:`Outcome` per case. Written as JSON (schema
``crosscheck.run/1``) it records where and with what it ran, so that two nights can be
compared with :func:`compare_runs`.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import math
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ._errors import CheckError

SCHEMA = "crosscheck.run/1"
REPORT_SCHEMA = "crosscheck.report/1"
SUITE_KEYS = ("cases", "oracles", "seed", "tolerances", "fd")
VERSIONED = ("numpy", "jax", "torch", "crosscheck")
SLOWER_RATIO = 2.0      # an oracle is "much slower" when its time grew by more than 2× ...
SLOWER_SECONDS = 0.5    # ... and by more than half a second (timer noise on tiny cases)


# --------------------------------------------------------------------------- the suite

@dataclass
class Suite:
    """The ``[tool.crosscheck]`` table of one ``pyproject.toml``, validated.

    ``base`` is the folder the case paths are relative to (the ``pyproject.toml``'s own).
    """

    cases: list = field(default_factory=list)
    oracles: Optional[list] = None
    seed: Optional[int] = None
    tolerances: dict = field(default_factory=dict)
    fd: Any = None
    base: Path = Path(".")
    path: Optional[Path] = None

    def to_dict(self) -> dict:
        return {"config": str(self.path) if self.path else None, "cases": self.cases,
                "oracles": self.oracles, "seed": self.seed, "tolerances": self.tolerances,
                "fd": self.fd}


def _toml():
    try:
        import tomllib
    except ImportError:
        try:
            import tomli as tomllib
        except ImportError:
            raise CheckError("reading `pyproject.toml` needs Python 3.11 or later, or the "
                             "`tomli` package on older Pythons: `pip install tomli`.") from None
    return tomllib


def load_suite(path) -> Suite:
    """Read and validate the ``[tool.crosscheck]`` table of the ``pyproject.toml`` at ``path``.

    A file without the table gives an empty :class:`Suite` (no cases, no options).

    Raises:
        CheckError: the file cannot be read, is not TOML, or the table is malformed.
    """
    path = Path(path)
    tomllib = _toml()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CheckError(f"cannot read `{path}`: {exc.strerror or exc}.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CheckError(f"`{path}` is not valid TOML: {exc}.") from exc
    table = data.get("tool", {}).get("crosscheck", {})
    where = f"`[tool.crosscheck]` in `{path}`"
    if not isinstance(table, dict):
        raise CheckError(f"{where} must be a table, e.g. `cases = [\"model.py:correct\"]`.")
    unknown = sorted(set(table) - set(SUITE_KEYS))
    if unknown:
        raise CheckError(f"{where} has unknown key(s) {', '.join(f'`{k}`' for k in unknown)}; "
                         f"known keys: {', '.join(SUITE_KEYS)}.")
    suite = Suite(base=path.parent, path=path)
    cases = table.get("cases", [])
    if not isinstance(cases, list) or not all(isinstance(c, str) and c for c in cases):
        raise CheckError(f"{where}: `cases` must be a list of targets such as "
                         f"`\"reference/seed_net.py:correct\"`, got {cases!r}.")
    suite.cases = list(cases)
    if "oracles" in table:
        suite.oracles = _oracles(table["oracles"], where)
    if "seed" in table:
        seed = table["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise CheckError(f"{where}: `seed` must be a non-negative integer, got {seed!r}.")
        suite.seed = seed
    if "fd" in table:
        suite.fd = parse_fd(table["fd"], where)
    tolerances = table.get("tolerances", {})
    if not isinstance(tolerances, dict):
        raise CheckError(f"{where}: `tolerances` must be a table such as "
                         f"`{{fd_safety = 8.0}}`, got {tolerances!r}.")
    from ._tolerances import merged
    try:
        merged(tolerances)
    except CheckError as exc:
        raise CheckError(f"{where}: {exc}") from exc
    suite.tolerances = dict(tolerances)
    return suite


def parse_fd(value: Any, where: str) -> Any:
    """``"auto"``, ``"all"`` or a positive int (also from a command-line string)."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if value in ("auto", "all") or (isinstance(value, int) and not isinstance(value, bool)
                                    and value > 0):
        return value
    raise CheckError(f"{where}: `fd` must be \"auto\", \"all\" or a positive integer "
                     f"(elements sampled per block), got {value!r}.")


def _oracles(value: Any, where: str) -> list:
    from .oracles import REGISTRY
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if (not isinstance(value, list) or not value
            or not all(isinstance(v, str) and v in REGISTRY for v in value)):
        raise CheckError(f"{where}: `oracles` must be a non-empty list among "
                         f"{', '.join(REGISTRY)}, got {value!r}.")
    return list(dict.fromkeys(value))


# --------------------------------------------------------------------------- one run

@dataclass
class Outcome:
    """One case of a run: its report, or why it could not be checked.

    ``target`` is the :class:`crosscheck._targets.Target`, or a string naming the case (the
    target string when loading it failed, a test id). It unpacks and indexes as ``(target,
    report, error)``, the tuples ``run_targets`` used to return.
    """

    target: Any
    report: Any = None
    error: Optional[str] = None
    seconds: float = 0.0

    @property
    def label(self) -> str:
        if hasattr(self.target, "label"):
            return self.target.label
        if self.target is None and self.report is not None and self.report.case:
            return self.report.case
        return str(self.target)

    @property
    def source(self) -> str:
        if hasattr(self.target, "source"):
            return self.target.source
        return str(self.target).rpartition(":")[0] or "crosscheck"

    @property
    def status(self) -> str:
        if self.report is None:
            return "error"
        return "ok" if self.report.ok else "flagged"

    def __iter__(self):
        return iter((self.target, self.report, self.error))

    def __getitem__(self, index):
        return (self.target, self.report, self.error)[index]


def as_outcomes(items) -> list:
    """Reports and outcomes alike, as :class:`Outcome` objects (renderers take either)."""
    out = []
    for item in items:
        if isinstance(item, Outcome):
            out.append(item)
        else:
            out.append(Outcome(item.case or "crosscheck", item, None, item.seconds))
    return out


def summary(outcomes) -> str:
    """``2 case(s): 1 agree, 1 flagged (seed_net/buggy)``."""
    outcomes = as_outcomes(outcomes)
    flagged = [o.label for o in outcomes if o.status == "flagged"]
    errors = [o.label for o in outcomes if o.status == "error"]
    n = len(outcomes)
    text = f"{n} case(s): {n - len(flagged) - len(errors)} agree"
    if flagged:
        text += f", {len(flagged)} flagged ({', '.join(flagged)})"
    if errors:
        text += f", {len(errors)} could not be checked ({', '.join(errors)})"
    return text


def _version(distribution: str) -> Optional[str]:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def metadata(command: str) -> dict:
    """Where and with what a run ran; versions from package metadata, never by importing."""
    versions = {"python": platform.python_version()}
    versions.update({name: _version(name) for name in VERSIONED})
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return {"versions": versions, "time": now.isoformat(), "host": platform.node(),
            "platform": platform.platform(), "command": command}


def run_document(outcomes, command: str, suite: Optional[Suite] = None) -> dict:
    """The ``crosscheck.run/1`` JSON document of a run."""
    reports = [o.report.to_dict() if o.report is not None
               else {"case": o.label, "error": o.error} for o in as_outcomes(outcomes)]
    doc = {"schema": SCHEMA, "metadata": metadata(command), "reports": reports}
    if suite is not None:
        doc["suite"] = suite.to_dict()
    return doc


# --------------------------------------------------------------------------- two runs

def read_run(path) -> list:
    """The report dicts of a run file (``run --json``) or of ``check --json`` output.

    Raises:
        CheckError: the file is missing, is not JSON, or holds no crosscheck reports.
    """
    path = Path(path)
    hint = "pass a file written by `crosscheck run --json` or `crosscheck check --json`"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CheckError(f"cannot read `{path}`: {exc.strerror or exc}.") from exc
    except ValueError as exc:
        raise CheckError(f"`{path}` is not JSON ({exc}); {hint}.") from exc
    if isinstance(data, dict) and data.get("schema") == SCHEMA:
        data = data.get("reports")
    elif isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(
            isinstance(r, dict) and isinstance(r.get("case"), str)
            and (("error" in r) or r.get("schema") == REPORT_SCHEMA) for r in data):
        raise CheckError(f"`{path}` holds no crosscheck run or reports (each needs a `case` "
                         f"and the schema `{REPORT_SCHEMA}` or an `error`); {hint}.")
    return data


def _index(reports: list) -> dict:
    out, seen = {}, {}
    for r in reports:
        seen[r["case"]] = seen.get(r["case"], 0) + 1
        key = r["case"] if seen[r["case"]] == 1 else f"{r['case']} #{seen[r['case']]}"
        out[key] = r
    return out


def _status(r: Optional[dict]) -> str:
    if r is None:
        return "absent"
    if "error" in r:
        return "error"
    return "ok" if r.get("ok") else "flagged"


def _describe(r: Optional[dict]) -> str:
    status = _status(r)
    if status == "flagged":
        return f"flagged {', '.join(r.get('flagged') or [])}"
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


@dataclass
class RunComparison:
    """What changed between two runs. Every entry names its case.

    ``new_failures``: cases flagged or erroring now that agreed (or were absent) before;
    ``new_blocks``: blocks newly wrong in a case that was already flagged; ``fixed``: cases
    that agree now and did not before; ``changed``: same case, same wrong block, a different
    diagnosis; ``slower``: oracles whose time grew past both thresholds.
    """

    new_failures: list = field(default_factory=list)   # {"case", "now", "before"}
    new_blocks: list = field(default_factory=list)     # {"case", "blocks"}
    fixed: list = field(default_factory=list)          # {"case", "before"}
    still_failing: list = field(default_factory=list)  # case names
    changed: list = field(default_factory=list)        # {"case", "block", "before", "now"}
    added: list = field(default_factory=list)          # {"case", "now"}
    removed: list = field(default_factory=list)        # {"case", "before"}
    slower: list = field(default_factory=list)         # {"case", "oracle", "before", "now"}

    @property
    def failed(self) -> bool:
        """Something fails now that did not before."""
        return bool(self.new_failures or self.new_blocks)


def compare_runs(old: list, new: list, *, slower_ratio: float = SLOWER_RATIO,
                 slower_seconds: float = SLOWER_SECONDS) -> RunComparison:
    """Compare two runs' report dicts (as :func:`read_run` returns them), case by case."""
    before, after = _index(old), _index(new)
    out = RunComparison()
    for case, r in after.items():
        was, now = before.get(case), _status(r)
        if was is None:
            out.added.append({"case": case, "now": _describe(r)})
        if now in ("flagged", "error") and _status(was) in ("ok", "absent"):
            out.new_failures.append({"case": case, "now": _describe(r),
                                     "before": _describe(was)})
        elif now in ("flagged", "error"):
            out.still_failing.append(case)
        elif now == "ok" and _status(was) in ("flagged", "error"):
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
    out.removed = [{"case": c, "before": _describe(r)} for c, r in before.items()
                   if c not in after]
    return out


def comparison_lines(cmp: RunComparison) -> list:
    """``(kind, text)`` pairs, one per finding, most important first."""
    lines = [("NEW FAILURE", f"{f['case']}: {f['now']} (before: {f['before']})")
             for f in cmp.new_failures]
    lines += [("NEWLY WRONG", f"{f['case']}: block(s) {', '.join(f['blocks'])}")
              for f in cmp.new_blocks]
    lines += [("DIAGNOSIS", f"{c['case']}: `{c['block']}` was {c['before']}, now {c['now']}")
              for c in cmp.changed]
    lines += [("FIXED", f"{f['case']}: agrees now (before: {f['before']})") for f in cmp.fixed]
    lines += [("SLOWER", f"{s['case']}: {s['oracle']} {s['before']:.3f} s → {s['now']:.3f} s "
                         f"({s['now'] / s['before']:.1f}×)" if s['before'] > 0 else
               f"{s['case']}: {s['oracle']} 0 s → {s['now']:.3f} s") for s in cmp.slower]
    lines += [("ADDED", f"{a['case']}: {a['now']}") for a in cmp.added]
    lines += [("REMOVED", f"{r['case']}: (before: {r['before']})") for r in cmp.removed]
    return lines


def comparison_headline(cmp: RunComparison) -> str:
    parts = [f"{len(cmp.new_failures)} new failure(s)"
             + (f" ({', '.join(f['case'] for f in cmp.new_failures)})" if cmp.new_failures
                else "")]
    if cmp.new_blocks:
        parts.append(f"{len(cmp.new_blocks)} case(s) with newly wrong blocks "
                     f"({', '.join(f['case'] for f in cmp.new_blocks)})")
    parts += [f"{len(cmp.fixed)} fixed", f"{len(cmp.changed)} changed diagnosis(es)",
              f"{len(cmp.slower)} slower oracle(s)", f"{len(cmp.added)} added",
              f"{len(cmp.removed)} removed", f"{len(cmp.still_failing)} still failing"]
    return "crosscheck compare: " + ", ".join(parts)


def render_comparison(cmp: RunComparison) -> str:
    """The plain-text comparison: a headline, then one line per finding."""
    lines = [comparison_headline(cmp)]
    findings = comparison_lines(cmp)
    lines += [f"  {kind:<11}  {text}" for kind, text in findings]
    if not findings:
        lines.append("  nothing changed")
    return "\n".join(lines)
