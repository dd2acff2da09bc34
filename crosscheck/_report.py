"""The report: data only. Renderers read it and nothing else.

Nothing here imports a renderer, not even lazily: ``str(report)``, ``__rich__`` and
``_repr_html_`` name the form they want and :mod:`crosscheck._presentation` finds the
renderer for it (see there why).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import numpy as np

SCHEMA = "crosscheck.report/1"

Verdict = Literal["ok", "wrong", "inconclusive"]
# What a case came to, in one word (docs/formats.md): a report is one of the first three; a
# case whose input was refused or whose code crashed has no report and is "could not check".
CaseOutcome = Literal["agrees", "flagged", "inconclusive", "could not check"]
OUTCOMES: tuple = ("agrees", "flagged", "inconclusive", "could not check")
DiagnosisKind = Literal["scale", "sign", "transpose", "regularization", "partial", "zero",
                        "nonfinite", "other"]


def _clean(value: Any) -> Any:
    """JSON-ready: numpy scalars to Python, non-finite floats to None, tuples to lists."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


@dataclass
class Diagnosis:
    """What a wrong block's error looks like.

    ``kind`` is one of ``scale``, ``sign``, ``transpose``, ``regularization``, ``partial``,
    ``zero``, ``nonfinite``, ``other``. ``factor`` is c in hand ≈ c × reference (``scale``,
    ``sign``) or in hand − reference ≈ c × parameter (``regularization``).
    """

    kind: DiagnosisKind
    text: str
    size: int
    mismatched: int
    worst: Optional[tuple] = None
    factor: Optional[float] = None
    reference: Optional[str] = None
    indices: list = field(default_factory=list)     # mismatched elements, worst first (capped)
    elements: list = field(default_factory=list)    # [{"index", "hand", "reference"}], top few

    def to_dict(self) -> dict:
        out = {"kind": self.kind, "factor": self.factor, "mismatched": self.mismatched,
               "size": self.size, "worst": self.worst, "text": self.text,
               "reference": self.reference, "indices": self.indices,
               "elements": self.elements}
        return _clean(out)


@dataclass
class Block:
    """Everything the check found about one parameter block."""

    name: str
    shape: tuple
    verdict: Verdict
    reason: str
    difference: dict                     # oracle -> seeds' relative difference (None: not run)
    max_abs: dict = field(default_factory=dict)
    worst: dict = field(default_factory=dict)
    noise_ratio: dict = field(default_factory=dict)   # oracle -> max |hand − ref| / tolerance
    tolerance: dict = field(default_factory=dict)     # oracle -> tolerance in difference units
    agree: list = field(default_factory=list)         # references that agree with the hand
    disagree: list = field(default_factory=list)
    odd: Optional[dict] = None                        # {"oracle", "why", "elements"}
    kinks: int = 0
    conventions: int = 0                              # kink elements where hand picks another subgradient
    coverage: dict = field(default_factory=dict)
    taylor: Optional[dict] = None
    diagnosis: Optional[Diagnosis] = None
    hand: Optional[np.ndarray] = field(default=None, repr=False)
    references: dict = field(default_factory=dict, repr=False)
    mismatch: Optional[np.ndarray] = field(default=None, repr=False)  # ratio map vs consensus

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def to_dict(self) -> dict:
        return _clean({
            "shape": list(self.shape), "size": self.size, "verdict": self.verdict,
            "reason": self.reason, "difference": self.difference, "max_abs": self.max_abs,
            "worst": self.worst, "noise_ratio": self.noise_ratio,
            "tolerance": self.tolerance, "agree": self.agree, "disagree": self.disagree,
            "odd": self.odd, "kinks": self.kinks, "conventions": self.conventions,
            "coverage": self.coverage, "taylor": self.taylor,
            "diagnosis": self.diagnosis.to_dict() if self.diagnosis else None,
        })


@dataclass
class OracleInfo:
    name: str
    version: Optional[str]
    seconds: float
    error: Optional[str] = None
    skipped: bool = False
    forward: Optional[float] = None
    parity: Optional[bool] = None
    evaluations: Optional[int] = None
    notes: list = field(default_factory=list)
    mode: Optional[str] = None   # how an autodiff reference ran: "jit", "eager", "functional writes"

    def to_dict(self) -> dict:
        out = {"version": self.version, "seconds": round(self.seconds, 6),
               "forward": self.forward, "parity": self.parity, "skipped": self.skipped}
        if self.mode is not None:
            out["mode"] = self.mode
        if self.error is not None:
            out["error"] = self.error
        if self.evaluations is not None:
            out["evaluations"] = self.evaluations
        if self.notes:
            out["notes"] = self.notes
        return _clean(out)


@dataclass
class Report:
    """The result of :func:`crosscheck.check`.

    ``ok`` is True when no block is flagged; ``flagged`` lists the wrong blocks in params
    order; ``blocks[name]`` holds each block's verdict, differences and diagnosis.
    ``vouched`` is True only when every block is ``ok``, and ``outcome`` says what the case
    came to in one word: ``agrees``, ``flagged`` or ``inconclusive``. ``to_dict()`` is
    JSON-ready (schema ``crosscheck.report/1``); ``str(report)`` is the table;
    ``save(path)`` writes it as HTML, JSON, Markdown, text or JUnit by the path's suffix.
    """

    blocks: dict
    oracles: dict
    forward: dict
    fingerprint: str
    case: Optional[str] = None
    notes: list = field(default_factory=list)
    seconds: float = 0.0
    seed: int = 0
    noise: Optional[float] = None
    tolerances: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    localisation: Any = None     # a crosscheck._entry_points.Localisation, or None (not run)

    @property
    def entry_points(self) -> tuple:
        """Where the error enters the backward (``("dW2", "db1")``): the first wrong quantities
        whose inputs are right, in backward order; empty when none, or when nothing was located."""
        return tuple(self.localisation.entry_points) if self.localisation is not None else ()

    @property
    def intermediates(self) -> tuple:
        """The checked quantities of the backward in backward order -- intermediates (``dZ3``)
        and parameters' gradients (``dW3``) -- each with its verdict, factor, difference per
        reference and source line; empty when nothing was located."""
        return tuple(self.localisation.quantities) if self.localisation is not None else ()

    @property
    def convention(self) -> Optional[float]:
        """c in "intermediates are c × ∂J/∂Z" (the seeds' m), or None (nothing located)."""
        return self.localisation.convention if self.localisation is not None else None

    @property
    def flagged(self) -> list:
        return [name for name, block in self.blocks.items() if block.verdict == "wrong"]

    @property
    def inconclusive(self) -> list:
        return [name for name, block in self.blocks.items() if block.verdict == "inconclusive"]

    @property
    def ok(self) -> bool:
        """No block is flagged. An inconclusive block does not make it False: see
        :attr:`vouched` for "every block was checked and agrees"."""
        return not self.flagged

    @property
    def vouched(self) -> bool:
        """Every block is ``ok``: the references vouch for the whole gradient. False when a
        block is wrong or inconclusive -- ``ok`` alone would call a case green that no
        reference could vouch for (centered differences too coarse for a float32 loss)."""
        return all(block.verdict == "ok" for block in self.blocks.values())

    @property
    def outcome(self) -> CaseOutcome:
        """``"flagged"`` (a block is wrong), ``"inconclusive"`` (none wrong, at least one not
        vouched for) or ``"agrees"`` (every block ok). A report always was checked, so never
        ``"could not check"``: that outcome belongs to a case without a report."""
        if self.flagged:
            return "flagged"
        return "agrees" if self.vouched else "inconclusive"

    @property
    def references(self) -> list:
        """The references that ran (``["fd", "jax", "torch"]``, or fewer when one could not)."""
        return [name for name, info in self.oracles.items() if info.error is None]

    def to_dict(self) -> dict:
        out = self._to_dict()
        if self.localisation is not None:
            out["localisation"] = localisation_dict(self.localisation)
        return out

    def _to_dict(self) -> dict:
        return _clean({
            "schema": SCHEMA, "case": self.case, "outcome": self.outcome, "ok": self.ok,
            "flagged": self.flagged, "references": self.references,
            "inconclusive": self.inconclusive, "fingerprint": self.fingerprint,
            "forward": self.forward,
            "oracles": {name: info.to_dict() for name, info in self.oracles.items()},
            "blocks": {name: block.to_dict() for name, block in self.blocks.items()},
            "notes": self.notes, "seconds": round(self.seconds, 6), "seed": self.seed,
            "noise": self.noise, "tolerances": self.tolerances, "options": self.options,
        })

    def save(self, path) -> Path:
        """Write the report to ``path`` atomically, in the format its suffix names.

        ``.html`` a self-contained page with the charts (as ``crosscheck check --html``),
        ``.json`` :meth:`to_dict` (schema ``crosscheck.report/1``), ``.md`` the Markdown
        table and diagnoses, ``.txt`` the text table (``str(report)``), ``.xml`` JUnit with
        one testcase. The file is written beside its target and renamed into place, so a
        reader never sees half of it; missing folders are created.

        Returns:
            The path written, as a :class:`pathlib.Path`.

        Raises:
            CheckError: ``path`` is no path, its suffix is none of those (the message names
                it and the allowed ones), or the file cannot be written (the message names
                the path and why). ``~`` is expanded.
        """
        from ._presentation import save   # on first use, as in _present: see there why
        return save(self, path)

    def __str__(self) -> str:
        return _present("plain", self)

    def __rich__(self):
        return _present("rich", self)

    def _repr_html_(self) -> str:
        return _present("html", self)


def localisation_dict(found: Any) -> dict:
    """A localisation as JSON: ``convention``, ``entry_points``, ``quantities`` in backward
    order, ``references`` that differentiated the taps, ``notes`` (docs/formats.md)."""
    quantities = []
    for q in found.quantities:
        source = q.source
        quantities.append({
            "name": q.key, "of": q.of, "kind": q.kind, "shape": list(q.shape),
            "verdict": q.verdict, "factor": q.factor, "difference": dict(q.differences),
            "inputs": list(q.inputs), "follows_from": list(q.follows_from),
            "source": None if source is None else {"file": source.file, "line": source.line,
                                                   "text": source.text, "function": source.function}})
    return _clean({"convention": found.convention, "entry_points": list(found.entry_points),
                   "quantities": quantities, "references": list(found.references),
                   "notes": list(found.notes)})


def _present(form: Literal["plain", "rich", "html"], report: Report) -> Any:
    # Imported on first display, not with the data: the presentation side reads reports, so
    # importing it here at load time would make the data depend on it.
    from ._presentation import present
    return present(form, report)
