"""``crosscheck._taylor``: the Taylor remainder order, 2 for a true gradient, 1 for a wrong one."""

from __future__ import annotations

import numpy as np
import pytest

import crosscheck
from crosscheck._inputs import normalize_grad, prepare_args, prepare_params
from crosscheck._taylor import taylor_orders
from crosscheck.oracles._fd import element_scales, loss_caller, measure_noise
from conftest import planted, snapshot, tanh_grad, tanh_loss, tanh_model


def _orders(loss, grad, params, *args, seed=0):
    blocks = prepare_params(params)
    args = prepare_args(args)
    hand, _ = normalize_grad(grad(blocks.copy().as_dict(), *args), blocks)
    work = blocks.copy()
    sample = loss(work.as_dict(), *args)
    noise = measure_noise(loss_caller(loss, work.as_dict(), args, sample), work.flat,
                          element_scales(blocks), float(sample))
    before = snapshot(blocks.as_dict())
    out = taylor_orders(loss, blocks, args, hand, float(sample), noise, seed=seed)
    assert snapshot(blocks.as_dict()) == before
    return out


def test_true_gradient_has_order_two():
    params, X, y = tanh_model()
    out = _orders(tanh_loss, tanh_grad, params, X, y)
    assert set(out) == {"W", "b", "v"}
    for name, t in out.items():
        assert t["order"] == pytest.approx(2.0, abs=0.3), name
        assert len(t["remainders"]) == len(t["steps"])
        assert t["steps"] == sorted(t["steps"], reverse=True)


@pytest.mark.parametrize("change", [lambda g, p: 2 * g, lambda g, p: -g,
                                    lambda g, p: g + 0.1 * p])
def test_wrong_gradient_has_order_one(change):
    params, X, y = tanh_model()
    out = _orders(tanh_loss, planted(tanh_grad, W=change), params, X, y)
    assert out["W"]["order"] == pytest.approx(1.0, abs=0.3)
    assert out["b"]["order"] == pytest.approx(2.0, abs=0.3)


def test_linear_loss_has_no_order():
    out = _orders(lambda p, x: np.sum(p["w"] * x), lambda p, x: {"w": x.copy()},
                  {"w": np.array([1.0, -2.0])}, np.array([3.0, 0.5]))
    assert out["w"]["order"] is None


def test_linear_loss_with_wrong_gradient_has_order_one():
    out = _orders(lambda p, x: np.sum(p["w"] * x), lambda p, x: {"w": 2 * x},
                  {"w": np.array([1.0, -2.0])}, np.array([3.0, 0.5]))
    assert out["w"]["order"] == pytest.approx(1.0, abs=0.3)


def test_nonfinite_gradient_has_no_order():
    params, X, y = tanh_model()
    out = _orders(tanh_loss, planted(tanh_grad, b=lambda g, p: g * np.nan), params, X, y)
    assert out["b"]["order"] is None
    assert out["W"]["order"] == pytest.approx(2.0, abs=0.3)


def test_orders_are_seeded():
    params, X, y = tanh_model()
    a = _orders(tanh_loss, tanh_grad, params, X, y, seed=5)
    b = _orders(tanh_loss, tanh_grad, params, X, y, seed=5)
    assert a == b


@pytest.mark.parametrize("bias", [1e-3, -1.2e-2])
def test_small_single_element_block_still_gets_an_order(bias):
    # a lone bias near zero must not make the probe vanish into rounding noise
    params, X, y = tanh_model()
    params["c"] = np.array([[bias]])

    def loss(p, X, y):
        return tanh_loss(p, X, y) + 0.5 * np.sum(np.tanh(p["c"] + 0.3) ** 2)

    def grad(p, X, y):
        t = np.tanh(p["c"] + 0.3)
        return {**tanh_grad(p, X, y), "c": t * (1 - t * t)}

    out = _orders(loss, grad, params, X, y)
    assert out["c"]["order"] == pytest.approx(2.0, abs=0.3)


def test_check_reports_the_order_and_can_skip_it():
    params, X, y = tanh_model()
    report = crosscheck.check(tanh_loss, planted(tanh_grad, v=lambda g, p: 3 * g), params,
                              X, y, oracles=("fd",))
    assert report.blocks["W"].taylor["order"] == pytest.approx(2.0, abs=0.3)
    assert report.blocks["v"].taylor["order"] == pytest.approx(1.0, abs=0.3)
    assert report.to_dict()["blocks"]["v"]["taylor"]["order"] == pytest.approx(1.0, abs=0.3)
    quiet = crosscheck.check(tanh_loss, tanh_grad, params, X, y, oracles=("fd",), taylor=False)
    assert all(b.taylor is None for b in quiet.blocks.values())
