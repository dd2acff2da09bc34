"""Scale: coverage modes of the centered differences, and localisation on a 90k model."""

import numpy as np
import pytest

import crosscheck
from crosscheck import CheckError


def mlp(sizes, batch, seed=0):
    rng = np.random.default_rng(seed)
    params = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]), 1):
        params[f"W{i}"] = rng.standard_normal((b, a)) / np.sqrt(a)
        params[f"b{i}"] = rng.standard_normal((b, 1)) * 0.1
    return params, rng.standard_normal((sizes[0], batch)), rng.standard_normal((sizes[-1], batch))


def loss(p, X, Y):
    L = len(p) // 2
    A = X
    for layer in range(1, L + 1):
        Z = p[f"W{layer}"] @ A + p[f"b{layer}"]
        A = np.maximum(Z, 0) if layer < L else Z
    return np.sum((A - Y) ** 2) / (2 * X.shape[1])


def grad(p, X, Y):
    L = len(p) // 2
    A, Z = [X], []
    for layer in range(1, L + 1):
        Z.append(p[f"W{layer}"] @ A[-1] + p[f"b{layer}"])
        A.append(np.maximum(Z[-1], 0) if layer < L else Z[-1])
    dZ = (A[-1] - Y) / X.shape[1]
    g = {}
    for layer in range(L, 0, -1):
        g[f"W{layer}"] = dZ @ A[layer - 1].T
        g[f"b{layer}"] = dZ.sum(axis=1, keepdims=True)
        if layer > 1:
            dZ = (p[f"W{layer}"].T @ dZ) * (Z[layer - 2] > 0)
    return g


@pytest.fixture(scope="module")
def big():
    pytest.importorskip("jax")
    pytest.importorskip("torch")
    params, X, Y = mlp([256, 256, 96, 1], batch=16)
    assert sum(v.size for v in params.values()) == 90_561
    return params, X, Y


def test_default_check_of_a_90k_model_passes_the_correct_gradient(big):
    report = crosscheck.check(loss, grad, *big, progress=False)
    assert report.flagged == [] and report.inconclusive == []
    cov = report.blocks["W1"].coverage["fd"]
    assert cov["size"] == 65_536 and 0 < cov["elements"] < cov["size"]
    assert cov["directions"] == 2 and cov["directions_failed"] == 0
    assert "fd coverage" in str(report)


def test_default_check_of_a_90k_model_names_a_single_wrong_element(big):
    params, X, Y = big

    def one_wrong(p, X, Y):
        g = grad(p, X, Y)
        g["W1"] = g["W1"].copy()
        g["W1"][4, 210] *= 1.01
        return g

    report = crosscheck.check(loss, one_wrong, params, X, Y, progress=False)
    assert report.flagged == ["W1"]
    d = report.blocks["W1"].diagnosis
    assert d.kind == "partial" and d.mismatched == 1 and d.worst == (4, 210)
    # centered differences looked at that element too (focus on hand ≠ autodiff)
    assert report.blocks["W1"].disagree == ["jax", "torch", "fd"]


def test_default_check_of_a_90k_model_finds_a_zeroed_column(big):
    params, X, Y = big

    def zero_column(p, X, Y):
        g = grad(p, X, Y)
        g["W2"] = g["W2"].copy()
        g["W2"][:, 7] = 0.0
        return g

    report = crosscheck.check(loss, zero_column, params, X, Y, progress=False)
    assert report.flagged == ["W2"]
    d = report.blocks["W2"].diagnosis
    assert d.kind == "partial"
    assert {idx[1] for idx in d.indices} == {7}
    assert "all in column 7 — zero in the hand-written gradient" in d.text


def test_fd_all_evaluates_every_element_once_on_each_side():
    params, X, Y = mlp([5, 7, 1], batch=4)
    n = sum(v.size for v in params.values())
    report = crosscheck.check(loss, grad, params, X, Y, oracles=("fd",), fd="all", taylor=False)
    assert report.ok
    assert report.oracles["fd"].evaluations == 2 * n + 1   # + the engine's base call
    assert all(b.coverage["fd"]["elements"] == b.size for b in report.blocks.values())


def test_fd_int_samples_that_many_elements_per_block_with_autodiff():
    pytest.importorskip("torch")
    params, X, Y = mlp([80, 70, 1], batch=4)   # 5,741 elements: above the small-model limit
    report = crosscheck.check(loss, grad, params, X, Y, oracles=("fd", "torch"), fd=5,
                              taylor=False)
    assert report.ok
    assert report.blocks["W1"].coverage["fd"]["elements"] == 5
    assert report.blocks["b2"].coverage["fd"]["elements"] == 1   # a 1-element block: all of it


def test_fd_auto_without_autodiff_samples_past_its_budget_and_says_so(monkeypatch):
    from crosscheck.oracles import _fd
    monkeypatch.setattr(_fd, "BUDGET", 2_000)
    params, X, Y = mlp([80, 70, 1], batch=4)
    report = crosscheck.check(loss, grad, params, X, Y, oracles=("fd",), taylor=False)
    assert report.ok
    assert any("sampled up to 250 element(s) per block" in n for n in report.notes)
    assert report.blocks["W1"].coverage["fd"]["elements"] == 250


@pytest.mark.parametrize("bad", ["some", 0, -3, True, 2.5])
def test_fd_option_is_validated(bad):
    params, X, Y = mlp([3, 2, 1], batch=2)
    with pytest.raises(CheckError, match=r"`fd` must be 'auto', 'all' or a positive int"):
        crosscheck.check(loss, grad, params, X, Y, oracles=("fd",), fd=bad)


@pytest.mark.parametrize("sizes, batch, seed", [([25, 25, 24, 1], 21, 11), ([49, 57, 27, 1], 22, 4)])
def test_fd_alone_vouches_for_a_correct_relu_mlp_with_a_few_elements_near_kinks(sizes, batch,
                                                                               seed):
    # a few elements sit near a ReLU kink, where the ladder's error estimates are wide; the
    # block's resolution is judged on its typical element, so the verdict is ok, not "??"
    params, X, Y = mlp(sizes, batch=batch, seed=seed)
    report = crosscheck.check(loss, grad, params, X, Y, oracles=("fd",), taylor=False)
    assert report.flagged == [] and report.inconclusive == []

    def one_wrong(p, X, Y):
        g = grad(p, X, Y)
        w = g["W2"].copy()
        w[np.unravel_index(np.argmax(np.abs(w)), w.shape)] *= 1.001
        return {**g, "W2": w}

    assert crosscheck.check(loss, one_wrong, params, X, Y, oracles=("fd",),
                            taylor=False).flagged == ["W2"]
