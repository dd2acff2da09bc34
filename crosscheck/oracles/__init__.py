"""Reference oracles, found through one registry.

Adding an oracle touches one new module (implementing the protocol in ``_base``) and one
line here.
"""

from __future__ import annotations

import importlib
import importlib.util
import time

from ._base import OracleResult, Problem

REGISTRY = {
    "fd": "crosscheck.oracles._fd",
    "jax": "crosscheck.oracles._jax",
    "torch": "crosscheck.oracles._torch",
}
AUTODIFF = ("jax", "torch")
PRIORITY = ("jax", "torch", "fd")   # the most precise reference first: it decides and explains


def names() -> tuple:
    return tuple(REGISTRY)


def run(name: str, problem: Problem) -> OracleResult:
    """Run one oracle; a missing framework or a failure becomes ``error``, never an exception."""
    module = importlib.import_module(REGISTRY[name])
    if module.REQUIRES:
        try:
            found = importlib.util.find_spec(module.REQUIRES) is not None
        except (ImportError, ValueError) as exc:   # a finder that refuses, a broken entry
            return OracleResult(name, skipped=True,
                                error=f"skipped: {module.REQUIRES} cannot be imported "
                                      f"({type(exc).__name__}: {exc})")
        if not found:
            return OracleResult(
                name, skipped=True,
                error=f"skipped: {module.REQUIRES} is not installed "
                      f"(`pip install {module.REQUIRES}` to add this reference)")
    start = time.perf_counter()
    try:
        result = module.run(problem)
    except Exception as exc:  # noqa: BLE001 - one oracle's failure never loses the others
        result = OracleResult(name, error=module.explain(exc, problem)
                              if hasattr(module, "explain") else f"{type(exc).__name__}: {exc}")
    result.seconds = result.seconds or time.perf_counter() - start
    if result.version is None:
        try:
            result.version = module.version()
        except Exception:  # noqa: BLE001 - a version string is never worth a failure
            result.version = None
    return result


__all__ = ["AUTODIFF", "PRIORITY", "OracleResult", "Problem", "REGISTRY", "names", "run"]
