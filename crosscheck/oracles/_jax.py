"""``jax.grad`` in float64 (x64 enabled for this computation only)."""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import threading
import time

import numpy as np

from ._base import (OracleResult, Problem, Request, explain_failure, framework_loss, library_scope,
                    to_float64_block)

NAME = "jax"
REQUIRES = "jax"
KIND = "autodiff"
RANK = 0          # exact and the most precise: decides and explains first


def version() -> str:
    import jax
    return f"jax {jax.__version__}"


def _to_device(array: np.ndarray):
    """A jax array of ``array``: ``jax.device_put`` copies without compiling anything
    (``jnp.asarray`` compiles a conversion per shape on first use: most of a cold check)."""
    import jax

    if array.dtype.kind not in "biufc":
        return array   # strings, objects: left for the loss to use as they are
    return jax.device_put(array)


def _convert(value, jnp, given):
    """numpy arrays become jax arrays, also inside dicts, lists and tuples of arguments; for
    rebound numpy code, the user's objects have their methods rebound."""
    if isinstance(value, np.ndarray):
        return _to_device(value)
    if isinstance(value, dict):
        return {k: _convert(v, jnp, given) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_convert(v, jnp, given) for v in value)
    if given:
        return value
    from .._rebind import rebind_object
    from .._user_calls import private_copy
    return rebind_object(private_copy(value), "jax")   # its methods may write into it


def run(problem: Problem, request: Request = Request()) -> OracleResult:
    with library_scope(problem):
        return _run(problem)


def _run(problem: Problem) -> OracleResult:
    import jax
    import jax.numpy as jnp

    loss, given = framework_loss(problem, "jax")
    blocks = problem.blocks
    start = time.perf_counter()
    with jax.enable_x64(True):
        params = {n: _to_device(blocks.views[n].copy()) for n in blocks.names}
        args = tuple(_convert(a, jnp, given) for a in problem.args)

        def scalar(p):
            return jnp.reshape(loss(p, *args), ())

        value, grads, mode = _value_and_grad(jax, scalar, params)
        value = float(value)
        out = {n: to_float64_block(grads[n], n, blocks.shapes[n], "jax") for n in blocks.names}
    return OracleResult(NAME, version=version(), grads=out, forward=value,
                        seconds=time.perf_counter() - start, mode=mode,
                        covered={n: np.ones(blocks.shapes[n], bool) for n in blocks.names})


_COMPILED: "collections.OrderedDict" = collections.OrderedDict()
_COMPILED_SIZE = 32
_COMPILED_LOCK = threading.Lock()


def _jaxpr_as_fun(closed):
    try:
        from jax.extend.core import jaxpr_as_fun
    except ImportError:   # jax before jax.extend.core
        from jax.core import jaxpr_as_fun
    return jaxpr_as_fun(closed)


def _jitted(jax, traced, params):
    """``function(params)`` compiled with ``jax.jit``, reusing the compilation of an identical trace.

    ``jax.jit`` caches per function object, and each check builds a new function (a closure
    over its arguments), so a second check of the same model would compile again (0.2 s on
    the seed net, warm, against 0.03 s for the rest of the check). Keeping the function
    across checks would be unsound: the loss reads globals and module attributes at call time,
    and a cached trace would not see them change. So every check traces (cheap), and the
    compiled executable is reused only when the trace -- the jaxpr and its constants -- is
    exactly the one compiled before.
    """
    closed, shape = traced
    key = (str(closed.jaxpr), tuple(_constant_key(c) for c in closed.consts))
    with _COMPILED_LOCK:
        compiled = _COMPILED.get(key)
        if compiled is None:
            compiled = _COMPILED[key] = jax.jit(_jaxpr_as_fun(closed))
            while len(_COMPILED) > _COMPILED_SIZE:
                _COMPILED.popitem(last=False)
        _COMPILED.move_to_end(key)
    outputs = compiled(*jax.tree_util.tree_leaves(params))
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(shape), outputs)


def _constant_key(value):
    array = np.asarray(value)
    return (array.shape, array.dtype.str, hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest())


def _value_and_grad(jax, scalar, params):
    """``jax.value_and_grad`` compiled with ``jax.jit`` where the code traces, eagerly where not.

    jit is the fast path: one compilation instead of one per primitive (cold, the seed net
    costs about a sixth of the eager time). Code that jit cannot trace but jax can still
    differentiate -- a Python ``if`` on an array value, a boolean mask computed from the data,
    shape arithmetic through numpy scalars -- runs eagerly, where values are concrete and each
    branch taken is differentiated exactly. Eagerly, ``.item()`` on a value that depends on the
    parameters would silently cut the gradient: :func:`_conversion_guard` makes it an error.
    """
    from .._trace_errors import NotTraceable

    try:
        traced = jax.make_jaxpr(jax.value_and_grad(scalar), return_shape=True)(params)
    except NotTraceable:
        raise   # crosscheck's own refusal (np.random, a missing name): the same eagerly
    except Exception:  # noqa: BLE001 - data-dependent Python; eager says what is really wrong
        traced = None
    if traced is not None:
        value, grads = _jitted(jax, traced, params)
        return value, grads, "jit"
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
