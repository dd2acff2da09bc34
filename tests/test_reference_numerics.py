"""Numerical ground truth for the reference models in ``reference/``.

These tests do NOT use crosscheck's checker.  For every case the "true"
gradient comes from torch.autograd on the case's own array-API loss (float64),
and the hand-written numpy gradient is compared with it block by block:

* correct cases: every block matches to <= 1e-10 (relative);
* bug cases: the blocks that differ by > 1e-6 (relative) are exactly
  ``EXPECTED[name]["flagged"]``, unflagged blocks match to 1e-10, and each
  block's diagnosis kind / factor holds (scale / regularization factors to 1e-9).

The same loss must also give the same value under numpy and torch (1e-12) and
trace under ``jax.grad`` (float64), agreeing with torch.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import math
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "reference"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MODULE_FILES = [
    "seed_net.py",
    "deep_net.py",
    "linear_1d.py",
    "softmax_regression.py",
    "l2_net.py",
    "layer_norm.py",
    "rnn.py",
    "relu_kinks.py",
]

KINDS = {"scale", "sign", "transpose", "regularization", "partial", "zero", "nonfinite", "other"}

_counter = itertools.count()


def load_by_path(filename):
    """Load a reference file the way the tool does: by path, unique module name."""
    path = REF / filename
    name = f"_refnum_{path.stem}_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.modules.pop(name, None)
    return mod


_MODULES = {}


def module(filename):
    if filename not in _MODULES:
        _MODULES[filename] = load_by_path(filename)
    return _MODULES[filename]


def case_ids():
    out = []
    for f in MODULE_FILES:
        for c in module(f).cases:
            out.append(pytest.param(f, c.name, id=f"{Path(f).stem}:{c.name}"))
    return out


def get_case(filename, name):
    (case,) = [c for c in module(filename).cases if c.name == name]
    return case


# ----------------------------------------------------------------------------- helpers


def hand_grad(case):
    """The case's hand-written gradient as {param name: float64 array}."""
    out = case.grad({k: np.array(v) for k, v in case.params.items()}, *case.args)
    if isinstance(out, tuple):
        assert len(out) == 2 and isinstance(out[1], dict)
        out = out[1]
    g = {}
    for k, v in out.items():
        if k in case.params:
            name = k
        elif k.startswith("d") and k[1:] in case.params:
            name = k[1:]
        else:
            continue  # dZ1, dA2, ... are ignored
        assert name not in g, f"gradient for {name} given twice"
        g[name] = np.asarray(v, dtype=np.float64)
    assert list(g) and set(g) == set(case.params), (sorted(g), sorted(case.params))
    for k, p in case.params.items():
        assert g[k].shape == np.shape(p), (k, g[k].shape, np.shape(p))
    return g


def _to_torch(a, torch):
    if isinstance(a, np.ndarray):
        if np.issubdtype(a.dtype, np.floating):
            return torch.from_numpy(np.array(a, dtype=np.float64))
        return torch.from_numpy(np.array(a))
    return a


def torch_value_and_grad(loss, params, args):
    torch = pytest.importorskip("torch")
    tp = {k: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=True)
          for k, v in params.items()}
    targs = tuple(_to_torch(a, torch) for a in args)
    value = loss(tp, *targs)
    assert value.dtype == torch.float64 and value.ndim == 0
    value.backward()
    grads = {}
    for k, t in tp.items():
        assert t.grad is not None, f"{k} does not reach the loss"
        grads[k] = t.grad.detach().numpy().copy()
    return float(value.detach()), grads


def truth_loss(filename, case):
    """The loss whose autodiff gradient is the hand code's ground truth.

    Identical to ``case.loss`` except for relu_kinks, where the hand mask's
    convention (ReLU' = 0 at the kink) is reproduced by ``loss_mask_convention``.
    """
    return getattr(module(filename), "loss_mask_convention", case.loss)


def rel(a, b):
    """Relative difference of b from reference a (block norm)."""
    den = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if den == 0 else float(np.linalg.norm(a - b) / den)


def check_kind(kind, factor, hand, true, param):
    assert kind in KINDS, kind
    if kind in ("scale", "sign"):
        c = float(np.sum(hand * true) / np.sum(true * true))
        if kind == "sign":
            assert factor in (None, -1.0)
            factor = -1.0
        assert abs(c - factor) <= 1e-9 * abs(factor), (c, factor)
        assert np.linalg.norm(hand - c * true) <= 1e-9 * np.linalg.norm(hand)
    elif kind == "regularization":
        d = hand - true
        c = float(np.sum(d * param) / np.sum(param * param))
        assert abs(c - factor) <= 1e-9 * abs(factor), (c, factor)
        assert np.linalg.norm(d - c * param) <= 1e-9 * np.linalg.norm(d)
    elif kind == "transpose":
        assert factor is None
        assert hand.ndim == 2 and hand.shape[0] == hand.shape[1]
        assert np.linalg.norm(hand - true.T) <= 1e-10 * np.linalg.norm(true)
    elif kind == "zero":
        assert np.all(hand == 0) and np.any(true != 0)
    elif kind == "nonfinite":
        assert not np.all(np.isfinite(hand))
    else:
        assert kind in ("partial", "other") and factor is None
        # neither kind may be explainable by a structured kind (those take precedence:
        # a scaled block whose true gradient has exact zeros is "scale", not "partial")
        c = float(np.sum(hand * true) / np.sum(true * true))
        assert np.linalg.norm(hand - c * true) > 1e-6 * np.linalg.norm(hand), "fits a scale"
        d = hand - true
        c = float(np.sum(d * param) / np.sum(param * param))
        assert np.linalg.norm(d - c * param) > 1e-6 * np.linalg.norm(d), "fits a regularization"
        if hand.ndim == 2 and hand.shape[0] == hand.shape[1]:
            assert rel(true.T, hand) > 1e-6, "fits a transpose"
        tol = 1e-6 * max(np.max(np.abs(true)), np.max(np.abs(hand)))
        wrong = np.abs(hand - true) > tol
        if kind == "partial":
            assert wrong.any() and not wrong.all()
        else:
            assert wrong.all(), f"{int((~wrong).sum())} elements right: that is 'partial'"


# ----------------------------------------------------------------------------- structure


@pytest.mark.parametrize("filename", MODULE_FILES)
def test_module_structure(filename):
    from crosscheck._case import Case

    mod = module(filename)
    assert (mod.__doc__ or "").strip(), "module docstring missing"
    module_cases = [v for v in vars(mod).values() if isinstance(v, Case)]
    assert {id(c) for c in module_cases} == {id(c) for c in mod.cases}
    names = [c.name for c in mod.cases]
    assert len(set(names)) == len(names)
    assert "correct" in names and "buggy" in names
    assert set(mod.EXPECTED) == set(names)
    for c in mod.cases:
        exp = mod.EXPECTED[c.name]
        order = list(c.params)
        assert exp["flagged"] == [k for k in order if k in exp["flagged"]], "not in params order"
        assert set(exp["kinds"]) == set(exp["flagged"])
        assert (c.name == "correct") == (exp["flagged"] == [])
        for k, (kind, factor) in exp["kinds"].items():
            assert kind in KINDS
            if kind in ("scale", "regularization"):
                assert isinstance(factor, float) and math.isfinite(factor)
        for k, p in c.params.items():
            assert isinstance(p, np.ndarray) and p.dtype == np.float64, k


def test_loading_by_path_twice_gives_independent_modules():
    a, b = load_by_path("seed_net.py"), load_by_path("seed_net.py")
    assert a is not b and a.__name__ != b.__name__
    assert a.correct.params["W1"] is not b.correct.params["W1"]


def test_importable_as_package():
    for f in MODULE_FILES:
        mod = importlib.import_module("reference." + Path(f).stem)
        assert mod.cases


# ----------------------------------------------------------------------------- numerics


@pytest.mark.parametrize("filename,name", case_ids())
def test_hand_gradient_against_torch(filename, name):
    case = get_case(filename, name)
    exp = module(filename).EXPECTED[name]
    _, true = torch_value_and_grad(truth_loss(filename, case), case.params, case.args)
    hand = hand_grad(case)
    diffs = {k: rel(true[k], hand[k]) for k in case.params}
    for k in case.params:
        assert np.all(np.isfinite(true[k]))
        assert np.any(true[k] != 0), f"true gradient of {k} is identically zero"
    differ = [k for k in case.params if diffs[k] > 1e-6]
    assert differ == exp["flagged"], diffs
    for k in case.params:
        if k not in exp["flagged"]:
            assert diffs[k] <= 1e-10, (k, diffs[k])
    for k, (kind, factor) in exp["kinds"].items():
        check_kind(kind, factor, hand[k], true[k], np.asarray(case.params[k]))


@pytest.mark.parametrize("filename,name", case_ids())
def test_loss_numpy_equals_torch(filename, name):
    case = get_case(filename, name)
    v_np = case.loss({k: np.array(v) for k, v in case.params.items()}, *case.args)
    assert np.ndim(v_np) == 0
    v_np = float(v_np)
    v_t, _ = torch_value_and_grad(case.loss, case.params, case.args)
    assert math.isfinite(v_np)
    assert abs(v_np - v_t) <= 1e-12 * max(1.0, abs(v_np)), (v_np, v_t)


@pytest.fixture(scope="module")
def jax64():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return jax


@pytest.mark.parametrize("filename,name", case_ids())
def test_loss_traces_under_jax(jax64, filename, name):
    jnp = jax64.numpy
    case = get_case(filename, name)
    jp = {k: jnp.asarray(v) for k, v in case.params.items()}
    jargs = tuple(jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in case.args)
    value, g = jax64.value_and_grad(lambda p: case.loss(p, *jargs))(jp)
    assert value.dtype == jnp.float64
    v_t, g_t = torch_value_and_grad(case.loss, case.params, case.args)
    assert abs(float(value) - v_t) <= 1e-12 * max(1.0, abs(v_t))
    for k in case.params:
        gk = np.asarray(g[k])
        assert gk.dtype == np.float64 and gk.shape == np.shape(case.params[k])
        assert rel(g_t[k], gk) <= 1e-10, k


# ----------------------------------------------------------------------------- model-specific


def test_relu_kinks_really_sit_on_kinks():
    mod = module("relu_kinks.py")
    X, Y, p = mod.X, mod.Y, mod.parameters
    for a in (X, Y, *p.values()):
        assert a.dtype == np.float64 and np.all(a == np.round(a))
    Z1 = mod.pre_activations(p, X)
    kinks = Z1 == 0.0
    assert kinks.sum() >= 4, kinks.sum()
    # the kinks matter: the upstream gradient is non-zero at each of them
    m = X.shape[1]
    A1 = np.maximum(Z1, 0)
    dA1 = p["W2"].T @ ((p["W2"] @ A1 + p["b2"] - Y) / m)
    assert np.all(dA1[kinks] != 0)
    # autodiff of maximum(Z, 0) (0.5 at a tie) differs from the hand mask on
    # exactly the kink-affected blocks, by exactly the half-weighted kink terms
    case = mod.correct
    _, g_max = torch_value_and_grad(case.loss, case.params, case.args)
    hand = hand_grad(case)
    half = 0.5 * dA1 * kinks
    assert rel(g_max["W1"], hand["W1"] + half @ X.T) <= 1e-12
    assert rel(g_max["b1"], hand["b1"] + half.sum(axis=1, keepdims=True)) <= 1e-12
    assert rel(g_max["W1"], hand["W1"]) > 1e-3 and rel(g_max["b1"], hand["b1"]) > 1e-3
    assert rel(g_max["W2"], hand["W2"]) <= 1e-12 and rel(g_max["b2"], hand["b2"]) <= 1e-12


def _seed_difference(hand, true, order):
    g = np.concatenate([hand[k].ravel() for k in order])
    t = np.concatenate([true[k].ravel() for k in order])
    return np.linalg.norm(g - t) / (np.linalg.norm(g) + np.linalg.norm(t))


def test_seed_net_matches_the_notebook():
    mod = module("seed_net.py")
    X, Y, p = mod.gradient_check_n_test_case()
    assert X.shape == (4, 3) and Y.tolist() == [1, 1, 0]
    assert [v.shape for v in p.values()] == [(5, 4), (5, 1), (3, 5), (3, 1), (1, 3), (1, 1)]
    assert abs(X[0, 0] - 1.62434536) < 1e-8  # np.random.seed(1) first draw
    _, true = torch_value_and_grad(mod.loss, p, (X, Y))
    order = ["W1", "b1", "W2", "b2", "W3", "b3"]
    # the notebook's gradient_check_n printed difference = 0.2850931566540251 for
    # the buggy backward (against finite differences, so agreement to ~1e-7)
    d = _seed_difference(hand_grad(mod.buggy), true, order)
    assert abs(d - 0.2850931566540251) < 1e-6, d


def test_deep_net_matches_the_notebook():
    mod = module("deep_net.py")
    X, Y, p = mod.gradient_check_n_test_case()
    assert abs(X[0, 0] - (-0.41675785)) < 1e-8  # np.random.seed(2) first draw
    _, true = torch_value_and_grad(mod.loss, p, (X, Y))
    order = ["W1", "b1", "W2", "b2", "W3", "b3"]
    # notebook: "There is a mistake ... difference = 0.478408736962"
    d = _seed_difference(hand_grad(mod.buggy), true, order)
    assert abs(d - 0.478408736962) < 1e-6, d


def test_l2_net_reproduces_the_seed_cache():
    mod = module("l2_net.py")
    X, Y, cache = mod.backward_propagation_with_regularization_test_case()
    assert X.shape == (3, 5) and Y.tolist() == [[1, 1, 0, 1, 0]]
    Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3 = cache
    # values printed in the seed's backward_propagation_with_regularization_test_case
    np.testing.assert_allclose(Z1[0], [-1.52855314, 3.32524635, 2.13994541, 2.60700654, -0.75942115], atol=1e-7)
    np.testing.assert_allclose(W1, [[-1.09989127, -0.17242821, -0.87785842],
                                    [0.04221375, 0.58281521, -1.10061918]], atol=1e-8)
    np.testing.assert_allclose(A3[0], [0.40682402, 0.01629284, 0.16722898, 0.10118111, 0.40682402], atol=1e-7)
    np.testing.assert_allclose(W3, [[-0.6871727, -0.84520564, -0.67124613]], atol=1e-7)
    assert mod.LAMBD == 0.7 and abs(mod.REG_FACTOR - 0.56) < 1e-15


def test_linear_1d_values():
    mod = module("linear_1d.py")
    assert float(mod.forward_propagation(2, 4)) == 8.0
    assert float(mod.backward_propagation(2, 4)) == 2.0
    assert float(mod.backward_propagation_buggy(2, 4)) == 4.0
