"""``crosscheck.testing.assert_gradients``: passes quietly, fails with the table."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import reference_case
from crosscheck import CheckError, Report, testing
from crosscheck.testing import assert_gradients


def _args(name):
    case = reference_case("seed_net", name)
    return (case.loss, case.grad, case.params, *case.args)


def test_correct_backward_passes_and_returns_the_report():
    report = assert_gradients(*_args("correct"), oracles=("fd",), case="seed_net/correct")
    assert isinstance(report, Report) and report.ok and report.case == "seed_net/correct"


def test_buggy_backward_fails_with_the_table():
    with pytest.raises(AssertionError, match=r"^hand-written gradient is wrong in block\(s\) "
                                             r"b1, W2\n\n") as info:
        assert_gradients(*_args("buggy"), oracles=("fd",))
    message = str(info.value)
    assert "FLAGGED 2 of 6 block(s): b1, W2" in message
    assert "b1: hand = 4.000 × reference (fd)" in message
    assert "W2: hand = 2.000 × reference (fd)" in message
    assert "block  shape" in message


def test_bad_input_is_a_check_error_not_an_assertion():
    with pytest.raises(CheckError, match=r"`params` must be a non-empty dict"):
        assert_gradients(lambda p: 0.0, lambda p: {}, {}, oracles=("fd",))


def test_only_the_innermost_recorder_receives_reports(monkeypatch):
    outer, inner = [], []
    monkeypatch.setattr(testing, "_RECORDERS", [outer.append, inner.append])
    loss = lambda p: (p["w"] ** 2).sum()          # noqa: E731
    grad = lambda p: {"w": 3 * p["w"]}            # noqa: E731
    with pytest.raises(AssertionError, match=r"wrong in block\(s\) w"):
        assert_gradients(loss, grad, {"w": np.array([1.0, 2.0])}, oracles=("fd",))
    assert outer == [] and len(inner) == 1 and inner[0].flagged == ["w"]
    monkeypatch.setattr(testing, "_RECORDERS", [])
    assert_gradients(loss, lambda p: {"w": 2 * p["w"]}, {"w": np.array([1.0])}, oracles=("fd",))


def _float32_inside():
    """A loss computed in float32: centered differences alone resolve only ~1e-3 of it, so
    they cannot vouch for `W` (its gradient is right); `v` is float64 and agrees."""
    rng = np.random.default_rng(0)
    params = {"W": rng.standard_normal((3, 4)), "v": rng.standard_normal(2)}
    X = rng.standard_normal((4, 5))

    def loss(p, X):
        Z = p["W"].astype(np.float32) @ X.astype(np.float32)
        return float(np.sum(np.tanh(Z) ** 2)) + float(np.sum(p["v"] ** 2))

    def grad(p, X):
        H = np.tanh(p["W"] @ X)
        return {"W": (2 * H * (1 - H ** 2)) @ X.T, "v": 2 * p["v"]}

    return loss, grad, params, X


def test_inconclusive_block_fails_by_default_naming_it_and_why(monkeypatch):
    recorded = []
    monkeypatch.setattr(testing, "_RECORDERS", [recorded.append])
    with pytest.raises(AssertionError, match=(
            r"^crosscheck could not vouch for the hand-written gradient in block\(s\) W: no "
            r"block is flagged, but the references cannot confirm these \(why is below\); "
            r"pass `allow_inconclusive=True` to accept that\n\n")) as info:
        assert_gradients(*_float32_inside(), oracles=("fd",))
    message = str(info.value)
    assert "W: agrees with centered differences, but they resolve only" in message
    assert "compute the loss in float64" in message
    assert len(recorded) == 1 and recorded[0].inconclusive == ["W"]   # recorded all the same


def test_allow_inconclusive_passes_and_returns_the_report():
    report = assert_gradients(*_float32_inside(), oracles=("fd",), allow_inconclusive=True)
    assert report.ok and report.flagged == [] and report.inconclusive == ["W"]


def test_a_flag_wins_over_allow_inconclusive():
    loss, grad, params, X = _float32_inside()
    buggy = lambda p, X: {**grad(p, X), "v": 3 * p["v"]}     # noqa: E731
    with pytest.raises(AssertionError, match=r"^hand-written gradient is wrong in block\(s\) v"):
        assert_gradients(loss, buggy, params, X, oracles=("fd",), allow_inconclusive=True)


def test_allow_inconclusive_must_be_a_bool():
    with pytest.raises(CheckError, match=r"^`allow_inconclusive` must be True or False, not "
                                         r"'yes'; pass `allow_inconclusive=True` to let "
                                         r"inconclusive blocks pass$"):
        assert_gradients(*_args("correct"), oracles=("fd",), allow_inconclusive="yes")
