"""``jax.grad`` in float64 (x64 enabled for this computation only)."""

from __future__ import annotations

import time

import numpy as np

from ._base import (OracleResult, Problem, explain_failure, framework_loss,
                    to_float64_block)

NAME = "jax"
REQUIRES = "jax"


def version() -> str:
    import jax
    return f"jax {jax.__version__}"


def _convert(value, jnp):
    """numpy arrays become jax arrays, also inside dicts, lists and tuples of arguments."""
    if isinstance(value, np.ndarray):
        return jnp.asarray(value)
    if isinstance(value, dict):
        return {k: _convert(v, jnp) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_convert(v, jnp) for v in value)
    return value


def run(problem: Problem) -> OracleResult:
    import jax
    import jax.numpy as jnp

    loss = framework_loss(problem, "jax")
    blocks = problem.blocks
    start = time.perf_counter()
    with jax.enable_x64(True):
        params = {n: jnp.asarray(blocks.views[n].copy()) for n in blocks.names}
        args = tuple(_convert(a, jnp) for a in problem.args)

        def scalar(p):
            return jnp.reshape(loss(p, *args), ())

        # Tracing to a jaxpr first turns what plain `jax.grad` lets through silently — a
        # Python `if` on an array value, `.item()` — into an error naming the construct.
        jax.make_jaxpr(scalar)(params)
        value, grads = jax.value_and_grad(scalar)(params)
        value = float(value)
        out = {n: to_float64_block(grads[n], n, blocks.shapes[n], "jax") for n in blocks.names}
    return OracleResult(NAME, version=version(), grads=out, forward=value,
                        seconds=time.perf_counter() - start,
                        covered={n: np.ones(blocks.shapes[n], bool) for n in blocks.names})


def explain(exc: BaseException, problem: Problem) -> str:
    return explain_failure(exc, "jax", problem)
