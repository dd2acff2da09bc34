"""Kinks, as a property: ReLU nets with small integer weights and inputs put many
pre-activations exactly at 0. Whatever the net, a correct backward (mask ``Z > 0``) is never
flagged, and a bug is always flagged — also a bug that, at the tie, happens to coincide with
autodiff's own convention (it shows just off the ties). With autodiff, and with centered
differences alone (which then decide at a second, generic point)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crosscheck

ORACLES = [("fd", "torch"), ("fd",)]   # with autodiff, and centered differences alone


def loss(p, X, Y):
    A1 = np.maximum(p["W1"] @ X + p["b1"], 0.0)
    return np.sum((p["W2"] @ A1 + p["b2"] - Y) ** 2) / (2 * X.shape[1])


def grad(p, X, Y, bug=None):
    Z1 = p["W1"] @ X + p["b1"]
    A1 = np.maximum(Z1, 0.0)
    d2 = (p["W2"] @ A1 + p["b2"] - Y) / X.shape[1]
    d1 = (p["W2"].T @ d2) * (Z1 > 0)
    g = {"W1": d1 @ X.T, "b1": d1.sum(axis=1, keepdims=True),
         "W2": d2 @ A1.T, "b2": d2.sum(axis=1, keepdims=True)}
    if bug == "element":
        g["W1"] = g["W1"].copy()
        g["W1"][0, 0] += 0.5
    if bug == "scale":
        g["b2"] = 2 * g["b2"]
    return g


def integer_net(seed):
    r = np.random.default_rng(seed)
    h, n, m = r.integers(2, 6), r.integers(1, 4), r.integers(2, 6)
    params = {"W1": r.integers(-2, 3, (h, n)), "b1": r.integers(-2, 3, (h, 1)),
              "W2": r.integers(-2, 3, (1, h)), "b2": r.integers(-1, 2, (1, 1))}
    params = {k: v.astype(float) for k, v in params.items()}
    return params, r.integers(-2, 3, (n, m)).astype(float), r.integers(-2, 3, (1, m)).astype(float)


SETTINGS = settings(max_examples=30, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("oracles", ORACLES, ids=["fd+torch", "fd alone"])
@SETTINGS
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_a_correct_backward_at_exact_kinks_is_never_flagged(oracles, seed):
    if "torch" in oracles:
        pytest.importorskip("torch")
    params, X, Y = integer_net(seed)
    report = crosscheck.check(loss, grad, params, X, Y, oracles=oracles, taylor=False)
    assert report.flagged == [], [report.blocks[b].reason for b in report.flagged]


@pytest.mark.parametrize("oracles", ORACLES, ids=["fd+torch", "fd alone"])
@SETTINGS
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_a_wrong_element_at_exact_kinks_is_always_flagged(oracles, seed):
    if "torch" in oracles:
        pytest.importorskip("torch")
    params, X, Y = integer_net(seed)
    report = crosscheck.check(loss, lambda *a: grad(*a, bug="element"), params, X, Y,
                              oracles=oracles, taylor=False)
    assert report.flagged == ["W1"]


@pytest.mark.parametrize("oracles", ORACLES, ids=["fd+torch", "fd alone"])
@SETTINGS
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_a_scaled_bias_at_exact_kinks_is_always_flagged(oracles, seed):
    if "torch" in oracles:
        pytest.importorskip("torch")
    params, X, Y = integer_net(seed)
    g = grad(params, X, Y)
    if np.abs(g["b2"]).max() <= 1e-12 * max(np.abs(v).max() for v in g.values()):
        return   # a zero gradient (up to rounding) scaled is still zero: nothing to find
    report = crosscheck.check(loss, lambda *a: grad(*a, bug="scale"), params, X, Y,
                              oracles=oracles, taylor=False)
    assert report.flagged == ["b2"]
    assert report.blocks["b2"].diagnosis.kind == "scale"
