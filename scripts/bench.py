"""Benchmark crosscheck against its peers on ReLU MLPs from 47 to about a million parameters.

Every time is a ratio to the *floor*: ``2n`` bare calls of the same numpy loss at the same
parameters, in the same process, measured in the same run (on a shared, noisy machine only
ratios mean anything). For each method: its time on the correct model, and whether it stayed
quiet there and flagged each planted bug.

Methods:
    * ``check(fd="all")``: every element, one centered difference each, refined where needed;
      with the jax and torch oracles.
    * ``check(fd="auto")``: sampled centered differences when autodiff covers every element.
    * the seeds' loop: per element, copy the whole vector, perturb, rebuild the dict,
      evaluate (``epsilon = 1e-7``, one relative difference, flagged above 2e-7).
    * ``torch.autograd.gradcheck`` (full and ``fast_mode=True``) and
      ``jax.test_util.check_grads(order=1, modes=["rev"])`` on a function whose custom backward
      (``torch.autograd.Function`` / ``jax.custom_vjp``) *is* the hand-written gradient.

Plus localisation (``--taps``): ``check(fd="auto")`` on the 64-128-64-1 MLP with a grad that
also returns the intermediates' gradients (``dz1`` … ``dr``, tapped automatically) against the
same check with the parameters' keys only, and a forward with explicit ``crosscheck.tap``
calls against the same forward without, in a plain run.

Plus Dask (``check(fd="all", executor=client)`` on ``local_cluster(2)`` against in-process),
glibc's allocator settings in Dask workers (``MALLOC_TRIM_THRESHOLD_``,
``MALLOC_MMAP_THRESHOLD_``), and peak traced memory of the ~90k check.

Usage::

    python scripts/bench.py [--quick] [--out FILE] [--no-dask] [--threads N]

``--quick`` runs a small subset (a smoke test uses it). BLAS and torch run on ``--threads``
threads (default 1, as in a single-threaded Dask worker).
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

import inspect        # noqa: E402
import platform       # noqa: E402
import time           # noqa: E402
import tracemalloc    # noqa: E402
from dataclasses import dataclass, field   # noqa: E402
from pathlib import Path                   # noqa: E402

import numpy as np    # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEEDS_THRESHOLD = 2e-7      # the notebook's verdict for gradient_check_n
SEEDS_EPSILON = 1e-7
FLOOR_SAMPLE = 0.3          # seconds of bare loss calls per floor sample


# --- models --------------------------------------------------------------------------------

def mlp_loss(params, X, y):
    """0.5·mean of squared error of a 3-layer ReLU MLP; array API (numpy, torch, jax)."""
    from array_api_compat import array_namespace

    xp = array_namespace(X)
    z1 = params["W1"] @ X + params["b1"]
    a1 = z1 * (z1 > 0)
    z2 = params["W2"] @ a1 + params["b2"]
    a2 = z2 * (z2 > 0)
    r = params["W3"] @ a2 + params["b3"] - y
    return 0.5 * xp.sum(r * r) / X.shape[1]


def mlp_grad(params, X, y):
    """The correct hand-written backward of :func:`mlp_loss`, the seeds' ``dW1`` keys."""
    W1, b1, W2, b2, W3, b3 = (params[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3"))
    m = X.shape[1]
    z1 = W1 @ X + b1
    a1 = z1 * (z1 > 0)
    z2 = W2 @ a1 + b2
    a2 = z2 * (z2 > 0)
    dz3 = (W3 @ a2 + b3 - y) / m
    da2 = W3.T @ dz3
    dz2 = da2 * (z2 > 0)
    da1 = W2.T @ dz2
    dz1 = da1 * (z1 > 0)
    return {"dW1": dz1 @ X.T, "db1": dz1.sum(axis=1, keepdims=True),
            "dW2": dz2 @ a1.T, "db2": dz2.sum(axis=1, keepdims=True),
            "dW3": dz3 @ a2.T, "db3": dz3.sum(axis=1, keepdims=True)}


def mlp_grad_intermediates(params, X, y):
    """:func:`mlp_grad` that also returns the intermediates' gradients (what localisation checks)."""
    W1, b1, W2, b2, W3, b3 = (params[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3"))
    z1 = W1 @ X + b1
    a1 = z1 * (z1 > 0)
    z2 = W2 @ a1 + b2
    a2 = z2 * (z2 > 0)
    dr = (W3 @ a2 + b3 - y) / X.shape[1]
    da2 = W3.T @ dr
    dz2 = da2 * (z2 > 0)
    da1 = W2.T @ dz2
    dz1 = da1 * (z1 > 0)
    return {"dW1": dz1 @ X.T, "db1": dz1.sum(axis=1, keepdims=True),
            "dW2": dz2 @ a1.T, "db2": dz2.sum(axis=1, keepdims=True),
            "dW3": dr @ a2.T, "db3": dr.sum(axis=1, keepdims=True),
            "dr": dr, "da2": da2, "dz2": dz2, "da1": da1, "dz1": dz1}


def mlp_loss_tapped(params, X, y):
    """:func:`mlp_loss` with an explicit ``crosscheck.tap`` on each intermediate."""
    from array_api_compat import array_namespace

    from crosscheck import tap

    xp = array_namespace(X)
    z1 = tap("z1", params["W1"] @ X + params["b1"])
    a1 = tap("a1", z1 * (z1 > 0))
    z2 = tap("z2", params["W2"] @ a1 + params["b2"])
    a2 = tap("a2", z2 * (z2 > 0))
    r = tap("r", params["W3"] @ a2 + params["b3"] - y)
    return 0.5 * xp.sum(r * r) / X.shape[1]


def bench_taps(log, rounds: int = 7) -> list:
    """Localisation's cost on the 16,641-parameter MLP: a check with taps over one without
    (alternating, in process, medians), and a tapped plain forward over the untapped one."""
    model = mlp((64, 128, 64, 1), 32)
    with_taps, without = [], []
    report = None
    run_check(model, mlp_grad_intermediates, "auto")          # untimed: jax compiles once
    for _ in range(rounds):
        report, seconds, _, _ = run_check(model, mlp_grad_intermediates, "auto")
        with_taps.append(seconds)
        without.append(run_check(model, mlp_grad, "auto")[1])
    a, b = float(np.median(with_taps)), float(np.median(without))
    entry = report.entry_points if report is not None else None
    log(f"taps: check with {a:.3f} s, without {b:.3f} s")
    forward = {"tapped": mlp_loss_tapped, "plain": mlp_loss}
    per_call = {k: [] for k in forward}
    for _ in range(rounds):
        for name, fn in forward.items():
            t = time.perf_counter()
            for _ in range(2000):
                fn(model.params, *model.args)
            per_call[name].append((time.perf_counter() - t) / 2000)
    tapped, plain = (float(np.median(per_call[k])) for k in ("tapped", "plain"))
    return ["### Localisation (16,641-parameter MLP, 64-128-64-1, batch 32)", "",
            f"- `check(fd=\"auto\")` with a grad returning `dr, da2, dz2, da1, dz1` too "
            f"(five automatic taps, {len(report.intermediates) if report else 0} quantities, "
            f"entry points {entry}): {a:.3f} s; the same check with the parameters' keys only: "
            f"{b:.3f} s; ratio **{a / b:.2f}×** (target ≤ 1.2×; medians of {rounds} alternating runs).",
            f"- a plain forward with five `crosscheck.tap` calls: {tapped * 1e6:.1f} µs per call, "
            f"without: {plain * 1e6:.1f} µs; ratio **{tapped / plain:.3f}×** (medians of {rounds} "
            f"rounds of 2,000 calls)."]


def grad_element_bug(params, X, y):
    """One wrong element: the largest entry of ``dW1`` is 1% too large."""
    g = mlp_grad(params, X, y)
    d = g["dW1"].copy()
    d.flat[int(np.argmax(np.abs(d)))] *= 1.01
    g["dW1"] = d
    return g


def grad_block_bug(params, X, y):
    """A scaled block: ``db1`` twice too large (a stray factor 2)."""
    g = mlp_grad(params, X, y)
    g["db1"] = 2.0 * g["db1"]
    return g


def mlp_model(sizes, batch, seed=0):
    rng = np.random.default_rng(seed)
    params = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]), 1):
        params[f"W{i}"] = rng.standard_normal((b, a)) * np.sqrt(2.0 / a)
        params[f"b{i}"] = rng.standard_normal((b, 1)) * 0.1
    X = rng.standard_normal((sizes[0], batch))
    y = rng.standard_normal((1, batch))
    return params, (X, y)


@dataclass
class Model:
    label: str
    loss: object
    params: dict
    args: tuple
    cases: dict                  # {"correct": grad, "element": grad, "block": grad}
    expect: dict                 # blocks each bug should flag
    full: bool = True            # run the O(n) methods (fd="all", seeds' loop, gradcheck full)
    gradcheck_full_cases: tuple = ("correct", "element", "block")
    fd_all_cases: tuple = ("correct", "element", "block")
    memory: bool = False         # trace peak memory of the flag-only check runs
    notes: list = field(default_factory=list)

    @property
    def n(self) -> int:
        return int(sum(np.size(v) for v in self.params.values()))


def seed_model() -> Model:
    import importlib.util

    path = ROOT / "reference" / "seed_net.py"
    spec = importlib.util.spec_from_file_location("_bench_seed_net", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    c, b = module.correct, module.buggy
    return Model("seed net 5-3-1 (seeds' test case)", c.loss, dict(c.params), tuple(c.args),
                 {"correct": c.grad, "block": b.grad}, {"block": {"W2", "b1"}})


def mlp(sizes, batch, **kw) -> Model:
    params, args = mlp_model(sizes, batch)
    label = "-".join(map(str, sizes)) + f" batch {batch}"
    return Model(label, mlp_loss, params, args,
                 {"correct": mlp_grad, "element": grad_element_bug, "block": grad_block_bug},
                 {"element": {"W1"}, "block": {"b1"}}, **kw)


# --- the methods ---------------------------------------------------------------------------

class Floor:
    """The bare loss's per-call cost, sampled between the methods of one model.

    The machine is shared and its load drifts, so the floor is not one measurement but the
    median of short samples (about ``FLOOR_SAMPLE`` seconds of calls each) taken before every
    method, times ``2n``.
    """

    def __init__(self, model: Model):
        self.model = model
        self.per_call = []
        self.calls = 0

    def sample(self) -> None:
        loss, params, args = self.model.loss, self.model.params, self.model.args
        t = time.perf_counter()
        loss(params, *args)
        one = max(time.perf_counter() - t, 1e-7)
        k = max(3, int(FLOOR_SAMPLE / one))
        t = time.perf_counter()
        for _ in range(k):
            loss(params, *args)
        self.per_call.append((time.perf_counter() - t) / k)
        self.calls += k

    @property
    def seconds(self) -> float:
        return float(np.median(self.per_call)) * 2 * self.model.n

    def note(self) -> str:
        return (f"median of {len(self.per_call)} samples ({self.calls:,} calls in all) taken "
                f"between the methods, × 2n = {2 * self.model.n:,}")


def check_kwargs(**wanted) -> tuple:
    """The options ``check`` accepts now (the ``fd=``/``executor=`` options may be newer)."""
    import crosscheck

    accepted = inspect.signature(crosscheck.check).parameters
    return {k: v for k, v in wanted.items() if k in accepted}, \
        [k for k in wanted if k not in accepted]


def run_check(model, grad, fd, memory=False, **extra):
    import crosscheck

    kwargs, missing = check_kwargs(fd=fd, progress=False, **extra)
    if memory:
        tracemalloc.start()
    t = time.perf_counter()
    report = crosscheck.check(model.loss, grad, model.params, *model.args, **kwargs)
    seconds = time.perf_counter() - t
    peak = None
    if memory:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return report, seconds, missing, peak


def _vector(params):
    return np.concatenate([np.ravel(v) for v in params.values()]).reshape(-1, 1)


def _to_dict(theta, params):
    out, start = {}, 0
    for k, v in params.items():
        out[k] = theta[start:start + v.size].reshape(v.shape)
        start += v.size
    return out


def seeds_gradapprox(model) -> np.ndarray:
    """The seeds' loop: copy the vector, perturb one element, rebuild the dict, evaluate."""
    theta = _vector(model.params)
    n = theta.shape[0]
    plus, minus = np.zeros((n, 1)), np.zeros((n, 1))
    for i in range(n):
        tp = np.copy(theta)
        tp[i] = tp[i] + SEEDS_EPSILON
        plus[i] = model.loss(_to_dict(tp, model.params), *model.args)
        tm = np.copy(theta)
        tm[i] = tm[i] - SEEDS_EPSILON
        minus[i] = model.loss(_to_dict(tm, model.params), *model.args)
    return (plus - minus) / (2 * SEEDS_EPSILON)


def hand_vector(model, grad) -> np.ndarray:
    g = grad(model.params, *model.args)
    return np.concatenate([np.ravel(g.get("d" + k, g.get(k))) for k in model.params]).reshape(-1, 1)


def seeds_difference(model, grad, approx) -> float:
    h = hand_vector(model, grad)
    return float(np.linalg.norm(h - approx) / (np.linalg.norm(h) + np.linalg.norm(approx)))


def torch_hand_function(model, grad):
    """``f(*tensors) -> loss`` whose backward is the hand-written gradient."""
    import torch

    names = list(model.params)
    targs = tuple(torch.as_tensor(a) for a in model.args)

    class Hand(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *tensors):
            ctx.save_for_backward(*tensors)
            return model.loss(dict(zip(names, tensors)), *targs)

        @staticmethod
        def backward(ctx, g):
            params = {n: t.detach().numpy() for n, t in zip(names, ctx.saved_tensors)}
            hand = grad(params, *model.args)
            return tuple(g * torch.from_numpy(np.array(hand.get("d" + n, hand.get(n)),
                                                       dtype=np.float64)) for n in names)

    inputs = tuple(torch.tensor(model.params[n], dtype=torch.float64, requires_grad=True)
                   for n in names)
    return Hand.apply, inputs


def run_gradcheck(model, grad, fast):
    """``(flagged, seconds)``. In fast mode, a failure is not explained.

    On a failure, fast mode re-runs the full slow-mode Jacobian (``2n`` forward calls) only to
    write its error message: hours on the ~1M model. That explanation is replaced by a stub
    here; its cost is the full gradcheck's.
    """
    import torch

    module = sys.modules["torch.autograd.gradcheck"]
    explain = module._run_slow_mode_and_get_error
    module._run_slow_mode_and_get_error = lambda *a, **k: "\n(slow-mode explanation skipped)"
    fn, inputs = torch_hand_function(model, grad)
    try:
        t = time.perf_counter()
        ok = torch.autograd.gradcheck(fn, inputs, raise_exception=False, fast_mode=fast)
        return not ok, time.perf_counter() - t
    finally:
        module._run_slow_mode_and_get_error = explain


def jax_hand_function(model, grad):
    import jax
    import jax.numpy as jnp

    names = list(model.params)
    jargs = tuple(jnp.asarray(a) for a in model.args)

    @jax.custom_vjp
    def f(*ps):
        return model.loss(dict(zip(names, ps)), *jargs)

    def fwd(*ps):
        return f(*ps), ps

    def host(*ps):
        hand = grad({n: np.asarray(p) for n, p in zip(names, ps)}, *model.args)
        return tuple(np.array(hand.get("d" + n, hand.get(n)), dtype=np.float64) for n in names)

    def bwd(ps, g):
        shapes = tuple(jax.ShapeDtypeStruct(p.shape, p.dtype) for p in ps)
        return tuple(g * d for d in jax.pure_callback(host, shapes, *ps))

    f.defvjp(fwd, bwd)
    return f, tuple(jnp.asarray(model.params[n]) for n in names)


def run_check_grads(model, grad):
    import jax
    from jax.test_util import check_grads

    with jax.enable_x64(True):
        f, args = jax_hand_function(model, grad)
        t = time.perf_counter()
        try:
            check_grads(f, args, order=1, modes=["rev"])
            flagged = False
        except AssertionError:
            flagged = True
    return flagged, time.perf_counter() - t


# --- the table -----------------------------------------------------------------------------

@dataclass
class Row:
    model: str
    n: int
    method: str
    seconds: float = None
    floor: float = None
    flags: dict = field(default_factory=dict)   # case -> text
    note: str = ""


def verdict_text(model, case, flagged_blocks=None, flagged=None) -> str:
    """'quiet' / 'FALSE ALARM' on the correct model, 'caught' / 'missed' on a bug."""
    if flagged_blocks is not None:
        flagged = bool(flagged_blocks)
        where = f" ({', '.join(sorted(flagged_blocks))})" if flagged_blocks else ""
    else:
        where = ""
    if case == "correct":
        return "quiet" if not flagged else f"**FALSE ALARM**{where}"
    if not flagged:
        return "**missed**"
    if flagged_blocks is not None and set(flagged_blocks) != model.expect[case]:
        return f"caught, blocks{where}"
    return f"caught{where}"


def bench_model(model: Model, rows: list, log, memory: dict) -> None:
    # untimed: jax compiles its operations once per shape, whoever calls them first
    t = time.perf_counter()
    run_check(model, model.cases["correct"], "auto")
    run_check_grads(model, model.cases["correct"])
    log(f"  warm-up {time.perf_counter() - t:.3g} s")
    floor = Floor(model)
    base = Row(model.label, model.n, "floor: 2n bare loss calls")
    rows.append(base)
    added = []
    cases = model.cases

    def add(method, seconds, flags, note=""):
        row = Row(model.label, model.n, method, seconds, None, flags, note)
        rows.append(row)
        added.append(row)
        log(f"  {method}: {seconds if seconds is None else round(seconds, 3)} s {flags} {note}")

    # crosscheck
    for fd in ("all", "auto"):
        floor.sample()
        method = f'check(fd="{fd}")'
        if fd == "all" and not model.full:
            add(method, None, {}, "not run: ≥ 2n loss calls (≥ the floor)")
            continue
        run_cases = model.fd_all_cases if fd == "all" else tuple(cases)
        flags, seconds, missing, note = {}, None, [], ""
        for case in cases:
            if case not in run_cases:
                flags[case] = "not run"
                continue
            traced = model.memory and case == "element"     # timed run stays untraced
            report, s, missing, peak = run_check(model, cases[case], fd, memory=traced)
            if peak is not None:
                memory.setdefault(model.label, {})[f'check(fd="{fd}"), {case} case'] = peak
            if case == "correct":
                seconds = s
                fd_seconds = report.oracles["fd"].seconds
                fd_evals = report.oracles["fd"].evaluations
            flags[case] = verdict_text(model, case, report.flagged)
        if missing:
            note = f"`{'`, `'.join(missing)}` not accepted by this check(): default run"
        add(method, seconds, flags, note or "the whole check: every oracle, guards, Taylor test")
        add(f"  its centered differences", fd_seconds, {},
            f"the fd oracle alone: {fd_evals} loss evaluations for n = {model.n}")

    # the seeds' loop (the gradient approximation does not depend on the gradient checked)
    floor.sample()
    if model.full:
        t = time.perf_counter()
        approx = seeds_gradapprox(model)
        seconds = time.perf_counter() - t
        flags = {case: verdict_text(model, case, flagged=seeds_difference(model, g, approx)
                                    > SEEDS_THRESHOLD) for case, g in cases.items()}
        diff = seeds_difference(model, cases["correct"], approx)
        add("seeds' copy loop (ε=1e-7, > 2e-7 flags)", seconds, flags,
            f"difference on the correct model {diff:.2e}; one loop serves every case")
    else:
        add("seeds' copy loop (ε=1e-7, > 2e-7 flags)", None, {},
            "not run: 2n loss calls plus 2n copies of the vector (> the floor)")

    # torch.autograd.gradcheck
    for fast in (False, True):
        floor.sample()
        method = "torch gradcheck" + (" fast_mode" if fast else " (full)")
        if not fast and not model.full:
            add(method, None, {}, "not run: 2n torch forward calls, ≥ the floor")
            continue
        run_cases = tuple(cases) if fast else model.gradcheck_full_cases
        flags, seconds = {}, None
        for case, g in cases.items():
            if case not in run_cases:
                flags[case] = "not run"
                continue
            flagged, s = run_gradcheck(model, g, fast)
            seconds = s if case == "correct" else seconds
            flags[case] = verdict_text(model, case, flagged=flagged)
        add(method, seconds, flags)

    # jax.test_util.check_grads
    floor.sample()
    flags, seconds = {}, None
    for case, g in cases.items():
        flagged, s = run_check_grads(model, g)
        seconds = s if case == "correct" else seconds
        flags[case] = verdict_text(model, case, flagged=flagged)
    add('jax check_grads(order=1, modes=["rev"])', seconds, flags)
    floor.sample()
    base.seconds = base.floor = floor.seconds
    base.note = floor.note()
    for row in added:
        row.floor = floor.seconds
    log(f"  floor {floor.seconds:.3g} s ({floor.note()})")


def fmt_s(x) -> str:
    if x is None:
        return "—"
    return f"{x:.3g}" if x < 100 else f"{x:,.0f}"


def fmt_ratio(seconds, floor) -> str:
    if seconds is None or not floor:
        return "—"
    r = seconds / floor
    return f"{r:.3g}×" if r < 10 else f"{r:,.0f}×"


def table(rows) -> list:
    out = ["| model | params | method | time (s) | × floor | correct model | one W1 element "
           "+1% | scaled block | notes |",
           "|---|---:|---|---:|---:|---|---|---|---|"]
    last = None
    for r in rows:
        label = "" if r.model == last else r.model
        n = "" if r.model == last else f"{r.n:,}"
        last = r.model
        f = r.flags
        out.append(f"| {label} | {n} | {r.method} | {fmt_s(r.seconds)} | "
                   f"{fmt_ratio(r.seconds, r.floor)} | {f.get('correct', '—')} | "
                   f"{f.get('element', '—')} | {f.get('block', '—')} | {r.note} |")
    return out


# --- Dask ----------------------------------------------------------------------------------

ALLOC_BATCHES = (32, 128, 512)   # the 64-128-64-1 MLP's batch sizes for the allocator table
ALLOC_SAMPLE = 0.2               # seconds per timing run


def _time_losses(batches=ALLOC_BATCHES, seconds=ALLOC_SAMPLE) -> dict:
    """``{batch: per-call seconds}`` of the 64-128-64-1 MLP's loss in this process.

    Best of three runs of about ``seconds`` each; the model is built here, so only the
    batch sizes travel (to a Dask worker or a subprocess).
    """
    out = {}
    for batch in batches:
        params, args = mlp_model((64, 128, 64, 1), batch)
        mlp_loss(params, *args)
        t = time.perf_counter()
        mlp_loss(params, *args)
        calls = max(10, int(seconds / max(time.perf_counter() - t, 1e-6)))
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            for _ in range(calls):
                mlp_loss(params, *args)
            best = min(best, (time.perf_counter() - t) / calls)
        out[batch] = best
    return out


def _time_losses_in_subprocess(environ: dict) -> dict:
    """:func:`_time_losses` in a fresh interpreter whose environment holds ``environ``."""
    import json
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.update(environ)
    env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = "1"
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import bench; "
            "print(json.dumps(bench._time_losses()))")
    proc = subprocess.run([sys.executable, "-c", code, str(Path(__file__).resolve().parent)],
                          env=env, capture_output=True, text=True, timeout=300, check=True)
    return {int(k): v for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}


def _same_fd(a, b) -> bool:
    return all(np.array_equal(a.blocks[k].references["fd"], b.blocks[k].references["fd"])
               for k in a.blocks) and a.flagged == b.flagged


def bench_dask(model: Model, log) -> list:
    from crosscheck._cluster import local_cluster
    from crosscheck._executors import chunk_bounds, evaluate_chunk, map_chunks
    from crosscheck._inputs import make_blocks
    from crosscheck.oracles._fd import FIRST_STEP, element_scales

    lines = [f"### Dask: `local_cluster(2)` vs in-process, {model.label} ({model.n:,} params)",
             "", "| what | time (s) | speed-up | notes |", "|---|---:|---:|---|"]
    t = time.perf_counter()
    cluster, client = local_cluster(2)
    start = time.perf_counter() - t
    lines.append(f"| `local_cluster(2)` start | {start:.3g} | | 2 single-threaded worker "
                 f"processes |")
    log(f"  cluster start {start:.3g} s")
    grad = model.cases["correct"]
    try:
        kwargs, missing = check_kwargs(executor=client)
        if not missing:
            t_in = t_dk = float("inf")
            for _ in range(2):      # alternate, best of two: the machine's load drifts
                report_in, t, _, _ = run_check(model, grad, "all")
                t_in = min(t_in, t)
                report_dk, t, _, _ = run_check(model, grad, "all", executor=client)
                t_dk = min(t_dk, t)
            same = "identical fd values and verdicts" if _same_fd(report_in, report_dk) else \
                "**fd values differ**"
            lines.append(f'| `check(fd="all")` in-process | {t_in:.3g} | 1 | best of 2, '
                         f'alternating with the next row |')
            lines.append(f'| `check(fd="all", executor=client)` | {t_dk:.3g} | '
                         f"{t_in / t_dk:.2f}× | {same} |")
            log(f"  check in-process {t_in:.3g} s, on Dask {t_dk:.3g} s ({same})")
        else:
            lines.append("| `check(..., executor=)` | — | — | not accepted by this check() yet |")
        blocks = make_blocks(model.params, list(model.params))
        index = np.arange(blocks.size)
        h = FIRST_STEP * element_scales(blocks)
        work = (model.loss, blocks.names, [blocks.shapes[k] for k in blocks.names],
                blocks.flat, model.args, index, blocks.flat + h, blocks.flat - h)
        map_chunks(client, model.loss, *work[1:5], index[:64], work[6][:64], work[7][:64])
        t_loop = t_map = float("inf")
        for _ in range(2):
            t = time.perf_counter()
            here = evaluate_chunk(*work)
            t_loop = min(t_loop, time.perf_counter() - t)
            t = time.perf_counter()
            there = map_chunks(client, *work)
            t_map = min(t_map, time.perf_counter() - t)
        same = all(np.array_equal(a, b) for a, b in zip(here, there))
        chunks = len(chunk_bounds(index.size, 2))
        lines.append(f"| centered-difference loop in-process (`evaluate_chunk`, all "
                     f"{index.size:,}) | {t_loop:.3g} | 1 | best of 2, alternating |")
        lines.append(f"| `map_chunks(client, ...)` | {t_map:.3g} | {t_loop / t_map:.2f}× | "
                     f"{chunks} chunks; {'bit-identical' if same else '**differs**'} |")
        log(f"  loop in-process {t_loop:.3g} s, map_chunks {t_map:.3g} s, same={same}")
        one = sorted(client.scheduler_info()["workers"])[:1]     # alone: no contention
        in_worker = {"local_cluster": client.run(_time_losses, workers=one)[one[0]]}
    finally:
        client.close()
        cluster.close()
    # the same loss on a plain LocalCluster, with the nanny's default allocator variables
    from distributed import Client, LocalCluster

    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("MALLOC_")}
    try:       # (a variable in this process's environment would win over the nanny's)
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
    finally:
        os.environ.update(saved)
    client = Client(cluster)
    try:
        dask_env = next(iter(client.run(lambda: {k: v for k, v in os.environ.items()
                                                 if k.startswith("MALLOC_")}).values()))
        one = sorted(client.scheduler_info()["workers"])[:1]
        in_worker["default"] = client.run(_time_losses, workers=one)[one[0]]
    finally:
        client.close()
        cluster.close()
    lines += allocator_table(in_worker, dask_env, log)
    return lines


def allocator_table(in_worker: dict, dask_env: dict, log) -> list:
    from crosscheck._cluster import WORKER_ENVIRON

    def env_text(env):
        return ", ".join(f"`{k}={v}`" for k, v in env.items()) or "none (glibc adapts)"

    trim_only = {"MALLOC_TRIM_THRESHOLD_": WORKER_ENVIRON["MALLOC_TRIM_THRESHOLD_"]}
    rows = [("Dask worker, nanny default", dask_env, in_worker["default"]),
            ("Dask worker, `local_cluster`", WORKER_ENVIRON, in_worker["local_cluster"])]
    for label, env in (("subprocess", dask_env), ("subprocess", trim_only),
                       ("subprocess", WORKER_ENVIRON), ("subprocess", {})):
        rows.append((label, env, _time_losses_in_subprocess(env)))
    out = ["", "#### glibc's allocator and the loss (64-128-64-1 MLP, 16,641 params; µs per "
           "call, best of 3; × = speed-up over the first row of the same kind, the nanny's "
           "default `MALLOC_TRIM_THRESHOLD_=65536`)", "",
           "| where | allocator variables | " +
           " | ".join(f"batch {b}" for b in ALLOC_BATCHES) + " |",
           "|---|---|" + "---:|" * len(ALLOC_BATCHES)]
    for label, env, times in rows:
        base = rows[0][2] if label.startswith("Dask") else rows[2][2]
        cells = " | ".join(f"{times[b] * 1e6:.0f} ({base[b] / times[b]:.1f}×)"
                           for b in ALLOC_BATCHES)
        out.append(f"| {label} | {env_text(env)} | {cells} |")
        log(f"  {label} {env_text(env)}: {cells}")
    return out


# --- main ----------------------------------------------------------------------------------

def machine() -> list:
    import numpy

    versions = [f"numpy {numpy.__version__}"]
    for mod in ("torch", "jax", "distributed"):
        try:
            versions.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            versions.append(f"{mod} absent")
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    return [f"Machine: {os.cpu_count()} cores, {platform.machine()}, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}; "
            f"{', '.join(versions)}; BLAS/torch threads: {os.environ.get('OPENBLAS_NUM_THREADS')}"
            f"; load average at start {load[0]:.2f} (shared machine: times are ratios to the "
            f"floor measured in this run)."]


def models(quick: bool) -> list:
    if quick:
        return [seed_model(),
                mlp((16, 32, 16, 1), 32),
                mlp((64, 128, 64, 1), 32, full=False)]
    return [seed_model(),
            mlp((64, 128, 64, 1), 32),
            mlp((256, 256, 96, 1), 16, gradcheck_full_cases=("correct",), memory=True),
            mlp((1024, 768, 256, 1), 32, full=False)]


def warm_up(log) -> None:
    """First use of jax, torch and the oracles outside the timed runs."""
    m = mlp((4, 5, 3, 1), 4)
    run_check(m, mlp_grad, "all")
    run_check(m, mlp_grad, "auto")
    run_gradcheck(m, mlp_grad, True)
    run_check_grads(m, mlp_grad)
    log("warmed up")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small subset (smoke test)")
    parser.add_argument("--out", default=None, help="also write the Markdown to FILE")
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask measurements")
    parser.add_argument("--no-cold", action="store_true",
                        help="skip the cold measurement (six reference models, fresh processes)")
    parser.add_argument("--threads", default="1", help="BLAS and torch threads (default 1)")
    parser.add_argument("--taps", action="store_true",
                        help="only the localisation measurement (taps on the 16,641-parameter MLP)")
    ns = parser.parse_args(argv)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    import torch

    torch.set_num_threads(int(ns.threads))
    started = time.perf_counter()
    header = machine()
    warm_up(log)
    if ns.taps:
        text = "\n".join(["# crosscheck benchmark: localisation", "", *header, "", *bench_taps(log)]) + "\n"
        print(text)
        if ns.out:
            Path(ns.out).write_text(text)
        return 0
    rows, memory, dask_lines = [], {}, []
    todo = models(ns.quick)
    for model in todo:
        log(f"{model.label}: {model.n:,} parameters")
        bench_model(model, rows, log, memory)
    if not ns.no_dask:
        try:
            import distributed  # noqa: F401
            have_dask = True
        except ImportError:
            have_dask = False
            dask_lines = ["Dask: not measured (`distributed` is not installed)."]
        if have_dask:
            target = todo[1] if ns.quick else next(m for m in todo if m.n == 16641)
            log(f"Dask on {target.label}")
            dask_lines = bench_dask(target, log)
    log("localisation: taps on the 16,641-parameter MLP")
    taps_lines = bench_taps(log, rounds=3 if ns.quick else 7)
    cold_lines = []
    if not ns.no_cold:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import bench_cold

        log("cold: the first check of six reference models, against a cold floor")
        cold = bench_cold.measure(rounds=1 if ns.quick else 3, log=log)
        cold_lines = ["### Cold: a nightly suite's first check of each model", "",
                      "The whole three-way check of the first case of each of six reference "
                      "models, each new to its process, against a floor measured the same way: "
                      "per model one cold `jax.jit(jax.value_and_grad(loss))` call, one torch "
                      "autograd call and 2n numpy loss calls (`scripts/bench_cold.py`; each side "
                      "in its own fresh process after importing numpy, jax and torch; medians "
                      f"of {1 if ns.quick else 3} alternating rounds).", ""] + bench_cold.table(cold)
    out = ["# crosscheck benchmark" + (" (--quick)" if ns.quick else ""), ""] + header + [""]
    out += table(rows)
    out += ["",
            "Times are for the correct model; flags come from one run per case (the seeds' loop "
            "computes its approximation once: it does not depend on the gradient checked). "
            "Planted bugs: *one W1 element +1%* = the largest entry of dW1 is 1% too large; "
            "*scaled block* = db1 × 2 (MLPs), the notebook's dW2 × 2 and db1 with 4/m (seed "
            "net). `caught (X)` lists the blocks crosscheck flagged; peers say only yes/no. "
            "gradcheck uses eps=1e-6, atol=1e-5, rtol=1e-3; check_grads its float64 defaults. "
            "When fast_mode catches a bug, torch re-runs the full slow-mode Jacobian just to "
            "word its error message (cost ≈ the full gradcheck row; hours at ~1M): the "
            "benchmark skips that explanation. "
            "The ~1M model runs only the cheap methods (sampling: `check(fd=\"auto\")`, "
            "gradcheck fast_mode, check_grads): the others need ≥ 2n loss calls, so the "
            "floor row is a lower bound of their cost. Timings are warm: each model is checked "
            "once untimed first (jax compiles its operations once per shape)."]
    if memory:
        out += ["", "Peak traced memory (tracemalloc: numpy and Python allocations; jax/torch "
                "buffers are not traced):", ""]
        for label, entries in memory.items():
            model = next(m for m in todo if m.label == label)
            for what, peak in entries.items():
                out.append(f"- {label} ({model.n:,} params, vector {model.n * 8 / 2**20:.2f} "
                           f"MiB): {what}: {peak / 2**20:.1f} MiB")
    out += [""] + taps_lines
    if dask_lines:
        out += [""] + dask_lines
    if cold_lines:
        out += [""] + cold_lines
    out += ["", f"Total benchmark time: {time.perf_counter() - started:,.0f} s."]
    text = "\n".join(out) + "\n"
    print(text)
    if ns.out:
        Path(ns.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
