"""What rebinding costs: a plain-numpy loss run under jax/torch against an array-API rewrite.

crosscheck runs a loss written in plain numpy under the jax and torch oracles by rebinding
``np`` in the user's own code (``crosscheck._rebind``): the same code objects, with ``np``
resolving to ``jax.numpy`` or to crosscheck's numpy layer over torch, globals read through a
translating view, and (under torch) a ``TorchFunctionMode`` guard against ``.item()``. The
alternative is to rewrite the loss against the array API (``xp = array_namespace(X)``), which
the frameworks run natively. This script measures, in one process, the per-call time of
exactly what the oracles do -- ``jax.value_and_grad`` (eager, x64) and torch forward +
``torch.autograd.grad`` (float64) -- on both versions of the same loss, and prints the ratio
rebound / array API:

* ``seed net``: the seeds' 3-layer net, 47 parameters: ``reference/seed_numpy.py`` (verbatim
  numpy, relu/sigmoid from ``gc_utils``) against ``reference/seed_net.py`` (array API);
* ``MLP``: a ReLU MLP with a sigmoid cross-entropy read-out, written both ways below.

Each time is the median over rounds of the mean per call within a round; the two versions
alternate within every round so that a noisy machine slows both alike. ``first call`` is the
one-time cost of the first rebound call (building the function views) over a warm call;
``without the guard`` is the rebound loss under torch without the ``TorchFunctionMode`` that
turns ``.item()``/``float()`` on a traced tensor into an error (``run_rebound`` adds it).

Usage::

    python scripts/bench_rebind.py [--quick] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import sys


def _threads_from_argv(argv) -> str:
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return "1"


if __name__ == "__main__":   # before numpy is imported: BLAS reads these once
    _n = _threads_from_argv(sys.argv[1:])
    for _k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_k, _n)

import importlib.util   # noqa: E402
import platform         # noqa: E402
import statistics       # noqa: E402
import time             # noqa: E402
from pathlib import Path   # noqa: E402

import numpy as np      # noqa: E402
from array_api_compat import array_namespace   # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- the MLP, twice
def mlp_numpy(parameters, X, Y):
    """A ReLU MLP as people write it in numpy (the seeds' style)."""
    L = len(parameters) // 2
    m = X.shape[1]
    A = X
    for l in range(1, L):
        Z = np.dot(parameters["W" + str(l)], A) + parameters["b" + str(l)]
        A = np.maximum(0, Z)
    Z = np.dot(parameters["W" + str(L)], A) + parameters["b" + str(L)]
    AL = 1 / (1 + np.exp(-Z))
    logprobs = np.multiply(-np.log(AL), Y) + np.multiply(-np.log(1 - AL), 1 - Y)
    return 1. / m * np.sum(logprobs)


def mlp_array_api(parameters, X, Y):
    """The same MLP against the array API."""
    xp = array_namespace(X)
    L = len(parameters) // 2
    m = X.shape[1]
    A = X
    for l in range(1, L):
        Z = parameters["W" + str(l)] @ A + parameters["b" + str(l)]
        A = xp.maximum(Z, xp.zeros_like(Z))
    Z = parameters["W" + str(L)] @ A + parameters["b" + str(L)]
    AL = 1 / (1 + xp.exp(-Z))
    logprobs = -xp.log(AL) * Y + -xp.log(1 - AL) * (1 - Y)
    return 1.0 / m * xp.sum(logprobs)


def mlp_problem(sizes, batch, seed=0):
    rng = np.random.default_rng(seed)
    params = {}
    for l in range(1, len(sizes)):
        params[f"W{l}"] = rng.standard_normal((sizes[l], sizes[l - 1])) * np.sqrt(2 / sizes[l - 1])
        params[f"b{l}"] = 0.1 * rng.standard_normal((sizes[l], 1))
    X = rng.standard_normal((sizes[0], batch))
    Y = (rng.random((1, batch)) > 0.5).astype(np.float64)
    return params, X, Y


def _load(name):
    from crosscheck._targets import _load_file   # the command line's loader: folder on sys.path
    return _load_file(ROOT / "reference" / f"{name}.py")


# ----------------------------------------------------------------------------- the runners
def jax_runner(loss, params, args):
    import jax
    import jax.numpy as jnp

    with jax.enable_x64(True):
        p = {k: jnp.asarray(v) for k, v in params.items()}
        a = tuple(jnp.asarray(x) for x in args)
        vg = jax.value_and_grad(lambda q: jnp.reshape(loss(q, *a), ()))

    def call():
        with jax.enable_x64(True):
            value, grads = vg(p)
            jax.block_until_ready(grads)
        return value
    return call


def torch_runner(loss, params, args, numpy_layer=False):
    """One torch autograd call of ``loss``; rebound numpy code gets torch's numpy-layer arrays,
    as the torch oracle gives it (``numpy_layer``), array-API code gets tensors."""
    import torch

    from crosscheck._torch_numpy import unwrap, wrap

    p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    a = tuple(torch.from_numpy(np.array(x, dtype=np.float64)) for x in args)
    leaves = list(p.values())
    if numpy_layer:
        p, a = {k: wrap(v) for k, v in p.items()}, tuple(wrap(x) for x in a)

    def call():
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)   # as the torch oracle does
        try:
            value = unwrap(loss(p, *a))
            torch.autograd.grad(value, leaves)
        finally:
            torch.set_default_dtype(previous)
        return value
    return call


def per_call(fns, calls, rounds):
    """Median over ``rounds`` of the mean per-call seconds, the functions alternating."""
    samples = [[] for _ in fns]
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            samples[i].append((time.perf_counter() - start) / calls)
    return [statistics.median(s) for s in samples]


def first_call_overhead(loss, framework, params, args):
    """Seconds of the first call of a freshly rebound copy of ``loss`` beyond a warm call."""
    import types

    from crosscheck._rebind import run_rebound

    fresh = types.FunctionType(loss.__code__, loss.__globals__, loss.__name__,
                               loss.__defaults__, loss.__closure__)
    start = time.perf_counter()
    if framework == "jax":
        call = jax_runner(run_rebound(fresh, framework), params, args)
    else:
        call = torch_runner(run_rebound(fresh, framework), params, args, numpy_layer=True)
    call()
    first = time.perf_counter() - start
    warm = per_call([call], 1, 3)[0]
    return first - warm


def measure(label, numpy_loss, api_loss, params, args, calls, rounds):
    from crosscheck._rebind import rebind, run_rebound, torch_namespace

    n = sum(v.size for v in params.values())
    rows = []
    numpy_time = per_call([lambda: numpy_loss(params, *args)], calls, rounds)[0]
    for framework, runner in (("jax", jax_runner), ("torch", torch_runner)):
        layer = {"numpy_layer": True} if framework == "torch" else {}
        rebound = runner(run_rebound(numpy_loss, framework), params, args, **layer)
        native = runner(api_loss, params, args)
        v1, v2 = _float(rebound()), _float(native())   # warm up, and the same loss value
        assert abs(v1 - v2) <= 1e-12 * abs(v2), (label, framework, v1, v2)
        fns = [rebound, native]
        if framework == "torch":   # the same rebound loss without run_rebound's .item() guard
            fns.append(runner(rebind(numpy_loss, torch_namespace()), params, args, numpy_layer=True))
            fns[-1]()
        times = per_call(fns, calls, rounds)
        t_rebound, t_native = times[:2]
        rows.append({"model": label, "params": n, "framework": framework,
                     "rebound": t_rebound, "array_api": t_native,
                     "unguarded": times[2] if len(times) > 2 else None,
                     "ratio": t_rebound / t_native, "numpy": numpy_time,
                     "first": first_call_overhead(numpy_loss, framework, params, args)})
    return rows


def _float(value):
    return float(value.detach()) if hasattr(value, "detach") else float(value)


def _ms(seconds):
    return f"{seconds * 1e3:.3f}"


def table(rows):
    lines = ["| model | params | oracle | rebound numpy (ms/call) | array API (ms/call) | "
             "ratio rebound / array API | rebound without the guard (ms/call) | "
             "numpy forward alone (ms) | first call extra (ms) |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['params']:,} | {r['framework']} | {_ms(r['rebound'])} | "
                     f"{_ms(r['array_api'])} | {r['ratio']:.2f} | "
                     f"{_ms(r['unguarded']) if r['unguarded'] is not None else '—'} | {_ms(r['numpy'])} | "
                     f"{_ms(r['first'])} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, a smaller MLP")
    parser.add_argument("--threads", default="1", help="BLAS and torch threads (default 1)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(int(args.threads))
    calls, rounds = (5, 3) if args.quick else (20, 7)
    sizes, batch = ((32, 64, 64, 1), 64) if args.quick else ((128, 512, 512, 1), 256)

    seed_numpy, seed_net = _load("seed_numpy"), _load("seed_net")
    X, Y, parameters = seed_numpy.gradient_check_n_test_case()
    rows = measure("seed net", seed_numpy.loss, seed_net.loss, parameters,
                   (X, Y.astype(np.float64)), calls, rounds)
    params, Xm, Ym = mlp_problem(sizes, batch)
    rows += measure(f"MLP {'-'.join(map(str, sizes))}, batch {batch}", mlp_numpy, mlp_array_api,
                    params, (Xm, Ym), calls, rounds)
    import jax

    print(f"<!-- python {platform.python_version()}, numpy {np.__version__}, jax {jax.__version__}, "
          f"torch {torch.__version__}, {args.threads} thread(s), {calls} calls x {rounds} rounds"
          f"{', --quick' if args.quick else ''} -->")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
