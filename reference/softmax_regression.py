"""Multinomial logistic (softmax) regression with mean cross-entropy.

Model: Z = W @ X + b, log-softmax over classes (numerically stable: the column
max is subtracted first), cost = -sum(Y * log_softmax(Z)) / m.  Shapes:
W K x D, b K x 1, X D x m, Y K x m one-hot (float).  K = D = 3, so W is square,
and m = 6 with every class present.

Planted bugs (one per case):

* ``buggy`` -- the backward uses ``dZ = softmax(Z) / m`` and forgets to subtract
  the targets (the "- Y" of the softmax + cross-entropy derivative P - Y).
  It is one mistake in dZ, and both blocks are computed from dZ, so BOTH W and
  b are wrong: hand - true = (Y @ X.T / m, mean(Y, axis=1)), which is neither a
  scale nor a transpose nor a multiple of the parameter -> kind "other".
* ``buggy_transpose`` -- ``dW = X @ dZ.T`` (the row-major "samples x features"
  formula pasted into column-major code).  With a square W no shape error
  catches it; the hand dW is exactly the transpose of the true one -> kind
  "transpose" on W only.
"""

import numpy as np
from array_api_compat import array_namespace

from crosscheck import Case


def log_softmax(Z):
    """Stable log-softmax over axis 0 (classes), array API."""
    xp = array_namespace(Z)
    Zs = Z - xp.max(Z, axis=0, keepdims=True)
    return Zs - xp.log(xp.sum(xp.exp(Zs), axis=0, keepdims=True))


def loss(params, X, Y):
    m = X.shape[1]
    xp = array_namespace(X)
    Z = params["W"] @ X + params["b"]
    return -xp.sum(Y * log_softmax(Z)) / m


def _softmax_np(Z):
    e = np.exp(Z - Z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def grad(params, X, Y):
    W, b = params["W"], params["b"]
    m = X.shape[1]
    P = _softmax_np(W @ X + b)
    dZ = (P - Y) / m
    return {"dW": dZ @ X.T, "db": np.sum(dZ, axis=1, keepdims=True), "dZ": dZ}


def grad_buggy(params, X, Y):
    W, b = params["W"], params["b"]
    m = X.shape[1]
    P = _softmax_np(W @ X + b)
    dZ = P / m  # BUG: forgot "- Y"
    return {"dW": dZ @ X.T, "db": np.sum(dZ, axis=1, keepdims=True), "dZ": dZ}


def grad_buggy_transpose(params, X, Y):
    W, b = params["W"], params["b"]
    m = X.shape[1]
    P = _softmax_np(W @ X + b)
    dZ = (P - Y) / m
    return {"dW": X @ dZ.T,  # BUG: row-major formula, = (dZ @ X.T).T
            "db": np.sum(dZ, axis=1, keepdims=True), "dZ": dZ}


def softmax_regression_test_case():
    """Returns ``X, Y, parameters`` (K = D = 3, m = 6)."""
    rng = np.random.RandomState(3)
    K, D, m = 3, 3, 6
    X = rng.randn(D, m)
    labels = np.array([0, 1, 2, 2, 1, 2])  # class counts 1, 2, 3
    Y = np.eye(K)[:, labels]  # one-hot, K x m, float64
    W = rng.randn(K, D)
    b = rng.randn(K, 1)
    return X, Y, {"W": W, "b": b}


X, Y, parameters = softmax_regression_test_case()


def _p():
    return {k: v.copy() for k, v in parameters.items()}


correct = Case("correct", loss, grad, _p(), (X, Y))
buggy = Case("buggy", loss, grad_buggy, _p(), (X, Y))
buggy_transpose = Case("buggy_transpose", loss, grad_buggy_transpose, _p(), (X, Y))

cases = [correct, buggy, buggy_transpose]

EXPECTED = {
    "correct": {"flagged": [], "kinds": {}},
    "buggy": {
        "flagged": ["W", "b"],
        "kinds": {"W": ("other", None), "b": ("other", None)},
    },
    "buggy_transpose": {
        "flagged": ["W"],
        "kinds": {"W": ("transpose", None)},
    },
}
