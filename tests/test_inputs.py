"""``crosscheck._inputs``: validate once, at the door; every refusal names the block and the fix."""

from __future__ import annotations

import re

import numpy as np
import pytest

import crosscheck
from crosscheck import CheckError
from crosscheck._inputs import (batch_size, normalize_grad, prepare_args, prepare_loss,
                                prepare_params, scalar_loss)
from conftest import planted, tanh_grad, tanh_loss, tanh_model


def _check(loss=tanh_loss, grad=tanh_grad, params=None, *args):
    if params is None:
        params, X, y = tanh_model()
        args = (X, y)
    return crosscheck.check(loss, grad, params, *args, oracles=("fd",))


# --- params ------------------------------------------------------------------------------

@pytest.mark.parametrize("params", [None, {}, [np.ones(3)], np.ones(3)])
def test_params_must_be_a_non_empty_dict(params):
    with pytest.raises(CheckError, match=r"`params` must be a non-empty dict of named "
                                         r"parameter blocks, got \w+; pass e\.g\. "):
        prepare_params(params)


def test_block_names_must_be_strings():
    with pytest.raises(CheckError, match=r"parameter block names must be strings, got 3"):
        prepare_params({3: np.ones(2)})


@pytest.mark.parametrize("bad, count, first", [(np.nan, 1, "(0, 1)"), (np.inf, 1, "(0, 1)"),
                                               (-np.inf, 1, "(0, 1)")])
def test_nonfinite_params_name_the_block(bad, count, first):
    params, X, y = tanh_model()
    params["W"] = params["W"].copy()
    params["W"][0, 1] = bad
    with pytest.raises(CheckError, match=re.escape(
            f"block `W` holds {count} NaN/Inf value(s) (first at index {first}); a gradient "
            f"can only be checked at a finite point: pass finite parameter values.")):
        _check(tanh_loss, tanh_grad, params, X, y)


def test_complex_params_are_refused():
    with pytest.raises(CheckError, match=r"block `z` has dtype complex128; crosscheck checks "
                                         r"real-valued parameters: pass a float array\."):
        prepare_params({"z": np.ones(2, dtype=complex)})


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int64, np.int32])
def test_low_precision_and_integer_params_are_checked_in_float64_with_a_note(dtype):
    params, X, y = tanh_model()
    params["b"] = np.array([[1], [-2], [3]]).astype(dtype)
    report = _check(tanh_loss, tanh_grad, params, X, y)
    assert report.ok
    name = np.dtype(dtype).name
    assert f"block `b` is {name}; checked in float64 (exact upcast)." in report.notes
    assert not any("block `W` is" in n for n in report.notes)


def test_params_are_private_float64_copies():
    W = np.arange(6, dtype=np.float32).reshape(2, 3)
    blocks = prepare_params({"W": W, "b": np.zeros(2)})
    assert blocks.flat.dtype == np.float64
    assert blocks.views["W"].shape == (2, 3)
    assert not np.shares_memory(blocks.views["W"], W)
    blocks.views["W"][0, 0] = 99
    assert W[0, 0] == 0
    assert blocks.slices["b"] == slice(6, 8)
    assert np.shares_memory(blocks.views["b"], blocks.flat)
    copy = blocks.copy()
    assert not np.shares_memory(copy.flat, blocks.flat)
    assert copy.fingerprint() == blocks.fingerprint()


def test_fingerprint_depends_on_values_and_names():
    a = prepare_params({"W": np.ones(3)}).fingerprint()
    assert a.startswith("sha256:")
    assert prepare_params({"W": np.ones(3)}).fingerprint() == a
    assert prepare_params({"V": np.ones(3)}).fingerprint() != a
    assert prepare_params({"W": np.array([1.0, 1.0, 1.0 + 2 ** -52])}).fingerprint() != a


def test_all_zero_block_is_noted_not_refused():
    params, X, y = tanh_model()
    params["b"] = np.zeros((3, 1))
    report = _check(tanh_loss, tanh_grad, params, X, y)
    assert report.ok
    assert any(n.startswith("block `b` is all zeros") for n in report.notes)
    assert not any("block `W`" in n for n in report.notes)


def test_identical_rows_are_noted_not_refused():
    params, X, y = tanh_model()
    params["W"] = np.tile(params["W"][:1], (3, 1))
    report = _check(tanh_loss, tanh_grad, params, X, y)
    assert report.ok
    assert any(n.startswith("block `W` has identical rows") for n in report.notes)


def test_constant_block_is_noted():
    notes = prepare_params({"c": np.full(4, 0.5), "s": np.array([2.0])}).notes
    assert len(notes) == 1 and notes[0].startswith("block `c` is constant")


# --- args ----------------------------------------------------------------------------------

def test_nan_in_args_is_refused():
    params, X, y = tanh_model()
    y = y.copy()
    y[0, 2] = np.nan
    with pytest.raises(CheckError, match=re.escape(
            "argument 2 after `params` holds NaN/Inf; a gradient can only be checked on finite "
            "data: clean or impute the data first.")):
        _check(tanh_loss, tanh_grad, params, X, y)


def test_args_become_private_float64_copies_and_ints_stay_ints():
    X = np.ones((2, 2), dtype=np.float32)
    labels = np.array([0, 1])
    out = prepare_args((X, labels, 0.7, "mean"))
    assert out[0].dtype == np.float64 and not np.shares_memory(out[0], X)
    assert out[1].dtype == labels.dtype and not np.shares_memory(out[1], labels)
    assert out[2] == 0.7 and out[3] == "mean"


def test_batch_size_is_the_shared_dimension():
    assert batch_size((np.ones((4, 7)), np.ones((1, 7)))) == 7
    assert batch_size((np.ones((4, 7)), np.ones((4, 7)))) is None   # 4 and 7 are both shared
    assert batch_size((np.ones((1, 1)),)) is None
    assert batch_size(()) is None


# --- the loss value -------------------------------------------------------------------------

def test_non_scalar_loss_is_refused():
    params, X, y = tanh_model()

    def per_example(p, X, y):
        return (p["v"] @ np.tanh(p["W"] @ X + p["b"]) - y) ** 2

    with pytest.raises(CheckError, match=re.escape(
            "`loss` returned an array of shape (1, 5) at the check point; it must return one "
            "scalar (sum or average the per-example losses).")):
        _check(per_example, tanh_grad, params, X, y)


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_non_finite_loss_at_the_point_is_refused(value):
    params, X, y = tanh_model()
    text = str(float(value))
    with pytest.raises(CheckError, match=re.escape(
            f"`loss` is {text} at the check point; a gradient can only be checked where the "
            f"loss is finite")):
        _check(lambda p, X, y: tanh_loss(p, X, y) * value, tanh_grad, params, X, y)


def test_log_of_zero_loss_is_refused():
    params = {"w": np.array([0.0, 1.0])}
    with np.errstate(divide="ignore"):
        with pytest.raises(CheckError, match=r"`loss` is -inf at the check point; .*guard "
                                             r"log/exp"):
            crosscheck.check(lambda p: np.sum(np.log(p["w"])), lambda p: {"w": 1 / p["w"]},
                             params, oracles=("fd",))


def test_scalar_loss_accepts_0d_and_1_element_arrays():
    assert scalar_loss(np.array([[2.5]]), "here") == 2.5
    assert scalar_loss(np.float32(1.5), "here") == 1.5
    with pytest.raises(CheckError, match=r"`loss` returned complex128 here; it must return "
                                         r"a real scalar"):
        scalar_loss(np.array(1 + 1j), "here")


# --- the hand-written gradient ---------------------------------------------------------------

def test_flat_bias_gradient_names_the_block_and_the_shape():
    params, X, y = tanh_model()
    grad = planted(tanh_grad, b=lambda g, p: g.ravel())
    with pytest.raises(CheckError, match=re.escape(
            "`grad` returned shape (3,) for block `b`, whose parameter has shape (3, 1); "
            "return an array of the parameter's shape (`keepdims=True` in the sum keeps it).")):
        _check(tanh_loss, grad, params, X, y)


def test_seed_net_style_flat_b1_is_refused():
    params = {"W1": np.ones((5, 4)), "b1": np.ones((5, 1))}
    blocks = prepare_params(params)
    with pytest.raises(CheckError, match=r"`grad` returned shape \(5,\) for block `b1`, whose "
                                         r"parameter has shape \(5, 1\)"):
        normalize_grad({"dW1": np.ones((5, 4)), "db1": np.ones(5)}, blocks)


def test_wrong_size_gradient_has_no_keepdims_hint():
    blocks = prepare_params({"W": np.ones((2, 3))})
    with pytest.raises(CheckError, match=r"shape \(4,\) for block `W`.*parameter's shape\.$"):
        normalize_grad({"W": np.ones(4)}, blocks)


def test_transposed_gradient_shape_does_not_suggest_keepdims():
    # (3, 2) for a (2, 3) block is a transpose, not a dropped axis: `keepdims` is no fix
    blocks = prepare_params({"W": np.ones((2, 3))})
    with pytest.raises(CheckError, match=r"`grad` returned shape \(3, 2\) for block `W`, "
                                         r"whose parameter has shape \(2, 3\)") as info:
        normalize_grad({"W": np.ones((3, 2))}, blocks)
    assert "keepdims" not in str(info.value)


def test_missing_block_is_named():
    params, X, y = tanh_model()

    def grad(p, X, y):
        g = tanh_grad(p, X, y)
        del g["v"]
        return g

    with pytest.raises(CheckError, match=re.escape(
            "`grad` returned no gradient for block `v` (looked for `v`, `dv`); return one "
            "array per parameter block.")):
        _check(tanh_loss, grad, params, X, y)


@pytest.mark.parametrize("out, kind", [([1, 2, 3], "list"), (None, "NoneType"),
                                       (np.ones(3), "ndarray")])
def test_grad_must_return_a_dict(out, kind):
    blocks = prepare_params({"W": np.ones(3)})
    with pytest.raises(CheckError, match=rf"`grad` returned {kind}; return a dict keyed like "
                                         rf"`params`"):
        normalize_grad(out, blocks)


def test_grad_key_styles_and_pairs():
    blocks = prepare_params({"W1": np.ones(2), "b1": np.ones(1), "W2": np.ones(1),
                             "b2": np.ones(1)})
    out = {"W1": [1, 2], "db1": [3], "d_W2": np.float32([4]), "grad_b2": [5], "dZ1": "x"}
    grads, value = normalize_grad((7.0, out), blocks)
    assert value == 7.0
    assert {k: v.tolist() for k, v in grads.items()} == {"W1": [1, 2], "b1": [3], "W2": [4],
                                                         "b2": [5]}
    assert all(v.dtype == np.float64 for v in grads.values())


def test_grad_non_numeric_block_is_refused():
    blocks = prepare_params({"W": np.ones(2)})
    with pytest.raises(CheckError, match=r"`grad` returned dtype <U1 for block `W`; return a "
                                         r"real float array\."):
        normalize_grad({"W": np.array(["a", "b"])}, blocks)


def test_torch_tensor_gradients_are_accepted():
    torch = pytest.importorskip("torch")
    blocks = prepare_params({"W": np.ones(2)})
    grads, _ = normalize_grad({"W": torch.tensor([1.0, 2.0], requires_grad=True) * 1}, blocks)
    assert grads["W"].tolist() == [1.0, 2.0]


# --- the loss argument -------------------------------------------------------------------------

def test_loss_dict_keys_are_validated():
    with pytest.raises(CheckError, match=re.escape("`loss` dict has unknown key(s) ['tf']; "
                                                   "use `numpy`, `jax`, `torch`.")):
        prepare_loss({"numpy": tanh_loss, "tf": tanh_loss})
    with pytest.raises(CheckError, match=r"`loss` dict has no `numpy` entry; .*add "
                                         r"`'numpy': loss_np`"):
        prepare_loss({"torch": tanh_loss})
    with pytest.raises(CheckError, match=re.escape("`loss['jax']` is not callable.")):
        prepare_loss({"numpy": tanh_loss, "jax": 3})
    with pytest.raises(CheckError, match=r"`loss` must be callable, got int\."):
        prepare_loss(3)


def test_loss_dict_resolution():
    spec = prepare_loss({"numpy": tanh_loss, "torch": len})
    assert spec.numpy is tanh_loss
    assert spec.for_framework("torch") == (len, "given")
    assert spec.for_framework("jax") == (tanh_loss, "shared")
