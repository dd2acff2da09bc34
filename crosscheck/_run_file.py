"""One run: what each case came to, and the run file that records it.

A *run* checks several cases (a suite, the command line's targets, the assertions of a pytest
session) and keeps one :class:`Outcome` per case: its report, or why it could not be checked.
Written as JSON (schema ``crosscheck.run/1``) it also records where and with what it ran, so
that a later night can be compared with it (:mod:`crosscheck._run_comparison`);
:func:`read_run` reads such a file back, or ``check --json`` output, as report dicts.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Optional

from ._errors import CheckError
from ._report import OUTCOMES, CaseOutcome
from ._report import SCHEMA as REPORT_SCHEMA

if TYPE_CHECKING:
    from ._suite import Suite

SCHEMA = "crosscheck.run/1"
# Distributions whose version a run records, read from package metadata (never by importing
# them: jax and torch take seconds). crosscheck's own comes from `crosscheck.__version__`,
# right under whatever name it was installed.
VERSIONED = ("numpy", "jax", "torch")

Status = Literal["ok", "flagged", "error"]
COULD_NOT_CHECK: CaseOutcome = "could not check"


@dataclass
class Outcome:
    """One case of a run: its report, or why it could not be checked.

    ``target`` is the :class:`crosscheck._targets.Target`, or a string naming the case (the
    target string when loading it failed, a test id). It unpacks and indexes as ``(target,
    report, error)``, the tuples ``run_targets`` used to return. ``expected`` marks a flag
    its caller expected (a pytest test that asserts a planted bug is caught, and passed):
    the outcome stays ``flagged``, but pages say "flagged as expected", not FLAGGED.
    """

    target: Any
    report: Any = None
    error: Optional[str] = None
    seconds: float = 0.0
    expected: bool = False

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
    def status(self) -> Status:
        """``ok`` (no block flagged, as ``report.ok``), ``flagged`` or ``error``; an
        inconclusive case is ``ok`` here -- :attr:`outcome` tells it apart."""
        if self.report is None:
            return "error"
        return "ok" if self.report.ok else "flagged"

    @property
    def outcome(self) -> CaseOutcome:
        """``agrees``, ``flagged``, ``inconclusive`` or ``could not check``."""
        return COULD_NOT_CHECK if self.report is None else self.report.outcome

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


def counts(outcomes) -> dict:
    """``{"agrees": n, "flagged": n, "inconclusive": n, "could not check": n}``."""
    found = [o.outcome for o in as_outcomes(outcomes)]
    return {outcome: found.count(outcome) for outcome in OUTCOMES}


def summary(outcomes) -> str:
    """``3 case(s): 1 agree, 1 flagged (seed_net/buggy), 1 inconclusive (logit/f32)``.

    ``agree`` is always there, the other outcomes when some case came to them, each with
    the cases' names -- an inconclusive case is never counted as agreeing."""
    outcomes = as_outcomes(outcomes)
    text = f"{len(outcomes)} case(s): {counts(outcomes)['agrees']} agree"
    for outcome, expected, words in (("flagged", False, "flagged"),
                                     ("flagged", True, "flagged as expected"),
                                     ("inconclusive", False, "inconclusive"),
                                     (COULD_NOT_CHECK, False, "could not be checked")):
        labels = [o.label for o in outcomes
                  if o.outcome == outcome and o.expected == expected]
        if labels:
            text += f", {len(labels)} {words} ({', '.join(labels)})"
    return text


def _version(distribution: str) -> Optional[str]:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def metadata(command: str) -> dict:
    """Where and with what a run ran; other packages' versions from their metadata."""
    from . import __version__   # at call time: the package may import us before setting it
    versions: dict[str, Optional[str]] = {"python": platform.python_version()}
    versions.update({name: _version(name) for name in VERSIONED})
    versions["crosscheck"] = __version__
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return {"versions": versions, "time": now.isoformat(), "host": platform.node(),
            "platform": platform.platform(), "command": command}


def error_entry(case: str, error: Optional[str]) -> dict:
    """The short form of a case that could not be checked (``crosscheck.report/1``'s
    ``error`` form, without ``schema``)."""
    return {"case": case, "outcome": COULD_NOT_CHECK, "error": error}


def run_document(outcomes, command: str, suite: Optional[Suite] = None) -> dict:
    """The ``crosscheck.run/1`` JSON document of a run."""
    outcomes = as_outcomes(outcomes)
    reports = [o.report.to_dict() if o.report is not None else error_entry(o.label, o.error)
               for o in outcomes]
    doc = {"schema": SCHEMA, "metadata": metadata(command), "outcomes": counts(outcomes),
           "reports": reports}
    if suite is not None:
        doc["suite"] = suite.to_dict()
    return doc


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def report_outcome(r: dict) -> CaseOutcome:
    """The outcome of a report dict: its ``outcome``, or, in a file written before reports
    had one, what ``error``, ``flagged`` and ``inconclusive`` say."""
    if "error" in r:
        return COULD_NOT_CHECK
    if r.get("outcome") in OUTCOMES:
        return r["outcome"]
    if r.get("flagged"):
        return "flagged"
    return "inconclusive" if r.get("inconclusive") else "agrees"


def _outcome_problem(r: dict) -> Optional[str]:
    """What is wrong with a report dict's ``outcome`` and ``inconclusive``, or None."""
    inconclusive = r.get("inconclusive", [])
    if not isinstance(inconclusive, list) or not all(isinstance(b, str) for b in inconclusive):
        return f"has `inconclusive` = {_short(inconclusive)}, not a list of block names"
    if "outcome" not in r:
        return None
    outcome, derived = r["outcome"], report_outcome({k: v for k, v in r.items()
                                                      if k != "outcome"})
    if outcome not in OUTCOMES:
        return (f"has `outcome` = {_short(outcome)}, not one of "
                f"{', '.join(repr(o) for o in OUTCOMES)}")
    if outcome != derived:
        return f"says `outcome: {outcome}` where its blocks say {derived!r}"
    return None


def _report_problem(r: dict) -> Optional[str]:
    """What in one report dict :mod:`crosscheck._run_comparison` could not read, or None."""
    if "error" in r:
        if r.get("outcome", COULD_NOT_CHECK) != COULD_NOT_CHECK:
            return f"has an `error` but `outcome` = {_short(r['outcome'])}"
        return None if isinstance(r["error"], str) else \
            f"has `error` = {_short(r['error'])}, not a string"
    ok, flagged = r.get("ok"), r.get("flagged")
    if not isinstance(ok, bool):
        return f"has `ok` = {_short(ok)}, not true or false" if "ok" in r else "has no `ok`"
    if not isinstance(flagged, list) or not all(isinstance(b, str) for b in flagged):
        return (f"has `flagged` = {_short(flagged)}, not a list of block names"
                if "flagged" in r else "has no `flagged` list of block names")
    if ok == bool(flagged):
        return ("says `ok: true` but flags " + ", ".join(f"`{b}`" for b in flagged) if ok
                else "says `ok: false` but flags no block")
    problem = _outcome_problem(r)
    if problem:
        return problem
    oracles = r.get("oracles")
    if oracles is not None:
        if not isinstance(oracles, dict):
            return f"has `oracles` = {_short(oracles)}, not an object"
        for name, info in oracles.items():
            if not isinstance(info, dict):
                return f"has `oracles.{name}` = {_short(info)}, not an object"
            seconds = info.get("seconds")
            if seconds is not None and not (_is_number(seconds) and 0 <= seconds < float("inf")):
                return (f"has `oracles.{name}.seconds` = {_short(seconds)}, not a "
                        f"non-negative number of seconds")
            if info.get("error") is not None and not isinstance(info["error"], str):
                return f"has `oracles.{name}.error` = {_short(info['error'])}, not a string"
    blocks = r.get("blocks")
    if blocks is not None:
        if not isinstance(blocks, dict):
            return f"has `blocks` = {_short(blocks)}, not an object"
        for name, block in blocks.items():
            if not isinstance(block, dict):
                return f"has `blocks.{name}` = {_short(block)}, not an object"
            d = block.get("diagnosis")
            if d is None:
                continue
            if not isinstance(d, dict):
                return f"has `blocks.{name}.diagnosis` = {_short(d)}, not an object or null"
            if not isinstance(d.get("kind"), str):
                return f"has `blocks.{name}.diagnosis.kind` = {_short(d.get('kind'))}, not a string"
            if d.get("factor") is not None and not _is_number(d["factor"]):
                return (f"has `blocks.{name}.diagnosis.factor` = {_short(d['factor'])}, not a "
                        f"number or null")
    return None


def stopped_early(path) -> bool:
    """Whether the run file at ``path`` is ``partial``: its run was interrupted or killed
    before its last case (read after :func:`read_run` accepted the file)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return isinstance(data, dict) and isinstance(data.get("partial"), dict)


def read_run(path) -> list:
    """The report dicts of a run file (``run --json``) or of ``check --json`` output.

    Every field the comparison reads is checked here (``ok``, ``flagged``, each oracle's
    ``seconds`` and ``error``, each diagnosis's ``kind`` and ``factor``), so that a
    hand-edited or truncated file is refused by name rather than read as a new failure.

    Raises:
        CheckError: the file is missing, is not JSON, holds no crosscheck reports, or a
            report lacks a field or holds a value of the wrong type.
    """
    path = Path(path)
    hint = "pass a file written by `crosscheck run --json` or `crosscheck check --json`"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CheckError(f"cannot read `{path}`: {exc.strerror or exc}.") from exc
    except ValueError as exc:
        raise CheckError(f"`{path}` is not JSON ({exc}); {hint}.") from exc
    except RecursionError:
        raise CheckError(f"`{path}` nests arrays or objects too deeply to read; it is no "
                         f"crosscheck run: {hint}.") from None
    if isinstance(data, dict) and data.get("schema") == SCHEMA:
        data = data.get("reports")
    elif isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(
            isinstance(r, dict) and isinstance(r.get("case"), str)
            and (("error" in r) or r.get("schema") == REPORT_SCHEMA) for r in data):
        raise CheckError(f"`{path}` holds no crosscheck run or reports (each needs a `case` "
                         f"and the schema `{REPORT_SCHEMA}` or an `error`); {hint}.")
    for i, r in enumerate(data):
        problem = _report_problem(r)
        if problem:
            raise CheckError(f"`{path}`: report {i + 1} (case {_short(r['case'])}) {problem}; "
                             f"{hint}.")
    return data


# --------------------------------------------------------------------------- runs in progress

PartialState = Literal["running", "interrupted"]


def partial_document(outcomes, command: str, suite: Optional[Suite] = None, *,
                     state: PartialState = "running", current: Optional[str] = None,
                     not_run=(), not_loaded=()) -> dict:
    """The run file of a run that has not finished: :func:`run_document` of the cases done so
    far, plus ``partial``, where the run stood.

    ``partial`` is ``{"state", "current", "not_run", "not_loaded"}``. ``state`` is
    ``"running"`` while the run goes on -- a file still in that state after the run is over
    means the process died (a segfault, an out-of-memory kill), and ``current`` names the
    case it was checking -- or ``"interrupted"`` (Ctrl-C). ``not_run`` lists the cases found
    but not checked, ``current`` among them; ``not_loaded`` the targets not imported yet
    (each names at least one case). A finished run's file has no ``partial``.
    """
    doc = run_document(outcomes, command, suite)
    doc["partial"] = {"state": state, "current": current, "not_run": list(not_run),
                      "not_loaded": list(not_loaded)}
    return doc


def write_atomically(path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it and a rename, creating
    the folder: whoever reads the file, and whatever kills this process, sees the old
    content or the new, never half of it.

    Raises:
        OSError: the folder or the file cannot be written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, target)
    except BaseException:
        try:
            temp.unlink()
        except OSError:
            pass
        raise
