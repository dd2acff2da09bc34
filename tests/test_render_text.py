"""``crosscheck._render_text``: the plain table (``str(report)``), the rich table, NO_COLOR."""

from __future__ import annotations

import io

import pytest

import crosscheck
from crosscheck._render_text import headline, print_report, render_plain, render_rich, use_rich
from conftest import planted, tanh_grad, tanh_loss, tanh_model


@pytest.fixture(scope="module")
def buggy():
    params, X, y = tanh_model()
    grad = planted(tanh_grad, b=lambda g, p: 4 * g, v=lambda g, p: -g)
    return crosscheck.check(tanh_loss, grad, params, X, y, oracles=("fd",), case="tanh/buggy")


@pytest.fixture(scope="module")
def correct():
    params, X, y = tanh_model()
    return crosscheck.check(tanh_loss, tanh_grad, params, X, y, oracles=("fd",))


def test_headline_names_the_flagged_blocks(buggy, correct):
    assert headline(buggy) == "tanh/buggy: FLAGGED 2 of 3 block(s): b, v — by centered differences alone"
    assert headline(correct) == "all 3 block(s) agree — by centered differences alone"


def test_headline_names_a_reference_that_did_not_run():
    """A case decided by fewer references than asked for says so in the headline itself."""
    params, X, y = tanh_model()

    def loss(p, X, y):   # runs under numpy and jax; torch's numpy layer has no `polyfit`
        import numpy as np
        np.polyfit(np.arange(3.0), np.arange(3.0), 1)
        return tanh_loss(p, X, y)

    report = crosscheck.check(loss, tanh_grad, params, X, y, oracles=("fd", "torch"))
    assert report.references == ["fd"]
    assert headline(report) == "all 3 block(s) agree — by centered differences alone (torch did not run)"
    assert report.to_dict()["references"] == ["fd"]


def test_plain_table_has_every_block_and_its_verdict(buggy):
    text = str(buggy)
    assert text == render_plain(buggy)
    lines = text.splitlines()
    assert lines[0] == "tanh/buggy: FLAGGED 2 of 3 block(s): b, v — by centered differences alone"
    header = lines[2].split()
    assert header == ["block", "shape", "fd", "verdict"]
    rows = {line.split()[0]: line.split() for line in lines[4:7]}
    assert set(rows) == {"W", "b", "v"}
    assert rows["W"][1] == "3×4" and rows["W"][-1] == "ok"
    assert rows["b"][1] == "3×1" and rows["b"][-1] == "WRONG"
    assert rows["v"][-1] == "WRONG"
    assert rows["b"][2] == "6.00e-01"
    assert rows["v"][2] == "1.00e+00"


def test_plain_table_explains_the_flagged_blocks(buggy):
    text = str(buggy)
    assert "b: hand = 4.000 × reference (fd)" in text
    assert "sign error" in text
    assert "fd: numpy" in text
    assert "forward loss: numpy" in text
    assert "Taylor remainder order" in text


def test_plain_table_lists_notes_and_oracle_errors():
    params, X, y = tanh_model()
    params["b"] = params["b"].astype("float32")
    report = crosscheck.check(tanh_loss, tanh_grad, params, X, y, oracles=("fd",))
    assert "note: block `b` is float32; checked in float64" in str(report)


def test_scalar_block_shape_and_missing_oracle_are_shown():
    report = crosscheck.check(lambda p: p["t"] * 2.0, lambda p: {"t": 2.0},
                              {"t": 4.0}, oracles=("fd",))
    row = str(report).splitlines()[4].split()
    assert row[0] == "t" and row[1] == "()"


def test_rich_table_renders_the_same_content(buggy):
    from rich.console import Console

    out = io.StringIO()
    Console(file=out, width=120, color_system=None).print(render_rich(buggy))
    text = out.getvalue()
    assert "FLAGGED 2 of 3 block(s):" in " ".join(text.split())  # the title may wrap
    for name in ("W", "b", "v"):
        assert f" {name} " in text
    assert "WRONG" in text


class _Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self._tty = tty

    def isatty(self):
        return self._tty


def test_use_rich_on_a_terminal_only(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert use_rich(_Stream(True)) is True
    assert use_rich(_Stream(False)) is False


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_no_color_is_honoured(monkeypatch, value):
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("NO_COLOR", value)
    assert use_rich(_Stream(True)) is False


def test_dumb_terminal_gets_plain_text(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "dumb")
    assert use_rich(_Stream(True)) is False


def test_print_report_plain_when_not_a_terminal(buggy):
    out = _Stream(False)
    print_report(buggy, out)
    assert out.getvalue() == str(buggy) + "\n"


def test_print_report_no_color_on_a_terminal(buggy, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    out = _Stream(True)
    print_report(buggy, out)
    assert "\x1b[" not in out.getvalue()
    assert out.getvalue() == str(buggy) + "\n"
