"""Seed 002's L-layer network: (LINEAR -> RELU) x (L-1) -> LINEAR -> SIGMOID.

``forward_propagate(parameters, X)`` loops over ``len(parameters) // 2`` layers
and ``compute_cost(AL, Y)`` is the mean binary cross-entropy (the notebook uses
``-np.nanmean``; the array-API version uses ``xp.mean``). Test case: the seed's
``gradient_check_n_test_case()`` with ``np.random.seed(2)`` (x 4x3,
y = [1, 1, 0], W1 5x4, b1 5x1, W2 3x5, b2 3x1, W3 1x3, b3 1x1).

Planted bug (``backward_propagate_buggy``, the notebook's "wrong backward"):
inside the hidden-layer loop ``dW`` is ``dZ @ A_prev.T`` without the
``/ dZ.shape[1]``, i.e. the 1/m of the batch mean is forgotten.  The output
layer and every ``db`` (computed with ``np.mean``) are still right, so exactly
the hidden weights W1 and W2 come out m = 3 times too large -- the typical
result of averaging with ``np.mean`` in one place and summing by hand in
another.
"""

import numpy as np
from array_api_compat import array_namespace

from crosscheck import Case


def sigmoid(Z):
    xp = array_namespace(Z)
    return 1 / (1 + xp.exp(-Z))


def relu(Z):
    xp = array_namespace(Z)
    return xp.maximum(Z, xp.zeros_like(Z))


def gradient_check_n_test_case():
    """The seed's test case: returns ``x, y, parameters``."""
    np.random.seed(2)
    x = np.random.randn(4, 3)
    y = np.array([1, 1, 0])
    W1 = np.random.randn(5, 4)
    b1 = np.random.randn(5, 1)
    W2 = np.random.randn(3, 5)
    b2 = np.random.randn(3, 1)
    W3 = np.random.randn(1, 3)
    b3 = np.random.randn(1, 1)
    parameters = {"W1": W1, "b1": b1, "W2": W2, "b2": b2, "W3": W3, "b3": b3}
    return x, y, parameters


def forward_propagate(parameters, X):
    """ReLU -> ... -> ReLU -> sigmoid; returns ``(AL, caches)`` with caches['A0'..'AL']."""
    L = len(parameters) // 2
    caches = {}
    A = X
    caches["A0"] = A
    for l in range(1, L):
        Z = parameters["W" + str(l)] @ A + parameters["b" + str(l)]
        A = relu(Z)
        caches["A" + str(l)] = A
    Z = parameters["W" + str(L)] @ A + parameters["b" + str(L)]
    A = sigmoid(Z)
    caches["A" + str(L)] = A
    return A, caches


def compute_cost(AL, Y):
    """Mean binary cross-entropy."""
    xp = array_namespace(AL)
    Y = xp.astype(Y, AL.dtype)
    logprobs = Y * xp.log(AL) + (1 - Y) * xp.log(1 - AL)
    return -xp.mean(logprobs)


def backward_propagate(parameters, Y, caches):
    """Correct hand-written backward pass (numpy)."""
    L = len(parameters) // 2
    grads = {}
    dZ = caches["A" + str(L)] - Y  # d(cost)/dAL * sigmoid'
    grads["dW" + str(L)] = dZ @ caches["A" + str(L - 1)].T / dZ.shape[1]
    grads["db" + str(L)] = np.mean(dZ, axis=1, keepdims=True)
    for l in reversed(range(1, L)):
        dZ = parameters["W" + str(l + 1)].T @ dZ * (caches["A" + str(l)] > 0)  # ReLU'
        grads["dW" + str(l)] = dZ @ caches["A" + str(l - 1)].T / dZ.shape[1]
        grads["db" + str(l)] = np.mean(dZ, axis=1, keepdims=True)
    return grads


def backward_propagate_buggy(parameters, Y, caches):
    """The notebook's wrong backward pass: hidden-layer dW lacks ``/ dZ.shape[1]``."""
    L = len(parameters) // 2
    grads = {}
    dZ = caches["A" + str(L)] - Y
    grads["dW" + str(L)] = dZ @ caches["A" + str(L - 1)].T / dZ.shape[1]
    grads["db" + str(L)] = np.mean(dZ, axis=1, keepdims=True)
    for l in reversed(range(1, L)):
        dZ = parameters["W" + str(l + 1)].T @ dZ * (caches["A" + str(l)] > 0)
        grads["dW" + str(l)] = dZ @ caches["A" + str(l - 1)].T  # BUG: missing / m
        grads["db" + str(l)] = np.mean(dZ, axis=1, keepdims=True)
    return grads


def loss(params, X, Y):
    AL, _ = forward_propagate(params, X)
    return compute_cost(AL, Y)


def _grad(backward):
    def grad(params, X, Y):
        X, Y = np.asarray(X), np.asarray(Y)
        params = {k: np.asarray(v) for k, v in params.items()}
        _, caches = forward_propagate(params, X)
        return backward(params, Y, caches)
    return grad


X, Y, parameters = gradient_check_n_test_case()

correct = Case("correct", loss, _grad(backward_propagate),
               {k: v.copy() for k, v in parameters.items()}, (X, Y))
buggy = Case("buggy", loss, _grad(backward_propagate_buggy),
             {k: v.copy() for k, v in parameters.items()}, (X, Y))

cases = [correct, buggy]

EXPECTED = {
    "correct": {"flagged": [], "kinds": {}},
    "buggy": {
        "flagged": ["W1", "W2"],
        "kinds": {"W1": ("scale", 3.0), "W2": ("scale", 3.0)},
    },
}
