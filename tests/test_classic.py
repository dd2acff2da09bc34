"""crosscheck.classic reproduces the course notebook's figures, bit for bit where printed in full."""

from __future__ import annotations

import doctest
import importlib
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import crosscheck.classic as classic
from crosscheck._errors import CheckError
from crosscheck.classic import (
    dictionary_to_vector,
    gradient_check,
    gradient_check_n,
    gradients_to_vector,
    vector_to_dictionary,
)

# --------------------------------------------------------------------------------------
# The notebook's 3-layer network (seeds 000/003), written out here so the figures do not
# depend on any other file. LINEAR->RELU->LINEAR->RELU->LINEAR->SIGMOID.


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def relu(z):
    return np.maximum(0, z)


def gradient_check_n_test_case(seed=1):
    np.random.seed(seed)
    x = np.random.randn(4, 3)
    y = np.array([1, 1, 0])
    params = {}
    for name, shape in [("W1", (5, 4)), ("b1", (5, 1)), ("W2", (3, 5)), ("b2", (3, 1)), ("W3", (1, 3)), ("b3", (1, 1))]:
        params[name] = np.random.randn(*shape)
    return x, y, params


def forward_propagation_n(X, Y, parameters):
    m = X.shape[1]
    W1, b1, W2, b2, W3, b3 = (parameters[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3"))
    Z1 = np.dot(W1, X) + b1
    A1 = relu(Z1)
    Z2 = np.dot(W2, A1) + b2
    A2 = relu(Z2)
    Z3 = np.dot(W3, A2) + b3
    A3 = sigmoid(Z3)
    logprobs = np.multiply(-np.log(A3), Y) + np.multiply(-np.log(1 - A3), 1 - Y)
    cost = 1.0 / m * np.sum(logprobs)
    return cost, (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)


def _backward(X, Y, cache, dW2_factor, db1_numerator):
    m = X.shape[1]
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache
    dZ3 = A3 - Y
    dW3 = 1.0 / m * np.dot(dZ3, A2.T)
    db3 = 1.0 / m * np.sum(dZ3, axis=1, keepdims=True)
    dA2 = np.dot(W3.T, dZ3)
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dW2 = 1.0 / m * np.dot(dZ2, A1.T) * dW2_factor
    db2 = 1.0 / m * np.sum(dZ2, axis=1, keepdims=True)
    dA1 = np.dot(W2.T, dZ2)
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1.0 / m * np.dot(dZ1, X.T)
    db1 = db1_numerator / m * np.sum(dZ1, axis=1, keepdims=True)
    return {"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2, "dZ2": dZ2, "dW2": dW2, "db2": db2,
            "dA1": dA1, "dZ1": dZ1, "dW1": dW1, "db1": db1}


def backward_propagation_n(X, Y, cache):
    return _backward(X, Y, cache, 1, 1.0)


def backward_propagation_n_buggy(X, Y, cache):
    return _backward(X, Y, cache, 2, 4.0)


def seed_net(backward):
    X, Y, parameters = gradient_check_n_test_case()
    _, cache = forward_propagation_n(X, Y, parameters)
    return X, Y, parameters, backward(X, Y, cache)


# --------------------------------------------------------------------------------------
# Seed 002's L-layer network (np.random.seed(2)), cost with np.nanmean.


def forward_propagate(parameters, X):
    L = len(parameters) // 2
    caches = {"A0": X}
    A = X
    for l in range(1, L):
        A = relu(parameters["W" + str(l)] @ A + parameters["b" + str(l)])
        caches["A" + str(l)] = A
    A = sigmoid(parameters["W" + str(L)] @ A + parameters["b" + str(L)])
    caches["A" + str(L)] = A
    return A, caches


def compute_cost(AL, Y):
    return -np.nanmean(Y * np.log(AL) + (1 - Y) * np.log(1 - AL))


def backward_propagate(parameters, Y, caches, hidden_scale=True):
    L = len(parameters) // 2
    grads = {}
    dZ = caches["A" + str(L)] - Y
    grads["dW" + str(L)] = dZ @ caches["A" + str(L - 1)].T / dZ.shape[1]
    grads["db" + str(L)] = np.mean(dZ, axis=1, keepdims=True)
    for l in reversed(range(1, L)):
        dZ = parameters["W" + str(l + 1)].T @ dZ * (caches["A" + str(l)] > 0)
        dW = dZ @ caches["A" + str(l - 1)].T
        grads["dW" + str(l)] = dW / dZ.shape[1] if hidden_scale else dW
        grads["db" + str(l)] = np.mean(dZ, axis=1, keepdims=True)
    return grads


def seed002_forward(X, Y, parameters):
    AL, _ = forward_propagate(parameters, X)
    return compute_cost(AL, Y)


def seed002_net(hidden_scale):
    X, Y, parameters = gradient_check_n_test_case(seed=2)
    _, caches = forward_propagate(parameters, X)
    return X, Y, parameters, backward_propagate(parameters, Y, caches, hidden_scale)


# --------------------------------------------------------------------------------------
# 1-D check


def test_1d_matches_seed_exactly():
    assert gradient_check(lambda x, t: np.dot(t, x), lambda x, t: x, 2, 4) == 2.919335883291695e-10


def test_1d_matches_seed_004():
    assert gradient_check(lambda x, t: t * x, lambda x, t: x, 3, 4) == 7.814075313343006e-11


def test_1d_wrong_backward_is_large():
    assert gradient_check(lambda x, t: t * x, lambda x, t: 2 * x, 2, 4) == pytest.approx(1 / 3, rel=1e-6)


def test_1d_verbose(capsys):
    gradient_check(lambda x, t: t * x, lambda x, t: x, 2, 4, verbose=True)
    assert capsys.readouterr().out == "Your backward propagation works perfectly fine! difference = 2.919335883291695e-10\n"
    gradient_check(lambda x, t: t * x, lambda x, t: 2 * x, 2, 4, verbose=True)
    assert capsys.readouterr().out.startswith("There is a mistake in the backward propagation! difference = 0.333")


def test_silent_by_default(capsys):
    gradient_check(lambda x, t: t * x, lambda x, t: x, 2, 4)
    gradient_check_n(forward_propagation_n, *_ngrad(backward_propagation_n))
    assert capsys.readouterr().out == ""


def _ngrad(backward):
    X, Y, parameters, gradients = seed_net(backward)
    return parameters, gradients, X, Y


# --------------------------------------------------------------------------------------
# N-D check: the notebook's printed figures


# Seeds 000/003 print 0.2850931566540251 and 1.1885552035482147e-07; seed 004 (a later copy of
# the notebook) prints 0.2850931567761623 and 1.1890913024229996e-07. The code is the same: the
# figures differ only in how the BLAS behind np.dot orders its sums. On this machine (OpenBLAS)
# we get seed 004's figures exactly; both pairs are within the tolerances below.
@pytest.mark.parametrize("expected", [0.2850931566540251, 0.2850931567761623])
def test_buggy_seed_net(expected):
    d = gradient_check_n(forward_propagation_n, *_ngrad(backward_propagation_n_buggy))
    assert d == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("expected", [1.1885552035482147e-07, 1.1890913024229996e-07])
def test_correct_seed_net(expected):
    d = gradient_check_n(forward_propagation_n, *_ngrad(backward_propagation_n))
    assert d == pytest.approx(expected, abs=1e-9)
    assert 1e-7 < d < 2e-7  # a correct float64 net, yet above the 1e-7 threshold of seed 003


def _fsum_dot(a, b):
    """A correctly rounded matrix product: no BLAS summation order involved."""
    return np.array([[math.fsum(a[i, :] * b[:, j]) for j in range(b.shape[1])] for i in range(a.shape[0])])


def test_buggy_seed_net_bit_for_bit_with_exact_dot():
    # Forward of seeds 000/003 with every np.dot correctly rounded: seeds 000/003's buggy figure
    # comes back to the last digit (tolerance only for libm exp/log differences).
    def forward(X, Y, p):
        A1 = relu(_fsum_dot(p["W1"], X) + p["b1"])
        A2 = relu(_fsum_dot(p["W2"], A1) + p["b2"])
        A3 = sigmoid(_fsum_dot(p["W3"], A2) + p["b3"])
        return 1.0 / X.shape[1] * np.sum(np.multiply(-np.log(A3), Y) + np.multiply(-np.log(1 - A3), 1 - Y))

    assert gradient_check_n(forward, *_ngrad(backward_propagation_n_buggy)) == pytest.approx(
        0.2850931566540251, abs=1e-14
    )


def test_seed002_correct():
    X, Y, parameters, grads = seed002_net(hidden_scale=True)
    # Printed 1.34885360864e-08; measured here 1.3463946913260869e-08. A correct net's figure is
    # rounding noise: the BLAS summation order moves it in the 3rd digit.
    assert gradient_check_n(seed002_forward, parameters, grads, X, Y) == pytest.approx(1.34885360864e-08, abs=1e-10)


def test_seed002_buggy():
    X, Y, parameters, grads = seed002_net(hidden_scale=False)
    assert gradient_check_n(seed002_forward, parameters, grads, X, Y) == pytest.approx(0.478408736962, rel=1e-9)


def test_seed002_shape_caches_round_trip():
    _, _, parameters, _ = seed002_net(hidden_scale=True)
    theta, _ = dictionary_to_vector(parameters)
    shape_caches = [p.shape for p in parameters.values()]
    back = vector_to_dictionary(theta, shape_caches)
    assert list(back) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    for k in parameters:
        np.testing.assert_array_equal(back[k], parameters[k])


def test_verbose_n(capsys):
    gradient_check_n(forward_propagation_n, *_ngrad(backward_propagation_n_buggy), verbose=True)
    assert capsys.readouterr().out.startswith("There is a mistake in the backward propagation! difference = 0.28509")


def test_verbose_n_correct(capsys):
    gradient_check_n(forward_propagation_n, *_ngrad(backward_propagation_n), verbose=True)
    assert capsys.readouterr().out.startswith("Your backward propagation works perfectly fine! difference = 1.18")


def test_bare_cost_forward_gives_same_number():
    args = _ngrad(backward_propagation_n_buggy)
    bare = gradient_check_n(lambda X, Y, p: forward_propagation_n(X, Y, p)[0], *args)
    assert bare == gradient_check_n(forward_propagation_n, *args)


def test_parameter_style_gradient_keys():
    parameters, gradients, X, Y = _ngrad(backward_propagation_n_buggy)
    plain = {k[1:]: v for k, v in gradients.items() if k[:2] in ("dW", "db")}
    assert set(plain) == set(parameters)
    assert gradient_check_n(forward_propagation_n, parameters, plain, X, Y) == gradient_check_n(
        forward_propagation_n, parameters, gradients, X, Y
    )


def test_does_not_mutate_inputs():
    parameters, gradients, X, Y = _ngrad(backward_propagation_n_buggy)
    before = {k: v.copy() for k, v in parameters.items()}
    gbefore = {k: v.copy() for k, v in gradients.items()}
    gradient_check_n(forward_propagation_n, parameters, gradients, X, Y)
    for k in before:
        np.testing.assert_array_equal(parameters[k], before[k])
    for k in gbefore:
        np.testing.assert_array_equal(gradients[k], gbefore[k])


def test_any_block_names():
    # A quadratic with arbitrary block names: J = sum(a * p**2) over all blocks.
    params = {"alpha": np.array([[1.0, -2.0]]), "gamma.weight": np.array([0.5, 3.0, -1.0]), "z": np.array(2.0)}
    grads = {k: 2 * v for k, v in params.items()}
    forward = lambda X, Y, p: sum(np.sum(v**2) for v in p.values())  # noqa: E731
    assert gradient_check_n(forward, params, grads, None, None) < 1e-7
    grads["gamma.weight"] = grads["gamma.weight"] * np.array([1.0, 1.0, 2.0])
    assert gradient_check_n(forward, params, grads, None, None) > 0.1


# --------------------------------------------------------------------------------------
# Reference network written by another module, if present: same figures.


def test_reference_seed_net_if_present():
    try:
        ref = importlib.import_module("reference.seed_net")
        names = ("gradient_check_n_test_case", "forward_propagation_n", "backward_propagation_n",
                 "backward_propagation_n_buggy")
        fns = [getattr(ref, n) for n in names]
    except (ImportError, AttributeError) as exc:
        pytest.skip(f"reference/seed_net.py not usable: {exc}")
    case, fwd, bwd, bwd_buggy = fns
    for backward, expected in ((bwd, 1.1885552035482147e-07), (bwd_buggy, 0.2850931566540251)):
        X, Y, parameters = case()
        _, cache = fwd(X, Y, parameters)
        assert gradient_check_n(fwd, parameters, backward(X, Y, cache), X, Y) == pytest.approx(expected, abs=1e-9)


# --------------------------------------------------------------------------------------
# Vector helpers


def test_seed_layout():
    _, _, parameters, gradients = seed_net(backward_propagation_n)
    theta, keys = dictionary_to_vector(parameters)
    assert theta.shape == (47, 1) and theta.dtype == np.float64
    assert keys == ["W1"] * 20 + ["b1"] * 5 + ["W2"] * 15 + ["b2"] * 3 + ["W3"] * 3 + ["b3"]
    assert theta[20, 0] == parameters["b1"][0, 0] and theta[46, 0] == parameters["b3"][0, 0]
    grad = gradients_to_vector(gradients)
    assert grad.shape == (47, 1)
    assert grad[25, 0] == gradients["dW2"][0, 0]
    np.testing.assert_array_equal(grad, gradients_to_vector(gradients, names=list(parameters)))
    shapes = {"W1": (5, 4), "b1": (5, 1), "W2": (3, 5), "b2": (3, 1), "W3": (1, 3), "b3": (1, 1)}
    back = vector_to_dictionary(theta, shapes)
    for k in parameters:
        np.testing.assert_array_equal(back[k], parameters[k])


def test_gradients_default_order_sorts_layers_numerically():
    g = {"db10": np.array([10.0]), "dW2": np.array([2.0]), "dA1": np.array([99.0]), "dW10": np.array([9.0]),
         "db2": np.array([3.0]), "dZ2": np.array([99.0])}
    assert gradients_to_vector(g).ravel().tolist() == [2.0, 3.0, 9.0, 10.0]
    plain = {"b1": np.array([2.0]), "W1": np.array([1.0])}
    assert gradients_to_vector(plain).ravel().tolist() == [1.0, 2.0]


def test_names_prefer_d_key():
    g = {"dW1": np.array([1.0]), "W1": np.array([5.0]), "c": np.array([7.0, 8.0])}
    assert gradients_to_vector(g, names=["c", "W1"]).ravel().tolist() == [7.0, 8.0, 1.0]


def test_doctests():
    result = doctest.testmod(classic)
    assert result.attempted >= 4 and result.failed == 0


_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789.", min_size=1, max_size=8)
_blocks = hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
    elements=st.floats(allow_nan=False, allow_infinity=True, width=64),
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_names, _blocks, min_size=1, max_size=4))
def test_round_trip_property(params):
    before = {k: v.copy() for k, v in params.items()}
    theta, keys = dictionary_to_vector(params)
    total = sum(v.size for v in params.values())
    assert theta.shape == (total, 1) and theta.dtype == np.float64
    assert keys == [k for k, v in params.items() for _ in range(v.size)]
    for like in (params, {k: v.shape for k, v in params.items()}):
        back = vector_to_dictionary(theta, like)
        assert list(back) == list(params)
        for k, v in params.items():
            assert back[k].shape == v.shape
            assert back[k].tobytes() == v.tobytes()  # bit-exact, -0.0 included
            assert not np.shares_memory(back[k], v) and not np.shares_memory(back[k], theta)
    for k, v in params.items():
        assert v.tobytes() == before[k].tobytes()
    assert not any(np.shares_memory(theta, v) for v in params.values())


# --------------------------------------------------------------------------------------
# Errors: every message names the block or argument and the fix.


def test_missing_gradient_block():
    parameters, gradients, X, Y = _ngrad(backward_propagation_n)
    del gradients["db2"]
    with pytest.raises(CheckError, match=r"gradient of block 'b2' is missing.*'db2'.*'b2'"):
        gradient_check_n(forward_propagation_n, parameters, gradients, X, Y)


def test_wrong_size_gradient_block():
    parameters, gradients, X, Y = _ngrad(backward_propagation_n)
    gradients["dW2"] = gradients["dW2"][:, :4]
    with pytest.raises(CheckError, match=r"block 'W2' has 12 elements but the parameter has 15 \(shape \(3, 5\)\)"):
        gradient_check_n(forward_propagation_n, parameters, gradients, X, Y)


def test_non_scalar_cost():
    parameters, gradients, X, Y = _ngrad(backward_propagation_n)
    with pytest.raises(CheckError, match=r"forward returned 3 values with element 0 of block 'W1'.*scalar cost"):
        gradient_check_n(lambda X, Y, p: (np.ones(3), None), parameters, gradients, X, Y)


def test_non_finite_cost_names_element():
    params = {"W": np.array([1.0, 2.0]), "b": np.array([0.0, 1.0])}
    grads = {"dW": np.ones(2), "db": np.ones(2)}
    forward = lambda X, Y, p: np.log(p["b"][1] - 1.0 + 5e-8)  # noqa: E731  nan once b[1] - 1e-7
    with np.errstate(invalid="ignore"), pytest.raises(
        CheckError, match=r"non-finite cost \(nan\) with element 1 of block 'b' moved by -1e-07"
    ):
        gradient_check_n(forward, params, grads, None, None)


def test_zero_gradients():
    with pytest.raises(CheckError, match="0/0"):
        gradient_check_n(lambda X, Y, p: 1.0, {"W": np.ones(2)}, {"dW": np.zeros(2)}, None, None)
    with pytest.raises(CheckError, match="0/0"):
        gradient_check(lambda x, t: x, lambda x, t: 0.0, 2.0, 1.0)


@pytest.mark.parametrize("eps", [0, -1e-7, float("nan"), "1e-7"])
def test_bad_epsilon(eps):
    with pytest.raises(CheckError, match="epsilon must be a positive finite number"):
        gradient_check(lambda x, t: t * x, lambda x, t: x, 2, 4, epsilon=eps)


def test_1d_errors():
    with pytest.raises(CheckError, match=r"one scalar theta, got shape \(2,\).*gradient_check_n"):
        gradient_check(lambda x, t: t * x, lambda x, t: x, 2, np.array([1.0, 2.0]))
    with pytest.raises(CheckError, match="backward returned 2 values"):
        gradient_check(lambda x, t: t * x, lambda x, t: np.array([x, x]), 2, 4)
    with np.errstate(invalid="ignore"), pytest.raises(CheckError, match=r"non-finite cost \(.*nan"):
        gradient_check(lambda x, t: np.log(4.0 - t), lambda x, t: 1.0, 2, 4.0)


def test_dictionary_to_vector_errors():
    with pytest.raises(CheckError, match="non-empty dict"):
        dictionary_to_vector({})
    with pytest.raises(CheckError, match=r"block 'W1' has dtype complex128; pass a real-valued"):
        dictionary_to_vector({"W1": np.ones(2, dtype=complex)})


def test_vector_to_dictionary_errors():
    with pytest.raises(CheckError, match=r"theta has 5 elements but the blocks W1 \(2, 2\), b1 \(2, 1\) need 6"):
        vector_to_dictionary(np.zeros((5, 1)), {"W1": (2, 2), "b1": (2, 1)})
    with pytest.raises(CheckError, match="like must be a dict"):
        vector_to_dictionary(np.zeros((5, 1)), "W1")


def test_gradients_to_vector_errors():
    with pytest.raises(CheckError, match=r"No parameter gradients .* names=\[\.\.\.\]"):
        gradients_to_vector({"dZ1": np.ones(2), "dA1": np.ones(2)})
    with pytest.raises(CheckError, match=r"gradient of block 'W9' is missing"):
        gradients_to_vector({"dW1": np.ones(2)}, names=["W9"])
    with pytest.raises(CheckError, match="gradients must be a dict"):
        gradients_to_vector([np.ones(2)])
    with pytest.raises(CheckError, match=r"Gradient block 'dW1' has dtype complex128; pass a real-valued"):
        gradients_to_vector({"dW1": np.ones(2, dtype=complex)})
    assert gradients_to_vector({0: np.ones(1), "dW1": np.ones(2)}).shape == (2, 1)  # non-str keys ignored
