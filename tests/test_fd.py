"""``crosscheck.oracles._fd``: centered differences, their error estimate, the step rule,
the rounding-noise probe, and the refinement ladder with its kink test."""

from __future__ import annotations

import numpy as np
import pytest

from crosscheck._inputs import prepare_args, prepare_loss, prepare_params
from crosscheck.oracles import Problem
from crosscheck.oracles import _fd
from crosscheck.oracles._fd import Engine, element_scales, loss_caller, measure_noise
from conftest import snapshot, tanh_grad, tanh_loss, tanh_model


def make_problem(loss, params, *args, seed=0):
    blocks = prepare_params(params)
    args = prepare_args(args)
    work = blocks.copy()
    sample = loss(work.as_dict(), *args)
    f0 = float(sample)
    call = loss_caller(loss, work.as_dict(), args, sample)
    noise = measure_noise(call, work.flat, element_scales(blocks), f0, seed=seed)
    return Problem(prepare_loss(loss), blocks, args, f0, noise, {"seed": seed})


# --- the step rule ---------------------------------------------------------------------------

def test_element_scales_use_the_larger_of_value_and_block_rms():
    blocks = prepare_params({"a": np.array([3.0, -4.0, 0.0]), "b": np.array([1e-6, 1e4])})
    s = element_scales(blocks)
    rms_a = np.sqrt((9 + 16) / 3)
    rms_b = np.sqrt((1e-12 + 1e8) / 2)
    np.testing.assert_allclose(s, [3.0, 4.0, rms_a, rms_b, 1e4], rtol=1e-15)


def test_element_scales_of_an_all_zero_block_use_the_model_rms():
    blocks = prepare_params({"w": np.array([3.0, 4.0]), "b": np.zeros(3)})
    s = element_scales(blocks)
    total = np.sqrt((9 + 16) / 5)
    np.testing.assert_allclose(s[2:], total, rtol=1e-15)


def test_element_scales_are_one_when_everything_is_zero():
    blocks = prepare_params({"w": np.zeros(2), "b": np.zeros((1, 1))})
    assert element_scales(blocks).tolist() == [1.0, 1.0, 1.0]


def test_element_scales_do_not_touch_the_blocks():
    blocks = prepare_params({"w": np.array([1.0, -2.0])})
    element_scales(blocks)
    assert blocks.flat.tolist() == [1.0, -2.0]


# --- the rounding-noise probe -------------------------------------------------------------------

def test_measure_noise_of_a_smooth_loss_is_near_machine_epsilon():
    params, X, y = tanh_model()
    p = make_problem(tanh_loss, params, X, y)
    eps = np.finfo(float).eps
    assert eps * abs(p.loss_value) <= p.noise <= 1e3 * eps * abs(p.loss_value)


def test_measure_noise_floor_is_eps_times_loss():
    flat = np.array([1.0, 2.0])
    noise = measure_noise(lambda: 10.0, flat, np.ones(2), 10.0)
    assert noise == np.finfo(float).eps * 10.0
    assert measure_noise(lambda: 0.0, flat, np.ones(2), 0.0) == np.finfo(float).tiny


def test_measure_noise_sees_injected_noise_and_restores_the_point():
    rng = np.random.default_rng(1)
    flat = np.array([0.3, -1.2, 2.0])
    base = flat.copy()
    noise = measure_noise(lambda: 1.0 + 1e-9 * rng.standard_normal(), flat, np.ones(3), 1.0)
    assert 1e-11 < noise < 1e-8
    assert flat.tolist() == base.tolist()


def test_measure_noise_is_seeded():
    def run(seed):
        flat = np.array([0.3, -1.2, 2.0])
        call = lambda: float(np.sum(np.sin(flat) ** 3) * 1e3)  # noqa: E731
        return measure_noise(call, flat, np.ones(3), call(), seed=seed)

    assert run(4) == run(4)


# --- the first pass ----------------------------------------------------------------------------

def test_first_pass_matches_the_exact_gradient():
    params, X, y = tanh_model()
    p = make_problem(tanh_loss, params, X, y)
    result = _fd.run(p)
    assert result.ran and result.name == "fd"
    exact = tanh_grad(params, X, y)
    for name in params:
        err = np.abs(result.grads[name] - exact[name])
        assert err.max() <= 1e-7
        assert result.errors[name].shape == params[name].shape
        assert np.all(result.errors[name] > 0)
        assert result.covered[name].all()
    assert result.forward == p.loss_value
    assert result.extra["evaluations"] == 1 + 2 * 18
    assert result.version.startswith("numpy ")


def test_first_pass_restores_the_parameters_bitwise():
    params, X, y = tanh_model()
    p = make_problem(tanh_loss, params, X, y)
    before = snapshot(p.blocks.as_dict())
    engine = Engine(p)
    engine.first_pass(np.arange(p.blocks.size))
    engine.refine(np.arange(p.blocks.size), np.ones(p.blocks.size))
    assert snapshot(engine.blocks.as_dict()) == before
    assert snapshot(p.blocks.as_dict()) == before


def test_step_scales_with_the_parameter():
    # J = sum(c * w^2) at w ~ 1e4 and ~1e-4: the relative error is the same
    for scale in (1e4, 1e-4):
        w = np.array([1.3, -0.7, 2.1]) * scale
        p = make_problem(lambda prm: np.sum(prm["w"] ** 3), {"w": w})
        value, error = Engine(p).first_pass(np.arange(3))
        exact = 3 * w ** 2
        np.testing.assert_allclose(value, exact, rtol=1e-7)


# --- refinement and kinks ------------------------------------------------------------------------

def test_refine_detects_the_kink_of_abs_at_zero():
    p = make_problem(lambda prm: np.sum(np.abs(prm["x"])), {"x": np.array([0.0, 0.7])})
    ladder = Engine(p).refine(np.array([0, 1]), np.ones(2))
    assert ladder.kink.tolist() == [True, False]
    assert ladder.lower[0] == pytest.approx(-1.0)
    assert ladder.upper[0] == pytest.approx(1.0)
    assert ladder.value[1] == pytest.approx(1.0, abs=1e-12)
    assert ladder.index.tolist() == [0, 1]


def test_refine_relu_at_zero_bounds_the_subgradient_interval():
    p = make_problem(lambda prm: np.sum(np.maximum(prm["x"], 0.0)), {"x": np.array([0.0])})
    ladder = Engine(p).refine(np.array([0]), np.ones(1))
    assert ladder.kink[0]
    assert ladder.lower[0] == pytest.approx(0.0, abs=1e-12)
    assert ladder.upper[0] == pytest.approx(1.0)


@pytest.mark.parametrize("x0", [0.0, 0.5, -1.3, 40.0])
def test_refine_x_cubed_is_smooth_and_accurate(x0):
    p = make_problem(lambda prm: np.sum(prm["x"] ** 3), {"x": np.array([x0])})
    ladder = Engine(p).refine(np.array([0]), np.array([max(3 * x0 ** 2, 1.0)]))
    assert not ladder.kink[0]
    exact = 3 * x0 ** 2
    assert abs(ladder.value[0] - exact) <= ladder.error[0] + 1e-12
    assert ladder.value[0] == pytest.approx(exact, rel=1e-9, abs=1e-12)
    assert ladder.error[0] < 1e-6 * max(exact, 1.0)


def test_refine_is_more_accurate_than_the_first_pass():
    params, X, y = tanh_model()
    p = make_problem(tanh_loss, params, X, y)
    engine = Engine(p)
    index = np.arange(p.blocks.size)
    first, _ = engine.first_pass(index)
    ladder = engine.refine(index, np.ones(index.size))
    g = tanh_grad(params, X, y)
    exact = np.concatenate([g[n].ravel() for n in params])
    assert not ladder.kink.any()
    assert np.abs(ladder.value - exact).max() <= np.abs(first - exact).max()
    assert np.all(np.abs(ladder.value - exact) <= ladder.error + 1e-15)


def test_engine_counts_its_evaluations():
    p = make_problem(lambda prm: np.sum(prm["x"] ** 2), {"x": np.ones(4)})
    engine = Engine(p)
    assert engine.evaluations == 1
    engine.first_pass(np.arange(4))
    assert engine.evaluations == 1 + 8
    engine.refine(np.array([1, 2]), np.ones(2))
    # each rung of the ladder costs two evaluations per element
    assert engine.evaluations == 1 + 8 + getattr(_fd, "RUNGS", 3) * 2 * 2
