"""The diagnosis's words fit the bug (issue 13, "Words that fit the bug").

Each wording is pinned as an exact sentence, on a small real model through
``crosscheck.check`` (with centered differences alone and with all three oracles, where the
sentence names the deciding reference) and on ``diagnose`` directly:

* a decay term with the wrong sign is not called missing: hand − reference = c × W cannot
  tell the two apart, so both readings are given with their numbers;
* a factor below 1 is an extra division, above 1 a missing one;
* a block of one element always has a ratio, so it is no evidence of a scale error;
* a factor round only within the reference's own error is still called round;
* the same small relative error everywhere is a drift (`eps`), not a stray factor;
* "one element … disagrees", and no negative zero ("jax -0").
"""

from __future__ import annotations

import numpy as np
import pytest

import crosscheck
from crosscheck._diagnose import diagnose, value_text
from conftest import planted, tanh_grad, tanh_loss, tanh_model

FD = pytest.param(("fd",), id="fd")
ALL = pytest.param(("fd", "jax", "torch"), id="all")


def _backends(oracles) -> str:
    """The reference the diagnosis names: jax when it runs, else centered differences."""
    if len(oracles) > 1:
        pytest.importorskip("jax")
        pytest.importorskip("torch")
        return "jax"
    return "fd"


# --- a least-squares model with an L2 term (m = 5, λ = 0.5, so λ/m = 0.1) --------------------

LAM = 0.5


def _ridge_data():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((5, 4)), rng.standard_normal(5)
    return {"w": rng.standard_normal(4), "b": np.array([0.3])}, X, y


def ridge_loss(p, X, y):
    r = (X * p["w"]).sum(axis=1) + p["b"] - y
    m = X.shape[0]
    return 0.5 * (r * r).sum() / m + LAM / (2 * m) * (p["w"] * p["w"]).sum()


def ridge_grad(decay=1.0, b_factor=1.0):
    """The backward with the decay term's coefficient ``decay × λ/m`` (1 is right) and the
    bias gradient times ``b_factor``."""
    def grad(p, X, y):
        m = X.shape[0]
        r = (X * p["w"]).sum(axis=1) + p["b"] - y
        return {"w": (X * r[:, None]).sum(axis=0) / m + decay * LAM / m * p["w"],
                "b": b_factor * r.sum(keepdims=True) / m}
    return grad


def _ridge(oracles, **bug):
    params, X, y = _ridge_data()
    return crosscheck.check(ridge_loss, ridge_grad(**bug), params, X, y, oracles=oracles)


# --- weight decay: wrong sign, missing, too large ------------------------------------------

@pytest.mark.parametrize("oracles", [FD, ALL])
def test_decay_with_the_wrong_sign_is_named_as_such(oracles):
    ref = _backends(oracles)
    report = _ridge(oracles, decay=-1.0)           # −λ/m·w where +λ/m·w belongs
    assert report.flagged == ["w"]
    d = report.blocks["w"].diagnosis
    assert (d.kind, d.factor) == ("regularization", -0.2)
    assert d.text == (
        f"hand − reference ({ref}) = -0.200 × `w` on all 4 elements: the hand-written decay "
        f"coefficient is 0.2 too small — a decay term 0.2·`w` missing, or one with the wrong "
        f"sign (−0.1·`w` where +0.1·`w` belongs).")


@pytest.mark.parametrize("oracles", [FD, ALL])
def test_missing_decay_gives_both_readings_with_their_numbers(oracles):
    ref = _backends(oracles)
    d = _ridge(oracles, decay=0.0).blocks["w"].diagnosis
    assert d.text == (
        f"hand − reference ({ref}) = -0.100 × `w` on all 4 elements: the hand-written decay "
        f"coefficient is 0.1 too small — a decay term 0.1·`w` missing, or one with the wrong "
        f"sign (−0.05·`w` where +0.05·`w` belongs).")


@pytest.mark.parametrize("oracles", [FD, ALL])
def test_decay_too_large(oracles):
    ref = _backends(oracles)
    d = _ridge(oracles, decay=2.0).blocks["w"].diagnosis
    assert d.text == (
        f"hand − reference ({ref}) = 0.100 × `w` on all 4 elements: the hand-written decay "
        f"coefficient is 0.1 too large — a decay term 0.1·`w` the loss does not have, 2λ where "
        f"λ = 0.1 belongs, or λ = 0.125 where λ/m = 0.025 belongs (m = 5).")


def test_direct_decay_wording():
    ref = np.array([0.3, -0.2, 0.9])
    param = np.array([1.0, 2.0, -1.5])
    d = _diagnose(ref - 0.3 * param, ref, param)
    assert (d.kind, d.factor) == ("regularization", -0.3)
    assert d.text == (
        "hand − reference (jax) = -0.300 × `B` on all 3 elements: the hand-written decay "
        "coefficient is 0.3 too small — a decay term 0.3·`B` missing, or one with the wrong "
        "sign (−0.15·`B` where +0.15·`B` belongs).")
    d = _diagnose(ref + 0.56 * param, ref, param)
    assert d.text == (
        "hand − reference (jax) = 0.560 × `B` on all 3 elements: the hand-written decay "
        "coefficient is 0.56 too large — a decay term 0.56·`B` the loss does not have, 2λ where "
        "λ = 0.56 belongs, or λ where λ/m belongs.")
    d = _diagnose(ref + 0.56 * param, ref, param, batch=5)     # λ = 0.7 for λ/m = 0.14
    assert d.text.endswith("or λ = 0.7 where λ/m = 0.14 belongs (m = 5).")


# --- a factor: above 1 a missing division, below 1 an extra one ------------------------------

def _tanh(oracles, **changes):
    params, X, y = tanh_model(hidden=3, features=4, batch=5)
    return crosscheck.check(tanh_loss, planted(tanh_grad, **changes), params, X, y,
                            oracles=oracles)


@pytest.mark.parametrize("oracles", [FD, ALL])
@pytest.mark.parametrize("factor, text", [
    (0.5, "hand = 0.500 × reference ({ref}) on all 12 elements of `W`: the factor is 1/2 — an "
          "extra division by 2, or a dropped factor 2 (the 2 of d(x²)/dx)."),
    (1 / 3, "hand = 0.333333 × reference ({ref}) on all 12 elements of `W`: the hand-written "
            "value is too small — look for an extra division (by a count, a size or a norm) or "
            "a missing factor."),
    (1 / 5, "hand = 0.200 × reference ({ref}) on all 12 elements of `W`: the factor is 1/m for "
            "the batch size m = 5 — an extra 1/m."),
    (5.0, "hand = 5.000 × reference ({ref}) on all 12 elements of `W`: the factor equals the "
          "batch size m = 5 — a missing 1/m."),
    (3.0, "hand = 3.000 × reference ({ref}) on all 12 elements of `W`: the hand-written value "
          "is too large — look for a missing division (by a count, a size or a norm) or a "
          "stray factor."),
    (2.0, "hand = 2.000 × reference ({ref}) on all 12 elements of `W`: the factor is 2 — a "
          "stray factor 2 (the 2 of d(x²)/dx where the loss has ½·x², or a term counted "
          "twice)."),
    (-3.0, "hand = -3.000 × reference ({ref}) on all 12 elements of `W`: the sign is flipped, "
           "and the hand-written value is too large — look for a missing division (by a "
           "count, a size or a norm) or a stray factor."),
])
def test_a_factor_says_which_way_the_division_goes(oracles, factor, text):
    ref = _backends(oracles)
    d = _tanh(oracles, W=lambda g, p: factor * g).blocks["W"].diagnosis
    assert d.kind == "scale"
    assert d.text == text.format(ref=ref)
    assert "missing 1/m" not in d.text or factor == 5.0


# --- one element: a ratio is no evidence ------------------------------------------------------

@pytest.mark.parametrize("oracles", [FD, ALL])
def test_one_element_block_with_an_arbitrary_ratio_is_not_a_scale_error(oracles):
    ref = _backends(oracles)
    d = _ridge(oracles, b_factor=0.37).blocks["b"].diagnosis
    assert (d.kind, d.factor) == ("other", None)
    assert d.text == (
        f"hand = -0.0462728, reference ({ref}) = -0.125062 (ratio 0.37) for the single "
        f"element of `b`: one element cannot show a pattern, and any two values have a ratio, "
        f"so this is no evidence of a scale error — recheck each term of this gradient.")


@pytest.mark.parametrize("oracles", [FD, ALL])
def test_one_element_block_with_a_round_ratio_is_a_hint_only(oracles):
    ref = _backends(oracles)
    d = _ridge(oracles, b_factor=5.0).blocks["b"].diagnosis
    assert (d.kind, d.factor) == ("scale", 5.0)
    assert d.text == (
        f"hand = -0.625308, reference ({ref}) = -0.125062 (ratio 5) for the single element of "
        f"`b`: the ratio equals the batch size m = 5 — a missing 1/m, perhaps (one element "
        f"cannot show a pattern; the round ratio is the only hint).")


def _nll(p, y):
    r = y - p["mu"]
    return np.mean(0.5 * r * r * np.exp(-2 * p["log_s"]) + p["log_s"])


def _nll_grad(p, y):
    """The score of the log-scale squares ``r * r`` once more than it should."""
    r = y - p["mu"]
    return {"mu": np.array(np.mean(-r * np.exp(-2 * p["log_s"]))),
            "log_s": np.array(np.mean(1 - (r * r) ** 2 * np.exp(-2 * p["log_s"])))}


@pytest.mark.parametrize("oracles", [FD, ALL])
def test_a_zero_dimensional_block_states_its_two_values(oracles):
    ref = _backends(oracles)
    y = 1.0 + 0.8 * np.random.default_rng(7).standard_normal(6)
    report = crosscheck.check(_nll, _nll_grad, {"mu": np.array(0.4), "log_s": np.array(0.1)},
                              y, oracles=oracles)
    assert report.flagged == ["log_s"]
    d = report.blocks["log_s"].diagnosis
    assert (d.kind, d.factor) == ("other", None)
    assert d.text == (
        f"hand = 0.911083, reference ({ref}) = 0.820444 (ratio 1.11) for the single element of "
        f"`log_s`: one element cannot show a pattern, and any two values have a ratio, so this "
        f"is no evidence of a scale error — recheck each term of this gradient.")


def test_direct_one_element_blocks():
    d = _diagnose([0.4676], [1.0])
    assert (d.kind, d.factor) == ("other", None)
    assert d.text == (
        "hand = 0.4676, reference (jax) = 1 (ratio 0.4676) for the single element of `B`: one "
        "element cannot show a pattern, and any two values have a ratio, so this is no "
        "evidence of a scale error — recheck each term of this gradient.")
    d = _diagnose(np.array(-0.25), np.array(0.25))
    assert (d.kind, d.factor) == ("sign", -1.0)
    assert d.text == (
        "hand = -0.25, reference (jax) = 0.25 (ratio -1) for the single element of `B`: a sign "
        "error, perhaps (one element cannot show a pattern; the ratio −1 is the only hint).")
    d = _diagnose([0.5], [1.0])
    assert d.text == (
        "hand = 0.5, reference (jax) = 1 (ratio 0.5) for the single element of `B`: the ratio "
        "is 1/2 — an extra division by 2, or a dropped factor 2 (the 2 of d(x²)/dx), perhaps "
        "(one element cannot show a pattern; the round ratio is the only hint).")
    d = _diagnose([0.3], [-0.0])
    assert d.text == ("hand = 0.3, reference (jax) = 0 for the single element of `B`: the "
                      "reference gradient is 0 here — look for a term the loss does not have.")
    d = _diagnose([0.0], [0.25])
    assert (d.kind, d.text) == ("zero", "hand-written `B` is 0 while reference (jax) is 0.25: "
                                        "the gradient is never accumulated, or a mask removes it.")


# --- a round factor, within the reference's own error --------------------------------------

def _float32_lsq(p, X, y):
    """A least-squares loss summed in float32: centered differences resolve ~1e-4 here."""
    r = (X * p["w"]).sum(axis=1) - y
    return np.float32(0.5) * (r * r).astype(np.float32).sum() / np.float32(X.shape[0])


def _lsq_grad_without_1_over_m(p, X, y):
    r = (X * p["w"]).sum(axis=1) - y
    return {"w": (X * r[:, None]).sum(axis=0)}


def test_centered_differences_alone_still_call_out_m():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((50, 4)), rng.standard_normal(50)
    report = crosscheck.check(_float32_lsq, _lsq_grad_without_1_over_m,
                              {"w": rng.standard_normal(4)}, X, y, oracles=("fd",))
    d = report.blocks["w"].diagnosis
    assert (d.kind, d.factor) == ("scale", 50.0033)
    assert d.text == (
        "hand = 50.0033 × reference (fd) on all 4 elements of `w` (50 within the reference's "
        "error, ±0.15): the factor equals the batch size m = 50 — a missing 1/m.")


def test_direct_round_factor_within_the_references_error():
    ref = np.array([1.0, -2.0, 0.5, 3.0])
    hand = 50.02 * ref
    d = _diagnose(hand, ref, batch=50, tol=1e-2)      # ‖tol‖/‖ref‖ = 0.02/3.775: ±0.26
    assert d.text == ("hand = 50.020 × reference (jax) on all 4 elements of `B` (50 within "
                      "the reference's error, ±0.26): the factor equals the batch size m = 50 "
                      "— a missing 1/m.")
    d = _diagnose(hand, ref, batch=50, tol=1e-4)      # the reference pins it to ±0.0026
    assert d.text == ("hand = 50.020 × reference (jax) on all 4 elements of `B`: the "
                      "hand-written value is too large — look for a missing division (by a "
                      "count, a size or a norm) or a stray factor.")
    d = _diagnose(-0.999 * ref, ref, tol=1e-2)
    assert (d.kind, d.factor) == ("sign", -1.0)
    assert d.text == ("hand = -0.999 × reference (jax) on all 4 elements of `B` (−1 within "
                      "the reference's error, ±0.0053): a sign error (ŷ − y against y − ŷ, or "
                      "the gradient of −loss).")


def test_a_reference_too_coarse_names_no_round_factor():
    ref = np.array([1.0, -2.0, 0.5, 3.0])
    d = _diagnose(2.04 * ref, ref, tol=0.1)           # ±5.4%: anything near 2 would pass
    assert "the factor is 2" not in d.text
    assert "too large" in d.text


# --- the same small relative error everywhere: a drift, not a stray factor ---------------

EPS = 1e-5


def _bn_forward(x, gamma, beta):
    mu, var = x.mean(axis=0), x.var(axis=0)
    xhat = (x - mu) / np.sqrt(var + EPS)
    return gamma * xhat + beta, (x, xhat, var, gamma)


def _bn_backward_without_eps(dout, cache):
    """A batch-norm backward that divides by sqrt(var) where the forward used sqrt(var + eps)."""
    x, xhat, var, gamma = cache
    n = x.shape[0]
    dxhat = dout * gamma
    dx = (n * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0)) / (n * np.sqrt(var))
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def _bn(oracles, column_scales):
    x = np.random.default_rng(3).standard_normal((8, 3))
    x = (x - x.mean(axis=0)) / x.std(axis=0) * np.sqrt(2.5) * np.asarray(column_scales)
    return crosscheck.check_layer(_bn_forward, _bn_backward_without_eps, x=x,
                                  gamma=np.array([0.5, -1.2, 0.8]),
                                  beta=np.array([0.1, 0.2, 0.3]), oracles=oracles)


@pytest.mark.parametrize("oracles", [FD, ALL])
def test_batchnorm_missing_eps_is_a_drift_not_a_stray_factor(oracles):
    ref = _backends(oracles)
    report = _bn(oracles, [1.0, 1.0, 1.0])            # every column's variance 2.5: one factor
    assert report.flagged == ["x"]
    d = report.blocks["x"].diagnosis
    assert (d.kind, d.factor) == ("scale", 1.000002)
    assert d.text == (
        f"hand = 1.000002 × reference ({ref}) on all 24 elements of `x`: every element is off "
        f"by the same relative 2e-06, the hand-written value larger — a constant such as `eps` "
        f"used differently in the forward and the backward, not a stray factor.")


@pytest.mark.parametrize("oracles", [FD, ALL])
def test_batchnorm_missing_eps_with_one_drift_per_column(oracles):
    ref = _backends(oracles)
    d = _bn(oracles, [1.0, 0.6, 0.3]).blocks["x"].diagnosis
    assert (d.kind, d.factor) == ("other", None)
    assert d.text == (
        f"hand and reference ({ref}) differ on every element of `x` by a small relative "
        f"amount, one per column (2e-06 to 2.2e-05, the hand-written value larger): a constant "
        f"such as `eps` used differently in the forward and the backward, not a stray factor.")


def test_direct_drift_as_one_factor_and_one_per_row():
    ref = np.array([[1.0, -2.0, 0.5], [3.0, 1.5, -0.25]])
    d = _diagnose(ref * (1 - 4e-6), ref)
    assert (d.kind, d.factor) == ("scale", 0.999996)
    assert d.text == (
        "hand = 0.999996 × reference (jax) on all 6 elements of `B`: every element is off by "
        "the same relative 4e-06, the hand-written value smaller — a constant such as `eps` "
        "used differently in the forward and the backward, not a stray factor.")
    d = _diagnose(ref * (1 + np.array([[2e-6], [7e-6]])), ref)
    assert d.text == (
        "hand and reference (jax) differ on every element of `B` by a small relative amount, "
        "one per row (2e-06 to 7e-06, the hand-written value larger): a constant such as "
        "`eps` used differently in the forward and the backward, not a stray factor.")


def test_direct_drift_without_structure():
    ref = np.array([1.0, -2.0, 0.5, 3.0, 1.5])
    hand = ref * (1 + np.array([1e-6, 3e-6, -2e-6, 5e-6, 4e-6]))
    d = _diagnose(hand, ref)
    assert d.kind == "other"
    assert d.text == (
        "hand and reference (jax) differ on every element of `B` by a small relative amount "
        "(1e-06 to 5e-06, the hand-written value sometimes larger, sometimes smaller): a "
        "constant such as `eps` used differently in the forward and the backward, or an "
        "approximation in one of them, not a stray factor.")


# --- grammar and negative zero -------------------------------------------------------------

@pytest.mark.parametrize("oracles", [FD, ALL])
def test_one_element_disagrees(oracles):
    ref = _backends(oracles)

    def one_off(g, p):
        g = g.copy()
        g[1, 0] += 0.25
        return g

    d = _tanh(oracles, b=one_off).blocks["b"].diagnosis
    assert d.kind == "partial"
    hand, reference = d.elements[0]["hand"], d.elements[0]["reference"]
    assert d.text == (
        f"one element of `b` disagrees (at (1, 0): hand {value_text(hand)} vs reference "
        f"({ref}) {value_text(reference)}); the rest agree: look for an indexing slip, a missed "
        f"term or a wrong mask.")


def test_direct_one_element_disagrees():
    ref = np.arange(1.0, 7.0).reshape(2, 3)
    hand = ref.copy()
    hand[1, 2] = -0.0
    d = _diagnose(hand, ref)
    assert d.text == ("one element of `B` disagrees (at (1, 2): hand 0 vs reference (jax) 6); "
                      "the rest agree: look for an indexing slip, a missed term or a wrong "
                      "mask.")


def _relu_loss(p, x):
    return np.sum(np.maximum(p["w"], 0.0) * x)


def _relu_grad_without_mask(p, x):
    return {"w": x.copy()}


def test_no_negative_zero_from_jax():
    """jax differentiates ``maximum(w, 0) * x`` at w < 0, x < 0 to -0.0; it prints as 0."""
    _backends(("fd", "jax", "torch"))
    report = crosscheck.check(_relu_loss, _relu_grad_without_mask,
                              {"w": np.array([-1.0, 0.7, -2.0])}, np.array([-1.5, 2.0, -0.5]))
    d = report.blocks["w"].diagnosis
    assert d.reference == "jax"
    assert d.text == ("2 of 3 elements of `w` disagree (worst at (0,): hand -1.5 vs reference "
                      "(jax) 0); the rest agree: look for an indexing slip, a missed term or a "
                      "wrong mask.")
    assert all(np.copysign(1.0, e["reference"]) == 1.0 for e in d.elements)
    assert "at (0,): hand -1.5  jax 0\n" in str(report)
    assert "-0 " not in str(report) and "-0\n" not in str(report)


def test_value_text():
    assert value_text(-0.0) == "0"
    assert value_text(-1.5) == "-1.5"
    assert value_text(0.125062345) == "0.125062"


def test_direct_elements_hold_no_negative_zero():
    d = _diagnose([1.0, 2.0, 0.5], [-0.0, -0.0, -0.0])
    assert [e["reference"] for e in d.elements] == [0.0, 0.0, 0.0]
    assert all(np.copysign(1.0, e["reference"]) == 1.0 for e in d.elements)
    assert d.text == ("hand-written `B` is non-zero while reference (jax) is all zeros: the "
                      "loss does not depend on `B` here — look for a term the loss does not "
                      "have, or a gradient written to the wrong block.")


# --- diagnose() directly --------------------------------------------------------------------

def _diagnose(hand, ref, param=None, batch=None, tol=1e-12):
    hand, ref = np.asarray(hand, float), np.asarray(ref, float)
    t = np.full(hand.shape, tol)
    with np.errstate(invalid="ignore"):
        ratio = np.abs(hand - ref) / t
    ratio = np.where(np.isfinite(hand), ratio, np.inf)
    mismatch = ratio > 1
    param = np.random.default_rng(0).standard_normal(ref.shape) if param is None \
        else np.asarray(param, float)
    return diagnose("B", hand, ref, "jax", t, mismatch, ratio, param, batch)
