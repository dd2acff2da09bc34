"""``crosscheck._diagnose``: what a wrong block's error looks like.

End to end on a small tanh network (the planted bug is known exactly), with centered
differences alone and with all three oracles, then on ``diagnose`` directly.
"""

from __future__ import annotations

import numpy as np
import pytest

import crosscheck
from crosscheck._diagnose import diagnose
from conftest import planted, tanh_grad, tanh_loss, tanh_model

ORACLE_SETS = [pytest.param(("fd",), id="fd"),
               pytest.param(("fd", "jax", "torch"), id="all")]


def _run(oracles, hidden=3, features=4, batch=5, **changes):
    if len(oracles) > 1:
        pytest.importorskip("jax")
        pytest.importorskip("torch")
    params, X, y = tanh_model(hidden=hidden, features=features, batch=batch)
    return crosscheck.check(tanh_loss, planted(tanh_grad, **changes), params, X, y,
                            oracles=oracles)


@pytest.mark.parametrize("oracles", ORACLE_SETS)
@pytest.mark.parametrize("factor", [2.0, 0.5, 3.0, 1.01])
def test_scale(oracles, factor):
    report = _run(oracles, W=lambda g, p: factor * g)
    assert report.flagged == ["W"]
    d = report.blocks["W"].diagnosis
    assert d.kind == "scale"
    assert d.factor == pytest.approx(factor, rel=1e-6)
    assert d.mismatched == 12 and d.size == 12
    assert d.reference == ("jax" if len(oracles) > 1 else "fd")


@pytest.mark.parametrize("oracles", ORACLE_SETS)
def test_sign(oracles):
    report = _run(oracles, v=lambda g, p: -g)
    assert report.flagged == ["v"]
    d = report.blocks["v"].diagnosis
    assert d.kind == "sign" and d.factor == -1.0
    assert "sign error" in d.text


@pytest.mark.parametrize("oracles", ORACLE_SETS)
def test_transpose_of_a_square_block(oracles):
    report = _run(oracles, hidden=4, features=4, W=lambda g, p: g.T)
    assert report.flagged == ["W"]
    d = report.blocks["W"].diagnosis
    assert d.kind == "transpose" and d.factor is None
    assert "transposed" in d.text


@pytest.mark.parametrize("oracles", ORACLE_SETS)
@pytest.mark.parametrize("coefficient", [0.05, -0.3])
def test_regularization(oracles, coefficient):
    report = _run(oracles, W=lambda g, p: g + coefficient * p)
    assert report.flagged == ["W"]
    d = report.blocks["W"].diagnosis
    assert d.kind == "regularization"
    assert d.factor == pytest.approx(coefficient, rel=1e-6)
    assert "`W`" in d.text


@pytest.mark.parametrize("oracles", ORACLE_SETS)
def test_partial_one_element(oracles):
    def one_off(g, p):
        g = g.copy()
        g[1, 2] += 0.1
        return g

    report = _run(oracles, W=one_off)
    assert report.flagged == ["W"]
    d = report.blocks["W"].diagnosis
    assert d.kind == "partial"
    assert d.mismatched == 1 and d.size == 12
    assert d.worst == (1, 2)
    assert d.indices == [(1, 2)]
    assert d.elements[0]["index"] == (1, 2)
    assert d.elements[0]["hand"] - d.elements[0]["reference"] == pytest.approx(0.1, rel=1e-6)
    assert report.to_dict()["blocks"]["W"]["diagnosis"]["worst"] == [1, 2]


@pytest.mark.parametrize("oracles", ORACLE_SETS)
def test_partial_worst_element_first(oracles):
    def two_off(g, p):
        g = g.copy()
        g[0, 0] += 0.01
        g[2, 3] -= 0.5
        return g

    d = _run(oracles, W=two_off).blocks["W"].diagnosis
    assert d.kind == "partial"
    assert d.mismatched == 2
    assert d.worst == (2, 3)
    assert d.indices == [(2, 3), (0, 0)]


@pytest.mark.parametrize("oracles", ORACLE_SETS)
def test_zero(oracles):
    report = _run(oracles, b=lambda g, p: np.zeros_like(g))
    assert report.flagged == ["b"]
    d = report.blocks["b"].diagnosis
    assert d.kind == "zero"
    assert d.mismatched == 3


@pytest.mark.parametrize("oracles", ORACLE_SETS)
def test_nonfinite(oracles):
    def with_nan(g, p):
        g = g.copy()
        g[0, 1] = np.nan
        return g

    report = _run(oracles, v=with_nan)
    assert report.flagged == ["v"]
    d = report.blocks["v"].diagnosis
    assert d.kind == "nonfinite"
    assert "first at (0, 1)" in d.text


@pytest.mark.parametrize("oracles", ORACLE_SETS)
def test_factor_equal_to_batch_size_is_called_out(oracles):
    report = _run(oracles, batch=7, W=lambda g, p: 7 * g)
    d = report.blocks["W"].diagnosis
    assert d.kind == "scale" and d.factor == pytest.approx(7.0, rel=1e-6)
    assert "batch size" in d.text
    assert "m = 7" in d.text
    assert "missing 1/m" in d.text


def test_factor_one_over_batch_size_is_called_out():
    report = _run(("fd",), batch=7, W=lambda g, p: g / 7)
    d = report.blocks["W"].diagnosis
    assert d.factor == pytest.approx(1 / 7, rel=1e-6)
    assert "batch size m = 7" in d.text and "extra 1/m" in d.text


def test_other_factors_do_not_mention_the_batch_size():
    d = _run(("fd",), batch=7, W=lambda g, p: 3 * g).blocks["W"].diagnosis
    assert "batch size" not in d.text


def test_batch_option_overrides_the_guess():
    params, X, y = tanh_model(hidden=3, features=4, batch=5)
    grad = planted(tanh_grad, W=lambda g, p: 4 * g)
    d = crosscheck.check(tanh_loss, grad, params, X, y, oracles=("fd",),
                         batch=4).blocks["W"].diagnosis
    assert "batch size m = 4" in d.text


def test_other_when_no_pattern_fits():
    rng = np.random.default_rng(5)
    noise = rng.standard_normal((3, 4))
    d = _run(("fd",), W=lambda g, p: g + 0.1 * noise).blocks["W"].diagnosis
    assert d.kind == "other"
    assert d.mismatched == 12


# --- diagnose() directly --------------------------------------------------------------------

def _diagnose(hand, ref, param=None, batch=None, tol=1e-12):
    hand, ref = np.asarray(hand, float), np.asarray(ref, float)
    t = np.full(hand.shape, tol)
    with np.errstate(invalid="ignore"):
        ratio = np.abs(hand - ref) / t
    ratio = np.where(np.isfinite(hand), ratio, np.inf)
    mismatch = ratio > 1
    param = np.ones_like(ref) if param is None else np.asarray(param, float)
    return diagnose("B", hand, ref, "jax", t, mismatch, ratio, param, batch)


def test_direct_scale_and_sign():
    ref = np.array([[1.0, -2.0], [3.0, 0.5]])
    d = _diagnose(2.5 * ref, ref)
    assert (d.kind, d.factor, d.mismatched, d.size) == ("scale", 2.5, 4, 4)
    d = _diagnose(-ref, ref)
    assert (d.kind, d.factor) == ("sign", -1.0)


def test_direct_transpose_needs_an_asymmetric_reference():
    ref = np.array([[1.0, -2.0], [3.0, 0.5]])
    assert _diagnose(ref.T, ref).kind == "transpose"
    sym = np.array([[1.0, 2.0], [2.0, 0.5]])
    assert _diagnose(sym.T, sym).kind not in ("transpose",)


def test_direct_regularization():
    ref = np.array([0.3, -0.2, 0.9])
    param = np.array([1.0, 2.0, -1.5])
    d = _diagnose(ref + 0.7 * param, ref, param)
    assert (d.kind, d.factor) == ("regularization", 0.7)


def test_direct_zero_and_nonfinite():
    ref = np.array([0.3, -0.2, 0.9])
    assert _diagnose(np.zeros(3), ref).kind == "zero"
    d = _diagnose([0.3, np.inf, 0.9], ref)
    assert d.kind == "nonfinite" and "first at (1,)" in d.text


def test_direct_partial_lists_indices_worst_first():
    ref = np.arange(1.0, 13.0).reshape(3, 4)
    hand = ref.copy()
    hand[0, 3] += 1.0
    hand[2, 1] += 5.0
    d = _diagnose(hand, ref, param=np.random.default_rng(0).standard_normal((3, 4)))
    assert d.kind == "partial"
    assert d.worst == (2, 1)
    assert d.indices == [(2, 1), (0, 3)]
    assert d.elements[0] == {"index": (2, 1), "hand": 15.0, "reference": 10.0}


def test_direct_diagnosis_to_dict():
    ref = np.array([[1.0, -2.0]])
    data = _diagnose(2 * ref, ref, batch=2).to_dict()
    assert data["kind"] == "scale" and data["factor"] == 2.0
    assert data["mismatched"] == 2 and data["size"] == 2
    assert data["worst"] == [0, 1]
    assert "batch size m = 2" in data["text"]
