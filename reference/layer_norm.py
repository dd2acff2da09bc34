"""Layer normalisation followed by a linear read-out and a squared loss.

Model (rows are samples, X is N x D, normalised over the D features of each row):
    mu = mean(X, axis=1), var = mean((X - mu)^2, axis=1)
    xhat = (X - mu) / sqrt(var + eps)
    h = gamma * xhat + beta            (gamma, beta: shape (D,))
    out = h @ W                        (W: D x K)
    cost = 0.5 * sum((out - T)^2) / N
Params: gamma, beta, W; inputs X (4 x 5) and targets T (4 x 2); eps = 1e-5.

Planted bug (``buggy``): in the staged backward (cache ``xmu = X - mu`` and
``ivar = 1 / sqrt(var + eps)`` separately, as in the usual computational-graph
derivation) ``dgamma`` is computed as ``sum(dh * xmu, axis=0)`` instead of
``sum(dh * xhat, axis=0)`` -- the wrong cached intermediate, the centred input
without its 1/std.  Because every row has its own std, the error is not a
uniform scale: gamma alone is flagged, kind "other"; beta and W are right.
"""

import numpy as np
from array_api_compat import array_namespace

from crosscheck import Case

EPS = 1e-5


def layer_norm_forward(X, gamma, beta, eps=EPS):
    """Array-API layer norm over axis 1; returns ``(h, xhat)``."""
    xp = array_namespace(X)
    mu = xp.mean(X, axis=1, keepdims=True)
    xmu = X - mu
    var = xp.mean(xmu * xmu, axis=1, keepdims=True)
    xhat = xmu / xp.sqrt(var + eps)
    return gamma * xhat + beta, xhat


def loss(params, X, T):
    h, _ = layer_norm_forward(X, params["gamma"], params["beta"])
    out = h @ params["W"]
    r = out - T
    xp = array_namespace(X)
    return 0.5 * xp.sum(r * r) / X.shape[0]


def _forward_cache(params, X, T, eps=EPS):
    gamma, beta, W = params["gamma"], params["beta"], params["W"]
    N = X.shape[0]
    mu = np.mean(X, axis=1, keepdims=True)
    xmu = X - mu
    var = np.mean(xmu ** 2, axis=1, keepdims=True)
    ivar = 1.0 / np.sqrt(var + eps)
    xhat = xmu * ivar
    h = gamma * xhat + beta
    out = h @ W
    dout = (out - T) / N
    return xmu, ivar, xhat, h, dout


def grad(params, X, T):
    xmu, ivar, xhat, h, dout = _forward_cache(params, X, T)
    dW = h.T @ dout
    dh = dout @ params["W"].T
    dgamma = np.sum(dh * xhat, axis=0)
    dbeta = np.sum(dh, axis=0)
    return {"dgamma": dgamma, "dbeta": dbeta, "dW": dW}


def grad_buggy(params, X, T):
    xmu, ivar, xhat, h, dout = _forward_cache(params, X, T)
    dW = h.T @ dout
    dh = dout @ params["W"].T
    dgamma = np.sum(dh * xmu, axis=0)  # BUG: xmu (centred x) instead of xhat = xmu * ivar
    dbeta = np.sum(dh, axis=0)
    return {"dgamma": dgamma, "dbeta": dbeta, "dW": dW}


def layer_norm_test_case():
    """Returns ``X, T, parameters`` (N = 4, D = 5, K = 2)."""
    rng = np.random.RandomState(7)
    N, D, K = 4, 5, 2
    # rows with clearly different spreads, so 1/std differs from row to row
    X = rng.randn(N, D) * np.array([[0.5], [1.0], [2.0], [3.0]]) + rng.randn(N, 1)
    T = rng.randn(N, K)
    gamma = 1.0 + 0.3 * rng.randn(D)
    beta = 0.2 * rng.randn(D)
    W = rng.randn(D, K)
    return X, T, {"gamma": gamma, "beta": beta, "W": W}


X, T, parameters = layer_norm_test_case()


def _p():
    return {k: v.copy() for k, v in parameters.items()}


correct = Case("correct", loss, grad, _p(), (X, T))
buggy = Case("buggy", loss, grad_buggy, _p(), (X, T))

cases = [correct, buggy]

EXPECTED = {
    "correct": {"flagged": [], "kinds": {}},
    "buggy": {"flagged": ["gamma"], "kinds": {"gamma": ("other", None)}},
}
