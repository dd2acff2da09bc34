"""``jax.grad`` in float64 (x64 enabled for this computation only)."""

from __future__ import annotations

import contextlib
import functools
import threading
import time

import numpy as np

from ._base import (OracleResult, Problem, explain_failure, framework_loss, library_scope,
                    to_float64_block)

NAME = "jax"
REQUIRES = "jax"


def version() -> str:
    import jax
    return f"jax {jax.__version__}"


def _convert(value, jnp, given):
    """numpy arrays become jax arrays, also inside dicts, lists and tuples of arguments; for
    rebound numpy code, the user's objects have their methods rebound."""
    if isinstance(value, np.ndarray):
        return jnp.asarray(value)
    if isinstance(value, dict):
        return {k: _convert(v, jnp, given) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_convert(v, jnp, given) for v in value)
    if given:
        return value
    from .._rebind import rebind_object
    return rebind_object(value, "jax")


def run(problem: Problem) -> OracleResult:
    with library_scope(problem):
        return _run(problem)


def _run(problem: Problem) -> OracleResult:
    import jax
    import jax.numpy as jnp

    loss, given = framework_loss(problem, "jax")
    blocks = problem.blocks
    start = time.perf_counter()
    with jax.enable_x64(True):
        params = {n: jnp.asarray(blocks.views[n].copy()) for n in blocks.names}
        args = tuple(_convert(a, jnp, given) for a in problem.args)

        def scalar(p):
            return jnp.reshape(loss(p, *args), ())

        value, grads, mode = _value_and_grad(jax, scalar, params)
        value = float(value)
        out = {n: to_float64_block(grads[n], n, blocks.shapes[n], "jax") for n in blocks.names}
    return OracleResult(NAME, version=version(), grads=out, forward=value,
                        seconds=time.perf_counter() - start, extra={"mode": mode},
                        covered={n: np.ones(blocks.shapes[n], bool) for n in blocks.names})


def _value_and_grad(jax, scalar, params):
    """``jax.value_and_grad`` compiled with ``jax.jit`` where the code traces, eagerly where not.

    jit is the fast path: one compilation instead of one per primitive (cold, the seed net
    costs about a sixth of the eager time). Code that jit cannot trace but jax can still
    differentiate -- a Python ``if`` on an array value, a boolean mask computed from the data,
    shape arithmetic through numpy scalars -- runs eagerly, where values are concrete and each
    branch taken is differentiated exactly. Eagerly, ``.item()`` on a value that depends on the
    parameters would silently cut the gradient: :func:`_conversion_guard` makes it an error.
    """
    from jax import errors

    try:
        value, grads = jax.jit(jax.value_and_grad(scalar))(params)
        return value, grads, "jit"
    except (errors.ConcretizationTypeError, errors.TracerIntegerConversionError,
            errors.NonConcreteBooleanIndexError, errors.TracerArrayConversionError, IndexError):
        pass  # data-dependent Python: differentiate eagerly
    with _conversion_guard():
        value, grads = jax.value_and_grad(scalar)(params)
    return value, grads, "eager"


_GUARD = threading.local()


@contextlib.contextmanager
def _conversion_guard():
    """Within: ``.item()``/``.tolist()`` on a value that depends on the parameters raises NotTraceable.

    jax's eager tracers convert to Python numbers through ``item``: the gradient through that
    number is silently lost (``float(s.item()) * s`` would get half of d(s²)). The guard is a
    wrapper, installed once, around those two array methods; it acts only in a thread that is
    inside this context, and only on tracers (values that do not depend on the parameters are
    concrete arrays, and convert as usual).
    """
    _install_guard()
    _GUARD.active = getattr(_GUARD, "active", 0) + 1
    try:
        yield
    finally:
        _GUARD.active -= 1


@functools.lru_cache(maxsize=1)
def _install_guard():
    from jax._src import core

    for method in ("item", "tolist"):
        original = core.ShapedArray.__dict__.get(method)
        fun = getattr(original, "fun", None)
        if fun is None:
            continue

        def guarded(self, *args, _fun=fun, _method=method):
            if getattr(_GUARD, "active", 0) and isinstance(self, core.Tracer):
                from .._trace_errors import conversion_error
                raise conversion_error("jax", f".{_method}()")
            return _fun(self, *args)

        setattr(core.ShapedArray, method, core.aval_method(guarded))


def explain(exc: BaseException, problem: Problem) -> str:
    return explain_failure(exc, "jax", problem)
