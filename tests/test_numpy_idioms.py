"""numpy idioms as real code writes them, each run by *both* autodiff references.

Each loss below is plain numpy with one idiom that used to stop jax or torch (array methods,
numpy scalar types, in-place writes in loops and through masks, ``np.add.at``, ``np.pad``).
For each: jax and torch both run, their forward loss equals numpy's to rounding (forward
parity), the correct gradient agrees with all three references, and a planted bug (the
gradient doubled) is flagged by all three.
"""

from __future__ import annotations

import numpy as np
import pytest

import crosscheck

pytest.importorskip("jax")
pytest.importorskip("torch")

RNG = np.random.default_rng(7)
W0 = RNG.standard_normal((3, 4))
X0 = RNG.standard_normal((4, 5))
Y0 = np.array([0, 2, 1, 1, 0])


def pad_loss(p, X):
    Z = np.pad(p["W"], ((1, 1), (0, 2)), "constant")
    return np.sum(Z[1:-1, :4] * np.pad(X, ((0,), (0,)))[:, :1].T ** 2) + np.sum(Z ** 2)


def pad_grad(p, X):
    return {"W": X[:, :1].T ** 2 + 2 * p["W"]}


def astype_copy_loss(p, X):
    W = p["W"].astype(np.float64).copy()
    W = W.copy()
    return np.sum(W.dot(X) ** 2)


def astype_copy_grad(p, X):
    return {"W": 2 * (p["W"] @ X) @ X.T}


def dot_var_loss(p, X):
    Z = p["W"].dot(X)                      # 2-D .dot, numpy's
    return np.sum(Z.var(axis=0))           # ddof 0, numpy's


def dot_var_grad(p, X):
    Z = p["W"] @ X
    n = Z.shape[0]
    dZ = 2 * (Z - Z.mean(axis=0, keepdims=True)) / n
    return {"W": dZ @ X.T}


def uint8_loss(p, X):
    k = np.uint8(2)                        # a numpy scalar type in shape arithmetic
    Z = np.zeros((int(k) + 1, X.shape[1]))
    return np.sum((p["W"][:int(k) + 1] @ X + Z) ** 2)


def uint8_grad(p, X):
    g = np.zeros_like(p["W"])
    g[:3] = 2 * (p["W"][:3] @ X) @ X.T
    return {"W": g}


def loop_write_loss(p, X):
    out = np.zeros((p["W"].shape[0], X.shape[1]))
    for i in range(p["W"].shape[0]):
        for j in range(X.shape[1]):
            out[i, j] = np.dot(p["W"][i], X[:, j])
    h = np.zeros((out.shape[0], 2, out.shape[1]))
    for t in range(2):
        h[:, t, :] = out * (t + 1)
    return np.sum(h ** 2)


def loop_write_grad(p, X):
    Z = p["W"] @ X
    return {"W": 2 * 5 * Z @ X.T}


def masked_write_loss(p, X, y):
    scores = p["W"].dot(X)
    scores[scores < 0] = 0                  # ReLU by a masked write
    scores[y, np.arange(X.shape[1])] -= 1   # fancy-index augmented write
    scores *= 2
    return np.sum(scores ** 2)


def masked_write_grad(p, X, y):
    Z = p["W"] @ X
    S = np.maximum(Z, 0)
    S[y, np.arange(X.shape[1])] -= 1
    dS = 2 * (2 * S) * 2
    return {"W": (dS * (Z > 0)) @ X.T}


def add_at_loss(p, X, y):
    counts = np.zeros((p["W"].shape[0], X.shape[0]))
    np.add.at(counts, y[:3], p["W"][:3] * 2)   # repeated indices accumulate
    return np.sum(counts ** 2) + np.sum(p["W"] * X[:, 0])


def add_at_grad(p, X, y):
    counts = np.zeros((p["W"].shape[0], X.shape[0]))
    np.add.at(counts, y[:3], p["W"][:3] * 2)
    g = np.zeros_like(p["W"])
    for k, row in enumerate(y[:3]):
        g[k] += 2 * 2 * counts[row]
    return {"W": g + X[:, 0]}


IDIOMS = {
    "np.pad": (pad_loss, pad_grad, (X0,)),
    ".astype and .copy()": (astype_copy_loss, astype_copy_grad, (X0,)),
    "2-D .dot and .var(axis=0)": (dot_var_loss, dot_var_grad, (X0,)),
    "np.uint8 in shape arithmetic": (uint8_loss, uint8_grad, (X0,)),
    "in-place writes in loops": (loop_write_loss, loop_write_grad, (X0,)),
    "masked and fancy-index writes": (masked_write_loss, masked_write_grad, (X0, Y0)),
    "np.add.at": (add_at_loss, add_at_grad, (X0, Y0)),
}


@pytest.mark.parametrize("idiom", list(IDIOMS))
def test_idiom_runs_under_both_autodiff_references_with_exact_parity(idiom):
    loss, grad, args = IDIOMS[idiom]
    report = crosscheck.check(loss, grad, {"W": W0.copy()}, *args)
    for name in ("fd", "jax", "torch"):
        assert report.oracles[name].error is None, (name, report.oracles[name].error)
    f0 = float(loss({"W": W0.copy()}, *args))
    for name in ("jax", "torch"):
        assert report.oracles[name].parity is True
        assert abs(report.oracles[name].forward - f0) <= 1e-12 * abs(f0)
    assert report.ok and sorted(report.blocks["W"].agree) == ["fd", "jax", "torch"], str(report)


@pytest.mark.parametrize("idiom", list(IDIOMS))
def test_idiom_planted_bug_is_flagged_by_all_three(idiom):
    loss, grad, args = IDIOMS[idiom]
    report = crosscheck.check(loss, lambda p, *a: {"W": 2 * grad(p, *a)["W"]}, {"W": W0.copy()}, *args)
    assert report.flagged == ["W"]
    assert sorted(report.blocks["W"].disagree) == ["fd", "jax", "torch"]


def test_weights_reached_through_a_module_global(tmp_path, monkeypatch):
    """The loss stores the weights in a module global (``module.model = p``) and the module's
    functions read ``model["W"]`` (Karpathy's pg-pong does this): the rebound code sees the
    traced values, under both."""
    import importlib
    import sys

    (tmp_path / "global_model.py").write_text(
        "import numpy as np\n"
        "model = None\n"
        "def forward(X):\n"
        "    h = np.dot(model['W'], X)\n"
        "    h[h < 0] = 0\n"
        "    return np.sum(h ** 2)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("global_model", None)
    module = importlib.import_module("global_model")
    try:
        def loss(p, X):
            module.model = p
            return module.forward(X)

        def grad(p, X):
            Z = p["W"] @ X
            return {"W": 2 * np.maximum(Z, 0) @ X.T}

        report = crosscheck.check(loss, grad, {"W": W0.copy()}, X0)
        assert all(report.oracles[n].error is None for n in ("jax", "torch")), \
            {n: report.oracles[n].error for n in ("jax", "torch")}
        assert report.ok and sorted(report.blocks["W"].agree) == ["fd", "jax", "torch"]
        bad = crosscheck.check(loss, lambda p, X: {"W": 3 * grad(p, X)["W"]}, {"W": W0.copy()}, X0)
        assert bad.flagged == ["W"] and sorted(bad.blocks["W"].disagree) == ["fd", "jax", "torch"]
    finally:
        sys.modules.pop("global_model", None)


def test_shapes_computed_through_numpy_scalars_run_eagerly_under_jax():
    """``np.zeros((k, n))`` with ``k = np.uint8(2)``: jit cannot use a traced shape, eager jax can."""
    def loss(p, X):
        k = np.uint8(2)
        pad = np.zeros((k, X.shape[1]))
        return np.sum(np.concatenate([p["W"] @ X, pad]) ** 2)

    def grad(p, X):
        return {"W": 2 * (p["W"] @ X) @ X.T}

    report = crosscheck.check(loss, grad, {"W": W0.copy()}, X0)
    assert all(report.oracles[n].error is None for n in ("jax", "torch"))
    assert report.oracles["jax"].mode in ("jit", "eager")
    assert report.ok and sorted(report.blocks["W"].agree) == ["fd", "jax", "torch"]


def test_a_write_through_an_aliased_view_is_caught_by_forward_parity():
    """``row = A[0]; row[1] = 0`` changes ``A`` in numpy. jax's functional rewrite cannot see the
    alias, computes another loss, and forward parity takes jax out of the decision, saying why;
    torch writes through the view as numpy does, and decides with fd."""
    def loss(p, X):
        A = np.dot(p["W"], X)
        row = A[0]
        row[1] = 0.0
        return np.sum(A ** 2)

    def grad(p, X):
        A = p["W"] @ X
        A[0, 1] = 0.0
        return {"W": 2 * A @ X.T}

    report = crosscheck.check(loss, grad, {"W": W0.copy()}, X0)
    assert report.oracles["jax"].parity is False and report.oracles["torch"].parity is True
    assert any(note.startswith("forward parity: jax computes loss")
               and "functional updates, which differ from numpy where the code writes through a view"
               in note for note in report.notes)
    assert report.ok and sorted(report.blocks["W"].agree) == ["fd", "torch"]
