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
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Optional

from ._errors import CheckError
from ._report import SCHEMA as REPORT_SCHEMA

if TYPE_CHECKING:
    from ._suite import Suite

SCHEMA = "crosscheck.run/1"
# Distributions whose version a run records, read from package metadata (never by importing
# them: jax and torch take seconds). crosscheck's own comes from `crosscheck.__version__`,
# right under whatever name it was installed.
VERSIONED = ("numpy", "jax", "torch")

Status = Literal["ok", "flagged", "error"]


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
    def status(self) -> Status:
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
    """Where and with what a run ran; other packages' versions from their metadata."""
    from . import __version__   # at call time: the package may import us before setting it
    versions: dict[str, Optional[str]] = {"python": platform.python_version()}
    versions.update({name: _version(name) for name in VERSIONED})
    versions["crosscheck"] = __version__
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
