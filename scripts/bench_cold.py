"""Cold cost: a nightly suite's first check of each model, against a bare floor measured cold too.

A nightly run meets every model new to its process: jax compiles the model's loss for the
first time, torch runs it for the first time. This measures, for the first case of each of
six distinct reference models (seed net, L-layer net, softmax regression, RNN, L2 net, layer
norm):

* **floor**, per model: one cold ``jax.jit(jax.value_and_grad(loss))`` call, one torch
  autograd call of the same loss, and ``2n`` numpy loss calls -- what the three references
  cost at the very least, as a user would run them (default threading);
* **check**: ``crosscheck.check`` of that case, everything included (the three references,
  noise measurement, Taylor test, refinement, diagnosis).

Each side runs in its own fresh process, the six models one after another (as a suite meets
them), after importing numpy, jax and torch (an import is paid once per run by both). The
sides alternate over ``--rounds`` rounds and the medians are compared, because the machine is
shared and its load drifts.

    python scripts/bench_cold.py            # prints the table row by row
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("seed_net", "deep_net", "softmax_regression", "rnn", "l2_net", "layer_norm")

_CHILD = r'''
import importlib, json, sys, time, types
sys.path.insert(0, {root!r})
import numpy as np
import jax, jax.numpy as jnp, torch
import crosscheck
side, names = sys.argv[1], sys.argv[2].split(",")
out = {{}}
for name in names:
    module = importlib.import_module("reference." + name)
    case = module.cases[0]
    loss = case.loss["numpy"] if isinstance(case.loss, dict) else case.loss
    loss = types.FunctionType(loss.__code__, loss.__globals__, loss.__name__, loss.__defaults__,
                              loss.__closure__)   # a new function: nothing cached for it
    params = {{k: np.asarray(v, dtype=np.float64) for k, v in case.params.items()}}
    args = case.args
    start = time.perf_counter()
    if side == "floor":
        with jax.enable_x64(True):
            jp = {{k: jnp.asarray(v) for k, v in params.items()}}
            ja = tuple(jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in args)
            value, grads = jax.jit(jax.value_and_grad(lambda p: loss(p, *ja)))(jp)
            jax.block_until_ready(grads)
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        tp = {{k: torch.tensor(v, requires_grad=True) for k, v in params.items()}}
        ta = tuple(torch.from_numpy(a.copy()) if isinstance(a, np.ndarray) else a for a in args)
        torch.autograd.grad(loss(tp, *ta), list(tp.values()))
        torch.set_default_dtype(previous)
        n = sum(v.size for v in params.values())
        for _ in range(2 * n):
            loss(params, *args)
    else:
        report = crosscheck.check(loss, case.grad, params, *args, **dict(case.options))
        assert report.references == ["fd", "jax", "torch"], report.references
    out[name] = time.perf_counter() - start
print(json.dumps(out))
'''


def run_side(side: str, models=MODELS) -> dict:
    """One fresh process running ``side`` ("floor" or "check") over ``models``; seconds per model."""
    code = _CHILD.format(root=str(ROOT))
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", code, side, ",".join(models)], capture_output=True,
                          text=True, env=env, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the {side} process failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(rounds: int = 3, models=MODELS, log=print) -> dict:
    """Median seconds per model and side over ``rounds`` alternating rounds."""
    samples = {side: {m: [] for m in models} for side in ("floor", "check")}
    for r in range(rounds):
        for side in ("floor", "check"):
            for model, seconds in run_side(side, models).items():
                samples[side][model].append(seconds)
        log(f"  cold round {r + 1}/{rounds} done")
    return {side: {m: statistics.median(v) for m, v in per.items()} for side, per in samples.items()}


def table(result: dict) -> list:
    rows = ["| model | floor, cold (s) | whole check, cold (s) | × floor |", "|---|---|---|---|"]
    for model in result["floor"]:
        f, c = result["floor"][model], result["check"][model]
        rows.append(f"| {model} | {f:.3f} | {c:.3f} | {c / f:.2f} |")
    f, c = sum(result["floor"].values()), sum(result["check"].values())
    rows.append(f"| **all six** | {f:.3f} | {c:.3f} | **{c / f:.2f}** |")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    print("\n".join(table(measure(args.rounds))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
