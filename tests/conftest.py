"""Shared fixtures: the reference models, and one report per reference case per session.

Every reference case is checked once (all three oracles) and the report cached for the
session, so the tests that read it (verdicts, diagnoses, Taylor orders, numerics, renderers)
cost nothing beyond the first check. The caller's arrays are snapshotted around that check,
so the tests can also prove that a check never touches them.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

# In CI (CI=true) property tests draw the same examples every run, so that a red build
# always means a change; locally they explore new examples each time.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "reference"

REFERENCE_MODULES = (
    "seed_net",
    "deep_net",
    "linear_1d",
    "softmax_regression",
    "l2_net",
    "layer_norm",
    "rnn",
    "relu_kinks",
)
# Models whose loss is smooth at and around the check point (no ReLU kink within the stencil).
SMOOTH_MODULES = ("softmax_regression", "l2_net", "layer_norm", "rnn", "linear_1d")

_MODULES: dict = {}


def load_reference(name: str):
    """Load ``reference/<name>.py`` by path under a private module name (once per session)."""
    if name not in _MODULES:
        path = REFERENCE / f"{name}.py"
        modname = f"_crosscheck_tests_reference_{name}"
        spec = importlib.util.spec_from_file_location(modname, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[modname] = module
        spec.loader.exec_module(module)
        _MODULES[name] = module
    return _MODULES[name]


def reference_case(module: str, case: str):
    mod = load_reference(module)
    return next(c for c in mod.cases if c.name == case)


def reference_params(kind: str = "all") -> list:
    """``pytest.param(module, case)`` for every reference case (``kind``: all/correct/buggy)."""
    out = []
    for module in REFERENCE_MODULES:
        mod = load_reference(module)
        for c in mod.cases:
            flagged = mod.EXPECTED[c.name]["flagged"]
            if kind == "correct" and flagged or kind == "buggy" and not flagged:
                continue
            out.append(pytest.param(module, c.name, id=f"{module}:{c.name}"))
    return out


def snapshot(value):
    """A deep, bitwise record of arrays inside dicts/tuples/lists (dtype, shape, bytes)."""
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [snapshot(v) for v in value]
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, value.tobytes())
    return ("object", repr(value))


class ReportCache:
    """One report per (module, case, options) per session; records the caller's arrays."""

    def __init__(self):
        self._reports: dict = {}
        self.unchanged: dict = {}

    def get(self, module: str, case: str, **options):
        key = (module, case, tuple(sorted(options.items())))
        if key not in self._reports:
            import crosscheck

            c = reference_case(module, case)
            before = snapshot((c.params, c.args))
            self._reports[key] = crosscheck.check(c.loss, c.grad, c.params, *c.args,
                                                  case=f"{module}/{case}",
                                                  **{**dict(c.options), **options})
            self.unchanged[key] = snapshot((c.params, c.args)) == before
        return self._reports[key]


_CACHE = ReportCache()


@pytest.fixture(scope="session")
def reports() -> ReportCache:
    """Session-wide cache: ``reports.get("seed_net", "buggy")`` checks once, then reuses."""
    return _CACHE


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def run_python(code: str, *, timeout: float = 240, env: dict | None = None):
    """Run ``python -c code`` from the repository root; returns the CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("PYTHONWARNINGS", None)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=full_env)


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# --- a small smooth model used across the tests ------------------------------------------

def tanh_loss(params, X, y):
    """0.5·mean over the batch of (v·tanh(W X + b) − y)², written against the array API."""
    from array_api_compat import array_namespace

    xp = array_namespace(X)
    A = xp.tanh(params["W"] @ X + params["b"])
    r = params["v"] @ A - y
    return 0.5 * xp.sum(r * r) / X.shape[1]


def tanh_grad(params, X, y):
    """The correct hand-written backward of :func:`tanh_loss` (numpy)."""
    W, b, v = params["W"], params["b"], params["v"]
    m = X.shape[1]
    A = np.tanh(W @ X + b)
    r = (v @ A - y) / m
    dZ = (v.T @ r) * (1.0 - A * A)
    return {"W": dZ @ X.T, "b": np.sum(dZ, axis=1, keepdims=True), "v": r @ A.T}


def tanh_model(hidden: int = 3, features: int = 4, batch: int = 5, seed: int = 0,
               w_scale: float = 1.0, x_scale: float = 1.0):
    """``(params, X, y)`` for :func:`tanh_loss`; W is ``hidden × features``."""
    rng = np.random.default_rng(seed)
    params = {
        "W": rng.standard_normal((hidden, features)) * 0.5 * w_scale,
        "b": rng.standard_normal((hidden, 1)) * 0.3,
        "v": rng.standard_normal((1, hidden)),
    }
    X = rng.standard_normal((features, batch)) * x_scale
    y = rng.standard_normal((1, batch))
    return params, X, y


def planted(grad, **changes):
    """A backward pass whose blocks are transformed: ``planted(tanh_grad, W=lambda g, p: 2*g)``."""
    def wrong(params, *args):
        out = dict(grad(params, *args))
        for name, change in changes.items():
            out[name] = change(out[name], params[name])
        return out
    return wrong
