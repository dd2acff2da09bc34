"""A small vanilla tanh RNN, many-to-one, with hand-written BPTT.

Model: h_0 = 0, h_t = tanh(Wx @ x_t + Wh @ h_{t-1} + b) for t = 1..T,
y = Wy @ h_T + by, cost = 0.5 * sum((y - Yt)^2) / N.
Sizes: T = 4 steps, input 2, hidden 3, output 2, batch N = 2; X has shape
(T, input, N) = (4, 2, 2), targets Yt are 2 x 2.  Params in order:
Wx (3x2), Wh (3x3), b (3x1), Wy (2x3), by (2x1).

Planted bug (``buggy``): in the backward time loop the hidden-state gradient
is taken as ``dh_t = dh_out[t]`` instead of ``dh_out[t] + dh_next`` -- the
gradient flowing back from step t+1 is dropped, which silently truncates BPTT
to a single step (for a many-to-one RNN only the last step has an output
gradient).  It is one slip in the shared recurrence, so EVERY recurrent block
is wrong, not just Wh: Wx, Wh and b each lose the contributions of steps
1..T-1 (kind "other"); the read-out Wy, by is untouched.
"""

import numpy as np
from array_api_compat import array_namespace

from crosscheck import Case


def rnn_forward(params, X):
    """Array-API forward: returns the last hidden state h_T (hidden x N)."""
    xp = array_namespace(X)
    Wx, Wh, b = params["Wx"], params["Wh"], params["b"]
    h = xp.zeros((Wh.shape[0], X.shape[2]), dtype=X.dtype)
    for t in range(X.shape[0]):
        h = xp.tanh(Wx @ X[t, ...] + Wh @ h + b)
    return h


def loss(params, X, Yt):
    xp = array_namespace(X)
    y = params["Wy"] @ rnn_forward(params, X) + params["by"]
    r = y - Yt
    return 0.5 * xp.sum(r * r) / X.shape[2]


def _bptt(params, X, Yt, carry):
    Wx, Wh, b, Wy, by = (params[k] for k in ("Wx", "Wh", "b", "Wy", "by"))
    T, _, N = X.shape
    hs = [np.zeros((Wh.shape[0], N))]
    for t in range(T):
        hs.append(np.tanh(Wx @ X[t] + Wh @ hs[-1] + b))
    y = Wy @ hs[-1] + by
    dy = (y - Yt) / N
    dWy = dy @ hs[-1].T
    dby = np.sum(dy, axis=1, keepdims=True)

    # gradient arriving at each h_t from the output (many-to-one: last step only)
    dh_out = [np.zeros_like(hs[0]) for _ in range(T)]
    dh_out[T - 1] = Wy.T @ dy

    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    dh_next = np.zeros_like(hs[0])
    for t in reversed(range(T)):
        if carry:
            dh = dh_out[t] + dh_next
        else:
            dh = dh_out[t]  # BUG: dh_next dropped -> BPTT truncated to one step
        dz = dh * (1 - hs[t + 1] ** 2)
        dWx += dz @ X[t].T
        dWh += dz @ hs[t].T
        db += np.sum(dz, axis=1, keepdims=True)
        dh_next = Wh.T @ dz
    return {"dWx": dWx, "dWh": dWh, "db": db, "dWy": dWy, "dby": dby}


def grad(params, X, Yt):
    return _bptt(params, X, Yt, carry=True)


def grad_buggy(params, X, Yt):
    return _bptt(params, X, Yt, carry=False)


def rnn_test_case():
    """Returns ``X, Yt, parameters`` (T=4, input 2, hidden 3, output 2, batch 2)."""
    rng = np.random.RandomState(11)
    T, I, H, K, N = 4, 2, 3, 2, 2
    X = rng.randn(T, I, N)
    Yt = rng.randn(K, N)
    parameters = {
        "Wx": 0.6 * rng.randn(H, I),
        "Wh": 0.6 * rng.randn(H, H),
        "b": 0.2 * rng.randn(H, 1),
        "Wy": rng.randn(K, H),
        "by": 0.2 * rng.randn(K, 1),
    }
    return X, Yt, parameters


X, Yt, parameters = rnn_test_case()


def _p():
    return {k: v.copy() for k, v in parameters.items()}


correct = Case("correct", loss, grad, _p(), (X, Yt))
buggy = Case("buggy", loss, grad_buggy, _p(), (X, Yt))

cases = [correct, buggy]

EXPECTED = {
    "correct": {"flagged": [], "kinds": {}},
    "buggy": {
        "flagged": ["Wx", "Wh", "b"],
        "kinds": {"Wx": ("other", None), "Wh": ("other", None), "b": ("other", None)},
    },
}
