"""Property tests: on random shapes and random small smooth models, a correct backward is
never flagged, planted scale/sign/transpose bugs are always flagged with the right kind, and
the caller's arrays are never touched."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crosscheck
from crosscheck._difference import relative_difference
from conftest import snapshot

SETTINGS = settings(max_examples=25, deadline=None)


def model_loss(params, X, Y):
    """0.5·Σ(tanh(W X [+ c]) − Y)² + 0.05·Σ W⁴ (plain numpy; rebound under jax/torch)."""
    Z = params["W"] @ X
    if "c" in params:
        Z = Z + params["c"]
    R = np.tanh(Z) - Y
    return 0.5 * np.sum(R * R) + 0.05 * np.sum(params["W"] ** 4)


def model_grad(params, X, Y):
    Z = params["W"] @ X
    if "c" in params:
        Z = Z + params["c"]
    A = np.tanh(Z)
    dZ = (A - Y) * (1.0 - A * A)
    out = {"W": dZ @ X.T + 0.2 * params["W"] ** 3}
    if "c" in params:
        out["c"] = np.sum(dZ, axis=1, keepdims=True)
    return out


@st.composite
def models(draw, square=False):
    h = draw(st.integers(1, 4))
    d = h if square else draw(st.integers(1, 4))
    m = draw(st.integers(1, 4))
    two_blocks = draw(st.booleans())
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    params = {"W": rng.standard_normal((h, d)) * 0.7}
    if two_blocks:
        params["c"] = rng.standard_normal((h, 1)) * 0.5
    X = rng.standard_normal((d, m))
    Y = rng.uniform(-0.9, 0.9, (h, m))
    return params, X, Y


def _planted(block, change):
    def grad(params, X, Y):
        out = model_grad(params, X, Y)
        out[block] = change(out[block])
        return out
    return grad


@SETTINGS
@given(models())
def test_correct_backward_is_never_flagged(model):
    params, X, Y = model
    before = snapshot((params, X, Y))
    report = crosscheck.check(model_loss, model_grad, params, X, Y, oracles=("fd",))
    assert report.flagged == [], str(report)
    assert snapshot((params, X, Y)) == before


@SETTINGS
@given(models())
def test_correct_backward_is_never_flagged_with_torch(model):
    pytest.importorskip("torch")
    params, X, Y = model
    before = snapshot((params, X, Y))
    report = crosscheck.check(model_loss, model_grad, params, X, Y, oracles=("fd", "torch"))
    assert report.flagged == [], str(report)
    assert report.oracles["torch"].error is None
    assert all(b.verdict == "ok" for b in report.blocks.values())
    assert snapshot((params, X, Y)) == before


@SETTINGS
@given(models(), st.sampled_from([2.0, 0.5, 3.0]), st.data())
def test_scale_bug_is_always_flagged_as_scale(model, factor, data):
    params, X, Y = model
    block = data.draw(st.sampled_from(sorted(params)))
    before = snapshot((params, X, Y))
    report = crosscheck.check(model_loss, _planted(block, lambda g: factor * g), params, X, Y,
                              oracles=("fd",))
    assert report.flagged == [block], str(report)
    d = report.blocks[block].diagnosis
    if params[block].size == 1 and factor == 3.0:
        # one element shows no pattern: any two values have a ratio (2 and 1/2 are named)
        assert d.kind == "other" and d.factor is None, d.text
        assert "one element cannot show a pattern" in d.text
    else:
        assert d.kind == "scale", d.text
        assert d.factor == pytest.approx(factor, rel=1e-6)
    assert snapshot((params, X, Y)) == before


@SETTINGS
@given(models(), st.data())
def test_sign_bug_is_always_flagged_as_sign(model, data):
    params, X, Y = model
    block = data.draw(st.sampled_from(sorted(params)))
    before = snapshot((params, X, Y))
    report = crosscheck.check(model_loss, _planted(block, lambda g: -g), params, X, Y,
                              oracles=("fd", "torch"))
    assert report.flagged == [block], str(report)
    d = report.blocks[block].diagnosis
    assert d.kind == "sign" and d.factor == -1.0
    assert snapshot((params, X, Y)) == before


@SETTINGS
@given(models(square=True).filter(lambda m: m[0]["W"].shape[0] >= 2))
def test_transpose_bug_on_a_square_block_is_always_flagged_as_transpose(model):
    params, X, Y = model
    before = snapshot((params, X, Y))
    report = crosscheck.check(model_loss, _planted("W", lambda g: g.T), params, X, Y,
                              oracles=("fd",))
    assert report.flagged == ["W"], str(report)
    assert report.blocks["W"].diagnosis.kind == "transpose"
    assert snapshot((params, X, Y)) == before


finite = st.floats(-1e6, 1e6, allow_nan=False)


@SETTINGS
@given(st.lists(finite, min_size=1, max_size=6), st.data())
def test_relative_difference_properties(a, data):
    b = data.draw(st.lists(finite, min_size=len(a), max_size=len(a)))
    a, b = np.array(a), np.array(b)
    d = relative_difference(a, b)
    assert 0.0 <= d <= 1.0 + 1e-15
    assert d == relative_difference(b, a)
    assert relative_difference(a, a) == 0.0
