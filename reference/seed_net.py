"""The course's 3-layer gradient-checking network (seeds 000 / 003).

Model: LINEAR -> RELU -> LINEAR -> RELU -> LINEAR -> SIGMOID with the mean
binary cross-entropy cost, on the seeds' ``gradient_check_n_test_case()``
(``np.random.seed(1)``, X 4x3, Y = [1, 1, 0], W1 5x4 ... b3 1x1).

``forward_propagation_n`` is written against the Python array API, so the same
function is the loss under numpy, jax.grad and torch.autograd, and (called with
numpy arrays) produces the numpy ``cache`` that the hand-written backward uses.

Planted bug (``backward_propagation_n_buggy``), verbatim from the notebook:
``dW2`` is multiplied by 2 and ``db1`` uses ``4. / m`` instead of ``1. / m``.
These are the classic "stray constant" slips -- a factor copied from another
formula or a typo in the averaging constant -- and the notebook's hint
("check dW2 and db1") is exactly what a per-block checker should report:
b1 is 4x too large, W2 is 2x too large, every other block is right.
"""

import numpy as np
from array_api_compat import array_namespace

from crosscheck import Case


def sigmoid(x):
    xp = array_namespace(x)
    return 1 / (1 + xp.exp(-x))


def relu(x):
    xp = array_namespace(x)
    return xp.maximum(x, xp.zeros_like(x))


def gradient_check_n_test_case():
    """The seeds' test case: returns ``X, Y, parameters``."""
    np.random.seed(1)
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


def forward_propagation_n(X, Y, parameters):
    """Forward pass and cost; array-API, returns ``(cost, cache)``."""
    xp = array_namespace(X)
    m = X.shape[1]
    W1 = parameters["W1"]
    b1 = parameters["b1"]
    W2 = parameters["W2"]
    b2 = parameters["b2"]
    W3 = parameters["W3"]
    b3 = parameters["b3"]

    # LINEAR -> RELU -> LINEAR -> RELU -> LINEAR -> SIGMOID
    Z1 = W1 @ X + b1
    A1 = relu(Z1)
    Z2 = W2 @ A1 + b2
    A2 = relu(Z2)
    Z3 = W3 @ A2 + b3
    A3 = sigmoid(Z3)

    Yf = xp.astype(Y, A3.dtype)  # labels may arrive as integers
    logprobs = -xp.log(A3) * Yf + -xp.log(1 - A3) * (1 - Yf)
    cost = 1.0 / m * xp.sum(logprobs)

    cache = (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)
    return cost, cache


def backward_propagation_n(X, Y, cache):
    """Correct hand-written backward pass (numpy), the seeds' gradient dict."""
    m = X.shape[1]
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache

    dZ3 = A3 - Y
    dW3 = 1.0 / m * np.dot(dZ3, A2.T)
    db3 = 1.0 / m * np.sum(dZ3, axis=1, keepdims=True)

    dA2 = np.dot(W3.T, dZ3)
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dW2 = 1.0 / m * np.dot(dZ2, A1.T)
    db2 = 1.0 / m * np.sum(dZ2, axis=1, keepdims=True)

    dA1 = np.dot(W2.T, dZ2)
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1.0 / m * np.dot(dZ1, X.T)
    db1 = 1.0 / m * np.sum(dZ1, axis=1, keepdims=True)

    return {"dZ3": dZ3, "dW3": dW3, "db3": db3,
            "dA2": dA2, "dZ2": dZ2, "dW2": dW2, "db2": db2,
            "dA1": dA1, "dZ1": dZ1, "dW1": dW1, "db1": db1}


def backward_propagation_n_buggy(X, Y, cache):
    """The notebook's backward pass with its two planted bugs (dW2 * 2, db1 with 4./m)."""
    m = X.shape[1]
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache

    dZ3 = A3 - Y
    dW3 = 1.0 / m * np.dot(dZ3, A2.T)
    db3 = 1.0 / m * np.sum(dZ3, axis=1, keepdims=True)

    dA2 = np.dot(W3.T, dZ3)
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dW2 = 1.0 / m * np.dot(dZ2, A1.T) * 2  # BUG: stray factor 2
    db2 = 1.0 / m * np.sum(dZ2, axis=1, keepdims=True)

    dA1 = np.dot(W2.T, dZ2)
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1.0 / m * np.dot(dZ1, X.T)
    db1 = 4.0 / m * np.sum(dZ1, axis=1, keepdims=True)  # BUG: 4./m instead of 1./m

    return {"dZ3": dZ3, "dW3": dW3, "db3": db3,
            "dA2": dA2, "dZ2": dZ2, "dW2": dW2, "db2": db2,
            "dA1": dA1, "dZ1": dZ1, "dW1": dW1, "db1": db1}


def loss(params, X, Y):
    return forward_propagation_n(X, Y, params)[0]


def _grad(backward):
    def grad(params, X, Y):
        X, Y = np.asarray(X), np.asarray(Y)
        params = {k: np.asarray(v) for k, v in params.items()}
        return backward(X, Y, forward_propagation_n(X, Y, params)[1])
    return grad


X, Y, parameters = gradient_check_n_test_case()

correct = Case("correct", loss, _grad(backward_propagation_n),
               {k: v.copy() for k, v in parameters.items()}, (X, Y))
buggy = Case("buggy", loss, _grad(backward_propagation_n_buggy),
             {k: v.copy() for k, v in parameters.items()}, (X, Y))

cases = [correct, buggy]

EXPECTED = {
    "correct": {"flagged": [], "kinds": {}},
    "buggy": {
        "flagged": ["b1", "W2"],
        "kinds": {"b1": ("scale", 4.0), "W2": ("scale", 2.0)},
    },
}
