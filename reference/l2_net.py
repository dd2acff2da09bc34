"""The seeds' L2-regularised 3-layer network (seed 003, regularisation part).

Model: LINEAR -> RELU -> LINEAR -> RELU -> LINEAR -> SIGMOID, cost =
cross-entropy + lambd / (2 m) * (||W1||^2 + ||W2||^2 + ||W3||^2)
(``compute_cost_with_regularization``); the correct backward
(``backward_propagation_with_regularization``) adds ``lambd / m * W`` to every dW.
Data as in the seeds' ``backward_propagation_with_regularization_test_case``:
``np.random.seed(1)``, X 3x5, Y = [[1, 1, 0, 1, 0]], then W1 2x3, b1 2x1,
W2 3x2, b2 3x1, W3 1x3, b3 1x1 drawn in that order; lambd = 0.7.
(Two of the three second-layer units are dead on this batch, as in the
seeds' cache, so part of dW2 is the decay term alone.)

Planted bug (``buggy``): the weight-decay term is written ``lambd * W`` instead
of ``lambd / m * W`` -- the 1/m belongs to the cost's (1/m) * (lambd/2) factor
and is the piece learners most often drop when differentiating it.  It is in
all three dW formulas, so W1, W2 and W3 are all flagged, each with
hand - true = (lambd - lambd / m) * W, i.e. kind ("regularization", 0.56);
the biases carry no decay and stay right.
"""

import numpy as np
from array_api_compat import array_namespace

from crosscheck import Case

LAMBD = 0.7


def sigmoid(x):
    xp = array_namespace(x)
    return 1 / (1 + xp.exp(-x))


def relu(x):
    xp = array_namespace(x)
    return xp.maximum(x, xp.zeros_like(x))


def l2_test_case():
    """Returns ``X, Y, parameters`` with the seeds' draws (np.random.seed(1))."""
    np.random.seed(1)
    X_assess = np.random.randn(3, 5)
    Y_assess = np.array([[1, 1, 0, 1, 0]])
    W1 = np.random.randn(2, 3)
    b1 = np.random.randn(2, 1)
    W2 = np.random.randn(3, 2)
    b2 = np.random.randn(3, 1)
    W3 = np.random.randn(1, 3)
    b3 = np.random.randn(1, 1)
    parameters = {"W1": W1, "b1": b1, "W2": W2, "b2": b2, "W3": W3, "b3": b3}
    return X_assess, Y_assess, parameters


def forward_propagation(X, parameters):
    """Array-API forward pass; returns ``(A3, cache)`` with the seeds' 12-tuple cache."""
    W1, b1 = parameters["W1"], parameters["b1"]
    W2, b2 = parameters["W2"], parameters["b2"]
    W3, b3 = parameters["W3"], parameters["b3"]
    Z1 = W1 @ X + b1
    A1 = relu(Z1)
    Z2 = W2 @ A1 + b2
    A2 = relu(Z2)
    Z3 = W3 @ A2 + b3
    A3 = sigmoid(Z3)
    cache = (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)
    return A3, cache


def backward_propagation_with_regularization_test_case():
    """The seeds' ``(X, Y, cache)``, recomputed from :func:`l2_test_case`."""
    X, Y, parameters = l2_test_case()
    _, cache = forward_propagation(X, parameters)
    return X, Y, cache


def compute_cost(A3, Y):
    """Mean binary cross-entropy."""
    xp = array_namespace(A3)
    m = Y.shape[1]
    Y = xp.astype(Y, A3.dtype)
    logprobs = -xp.log(A3) * Y + -xp.log(1 - A3) * (1 - Y)
    return 1.0 / m * xp.sum(logprobs)


def compute_cost_with_regularization(A3, Y, parameters, lambd):
    """Cross-entropy + lambd / (2 m) * sum of squared weights."""
    xp = array_namespace(A3)
    m = Y.shape[1]
    W1, W2, W3 = parameters["W1"], parameters["W2"], parameters["W3"]
    cross_entropy_cost = compute_cost(A3, Y)
    L2_regularization_cost = (1.0 / m) * (lambd / 2) * (
        xp.sum(W1 * W1) + xp.sum(W2 * W2) + xp.sum(W3 * W3))
    return cross_entropy_cost + L2_regularization_cost


def backward_propagation_with_regularization(X, Y, cache, lambd):
    """Correct hand-written backward pass with weight decay (numpy)."""
    m = X.shape[1]
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache

    dZ3 = A3 - Y
    dW3 = 1.0 / m * np.dot(dZ3, A2.T) + lambd / m * W3
    db3 = 1.0 / m * np.sum(dZ3, axis=1, keepdims=True)

    dA2 = np.dot(W3.T, dZ3)
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dW2 = 1.0 / m * np.dot(dZ2, A1.T) + lambd / m * W2
    db2 = 1.0 / m * np.sum(dZ2, axis=1, keepdims=True)

    dA1 = np.dot(W2.T, dZ2)
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1.0 / m * np.dot(dZ1, X.T) + lambd / m * W1
    db1 = 1.0 / m * np.sum(dZ1, axis=1, keepdims=True)

    return {"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2,
            "dZ2": dZ2, "dW2": dW2, "db2": db2, "dA1": dA1,
            "dZ1": dZ1, "dW1": dW1, "db1": db1}


def backward_propagation_with_regularization_buggy(X, Y, cache, lambd):
    """BUG: decay term ``lambd * W`` instead of ``lambd / m * W`` on every dW."""
    m = X.shape[1]
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache

    dZ3 = A3 - Y
    dW3 = 1.0 / m * np.dot(dZ3, A2.T) + lambd * W3  # BUG
    db3 = 1.0 / m * np.sum(dZ3, axis=1, keepdims=True)

    dA2 = np.dot(W3.T, dZ3)
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dW2 = 1.0 / m * np.dot(dZ2, A1.T) + lambd * W2  # BUG
    db2 = 1.0 / m * np.sum(dZ2, axis=1, keepdims=True)

    dA1 = np.dot(W2.T, dZ2)
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1.0 / m * np.dot(dZ1, X.T) + lambd * W1  # BUG
    db1 = 1.0 / m * np.sum(dZ1, axis=1, keepdims=True)

    return {"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2,
            "dZ2": dZ2, "dW2": dW2, "db2": db2, "dA1": dA1,
            "dZ1": dZ1, "dW1": dW1, "db1": db1}


def loss(params, X, Y, lambd=LAMBD):
    A3, _ = forward_propagation(X, params)
    return compute_cost_with_regularization(A3, Y, params, lambd)


def _grad(backward):
    def grad(params, X, Y, lambd=LAMBD):
        X, Y = np.asarray(X), np.asarray(Y)
        params = {k: np.asarray(v) for k, v in params.items()}
        _, cache = forward_propagation(X, params)
        return backward(X, Y, cache, lambd)
    return grad


X, Y, parameters = l2_test_case()
_m = X.shape[1]
REG_FACTOR = LAMBD - LAMBD / _m  # hand - true = REG_FACTOR * W in the buggy case


def _p():
    return {k: v.copy() for k, v in parameters.items()}


correct = Case("correct", loss, _grad(backward_propagation_with_regularization), _p(), (X, Y))
buggy = Case("buggy", loss, _grad(backward_propagation_with_regularization_buggy), _p(), (X, Y))

cases = [correct, buggy]

EXPECTED = {
    "correct": {"flagged": [], "kinds": {}},
    "buggy": {
        "flagged": ["W1", "W2", "W3"],
        "kinds": {
            "W1": ("regularization", REG_FACTOR),
            "W2": ("regularization", REG_FACTOR),
            "W3": ("regularization", REG_FACTOR),
        },
    },
}
