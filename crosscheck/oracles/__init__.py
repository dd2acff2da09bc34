"""Reference oracles, found through one registry.

Adding an oracle is one module implementing :class:`Oracle` (see ``_base``) and one line in
``BUILTIN`` -- or, from outside the package, one call to :func:`register`. Which references
are exact (``AUTODIFF``) and which decides first (``PRIORITY``) come from each oracle's own
``KIND`` and ``RANK``, not from lists kept here.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import threading
import time
from typing import Union

from ._base import Oracle, OracleResult, Problem, Refiner, Refines, Request

BUILTIN = {
    "fd": "crosscheck.oracles._fd",
    "jax": "crosscheck.oracles._jax",
    "torch": "crosscheck.oracles._torch",
}
_REGISTRY: dict = dict(BUILTIN)     # name -> module path (imported on first use) or an Oracle
_LOCK = threading.Lock()


def register(oracle: Oracle) -> None:
    """Make ``oracle`` available by its ``NAME`` (``check(..., oracles=("fd", NAME))``).

    Raises:
        ValueError: ``oracle`` does not implement :class:`Oracle`, or its name is taken.
    """
    if not isinstance(oracle, Oracle):
        raise ValueError(f"{oracle!r} does not implement crosscheck's oracle protocol (NAME, "
                         f"REQUIRES, KIND, RANK, version, run, explain)")
    with _LOCK:
        if oracle.NAME in _REGISTRY and _REGISTRY[oracle.NAME] is not oracle:
            raise ValueError(f"an oracle named {oracle.NAME!r} is already registered")
        _REGISTRY[oracle.NAME] = oracle


def unregister(name: str) -> None:
    """Remove an oracle added with :func:`register` (the built-in ones stay)."""
    with _LOCK:
        if name not in BUILTIN:
            _REGISTRY.pop(name, None)


def names() -> tuple:
    """Every registered oracle's name, the built-in ones first."""
    return tuple(_REGISTRY)


def get(name: str) -> Oracle:
    """The oracle called ``name`` (its module is imported on first use)."""
    entry: Union[str, Oracle] = _REGISTRY[name]
    return importlib.import_module(entry) if isinstance(entry, str) else entry


def autodiff() -> tuple:
    """Names of the exact references (every element, no error bars), in registration order."""
    return tuple(n for n in _REGISTRY if get(n).KIND == "autodiff")


def priority() -> tuple:
    """Names in the order they decide: the most precise reference first (lowest ``RANK``)."""
    return tuple(sorted(_REGISTRY, key=lambda n: get(n).RANK))


def refiner(name: str, problem: Problem) -> Refiner:
    """A refiner from oracle ``name``, which must implement :class:`Refines`."""
    oracle = get(name)
    if not isinstance(oracle, Refines):
        raise TypeError(f"oracle {name!r} cannot refine its estimates")
    return oracle.refiner(problem)


def run(name: str, problem: Problem, request: Request = Request()) -> OracleResult:
    """Run one oracle; a missing framework or a failure becomes ``error``, never an exception."""
    oracle = get(name)
    if oracle.REQUIRES:
        try:
            found = importlib.util.find_spec(oracle.REQUIRES) is not None
        except (ImportError, ValueError) as exc:   # a finder that refuses, a broken entry
            return OracleResult(name, skipped=True,
                                error=f"skipped: {oracle.REQUIRES} cannot be imported "
                                      f"({type(exc).__name__}: {exc})")
        if not found:
            return OracleResult(
                name, skipped=True,
                error=f"skipped: {oracle.REQUIRES} is not installed "
                      f"(`pip install {oracle.REQUIRES}` to add this reference)")
    start = time.perf_counter()
    try:
        result = oracle.run(problem, request)
    except Exception as exc:  # noqa: BLE001 - one oracle's failure never loses the others
        result = OracleResult(name, error=oracle.explain(exc, problem))
    seconds = result.seconds or time.perf_counter() - start
    version = result.version
    if version is None:
        try:
            version = oracle.version()
        except Exception:  # noqa: BLE001 - a version string is never worth a failure
            version = None
    return dataclasses.replace(result, seconds=seconds, version=version)


def __getattr__(name: str):
    # AUTODIFF and PRIORITY read as constants, derived from the registry when read
    if name == "AUTODIFF":
        return autodiff()
    if name == "PRIORITY":
        return priority()
    if name == "REGISTRY":
        import types
        return types.MappingProxyType(_REGISTRY)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["AUTODIFF", "BUILTIN", "Oracle", "OracleResult", "PRIORITY", "Problem", "Refiner",
           "Refines", "Request", "autodiff", "get", "names", "priority", "refiner", "register",
           "run", "unregister"]
