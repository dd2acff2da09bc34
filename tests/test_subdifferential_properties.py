"""At a kink, a hand-written value inside the subdifferential is a convention; outside, it is wrong.

Properties over random small models with kinks placed at random elements, with every
reference and with centered differences alone:

* ``Σ a_i |w_i − c_i| + Σ b_i (w_i − c_i)²`` with some ``w_i = c_i`` exactly: the valid values
  of ∂L/∂w_i there are ``[−a_i, a_i]`` (the one-sided derivatives);
* a ReLU layer ``Σ v · max(W x, 0)`` whose rows are made orthogonal to the input at random
  (a tie created by the data): the valid values of ∂L/∂W_ij there are ``v_i x_j · [0, 1]``.

A hand-written gradient that picks a value strictly inside is a convention (never flagged);
one outside by a clear margin is wrong (always flagged, on exactly its block). Several tied
samples reaching one element are covered by ``test_kink_properties``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crosscheck

pytest.importorskip("jax")
pytest.importorskip("torch")

ORACLES = [("fd", "jax", "torch"), ("fd",)]
SETTINGS = settings(max_examples=20, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _floats(draw, n, lo, hi, scale):
    return np.array(draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n)), float) / scale


@st.composite
def abs_models(draw):
    n = draw(st.integers(2, 6))
    a, b, c = _floats(draw, n, 1, 4, 1), _floats(draw, n, 1, 3, 2), _floats(draw, n, -3, 3, 2)
    signs = np.array(draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=n, max_size=n)))
    w = c + signs * _floats(draw, n, 3, 9, 10)
    kinks = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
    w[kinks] = c[kinks]                      # exactly at the kink
    inside = _floats(draw, n, -9, 9, 10)     # in units of a_i: strictly inside [−1, 1]
    outside = _floats(draw, n, 15, 40, 10) * signs
    return a, b, c, w, inside, outside


def _abs_loss(a, b, c):
    def loss(p):
        d = p["w"] - c
        return np.sum(a * np.abs(d)) + np.sum(b * d * d)
    return loss


def _abs_grad(a, b, c, at_kink):
    def grad(p):
        d = p["w"] - c
        return {"w": np.where(d == 0, at_kink * a, a * np.sign(d) + 2 * b * d)}
    return grad


@pytest.mark.parametrize("oracles", ORACLES, ids=["all", "fd-alone"])
@SETTINGS
@given(model=abs_models())
def test_abs_kinks_inside_is_a_convention_outside_is_wrong(oracles, model):
    a, b, c, w, inside, outside = model
    loss = _abs_loss(a, b, c)
    convention = crosscheck.check(loss, _abs_grad(a, b, c, inside), {"w": w.copy()},
                                  oracles=oracles, taylor=False)
    assert convention.flagged == [] and convention.inconclusive == [], str(convention)
    wrong = crosscheck.check(loss, _abs_grad(a, b, c, outside), {"w": w.copy()},
                             oracles=oracles, taylor=False)
    assert wrong.flagged == ["w"], str(wrong)
    assert "outside the subdifferential" in wrong.blocks["w"].reason


@st.composite
def relu_models(draw):
    h, n = draw(st.integers(2, 4)), draw(st.integers(2, 4))
    x = _floats(draw, n, 1, 6, 2) * np.array(draw(st.lists(st.sampled_from([-1.0, 1.0]),
                                                           min_size=n, max_size=n)))
    W = _floats(draw, h * n, -6, 6, 3).reshape(h, n)
    tied = draw(st.lists(st.integers(0, h - 1), min_size=1, max_size=h, unique=True))
    for i in tied:                           # make row i orthogonal to x: W[i] @ x == 0
        W[i, -1] = 0.0
        W[i, -1] = -(W[i] @ x) / x[-1]
    keep = np.abs(W @ x) > 1e-9
    keep[tied] = True
    v = _floats(draw, h, 1, 5, 2) * np.array(draw(st.lists(st.sampled_from([-1.0, 1.0]),
                                                           min_size=h, max_size=h)))
    inside = draw(st.integers(1, 9)) / 10    # relu'(0) strictly inside [0, 1]
    outside = draw(st.sampled_from([-1.0, -0.5, 1.5, 2.0]))
    return W, x, v, np.array(tied), inside, outside


def _relu_grad(v, at_tie):
    def grad(p, x):
        z = p["W"] @ x
        slope = np.where(z > 0, 1.0, 0.0)
        slope[np.abs(z) <= 1e-12 * np.abs(p["W"]).sum()] = at_tie
        return {"W": np.outer(v * slope, x)}
    return grad


@pytest.mark.parametrize("oracles", ORACLES, ids=["all", "fd-alone"])
@SETTINGS
@given(model=relu_models())
def test_relu_data_ties_inside_is_a_convention_outside_is_wrong(oracles, model):
    W, x, v, tied, inside, outside = model
    if np.any(np.abs(W @ x)[np.setdiff1d(np.arange(len(W)), tied)] <= 1e-9):
        return   # a row tied by chance as well: not the model this test draws
    loss = lambda p, x: np.sum(v * np.maximum(p["W"] @ x, 0.0))   # noqa: E731
    convention = crosscheck.check(loss, _relu_grad(v, inside), {"W": W.copy()}, x,
                                  oracles=oracles, taylor=False)
    assert convention.flagged == [] and convention.inconclusive == [], str(convention)
    wrong = crosscheck.check(loss, _relu_grad(v, outside), {"W": W.copy()}, x,
                             oracles=oracles, taylor=False)
    assert wrong.flagged == ["W"], str(wrong)


@pytest.mark.parametrize("oracles", ORACLES, ids=["all", "fd-alone"])
@pytest.mark.parametrize("at_zero, flagged", [(5.0, ["w"]), (-1.01, ["w"]), (1.0, []),
                                              (0.0, []), (-0.3, [])])
def test_abs_at_zero(oracles, at_zero, flagged):
    """The issue's example: ``Σ|w|`` at ``w = 0`` takes any value in [−1, 1], nothing else."""
    grad = lambda p: {"w": np.where(p["w"] == 0, at_zero, np.sign(p["w"]))}   # noqa: E731
    report = crosscheck.check(lambda p: np.sum(np.abs(p["w"])), grad,
                              {"w": np.array([0.0, 1.5, -2.0])}, oracles=oracles, taylor=False)
    assert report.flagged == flagged
    assert report.inconclusive == []
    if flagged:
        assert ("at 1 kink element(s) the hand-written value lies outside the subdifferential"
                in report.blocks["w"].reason)


@pytest.mark.parametrize("oracles", ORACLES, ids=["all", "fd-alone"])
@pytest.mark.parametrize("at_tie, flagged", [(1.5, ["W"]), (-0.5, ["W"]), (0.0, []), (0.5, []),
                                             (1.0, [])])
def test_relu_tie_made_by_the_data(oracles, at_tie, flagged):
    """The issue's example: ``W @ x == 0`` for one row; ReLU's derivative there is in [0, 1]."""
    x = np.array([1.0, 2.0, -1.0])
    W = np.array([[1.0, 0.0, 1.0], [0.3, -0.2, 0.5]])     # row 0 @ x == 0
    v = np.array([1.5, -0.7])
    loss = lambda p, x: np.sum(v * np.maximum(p["W"] @ x, 0.0))   # noqa: E731
    report = crosscheck.check(loss, _relu_grad(v, at_tie), {"W": W}, x, oracles=oracles,
                              taylor=False)
    assert report.flagged == flagged
    assert report.inconclusive == []
