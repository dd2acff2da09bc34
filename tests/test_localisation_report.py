"""``check()`` localises: where the error enters the backward, in the report and every output.

The seeds' verbatim buggy backward (``reference/seed_numpy.py``, unmodified), two planted bugs
early in the backward, a correct backward, the options, the failure path, and the formats.
"""

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

import crosscheck
from crosscheck import CheckError
from crosscheck._render_html import render_report_html
from crosscheck._render_junit import render_junit
from crosscheck._render_markdown import render_report_markdown
from reference import seed_numpy as seed
from seed_planted import (backward_da1_bug, backward_dz3_bug,
                          backward_dz3_doubled, backward_returns_a_wrong_unused_da1)

ROOT = Path(__file__).resolve().parents[1]
SEED_FILE = inspect.getsourcefile(seed)
ORDER = ("dZ3", "dW3", "db3", "dA2", "dZ2", "dW2", "db2", "dA1", "dZ1", "dW1", "db1")
FAST = ("fd", "torch")   # one autodiff reference: enough for the taps, quick


def _line_of(fn, text):
    lines, first = inspect.getsourcelines(fn)
    hits = [first + i for i, line in enumerate(lines) if line.strip() == text]
    assert len(hits) == 1, (text, hits)
    return hits[0]


def _check(backward, oracles=FAST, **options):
    pytest.importorskip("torch")
    grad = lambda p, X, Y: backward(X, Y, seed.forward_propagation_n(X, Y, p)[1])  # noqa: E731
    return crosscheck.check(seed.loss, grad, seed.parameters, seed.X, seed.Y, oracles=oracles, **options)


DW2 = "dW2 = 1. / m * np.dot(dZ2, A1.T) * 2"
DB1 = "db1 = 4. / m * np.sum(dZ1, axis=1, keepdims=True)"


@pytest.fixture(scope="module")
def buggy():
    pytest.importorskip("jax")
    return _check(seed.backward_propagation_n_buggy, oracles=("fd", "jax", "torch"))


# ------------------------------------------------------------------ the seeds' buggy backward
def test_seed_buggy_backward_names_dw2_and_db1_with_their_lines(buggy):
    assert buggy.flagged == ["b1", "W2"]                       # the blocks are as before
    assert buggy.convention == 3.0
    assert buggy.entry_points == ("dW2", "db1")
    assert tuple(q.key for q in buggy.intermediates) == ORDER
    by_key = {q.key: q for q in buggy.intermediates}
    for key in ("dZ3", "dA2", "dZ2", "dA1", "dZ1"):
        assert by_key[key].kind == "intermediate" and by_key[key].verdict == "right"
        assert by_key[key].factor == 3.0
        assert set(by_key[key].differences) == {"torch"}   # one autodiff reference: the cheapest
    for key in ("dW3", "db3", "dW1", "db2"):
        assert by_key[key].kind == "parameter" and by_key[key].verdict == "right"
    assert by_key["dW2"].verdict == "wrong" and by_key["dW2"].factor == 2.0
    assert by_key["db1"].verdict == "wrong" and by_key["db1"].factor == 4.0
    assert by_key["dW2"].differences == buggy.blocks["W2"].difference   # the block's numbers
    assert (by_key["dW2"].source.file, by_key["dW2"].source.line, by_key["dW2"].source.text) == \
        (SEED_FILE, 114, DW2)
    assert (by_key["db1"].source.file, by_key["db1"].source.line, by_key["db1"].source.text) == \
        (SEED_FILE, 120, DB1)
    assert by_key["dW2"].source.function == "backward_propagation_n_buggy"
    assert all(not q.follows_from for q in buggy.intermediates)


def test_seed_buggy_backward_in_the_text_report(buggy):
    text = str(buggy)
    lines = text.splitlines()
    assert lines[0] == "FLAGGED 2 of 6 block(s): b1, W2 — the error enters at dW2, db1"
    assert "  intermediates are 3 × ∂J/∂Z (m = 3, the batch size: the seeds' convention)" in lines
    assert ("  the error enters at `dW2`, reference/seed_numpy.py:114 (`backward_propagation_n_buggy`): "
            f"`{DW2}`") in lines
    assert ("  the error enters at `db1`, reference/seed_numpy.py:120 (`backward_propagation_n_buggy`): "
            f"`{DB1}`") in lines
    header = next(line for line in lines if line.startswith("backward"))
    assert header.split() == ["backward", "of", "shape", "fd", "jax", "torch", "verdict", "factor",
                              "follows", "from"]
    rows = [line.split() for line in lines[lines.index(header) + 2:][:len(ORDER)]]
    assert [r[0] for r in rows] == list(ORDER)
    assert rows[0] == ["dZ3", "Z3", "1×3", "—", "—", rows[0][5], "ok", "3"]
    assert rows[5][-2:] == ["WRONG", "2"] and rows[10][-2:] == ["WRONG", "4"]


def test_seed_buggy_backward_in_to_dict_and_the_schema(buggy):
    jsonschema = pytest.importorskip("jsonschema")  # noqa: F841
    from crosscheck._schemas import validator

    doc = json.loads(json.dumps(buggy.to_dict()))
    assert not list(validator("report-1").iter_errors(doc))
    loc = doc["localisation"]
    assert loc["convention"] == 3.0
    assert loc["entry_points"] == ["dW2", "db1"]
    assert loc["notes"] == []
    assert [q["name"] for q in loc["quantities"]] == list(ORDER)
    dw2 = loc["quantities"][ORDER.index("dW2")]
    assert dw2["source"] == {"file": SEED_FILE, "line": 114, "text": DW2,
                             "function": "backward_propagation_n_buggy"}
    assert dw2["of"] == "W2" and dw2["kind"] == "parameter" and dw2["verdict"] == "wrong"
    assert dw2["shape"] == [3, 5] and dw2["factor"] == 2.0 and dw2["follows_from"] == []
    dz2 = loc["quantities"][ORDER.index("dZ2")]
    assert dz2["kind"] == "intermediate" and dz2["factor"] == 3.0 and set(dz2["difference"]) == {"torch"}


def test_seed_buggy_backward_in_markdown_html_and_junit(buggy):
    md = render_report_markdown(buggy)
    assert "❌ FLAGGED 2 of 6 block(s): b1, W2 — the error enters at dW2, db1" in md
    assert "| backward | of | shape | fd | jax | torch | verdict | factor | follows from |" in md
    assert (f"- the error enters at `dW2`, reference/seed_numpy.py:114 "
            f"(`backward_propagation_n_buggy`): `{DW2}`") in md
    html = render_report_html(buggy)
    assert "the error enters at dW2, db1" in html
    assert '<table class="located">' in html and "reference/seed_numpy.py:114" in html
    xml = render_junit([buggy], timestamp="2024-01-01T00:00:00", hostname="h")
    assert ("— the error enters at dW2 at reference/seed_numpy.py:114 "
            "(`backward_propagation_n_buggy`): `dW2 = 1. / m * np.dot(dZ2, A1.T) * 2`, db1 at "
            "reference/seed_numpy.py:120") in xml
    assert "the error enters at `db1`, reference/seed_numpy.py:120" in xml   # the table, in the text


# ------------------------------------------------------------------ planted bugs
def test_a_wrong_dz3_is_the_one_entry_point_and_six_blocks_follow_from_it():
    report = _check(backward_dz3_bug)
    assert report.flagged == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert report.entry_points == ("dZ3",)
    dz3 = report.intermediates[0]
    assert (dz3.key, dz3.verdict, dz3.factor) == ("dZ3", "wrong", None)
    assert dz3.source.text == "dZ3 = (A3 - Y) * A3 * (1 - A3)"
    assert dz3.source.line == _line_of(backward_dz3_bug, "dZ3 = (A3 - Y) * A3 * (1 - A3)")
    assert dz3.source.function == "backward_dz3_bug"
    for q in report.intermediates[1:]:
        assert q.verdict == "wrong" and q.follows_from == ("dZ3",), q.key
    text = str(report)
    assert text.splitlines()[0] == ("FLAGGED 6 of 6 block(s): W1, b1, W2, b2, W3, b3 — "
                                    "the error enters at dZ3")
    assert "  `dW1` follows from `dZ3`" in text.splitlines()
    assert text.count("the error enters at `") == 1


def test_a_wrong_da1_enters_at_da1_with_dz2_dw2_db2_right():
    report = _check(backward_da1_bug)
    assert report.flagged == ["W1", "b1"]
    assert report.convention == 3.0
    assert report.entry_points == ("dA1",)
    by_key = {q.key: q for q in report.intermediates}
    assert by_key["dA1"].factor == 6.0
    assert by_key["dA1"].source.text == "dA1 = np.dot(W2.T, dZ2) * 2"
    assert by_key["dA1"].source.line == _line_of(backward_da1_bug, "dA1 = np.dot(W2.T, dZ2) * 2")
    for key in ("dZ3", "dW3", "db3", "dA2", "dZ2", "dW2", "db2"):
        assert by_key[key].verdict == "right", key
    for key in ("dZ1", "dW1", "db1"):
        assert by_key[key].verdict == "wrong" and by_key[key].follows_from == ("dA1",), key


def test_a_correct_backward_has_no_entry_point_and_reports_the_convention():
    report = _check(seed.backward_propagation_n)
    assert report.ok and report.outcome == "agrees"
    assert report.entry_points == ()
    assert report.convention == 3.0
    assert all(q.verdict == "right" for q in report.intermediates)
    text = str(report)
    assert text.splitlines()[0] == "all 6 block(s) agree"
    assert "error enters" not in text
    assert "  intermediates are 3 × ∂J/∂Z (m = 3, the batch size: the seeds' convention)" in text.splitlines()


def test_centered_differences_alone_differentiate_the_taps():
    report = _check(seed.backward_propagation_n_buggy, oracles=("fd",))
    assert report.entry_points == ("dW2", "db1")
    assert report.localisation.references == ("fd",)
    assert report.convention == 3.0


# ------------------------------------------------------------------ the option, and failures
def test_locate_false_skips_and_a_grad_without_intermediates_is_not_located():
    report = _check(seed.backward_propagation_n_buggy, locate=False)
    assert report.localisation is None and report.entry_points == () and report.intermediates == ()
    assert report.convention is None
    assert "localisation" not in report.to_dict()
    assert report.flagged == ["b1", "W2"]
    plain = crosscheck.check(seed.loss, lambda p, X, Y: {k: v for k, v in seed.grad(p, X, Y).items()
                                                         if k[1:] in p}, seed.parameters, seed.X, seed.Y,
                             oracles=("fd",))
    assert plain.localisation is None and not any("locate" in n for n in plain.notes)


def test_locate_true_without_intermediates_says_why():
    only_params = lambda p, X, Y: {k: v for k, v in seed.grad(p, X, Y).items() if k[1:] in p}  # noqa: E731
    report = crosscheck.check(seed.loss, only_params, seed.parameters, seed.X, seed.Y, oracles=("fd",),
                              locate=True)
    assert report.localisation is None
    assert report.notes[-1] == (
        "nothing to locate: `grad` returned no gradient of an intermediate besides the parameters' "
        "(a key `dX` for an intermediate `X` of the forward, as the seeds' `dZ1`) and the forward "
        "calls no `crosscheck.tap`; return the intermediates' gradients from `grad` to see where an "
        "error enters.")


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_a_bad_locate_value_is_refused_at_the_door(value):
    with pytest.raises(CheckError, match=r"`locate` must be \"auto\", True or False, got "):
        crosscheck.check(seed.loss, seed.grad, seed.parameters, seed.X, seed.Y, oracles=("fd",),
                         locate=value)


def test_a_failing_localisation_is_a_note_and_the_blocks_stand():
    def grad(p, X, Y):
        out = seed.grad_buggy(p, X, Y)
        out["dZ2"] = out["dZ2"][:, :2]       # the wrong shape for Z2
        return out

    report = crosscheck.check(seed.loss, grad, seed.parameters, seed.X, seed.Y, oracles=("fd",))
    assert report.flagged == ["b1", "W2"]
    assert report.localisation is None
    assert report.notes[-1] == ("could not locate: `grad` returned shape (3, 2) for `dZ2`, whose "
                                "intermediate `Z2` has shape (3, 3); return an array of that shape.")


# ------------------------------------------------------------------ the command line
def test_the_cli_reports_where_the_error_enters_in_seed_net():
    proc = subprocess.run([sys.executable, "-m", "crosscheck", "check", "reference/seed_net.py:buggy",
                           "--oracles", "fd,torch"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.endswith("FLAGGED 2 of 6 block(s): b1, W2 — the error enters at dW2, db1")
               for line in lines), proc.stdout
    assert any(line.startswith("  the error enters at `dW2`, reference/seed_net.py:")
               and line.endswith("`dW2 = 1.0 / m * np.dot(dZ2, A1.T) * 2  # BUG: stray factor 2`")
               for line in lines), proc.stdout


# -- a common factor that is a bug, and a wrong intermediate nothing uses


def test_a_factor_every_intermediate_inherits_from_an_early_bug_is_no_convention():
    """``dZ3 = 2 * (A3 - Y)``: every intermediate is 6 × ∂J/∂Z (2m), every parameter ×2.
    The common factor is the bug, not a convention: one entry point, ``dZ3``."""
    report = _check(backward_dz3_doubled)
    assert report.flagged == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert report.entry_points == ("dZ3",)
    assert report.convention is None
    assert {q.key: q.follows_from for q in report.intermediates if q.key != "dZ3"} == \
        {k: ("dZ3",) for k in ORDER if k != "dZ3"}
    assert report.localisation.notes == (
        "the intermediates share a factor 6 × ∂J/∂Z, but no parameter's gradient computed from "
        "them is right and 6 is neither 1 nor the batch size: no convention; they are judged "
        "as ∂J/∂Z × m (m = 3)",)


def test_a_wrong_intermediate_no_parameter_depends_on_is_a_note_not_an_entry_point():
    report = _check(backward_returns_a_wrong_unused_da1)
    assert report.outcome == "agrees" and report.entry_points == ()
    assert str(report).splitlines()[0] == "all 6 block(s) agree"
    assert [q.key for q in report.intermediates if q.verdict == "wrong"] == ["dA1"]
    assert report.localisation.notes == (
        "`dA1` as `grad` returns it disagrees with the references, but no parameter's gradient "
        "is wrong through it: a value the backward returns without using it?",)
