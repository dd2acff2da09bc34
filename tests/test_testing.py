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
