"""The one small protocol every reference oracle implements, and the data it exchanges.

An oracle is a module (or any object) with ``NAME``, ``REQUIRES`` (the package it needs, or
``None``), ``KIND`` (``"autodiff"``: exact gradients of every element; ``"differences"``:
estimates with error bars), ``RANK`` (lower decides first: the most precise reference
explains a disagreement), ``version()``, ``run(problem, request) -> OracleResult`` and
``explain(exc, problem) -> str`` -- :class:`Oracle`. It receives a :class:`Problem` (clean,
validated data) and a :class:`Request` (what the pipeline asks of this run), and returns a
gradient for every block, its forward loss value and how long it took. It never raises for a
failure of its own framework: the registry turns the exception into ``error`` through
``explain``, so that one oracle's failure never loses the others' results.

Centered differences can do more than their first pass: :class:`Refines` adds
``refiner(problem)``, which the pipeline calls when it wants elements refined (a Richardson
ladder, the kink test, a block drilled into). Nothing is handed over inside a result.

Every object here is frozen: no stage edits another's output.
"""

from __future__ import annotations

import contextlib
import types
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Protocol, runtime_checkable

import numpy as np

from .._inputs import Blocks, Loss


@dataclass(frozen=True)
class Problem:
    """What every oracle sees: the loss, private float64 blocks, the extra arguments.

    ``options`` (read-only) holds the check's settings that oracles use: ``seed``, ``fd``,
    ``executor``, ``progress``, ``rebind_modules``.
    """

    loss: Loss
    blocks: Blocks          # pristine values; oracles copy before they touch anything
    args: tuple
    loss_value: float       # the numpy loss at the check point
    noise: float            # estimated rounding noise of the numpy loss at the check point
    options: Mapping = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "options", types.MappingProxyType(dict(self.options)))


@dataclass(frozen=True)
class Request:
    """What the pipeline asks of one oracle run.

    ``focus``: flat indices where the hand-written gradient disagrees with an autodiff
    reference (centered differences look there first); ``autodiff``: whether an autodiff
    reference ran (without one, centered differences cover every element they can afford).
    """

    focus: np.ndarray = field(default_factory=lambda: np.array([], np.int64))
    autodiff: bool = False


@dataclass(frozen=True)
class OracleResult:
    """One oracle's answer. ``grads[name]`` is float64 of the block's shape.

    ``errors[name]`` (centered differences only) is an error estimate per element, and
    ``covered[name]`` a boolean mask of the elements the oracle evaluated (autodiff covers
    every element). ``evaluations`` counts loss calls (centered differences), ``directions``
    holds their directional probes per block, ``mode`` says how an autodiff reference ran
    (``"jit"``, ``"eager"``, ``"functional writes"``).
    """

    name: str
    version: Optional[str] = None
    grads: Optional[Mapping] = None
    errors: Optional[Mapping] = None
    covered: Optional[Mapping] = None
    forward: Optional[float] = None
    seconds: float = 0.0
    error: Optional[str] = None
    skipped: bool = False
    notes: tuple = ()
    mode: Optional[str] = None
    evaluations: Optional[int] = None
    directions: Mapping = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "notes", tuple(self.notes))

    @property
    def ran(self) -> bool:
        return self.error is None and self.grads is not None

    @property
    def extra(self) -> Mapping:
        """The optional facts, as one read-only mapping (``evaluations``, ``directions``, ``mode``)."""
        out = {"evaluations": self.evaluations, "directions": self.directions, "mode": self.mode}
        return types.MappingProxyType({k: v for k, v in out.items() if v is not None and v != {}})


@runtime_checkable
class Oracle(Protocol):
    """A reference: see the module docstring. Modules implement it with module-level names."""

    NAME: str
    REQUIRES: Optional[str]
    KIND: str
    RANK: int

    def version(self) -> str: ...

    def run(self, problem: Problem, request: Request = ...) -> OracleResult: ...

    def explain(self, exc: BaseException, problem: Problem) -> str: ...


class Refiner(Protocol):
    """Centered differences on a private copy of the parameters, on request."""

    evaluations: int

    def first_pass(self, index: np.ndarray, rel_step: float = ...) -> tuple: ...

    def refine(self, index: np.ndarray, grad_scale: np.ndarray) -> Any: ...


@runtime_checkable
class Refines(Oracle, Protocol):
    """An oracle whose estimates can be refined where the pipeline asks (centered differences)."""

    def refiner(self, problem: Problem) -> Refiner: ...


def to_float64_block(value: Any, name: str, shape: tuple, oracle: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype != np.float64:
        raise TypeError(f"{oracle} returned {arr.dtype} for block `{name}`, not float64")
    return np.array(arr.reshape(shape), dtype=np.float64)


def framework_loss(problem: Problem, framework: str, functional: bool = False):
    """The loss to run under ``framework`` and whether it is the user's own for it.

    Returns ``(fn, given)``. A shared loss (array API or plain numpy) runs as the same code
    objects with ``np`` bound to the framework's numpy-compatible namespace (see
    ``crosscheck._rebind``); ``given`` is False then. A loss the user wrote for this
    framework (``loss={"torch": f}``) runs as it is and receives the framework's own arrays.
    """
    fn, how = problem.loss.for_framework(framework)
    if how == "given":
        return fn, True
    from .._rebind import run_rebound
    return run_rebound(fn, framework, functional), False


@contextlib.contextmanager
def library_scope(problem: Problem):
    """Within: the library modules named in ``rebind_modules`` count as the user's code."""
    from .._user_code import OPTED_IN

    token = OPTED_IN.set(tuple(problem.options.get("rebind_modules", ())))
    try:
        yield
    finally:
        OPTED_IN.reset(token)


def explain_failure(exc: BaseException, framework: str, problem: Problem) -> str:
    """One sentence naming what failed under ``framework`` and where."""
    from .._trace_errors import explain
    return explain(exc, framework, problem.loss.numpy)
