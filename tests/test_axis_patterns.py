"""How a wrong block's error lies along its axes, where the user wrote no intermediates (issue 14).

A block diagnosis that says only "9 of 18 elements disagree" leaves the user to find the
pattern. Here the pattern is read from the per-row and per-column mismatches: a contiguous
range of one axis ("all in columns 0–2"), zero there or not, the relative error growing
monotonically toward one end, and — when the mismatches fill the first indices of an axis
while the last agree — the question a backward loop stopped early raises (truncated
backpropagation through time). Each sentence is pinned exactly, on real models run through
``crosscheck.check``, and the rule's edges on ``diagnose`` directly.
"""

from __future__ import annotations

import numpy as np
import pytest

import crosscheck
from crosscheck._diagnose import diagnose, value_text

BPTT_HINT = ("the first columns disagree and the last agree, as when a backward loop over "
             "them stops before the first: backpropagation through time cut short, if the "
             "columns are time steps? Otherwise look for an indexing slip, a missed term or a "
             "wrong mask.")
LOOK = "look for an indexing slip, a missed term or a wrong mask."


def _worst(d, label="fd") -> str:
    e = d.elements[0]
    return (f"worst at {e['index']}: hand {value_text(e['hand'])} vs reference ({label}) "
            f"{value_text(e['reference'])}")


# --- a many-to-many tanh RNN over the columns of `x` (one column per time step) ---------------

def rnn_loss(p, y):
    h = np.zeros((p["Wh"].shape[0], 1))
    cost = 0.0
    for t in range(p["x"].shape[1]):
        h = np.tanh(p["Wx"] @ p["x"][:, t:t + 1] + p["Wh"] @ h)
        r = p["Wy"] @ h - y[:, t:t + 1]
        cost = cost + 0.5 * np.sum(r * r)
    return cost


def rnn_grad(p, y, window=None):
    """BPTT sending each output's error back ``window`` steps (all the way when None):
    truncated BPTT, the approximation, planted here as the bug a check should explain."""
    Wx, Wh, Wy, x = p["Wx"], p["Wh"], p["Wy"], p["x"]
    hs = [np.zeros((Wh.shape[0], 1))]
    for t in range(x.shape[1]):
        hs.append(np.tanh(Wx @ x[:, t:t + 1] + Wh @ hs[-1]))
    g = {k: np.zeros_like(v) for k, v in p.items()}
    for s in range(x.shape[1]):
        r = Wy @ hs[s + 1] - y[:, s:s + 1]
        g["Wy"] += r @ hs[s + 1].T
        dh = Wy.T @ r
        for t in range(s, -1 if window is None else max(s - window, -1), -1):
            dz = dh * (1 - hs[t + 1] ** 2)
            g["Wx"] += dz @ x[:, t:t + 1].T
            g["Wh"] += dz @ hs[t].T
            g["x"][:, t:t + 1] += Wx.T @ dz
            dh = Wh.T @ dz
    return g


def rnn_grad_single_pass(p, y, first=0):
    """The usual one-pass BPTT (``dh`` carried from step t+1 to t); ``first`` > 0 plants the
    loop-bound slip ``reversed(range(first, T))`` that never reaches the first steps."""
    Wx, Wh, Wy, x = p["Wx"], p["Wh"], p["Wy"], p["x"]
    T = x.shape[1]
    hs = [np.zeros((Wh.shape[0], 1))]
    for t in range(T):
        hs.append(np.tanh(Wx @ x[:, t:t + 1] + Wh @ hs[-1]))
    g = {k: np.zeros_like(v) for k, v in p.items()}
    dh_next = np.zeros_like(hs[0])
    for t in reversed(range(first, T)):
        r = Wy @ hs[t + 1] - y[:, t:t + 1]
        g["Wy"] += r @ hs[t + 1].T
        dz = (Wy.T @ r + dh_next) * (1 - hs[t + 1] ** 2)
        g["Wx"] += dz @ x[:, t:t + 1].T
        g["Wh"] += dz @ hs[t].T
        g["x"][:, t:t + 1] += Wx.T @ dz
        dh_next = Wh.T @ dz
    for t in range(first):           # the outputs' own read-out gradient is still summed
        r = Wy @ hs[t + 1] - y[:, t:t + 1]
        g["Wy"] += r @ hs[t + 1].T
    return g


def _rnn(seed=4):
    rng = np.random.default_rng(seed)
    H, D, K, T = 4, 3, 2, 6
    p = {"Wx": 0.8 * rng.standard_normal((H, D)), "Wh": 0.5 * rng.standard_normal((H, H)),
         "Wy": rng.standard_normal((K, H)), "x": rng.standard_normal((D, T))}
    return p, rng.standard_normal((K, T))


def test_the_rnn_backwards_are_right_without_the_planted_bugs():
    p, y = _rnn()
    assert crosscheck.check(rnn_loss, rnn_grad, p, y, oracles=("fd",), progress=False).ok
    assert crosscheck.check(rnn_loss, rnn_grad_single_pass, p, y, oracles=("fd",),
                            progress=False).ok


def test_truncated_bptt_grows_toward_the_first_time_steps():
    p, y = _rnn()
    report = crosscheck.check(rnn_loss, lambda p, y: rnn_grad(p, y, window=3), p, y,
                              oracles=("fd",), progress=False)
    assert report.flagged == ["Wx", "Wh", "x"]
    d = report.blocks["x"].diagnosis
    assert d.kind == "partial"
    assert d.text == ("9 of 18 elements of `x` disagree, all in columns 0–2, growing toward "
                      "column 0 (relative error 0.047 at column 2, 2.2 at column 0) ("
                      + _worst(d) + "); the rest agree: " + BPTT_HINT)


def test_truncated_bptt_names_the_range_even_when_the_error_does_not_grow_in_order():
    """Seed 0: the per-column error is not monotone, so no growth is claimed; the range is."""
    p, y = _rnn(seed=0)
    report = crosscheck.check(rnn_loss, lambda p, y: rnn_grad(p, y, window=3), p, y,
                              oracles=("fd",), progress=False)
    d = report.blocks["x"].diagnosis
    assert d.text == ("9 of 18 elements of `x` disagree, all in columns 0–2 (" + _worst(d)
                      + "); the rest agree: " + BPTT_HINT)


@pytest.mark.parametrize("oracles", [("fd",), ("fd", "jax", "torch")], ids=["fd", "all"])
def test_a_bptt_loop_that_stops_early_leaves_the_first_columns_zero(oracles):
    if len(oracles) > 1:
        pytest.importorskip("jax")
        pytest.importorskip("torch")
    p, y = _rnn()
    report = crosscheck.check(rnn_loss, lambda p, y: rnn_grad_single_pass(p, y, first=2), p, y,
                              oracles=oracles, progress=False)
    assert report.flagged == ["Wx", "Wh", "x"]
    d = report.blocks["x"].diagnosis
    assert d.kind == "partial"
    assert d.text == ("6 of 18 elements of `x` disagree, all in columns 0–1 — zero in the "
                      "hand-written gradient (" + _worst(d, d.reference) + "); the rest agree: "
                      + BPTT_HINT)


# --- a softmax classifier, bias folded into W's last column, decay on the weights only -------

LAM = 0.1


def softmax_loss(p, X, y):
    S = p["W"] @ X
    S = S - np.max(S, axis=0, keepdims=True)
    P = np.exp(S) / np.sum(np.exp(S), axis=0, keepdims=True)
    m = X.shape[1]
    return -np.sum(np.log(P[y, np.arange(m)])) / m + 0.5 * LAM * np.sum(p["W"][:, :-1] ** 2)


def softmax_grad(p, X, y, first_class=0, decay_bias=False):
    """``first_class=1`` plants a class loop counted from 1; ``decay_bias`` decays the bias
    column the loss does not decay."""
    W = p["W"]
    S = W @ X
    P = np.exp(S - S.max(axis=0)) / np.sum(np.exp(S - S.max(axis=0)), axis=0)
    m = X.shape[1]
    dW = np.zeros_like(W)
    for k in range(first_class, W.shape[0]):
        dW[k] = (P[k] - (y == k)) @ X.T / m
    R = W.copy()
    if not decay_bias:
        R[:, -1] = 0.0
    return {"W": dW + LAM * R}


def _softmax():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.standard_normal((3, 5)), np.ones((1, 5))])
    y = rng.integers(0, 3, 5)
    return {"W": rng.standard_normal((3, 4))}, X, y


def _softmax_check(**planted):
    p, X, y = _softmax()
    return crosscheck.check(softmax_loss, lambda p, X, y: softmax_grad(p, X, y, **planted),
                            p, X, y, oracles=("fd",), progress=False)


def test_softmax_backward_is_right_without_the_planted_bugs():
    assert _softmax_check().ok


def test_an_error_in_class_0_only_is_all_in_row_0():
    d = _softmax_check(first_class=1).blocks["W"].diagnosis
    assert d.kind == "partial"
    assert d.text == ("4 of 12 elements of `W` disagree, all in row 0 (" + _worst(d)
                      + "); the rest agree: " + LOOK)


def test_a_decayed_bias_column_is_all_in_the_last_column():
    d = _softmax_check(decay_bias=True).blocks["W"].diagnosis
    assert d.kind == "partial"
    assert d.text == ("3 of 12 elements of `W` disagree, all in column 3 (" + _worst(d)
                      + "); the rest agree: " + LOOK)


# --- the rule's edges, on diagnose() directly -----------------------------------------------

def _diagnose(hand, ref, tol=1e-12):
    hand, ref = np.asarray(hand, float), np.asarray(ref, float)
    t = np.full(hand.shape, tol)
    ratio = np.abs(hand - ref) / t
    param = np.random.default_rng(0).standard_normal(ref.shape)
    return diagnose("B", hand, ref, "jax", t, ratio > 1, ratio, param)


def test_every_element_wrong_with_an_error_growing_along_the_columns():
    ref = np.arange(1.0, 11.0).reshape(2, 5)
    noise = np.array([[0.1, -0.3, 0.2, 0.5, -0.4], [-0.2, 0.1, 0.4, -0.3, 0.6]])
    growth = np.array([0.01, 0.02, 0.05, 0.2, 0.8])
    hand = ref * (1 + growth * np.sign(noise)) + 1e-3 * noise
    d = _diagnose(hand, ref)
    assert d.kind == "other"
    assert d.text == ("hand and reference (jax) differ on all 10 elements of `B` with no simple "
                      "pattern (relative difference 0.211), the error growing toward column 4 "
                      "(relative error 0.01 at column 0, 0.8 at column 4).")


def test_three_indices_are_too_few_for_a_trend():
    """1, 2, 3 on a three-column axis is one ordering in three: no trend is claimed."""
    ref = np.ones((2, 3))
    hand = ref + np.array([[0.1, 0.2, 0.3], [0.1, 0.2, 0.3]]) * np.array([[1], [-1]])
    d = _diagnose(hand, ref)
    assert d.kind == "other"
    assert d.text.endswith("with no simple pattern (relative difference 0.107).")


def test_a_range_in_the_middle_is_named_without_the_bptt_question():
    ref = np.arange(1.0, 13.0).reshape(2, 6)
    hand = ref.copy()
    hand[:, 2:4] += np.array([[0.5, -0.7], [0.3, 0.9]])
    d = _diagnose(hand, ref)
    assert d.text == ("4 of 12 elements of `B` disagree, all in columns 2–3 (worst at (1, 3): "
                      "hand 10.9 vs reference (jax) 10); the rest agree: " + LOOK)


def test_a_one_dimensional_block_has_no_axis_pattern():
    d = _diagnose([1.0, 2.5, 3.5, 4.0], [1.0, 2.0, 3.0, 4.0])
    assert d.text == ("2 of 4 elements of `B` disagree (worst at (1,): hand 2.5 vs reference "
                      "(jax) 2); the rest agree: " + LOOK)


def test_higher_dimensional_blocks_name_the_axis_by_number():
    ref = np.arange(1.0, 25.0).reshape(2, 3, 4)
    hand = ref.copy()
    hand[1] += 1.0
    d = _diagnose(hand, ref)
    assert d.text.startswith("12 of 24 elements of `B` disagree, all in axis 0 index 1 (")
