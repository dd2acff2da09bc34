"""Traps a real user walks into: conventions at kinks, low-precision gradients, odd returns."""

import numpy as np
import pytest

import crosscheck


def _abs_model():
    W = np.array([[1.0, -1.0, 0.0], [2.0, 0.0, 1.0]])
    X = np.array([[1.0, 2.0], [1.0, 0.0], [3.0, 1.0]])   # (W @ X)[0, 0] == 0: a kink of abs

    def loss(p, X):
        return np.sum(np.abs(p["W"] @ X)) + np.sum(p["W"] ** 2)

    def grad(p, X):
        return {"W": np.sign(p["W"] @ X) @ X.T + 2 * p["W"]}

    return loss, grad, {"W": W}, X


def test_jax_and_torch_subgradient_conventions_at_abs_zero_are_not_a_disagreement():
    pytest.importorskip("jax")
    pytest.importorskip("torch")
    loss, grad, params, X = _abs_model()
    report = crosscheck.check(loss, grad, params, X)
    block = report.blocks["W"]
    assert report.flagged == [] and block.verdict == "ok"
    assert block.kinks == 3 and block.conventions == 3
    assert "valid subgradient" in block.reason


def test_a_real_bug_next_to_an_abs_kink_is_still_flagged():
    pytest.importorskip("torch")
    loss, grad, params, X = _abs_model()
    report = crosscheck.check(loss, lambda p, X: {"W": 1.5 * grad(p, X)["W"]}, params, X)
    assert report.flagged == ["W"]


def _tanh_case():
    rng = np.random.default_rng(3)
    params = {"W": rng.standard_normal((3, 4)), "b": rng.standard_normal((3, 1))}
    X = rng.standard_normal((4, 5))

    def loss(p, X):
        return np.sum(np.tanh(p["W"] @ X + p["b"]) ** 2)

    def grad(p, X):
        H = np.tanh(p["W"] @ X + p["b"])
        dZ = 2 * H * (1 - H ** 2)
        return {"W": dZ @ X.T, "b": dZ.sum(axis=1, keepdims=True)}

    return loss, grad, params, X


def test_float32_hand_gradient_is_judged_with_its_own_rounding_and_noted():
    loss, grad, params, X = _tanh_case()

    def grad32(p, X):
        return {k: v.astype(np.float32) for k, v in grad(p, X).items()}

    report = crosscheck.check(loss, grad32, params, X, oracles=("fd", "torch"))
    assert report.flagged == []
    assert any("returned float32 for block `W`" in n for n in report.notes)
    buggy = crosscheck.check(loss, lambda p, X: {**grad32(p, X), "b": 2 * grad32(p, X)["b"]},
                             params, X, oracles=("fd", "torch"))
    assert buggy.flagged == ["b"]


def test_grad_may_return_dict_then_loss():
    loss, grad, params, X = _tanh_case()
    report = crosscheck.check(loss, lambda p, X: (grad(p, X), loss(p, X)), params, X,
                              oracles=("fd",))
    assert report.ok


def test_grad_keys_with_a_grad_suffix_are_found():
    loss, grad, params, X = _tanh_case()
    report = crosscheck.check(loss, lambda p, X: {f"{k}_grad": v for k, v in grad(p, X).items()},
                              params, X, oracles=("fd",))
    assert report.ok


def test_arrays_nested_in_a_dict_argument_reach_every_framework_and_are_not_mutated():
    pytest.importorskip("torch")
    data = {"X": np.array([3.0, 4.0], dtype=np.float32)}
    before = data["X"].copy()

    def loss(p, d):
        return np.sum((p["w"] * d["X"]) ** 2)

    def grad(p, d):
        return {"w": 2 * p["w"] * d["X"] ** 2}

    report = crosscheck.check(loss, grad, {"w": np.array([1.0, 2.0])}, data)
    assert report.ok
    assert all(report.oracles[o].error is None for o in ("fd", "torch"))
    assert data["X"].dtype == np.float32 and np.array_equal(data["X"], before)


def test_a_factor_close_to_one_is_not_rounded_to_one_in_the_diagnosis():
    loss, grad, params, X = _tanh_case()
    report = crosscheck.check(loss, lambda p, X: {k: v * (1 + 1.7e-4) for k, v in grad(p, X).items()},
                              params, X, oracles=("fd",))
    assert report.flagged == ["W", "b"]
    d = report.blocks["W"].diagnosis
    assert d.kind == "scale" and d.factor == pytest.approx(1.00017, rel=1e-9)
    assert "hand = 1.00017 × reference (fd)" in d.text


def _float32_inside():
    rng = np.random.default_rng(0)
    params = {"W": rng.standard_normal((3, 4))}
    X = rng.standard_normal((4, 5))

    def loss(p, X):   # the user computes in float32: its rounding is 1e-7, not 1e-16
        Z = p["W"].astype(np.float32) @ X.astype(np.float32)
        return float(np.sum(np.tanh(Z) ** 2))

    def grad(p, X):
        H = np.tanh(p["W"] @ X)
        return {"W": (2 * H * (1 - H ** 2)) @ X.T}

    return loss, grad, params, X


def test_a_float32_loss_is_measured_as_noisy_and_a_bug_is_still_caught():
    loss, grad, params, X = _float32_inside()
    buggy = crosscheck.check(loss, lambda p, X: {"W": 2 * grad(p, X)["W"]}, params, X,
                             oracles=("fd",))
    assert buggy.flagged == ["W"]
    assert buggy.blocks["W"].diagnosis.kind == "scale"
    assert buggy.noise > 1e-8 * abs(buggy.forward["numpy"])   # float32 rounding, measured


def test_fd_alone_too_coarse_to_vouch_says_inconclusive_with_its_resolution():
    loss, grad, params, X = _float32_inside()
    report = crosscheck.check(loss, grad, params, X, oracles=("fd",))
    block = report.blocks["W"]
    assert report.flagged == [] and block.verdict == "inconclusive"
    assert "they resolve only" in block.reason and "compute the loss in float64" in block.reason


def test_noise_is_not_inflated_by_kinks_at_the_check_point():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "reference" / "relu_kinks.py"
    spec = importlib.util.spec_from_file_location("relu_kinks_for_noise", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = module.correct
    report = crosscheck.check(c.loss, c.grad, c.params, *c.args, oracles=("fd",), taylor=False)
    eps = np.finfo(np.float64).eps
    # many pre-activations sit exactly at 0; the noise is still float64 rounding
    assert report.noise < 100 * eps * abs(report.forward["numpy"])
    assert report.tolerances["autodiff_rtol_effective"] == 1e-10


def test_an_empty_block_is_refused_by_name():
    with pytest.raises(crosscheck.CheckError, match=r"block `h0` is empty \(shape \(0, 3\)\)"):
        crosscheck.check(lambda p: np.sum(p["w"] ** 2), lambda p: {"w": 2 * p["w"]},
                         {"w": np.ones(3), "h0": np.zeros((0, 3))}, oracles=("fd",))


def test_fortran_ordered_parameters_are_checked_and_left_as_they_were():
    rng = np.random.default_rng(5)
    W = np.asfortranarray(rng.standard_normal((3, 4)))
    before = W.copy(order="A")
    X = rng.standard_normal((4, 2))
    report = crosscheck.check(lambda p, X: np.sum((p["W"] @ X) ** 2),
                              lambda p, X: {"W": 2 * (p["W"] @ X) @ X.T}, {"W": W}, X,
                              oracles=("fd",))
    assert report.ok
    assert W.flags.f_contiguous and np.array_equal(W, before)


def test_a_perfect_fit_is_a_stationary_point_noted_and_rounding_is_not_a_bug():
    pytest.importorskip("torch")
    # W2 = 0 and b2 = Y: the loss is exactly 0 and every gradient vanishes
    params = {"W1": np.array([[-2.0], [1.0]]), "b1": np.array([[-1.0], [0.0]]),
              "W2": np.array([[0.0, 0.0]]), "b2": np.array([[1.0]])}
    X, Y = np.array([[1.0, -2.0]]), np.array([[1.0, 1.0]])

    def loss(p, X, Y):
        A1 = np.maximum(p["W1"] @ X + p["b1"], 0.0)
        return np.sum((p["W2"] @ A1 + p["b2"] - Y) ** 2) / (2 * X.shape[1])

    def grad(p, X, Y, wrong=0.0):
        Z1 = p["W1"] @ X + p["b1"]
        A1 = np.maximum(Z1, 0.0)
        d2 = (p["W2"] @ A1 + p["b2"] - Y) / X.shape[1]
        d1 = (p["W2"].T @ d2) * (Z1 > 0)
        return {"W1": d1 @ X.T + wrong, "b1": d1.sum(axis=1, keepdims=True),
                "W2": d2 @ A1.T, "b2": d2.sum(axis=1, keepdims=True)}

    report = crosscheck.check(loss, grad, params, X, Y, oracles=("fd", "torch"))
    assert report.flagged == []
    assert any("stationary point" in n for n in report.notes)
    buggy = crosscheck.check(loss, lambda *a: grad(*a, wrong=0.5), params, X, Y,
                             oracles=("fd", "torch"))
    assert buggy.flagged == ["W1"]
