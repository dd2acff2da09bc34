"""The one small protocol every reference oracle implements.

An oracle module defines ``NAME``, ``REQUIRES`` (the package it needs, or ``None``),
``version()`` and ``run(problem) -> OracleResult``. It receives a :class:`Problem` (clean,
validated data) and returns a gradient for every block, its forward loss value, and how long
it took; it never raises for a failure of its own framework: it returns ``error`` instead, so
that one oracle's failure never loses the others' results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .._inputs import Blocks, Loss


@dataclass
class Problem:
    """What every oracle sees: the loss, private float64 blocks, the extra arguments."""

    loss: Loss
    blocks: Blocks          # pristine values; oracles copy before they touch anything
    args: tuple
    loss_value: float       # the numpy loss at the check point
    noise: float            # estimated rounding noise of the numpy loss at the check point
    options: dict = field(default_factory=dict)


@dataclass
class OracleResult:
    """One oracle's answer. ``grads[name]`` is float64 of the block's shape.

    ``errors[name]`` (centered differences only) is an error estimate per element, and
    ``covered[name]`` a boolean mask of the elements the oracle evaluated (autodiff covers
    every element).
    """

    name: str
    version: Optional[str] = None
    grads: Optional[dict] = None
    errors: Optional[dict] = None
    covered: Optional[dict] = None
    forward: Optional[float] = None
    seconds: float = 0.0
    error: Optional[str] = None
    skipped: bool = False
    notes: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @property
    def ran(self) -> bool:
        return self.error is None and self.grads is not None


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


def library_scope(problem: Problem):
    """Within: the library modules named in ``rebind_modules`` count as the user's code."""
    from .._trace_errors import OPTED_IN

    class _Scope:
        def __enter__(self):
            self.token = OPTED_IN.set(tuple(problem.options.get("rebind_modules", ())))

        def __exit__(self, *exc):
            OPTED_IN.reset(self.token)

    return _Scope()


def explain_failure(exc: BaseException, framework: str, problem: Problem) -> str:
    """One sentence naming what failed under ``framework`` and where."""
    from .._trace_errors import explain
    return explain(exc, framework, problem.loss.numpy)
