"""``crosscheck.check``: the orchestrator, end to end on small synthetic models.

Refusals that need the whole pipeline (determinism, mutation, oracle names), the caller's
arrays left untouched, blocks whose true gradient is zero, non-finite hand-written blocks,
parameters far from unit scale, forward parity and one framework failing on its own.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import crosscheck
from crosscheck import CheckError
from conftest import planted, snapshot, tanh_grad, tanh_loss, tanh_model

ALL = ("fd", "jax", "torch")


def _backends():
    pytest.importorskip("jax")
    pytest.importorskip("torch")


# --- the basic contract ------------------------------------------------------------------

def test_correct_gradient_passes_all_three_oracles():
    _backends()
    params, X, y = tanh_model()
    report = crosscheck.check(tanh_loss, tanh_grad, params, X, y)
    assert report.ok and report.flagged == []
    assert list(report.blocks) == ["W", "b", "v"]
    for block in report.blocks.values():
        assert block.verdict == "ok"
        assert block.diagnosis is None
        assert block.difference["fd"] <= 1e-9
        assert block.difference["jax"] <= 1e-13
        assert block.difference["torch"] <= 1e-13
    assert set(report.forward) == {"numpy", "jax", "torch"}
    assert report.oracles["fd"].evaluations >= 2 * sum(p.size for p in params.values())


def test_flagged_is_in_params_order():
    params, X, y = tanh_model()
    grad = planted(tanh_grad, v=lambda g, p: 3 * g, W=lambda g, p: -g)
    report = crosscheck.check(tanh_loss, grad, params, X, y, oracles=("fd",))
    assert report.flagged == ["W", "v"]
    assert report.blocks["b"].verdict == "ok"
    assert report.ok is False


def test_to_dict_follows_the_schema():
    params, X, y = tanh_model()
    grad = planted(tanh_grad, b=lambda g, p: 4 * g)
    data = crosscheck.check(tanh_loss, grad, params, X, y, oracles=("fd",),
                            case="tanh/buggy").to_dict()
    assert data["schema"] == "crosscheck.report/1"
    assert data["case"] == "tanh/buggy"
    assert data["ok"] is False and data["flagged"] == ["b"]
    assert set(data["oracles"]) == {"fd"}
    assert {"version", "seconds"} <= set(data["oracles"]["fd"])
    b = data["blocks"]["b"]
    assert b["shape"] == [3, 1] and b["verdict"] == "wrong"
    assert b["difference"]["fd"] == pytest.approx(3 / 5, rel=1e-6)
    assert b["diagnosis"]["kind"] == "scale"
    assert b["diagnosis"]["factor"] == pytest.approx(4.0, rel=1e-6)
    assert b["diagnosis"]["mismatched"] == 3 and b["diagnosis"]["size"] == 3
    assert data["blocks"]["W"]["diagnosis"] is None
    import json
    json.dumps(data, allow_nan=False)


def test_seed_style_keys_and_loss_grad_pair_are_accepted():
    params, X, y = tanh_model()

    def seeds_way(p, X, y):
        g = tanh_grad(p, X, y)
        return tanh_loss(p, X, y), {"dW": g["W"], "db": g["b"], "dv": g["v"], "dZ1": 0}

    report = crosscheck.check(tanh_loss, seeds_way, params, X, y, oracles=("fd",))
    assert report.ok
    assert not any("same model" in n for n in report.notes)


def test_grad_returning_another_models_loss_is_noted():
    params, X, y = tanh_model()

    def pair(p, X, y):
        return 2 * tanh_loss(p, X, y), tanh_grad(p, X, y)

    report = crosscheck.check(tanh_loss, pair, params, X, y, oracles=("fd",))
    assert report.ok
    assert any("same model" in n for n in report.notes)


def test_oracles_as_comma_separated_string():
    params, X, y = tanh_model()
    report = crosscheck.check(tanh_loss, tanh_grad, params, X, y, oracles="fd")
    assert list(report.oracles) == ["fd"]


@pytest.mark.parametrize("oracles, bad", [(("fd", "jaxx"), "['jaxx']"),
                                          (("autograd",), "['autograd']"),
                                          ((), "[]")])
def test_unknown_oracle_is_refused(oracles, bad):
    params, X, y = tanh_model()
    with pytest.raises(CheckError, match=re.escape(f"unknown oracle(s) {bad}; choose from "
                                                   f"fd, jax, torch.")):
        crosscheck.check(tanh_loss, tanh_grad, params, X, y, oracles=oracles)


def test_unknown_tolerance_is_refused():
    params, X, y = tanh_model()
    with pytest.raises(CheckError, match=r"unknown tolerance `fd_tol`; known: .*fd_rtol"):
        crosscheck.check(tanh_loss, tanh_grad, params, X, y, oracles=("fd",),
                         tolerances={"fd_tol": 1.0})


def test_check_error_is_a_value_error():
    assert issubclass(CheckError, ValueError)


# --- determinism ---------------------------------------------------------------------------

def test_unseeded_dropout_loss_is_refused():
    params, X, y = tanh_model()

    def dropout_loss(p, X, y):
        keep = np.random.default_rng().random(X.shape) > 0.2
        return tanh_loss(p, X * keep / 0.8, y)

    with pytest.raises(CheckError, match=r"`loss` is not deterministic: .*dropout.*"
                                         r"the loss must be deterministic"):
        crosscheck.check(dropout_loss, tanh_grad, params, X, y, oracles=("fd",))


def test_seeded_dropout_loss_is_accepted():
    params, X, y = tanh_model()
    keep = np.random.default_rng(1).random(X.shape) > 0.2

    def dropout_loss(p, X, y):
        return tanh_loss(p, X * keep / 0.8, y)

    def dropout_grad(p, X, y):
        return tanh_grad(p, X * keep / 0.8, y)

    assert crosscheck.check(dropout_loss, dropout_grad, params, X, y, oracles=("fd",)).ok


def test_non_deterministic_grad_is_refused():
    params, X, y = tanh_model()
    rng = np.random.default_rng(0)

    def noisy_grad(p, X, y):
        g = tanh_grad(p, X, y)
        g["b"] = g["b"] + 1e-3 * rng.standard_normal(g["b"].shape)
        return g

    with pytest.raises(CheckError, match=r"`grad` is not deterministic: .* block `b` "
                                         r"\(max difference .*\); seed or remove its randomness"):
        crosscheck.check(tanh_loss, noisy_grad, params, X, y, oracles=("fd",))


# --- the caller's arrays ------------------------------------------------------------------

def test_callers_arrays_unchanged_all_oracles():
    _backends()
    params, X, y = tanh_model()
    before = snapshot((params, X, y))
    crosscheck.check(tanh_loss, planted(tanh_grad, W=lambda g, p: 2 * g), params, X, y)
    assert snapshot((params, X, y)) == before


def test_callers_float32_and_noncontiguous_arrays_unchanged():
    params, X, y = tanh_model()
    params["W"] = np.asfortranarray(params["W"].astype(np.float32))
    X = np.ascontiguousarray(X.T).T      # a non-contiguous view
    before = snapshot((params, X, y))
    report = crosscheck.check(tanh_loss, tanh_grad, params, X, y, oracles=("fd",))
    assert report.ok
    assert snapshot((params, X, y)) == before
    assert params["W"].dtype == np.float32 and params["W"].flags.f_contiguous


def test_mutating_loss_is_refused():
    params, X, y = tanh_model()
    before = snapshot((params, X, y))

    def mutating(p, X, y):
        value = tanh_loss(p, X, y)
        p["b"] += 1.0
        return value

    with pytest.raises(CheckError, match=r"`loss` modifies the parameters it is given "
                                         r"\(block `b` changed during the call\)"):
        crosscheck.check(mutating, tanh_grad, params, X, y, oracles=("fd",))
    assert snapshot((params, X, y)) == before


def test_loss_mutating_its_data_is_refused():
    params, X, y = tanh_model()
    before = snapshot((params, X, y))

    def mutating(p, X, y):
        value = tanh_loss(p, X, y)
        X *= 2.0
        return value

    with pytest.raises(CheckError, match=r"`loss` modifies its extra arguments"):
        crosscheck.check(mutating, tanh_grad, params, X, y, oracles=("fd",))
    assert snapshot((params, X, y)) == before


def test_a_grad_that_writes_into_its_inputs_is_refused_and_nothing_of_the_caller_changes():
    """Like a loss that writes into its inputs: a backward that does is a bug the user hears
    about (an SGD step inside `grad`), and the caller's arrays are intact."""
    _backends()
    params, X, y = tanh_model()
    before = snapshot((params, X, y))

    def mutating(p, X, y):
        g = tanh_grad(p, X, y)
        p["W"] -= 0.1 * g["W"]     # an SGD step on the parameters it was given
        return g

    with pytest.raises(CheckError, match=r"^`grad` modifies the parameters it is given \(block "
                                         r"`W` changed during the call\); crosscheck gave it a "
                                         r"private copy, so your arrays are intact"):
        crosscheck.check(tanh_loss, mutating, params, X, y)
    assert snapshot((params, X, y)) == before

    def writes_data(p, X, y):
        X[...] = 0.0
        return tanh_grad(p, X, y)

    with pytest.raises(CheckError, match=r"^`grad` writes into its arguments \(`args\[0\]` "
                                         r"changed during the call\)"):
        crosscheck.check(tanh_loss, writes_data, params, X, y)
    assert snapshot((params, X, y)) == before


def test_a_grad_that_writes_into_an_array_held_by_an_object_argument_is_named():
    """The caller's data reachable through objects is never changed, and the write is named
    for what it is (it used to change the caller's data and be blamed as non-determinism)."""
    params, X, y = tanh_model()

    class Data:
        def __init__(self, X, y):
            self.X, self.y = X, y

    data = Data(X.copy(), y.copy())

    def loss(p, d):
        return tanh_loss(p, d.X, d.y)

    def grad(p, d):
        g = tanh_grad(p, d.X, d.y)
        d.X *= 2.0                 # writes into the object's array
        return g

    with pytest.raises(CheckError, match=r"^`grad` writes into its arguments \(`args\[0\]\.X` "
                                         r"changed during the call\)"):
        crosscheck.check(loss, grad, params, data, oracles=("fd",))
    assert np.array_equal(data.X, X) and np.array_equal(data.y, y)


# --- blocks whose true gradient is zero --------------------------------------------------

def _with_unused(hand_unused):
    params, X, y = tanh_model()
    params["unused"] = np.array([0.5, -1.0, 2.0])

    def grad(p, X, y):
        return {**tanh_grad(p, X, y), "unused": hand_unused.copy()}

    return params, X, y, grad


def test_untouched_parameter_with_zero_hand_gradient_is_ok():
    _backends()
    params, X, y, grad = _with_unused(np.zeros(3))
    report = crosscheck.check(tanh_loss, grad, params, X, y)
    assert report.ok
    block = report.blocks["unused"]
    assert block.verdict == "ok"
    assert block.difference == {"fd": 0.0, "jax": 0.0, "torch": 0.0}
    assert "error" not in report.to_dict()["oracles"]["torch"]


def test_untouched_parameter_with_one_nonzero_element_is_wrong_partial():
    _backends()
    params, X, y, grad = _with_unused(np.array([0.0, 0.25, 0.0]))
    report = crosscheck.check(tanh_loss, grad, params, X, y)
    assert report.flagged == ["unused"]
    d = report.blocks["unused"].diagnosis
    assert d.kind == "partial"
    assert d.mismatched == 1 and d.worst == (1,)


def test_untouched_parameter_with_dense_hand_gradient_is_wrong():
    _backends()
    params, X, y, grad = _with_unused(np.array([0.3, 0.1, -0.7]))
    report = crosscheck.check(tanh_loss, grad, params, X, y)
    assert report.flagged == ["unused"]
    assert report.blocks["unused"].diagnosis.kind == "other"
    assert report.blocks["unused"].difference["jax"] == 1.0


# --- non-finite hand-written blocks --------------------------------------------------------

def test_nan_in_hand_block_is_wrong_nonfinite_and_other_blocks_still_judged():
    _backends()
    params, X, y = tanh_model()

    def grad(p, X, y):
        g = tanh_grad(p, X, y)
        g["b"] = g["b"].copy()
        g["b"][1, 0] = np.nan
        g["v"] = 2 * g["v"]
        return g

    report = crosscheck.check(tanh_loss, grad, params, X, y)
    assert report.flagged == ["b", "v"]
    assert report.blocks["W"].verdict == "ok"
    d = report.blocks["b"].diagnosis
    assert d.kind == "nonfinite"
    assert "NaN/Inf at 1 of 3" in d.text
    assert report.blocks["v"].diagnosis.kind == "scale"
    assert report.blocks["v"].diagnosis.factor == pytest.approx(2.0, rel=1e-6)
    assert report.to_dict()["blocks"]["b"]["difference"]["jax"] is None
    str(report)  # renders


def test_inf_in_hand_block_is_wrong_nonfinite():
    params, X, y = tanh_model()
    grad = planted(tanh_grad, W=lambda g, p: np.where(np.arange(g.size).reshape(g.shape) == 5,
                                                       np.inf, g))
    report = crosscheck.check(tanh_loss, grad, params, X, y, oracles=("fd",))
    assert report.flagged == ["W"]
    assert report.blocks["W"].diagnosis.kind == "nonfinite"


# --- scale ------------------------------------------------------------------------------

@pytest.mark.parametrize("w_scale, x_scale", [(1e4, 1e-4), (1e-4, 1e4)])
def test_parameters_far_from_unit_scale(w_scale, x_scale):
    _backends()
    params, X, y = tanh_model(w_scale=w_scale, x_scale=x_scale)
    report = crosscheck.check(tanh_loss, tanh_grad, params, X, y)
    assert report.ok, str(report)
    for name, block in report.blocks.items():
        assert block.difference["fd"] <= 1e-10, (name, block.difference)
    bad = crosscheck.check(tanh_loss, planted(tanh_grad, W=lambda g, p: 1.001 * g),
                           params, X, y)
    assert bad.flagged == ["W"]
    assert bad.blocks["W"].diagnosis.factor == pytest.approx(1.001, rel=1e-6)


def test_tiny_loss_scale_correct_gradient_not_flagged():
    params, X, y = tanh_model()

    def loss(p, X, y):
        return 1e-12 * tanh_loss(p, X, y)

    def grad(p, X, y):
        return {k: 1e-12 * v for k, v in tanh_grad(p, X, y).items()}

    assert crosscheck.check(loss, grad, params, X, y, oracles=("fd",)).ok


# --- forward parity -----------------------------------------------------------------------

def _scaled_torch_loss(p, X, y):
    return tanh_loss(p, X, y) * (1 + 1e-6)


def test_forward_parity_failure_does_not_blame_the_hand_gradient():
    _backends()
    params, X, y = tanh_model()
    loss = {"numpy": tanh_loss, "torch": _scaled_torch_loss}
    report = crosscheck.check(loss, tanh_grad, params, X, y)
    assert report.ok
    for name, block in report.blocks.items():
        assert block.verdict == "ok", (name, block.reason)
        assert "torch" not in block.agree and "torch" not in block.disagree
        # torch's gradient is that of a different loss: it is shown, it just does not decide
        assert block.difference["torch"] == pytest.approx(5e-7, rel=1e-3)


def test_forward_parity_failure_is_reported():
    _backends()
    params, X, y = tanh_model()
    loss = {"numpy": tanh_loss, "torch": _scaled_torch_loss}
    report = crosscheck.check(loss, tanh_grad, params, X, y)
    data = report.to_dict()
    assert data["oracles"]["torch"]["parity"] is False
    assert data["oracles"]["jax"]["parity"] is True
    assert data["forward"]["torch"] == pytest.approx(data["forward"]["numpy"] * (1 + 1e-6),
                                                     rel=1e-12)
    assert any("forward parity" in n and "torch" in n for n in report.notes)
    assert "FORWARD DIFFERS" in str(report)


def test_parity_attribute_is_a_python_bool():
    _backends()
    params, X, y = tanh_model()
    loss = {"numpy": tanh_loss, "torch": _scaled_torch_loss}
    report = crosscheck.check(loss, tanh_grad, params, X, y)
    assert report.oracles["torch"].parity is False
    assert report.oracles["jax"].parity is True


def test_forward_parity_failure_still_flags_a_real_bug():
    _backends()
    params, X, y = tanh_model()
    loss = {"numpy": tanh_loss, "torch": _scaled_torch_loss}
    report = crosscheck.check(loss, planted(tanh_grad, b=lambda g, p: 2 * g), params, X, y)
    assert report.flagged == ["b"]
    assert report.blocks["b"].diagnosis.reference in ("jax", "fd")
    assert report.blocks["b"].diagnosis.factor == pytest.approx(2.0, rel=1e-6)


# --- one framework failing on its own --------------------------------------------------------

def _raising(p, X, y):
    raise RuntimeError("no such kernel for this op")


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_loss_failing_under_one_framework(framework):
    _backends()
    params, X, y = tanh_model()
    loss = {"numpy": tanh_loss, framework: _raising}
    report = crosscheck.check(loss, tanh_grad, params, X, y)
    other = "jax" if framework == "torch" else "torch"
    error = report.oracles[framework].error
    assert error is not None and "RuntimeError" in error
    assert "no such kernel for this op" in error
    assert report.oracles[other].error is None
    assert report.ok
    data = report.to_dict()
    assert "RuntimeError" in data["oracles"][framework]["error"]
    for block in data["blocks"].values():
        assert block["difference"][framework] is None
        assert block["difference"][other] <= 1e-13
    buggy = crosscheck.check(loss, planted(tanh_grad, v=lambda g, p: -g), params, X, y)
    assert buggy.flagged == ["v"]
    assert buggy.blocks["v"].diagnosis.kind == "sign"


def test_loss_raising_in_numpy_is_refused():
    params, X, y = tanh_model()
    with pytest.raises(CheckError, match=r"`loss` raised RuntimeError at the check point: "
                                         r"no such kernel for this op"):
        crosscheck.check(_raising, tanh_grad, params, X, y, oracles=("fd",))


def test_grad_raising_is_refused():
    params, X, y = tanh_model()

    def grad(p, X, y):
        raise KeyError("dW3")

    with pytest.raises(CheckError, match=r"`grad` raised KeyError: 'dW3'"):
        crosscheck.check(tanh_loss, grad, params, X, y, oracles=("fd",))


# --- reproducibility ------------------------------------------------------------------------

def test_same_seed_same_report():
    params, X, y = tanh_model()
    a = crosscheck.check(tanh_loss, tanh_grad, params, X, y, oracles=("fd",), seed=3)
    b = crosscheck.check(tanh_loss, tanh_grad, params, X, y, oracles=("fd",), seed=3)
    for name in params:
        assert a.blocks[name].difference == b.blocks[name].difference
        assert a.blocks[name].taylor == b.blocks[name].taylor
    assert a.fingerprint == b.fingerprint and a.seed == 3
