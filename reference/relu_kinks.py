"""A one-hidden-layer ReLU MLP evaluated exactly ON the ReLU kinks.

Model: Z1 = W1 @ X + b1, A1 = relu(Z1) = maximum(Z1, 0), Z2 = W2 @ A1 + b2
(linear read-out), cost = 0.5 * sum((Z2 - Y)^2) / m.  Every weight, bias,
input and target is a small integer stored as float64, so 6 of the 24 hidden
pre-activations are exactly 0.0 -- the point where ReLU has no derivative.

The hand-written backward uses the mask ``Z1 > 0`` (derivative 0 at the kink,
what nearly every course writes); jax.grad and torch.autograd differentiate
``maximum(Z1, 0)`` with 0.5 at a tie, and a centred finite difference also
sees the average of the two one-sided slopes.  Both are valid subgradients, so
the ``correct`` case must NOT be flagged even though the raw numbers for W1 and
b1 disagree with the autodiff oracles (all 6 kinks sit where the upstream
gradient is non-zero, so the disagreement is real, not hidden by zeros).
The read-out blocks W2, b2 do not depend on the kink convention.

Planted bug (``buggy``): ``db2`` is taken from a formula for the un-halved MSE,
``2 * mean(Z2 - Y)``, while the rest of the backward uses the cost's 0.5 -- a
copied-from-elsewhere factor 2 on the read-out bias only.  Flagged: b2 alone,
kind ("scale", 2.0); W1/b1 (kink-affected but correct) must stay clean.

``loss_mask_convention`` is the same cost with ReLU written as
``where(Z > 0, Z, 0)``, whose autodiff gradient uses the hand mask's
convention (0 at the kink); it is provided for verification only.
"""

import numpy as np
from array_api_compat import array_namespace

from crosscheck import Case


def relu(Z):
    xp = array_namespace(Z)
    return xp.maximum(Z, xp.zeros_like(Z))


def relu_mask_convention(Z):
    xp = array_namespace(Z)
    return xp.where(Z > 0, Z, xp.zeros_like(Z))


def pre_activations(params, X):
    """Hidden pre-activations Z1 = W1 @ X + b1 (any array namespace)."""
    return params["W1"] @ X + params["b1"]


def _cost(params, X, Y, act):
    xp = array_namespace(X)
    A1 = act(pre_activations(params, X))
    r = params["W2"] @ A1 + params["b2"] - Y
    return 0.5 * xp.sum(r * r) / X.shape[1]


def loss(params, X, Y):
    return _cost(params, X, Y, relu)


def loss_mask_convention(params, X, Y):
    return _cost(params, X, Y, relu_mask_convention)


def _backward(params, X, Y, db2_factor):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    m = X.shape[1]
    Z1 = W1 @ X + b1
    A1 = np.maximum(Z1, 0)
    Z2 = W2 @ A1 + b2
    dZ2 = (Z2 - Y) / m
    dW2 = dZ2 @ A1.T
    if db2_factor == 1:
        db2 = np.sum(dZ2, axis=1, keepdims=True)
    else:
        db2 = 2 * np.mean(Z2 - Y, axis=1, keepdims=True)  # BUG: un-halved MSE derivative
    dA1 = W2.T @ dZ2
    dZ1 = dA1 * (Z1 > 0)  # ReLU' taken as 0 at the kink
    dW1 = dZ1 @ X.T
    db1 = np.sum(dZ1, axis=1, keepdims=True)
    return {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2}


def grad(params, X, Y):
    return _backward(params, X, Y, 1)


def grad_buggy(params, X, Y):
    return _backward(params, X, Y, 2)


def relu_kinks_test_case():
    """Returns ``X, Y, parameters``; all entries small integers (float64)."""
    f = lambda a: np.array(a, dtype=np.float64)  # noqa: E731
    X = f([[1, 2, -1, -1, 0, -2],
           [1, -2, -2, 2, -1, 1],
           [0, 1, 2, -1, 0, 1]])
    Y = f([[2, -2, 2, 2, 0, -2]])
    parameters = {
        "W1": f([[1, 1, 1], [0, -1, 0], [-1, 0, 0], [1, 0, 1]]),
        "b1": f([[1], [1], [0], [0]]),
        "W2": f([[-1, 1, 2, 1]]),
        "b2": f([[1]]),
    }
    return X, Y, parameters


X, Y, parameters = relu_kinks_test_case()


def _p():
    return {k: v.copy() for k, v in parameters.items()}


correct = Case("correct", loss, grad, _p(), (X, Y))
buggy = Case("buggy", loss, grad_buggy, _p(), (X, Y))

cases = [correct, buggy]

EXPECTED = {
    "correct": {"flagged": [], "kinds": {}},
    "buggy": {"flagged": ["b2"], "kinds": {"b2": ("scale", 2.0)}},
}
