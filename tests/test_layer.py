"""``check_layer``: cs231n-style layers (``forward -> (out, cache)``, ``backward(dout, cache)``).

The layers of ``reference/layers.py`` -- affine, ReLU, batch norm in training mode, plain
numpy -- pass with their correct backward and are flagged on exactly ``x`` when only ``dx``
is wrong, with all three references run on every input; settings dicts (``bn_param``) pass
through untouched; every error message is tested.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest

import crosscheck
from crosscheck import CheckError
from crosscheck._targets import _load_file
from conftest import ROOT

jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def layers():
    return _load_file(ROOT / "reference" / "layers.py")


def _recipe(layers, name):
    """The forward, backward and inputs of one of ``reference/layers.py``'s cases."""
    for case_name, forward, backward, inputs in layers.layer_inputs():
        if case_name == name:
            return SimpleNamespace(name=name, forward=forward, backward=backward, inputs=inputs)
    raise KeyError(name)


def _names():
    module = _load_file(ROOT / "reference" / "layers.py")
    return [c.name for c in module.layer_cases()]


@pytest.fixture(scope="module")
def reports(layers):
    return {c.name: c.check() for c in layers.layer_cases()}


@pytest.mark.parametrize("name", _names())
def test_layer_verdicts(layers, reports, name):
    report = reports[name]
    assert report.flagged == layers.EXPECTED[name]["flagged"], str(report)
    assert report.case == f"layers/{name}"
    data = report.to_dict()
    for oracle in ("fd", "jax", "torch"):
        assert report.oracles[oracle].error is None, (oracle, report.oracles[oracle].error)
    for block, entry in data["blocks"].items():
        for oracle in ("fd", "jax", "torch"):
            assert isinstance(entry["difference"][oracle], float), (block, oracle)
    if name.endswith("/buggy"):
        assert set(report.blocks["x"].disagree) == {"fd", "jax", "torch"}


def test_blocks_are_the_forwards_float_array_inputs(reports):
    assert list(reports["affine/correct"].blocks) == ["x", "w", "b"]
    assert list(reports["relu/correct"].blocks) == ["x"]
    assert list(reports["batchnorm/correct"].blocks) == ["x", "gamma", "beta"]   # not bn_param
    assert reports["affine/correct"].blocks["x"].shape == (4, 3, 2)


def test_bn_param_is_passed_through_and_left_alone(layers):
    case = _recipe(layers, "batchnorm/correct")
    bn_param = {"mode": "train", "eps": 1e-5}
    report = crosscheck.check_layer(case.forward, case.backward, **{**case.inputs,
                                                                     "bn_param": bn_param})
    assert report.ok
    # batchnorm_forward stores running averages into bn_param: each call got its own copy
    assert bn_param == {"mode": "train", "eps": 1e-5}


def test_bn_param_holding_numpy_running_averages_runs_under_torch(layers):
    """A bn_param from a previous training step holds numpy arrays: under torch they become
    tensors (``ndarray + tensor`` would fail) and under jax they mix in as they are."""
    case = _recipe(layers, "batchnorm/buggy")
    running = {"running_mean": np.full(3, 0.5), "running_var": np.full(3, 2.0)}
    bn_param = {"mode": "train", "eps": 1e-5, "momentum": 0.9, **running}
    report = crosscheck.check_layer(case.forward, case.backward, **{**case.inputs,
                                                                     "bn_param": bn_param})
    assert report.flagged == ["x"]
    assert report.oracles["torch"].error is None and report.oracles["jax"].error is None
    assert set(bn_param) == {"mode", "eps", "momentum", "running_mean", "running_var"}
    for k, v in running.items():
        assert type(bn_param[k]) is np.ndarray and bn_param[k] is v
        assert np.array_equal(v, np.full(3, 0.5 if k == "running_mean" else 2.0))


def test_inputs_are_never_modified(layers):
    """Neither building a layer's Case (which runs the forward once) nor checking it."""
    for name, forward, backward, inputs in layers.layer_inputs():
        before = {k: v.copy() for k, v in inputs.items() if isinstance(v, np.ndarray)}
        settings = {k: dict(v) for k, v in inputs.items() if isinstance(v, dict)}
        case = layers.LayerCase.layer(name, forward, backward, **inputs)
        case.check(oracles=["fd"], fd=2, taylor=False)
        for k, v in before.items():
            assert np.array_equal(inputs[k], v), (name, k)
        assert {k: v for k, v in inputs.items() if isinstance(v, dict)} == settings, name


def test_wrt_selects_inputs_and_a_given_dout(layers):
    x = np.random.default_rng(0).standard_normal((3, 4))
    dout = np.ones((3, 4))
    report = crosscheck.check_layer(layers.relu_forward, layers.relu_backward_buggy, x=x,
                                    dout=dout)
    assert report.ok   # with dout all ones, forgetting dout is no error at all
    case = _recipe(layers, "affine/buggy")
    report = crosscheck.check_layer(case.forward, case.backward, wrt=["w", "b"], **case.inputs)
    assert list(report.blocks) == ["w", "b"] and report.ok


def test_array_method_dot_is_numpys_under_torch_and_all_three_decide(layers):
    """cs231n writes ``x.reshape(N, -1).dot(w)``: a method of the array. Under torch the
    arrays are torch's numpy layer's, so ``.dot`` is numpy's 2-D product: all three references
    run, agree with each other, and flag exactly ``x``."""
    def affine_forward_method(x, w, b):
        out = x.reshape(x.shape[0], -1).dot(w) + b
        return out, (x, w, b)

    case = _recipe(layers, "affine/buggy")
    report = crosscheck.check_layer(affine_forward_method, case.backward, **case.inputs)
    assert all(report.oracles[name].error is None for name in ("fd", "jax", "torch"))
    assert report.flagged == ["x"]
    assert report.to_dict()["blocks"]["x"]["difference"]["torch"] > 0.1


# ------------------------------------------------------------------ error messages
def _affine(layers):
    case = _recipe(layers, "affine/correct")
    return case.inputs["x"], case.inputs["w"], case.inputs["b"]


def test_missing_input(layers):
    x, w, b = _affine(layers)
    with pytest.raises(CheckError, match=r"^`forward` takes `b` but check_layer was not given it; "
                                         r"pass every input by name, e\.g\. "
                                         r"`check_layer\(fwd, bwd, x=x, w=w\)`\.$"):
        crosscheck.check_layer(layers.affine_forward, layers.affine_backward, x=x, w=w)
    with pytest.raises(CheckError, match=r"^`forward` takes `w`, `b` but check_layer was not "
                                         r"given them;"):
        crosscheck.check_layer(layers.affine_forward, layers.affine_backward, x=x)


def test_wrong_number_of_gradients(layers):
    x, w, b = _affine(layers)

    def two(dout, cache):
        return layers.affine_backward(dout, cache)[:2]

    with pytest.raises(CheckError, match=r"^`backward` returned 2 gradient\(s\) but `forward` has 3 "
                                         r"float array input\(s\) \(x, w, b\); return one gradient "
                                         r"per array input, in the forward's argument order\.$"):
        crosscheck.check_layer(layers.affine_forward, two, x=x, w=w, b=b, oracles=["fd"])


def test_dout_of_the_wrong_shape(layers):
    x, w, b = _affine(layers)
    with pytest.raises(CheckError, match=r"^`dout` has shape \(4, 6\) but the forward's output has "
                                         r"shape \(4, 5\); pass an upstream gradient of the "
                                         r"output's shape\.$"):
        crosscheck.check_layer(layers.affine_forward, layers.affine_backward, x=x, w=w, b=b,
                               dout=np.ones((4, 6)))


def test_wrt_a_non_array_input(layers):
    case = _recipe(layers, "batchnorm/correct")
    with pytest.raises(CheckError, match=r"^input `bn_param` is not a float array input of "
                                         r"`forward`; check_layer checks the gradients of float "
                                         r"array inputs \(x, gamma, beta\)\.$"):
        crosscheck.check_layer(case.forward, case.backward, wrt=["x", "bn_param"], **case.inputs)


def test_forward_without_a_cache(layers):
    x = np.random.default_rng(1).standard_normal((2, 3))
    with pytest.raises(CheckError, match=r"^`forward` must return `\(out, cache\)` for "
                                         r"check_layer, so that `backward\(dout, cache\)` can "
                                         r"run\.$"):
        crosscheck.check_layer(lambda x: np.maximum(0, x), layers.relu_backward, x=x,
                               oracles=["fd"])


# ------------------------------------------------------------------ per-framework forwards
def _tanh_numpy(x, w, settings):
    return np.tanh(x @ w) * settings["gain"], (x, w, settings["gain"])


def _tanh_backward(dout, cache):
    x, w, gain = cache
    dz = dout * gain * (1 - np.tanh(x @ w) ** 2)
    return dz @ w.T, x.T @ dz


def _tanh_inputs():
    r = np.random.default_rng(5)
    return {"x": r.standard_normal((3, 4)), "w": r.standard_normal((4, 2)),
            "settings": {"gain": np.array([1.0, 2.0])}}


def test_per_framework_forwards_run_each_in_its_own_framework():
    """Each framework runs its own forward, on its own arrays (the pass-through settings
    too); the numpy one gives centered differences and the backward's cache."""
    seen = {}

    def tanh_jax(x, w, settings):
        seen["jax"] = type(settings["gain"]).__module__.split(".")[0]
        return jax.numpy.tanh(x @ w) * settings["gain"], None

    def tanh_torch(x, w, settings):
        seen["torch"] = type(settings["gain"]).__module__.split(".")[0]
        return torch.tanh(x @ w) * settings["gain"], None

    forwards = {"numpy": _tanh_numpy, "jax": tanh_jax, "torch": tanh_torch}
    report = crosscheck.check_layer(forwards, _tanh_backward, **_tanh_inputs())
    assert report.ok and list(report.blocks) == ["x", "w"], str(report)
    assert all(report.oracles[o].error is None for o in ("fd", "jax", "torch"))
    assert seen == {"jax": "jax", "torch": "torch"}
    assert report.case == "_tanh_numpy"


def test_per_framework_forwards_are_the_ones_differentiated():
    """A torch forward that computes twice the output: torch's reference is twice the
    others', so the given forward, not the numpy one rebound, is what torch ran."""
    def doubled(x, w, settings):
        return 2 * torch.tanh(x @ w) * settings["gain"], None

    report = crosscheck.check_layer({"numpy": _tanh_numpy, "torch": doubled}, _tanh_backward,
                                    **_tanh_inputs())
    forward = report.to_dict()["forward"]
    assert forward["torch"] == pytest.approx(2 * forward["numpy"], rel=1e-12)
    assert forward["jax"] == pytest.approx(forward["numpy"], rel=1e-12)   # numpy's, rebound
    assert report.blocks["x"].difference["torch"] == pytest.approx(1 / 3, rel=1e-6)
    assert report.blocks["x"].difference["jax"] < 1e-12


def test_case_layer_takes_per_framework_forwards():
    def tanh_torch(x, w, settings):
        return torch.tanh(x @ w) * settings["gain"], None

    case = crosscheck.Case.layer("tanh", {"numpy": _tanh_numpy, "torch": tanh_torch},
                                 _tanh_backward, **_tanh_inputs(), oracles=["fd", "torch"])
    report = crosscheck.check(case.loss, case.grad, case.params, *case.args, **case.options)
    assert report.ok and report.oracles["torch"].error is None


@pytest.mark.parametrize("forwards, message", [
    ({"numpy": _tanh_numpy, "jx": _tanh_numpy},
     "`forward` dict has unknown key(s) `jx` (its keys: `numpy`, `jx`); use `numpy`, `jax`, "
     "`torch`, e.g. `check_layer({\"numpy\": f, \"torch\": f_torch}, backward, x=x)`."),
    ({"jax": _tanh_numpy, "torch": _tanh_numpy},
     "`forward` dict has no `numpy` entry (its keys: `jax`, `torch`); centered differences "
     "and the cache `backward` receives come from the numpy forward: add "
     "`\"numpy\": forward_np`."),
    ({}, "`forward` dict has no `numpy` entry (its keys: none);"),
    ({"numpy": _tanh_numpy, "torch": "tanh"},
     "`forward['torch']` must be callable, got str; pass that framework's forward function."),
])
def test_malformed_per_framework_forwards(forwards, message):
    with pytest.raises(CheckError, match="^" + re.escape(message)):
        crosscheck.check_layer(forwards, _tanh_backward, **_tanh_inputs())
