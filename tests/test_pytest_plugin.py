"""The pytest plugin end to end, with ``pytester``: ``assert_gradients`` in a user's test
file, and ``--crosscheck-report DIR``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crosscheck import testing
from crosscheck._run_comparison import compare_runs
from crosscheck._run_file import read_run

pytest_plugins = ["pytester"]

SEED_NET = Path(__file__).resolve().parents[1] / "reference" / "seed_net.py"
TESTS = """
import seed_net
from crosscheck.testing import assert_gradients


def test_correct():
    c = seed_net.correct
    assert_gradients(c.loss, c.grad, c.params, *c.args, oracles=("fd",), case="seed/correct")


def test_buggy():
    c = seed_net.buggy
    assert_gradients(c.loss, c.grad, c.params, *c.args, oracles=("fd",), case="seed/buggy")
"""


@pytest.fixture(autouse=True)
def _warm(reports):
    """pytester unloads what an in-process run imported, and numpy's extension modules cannot
    be loaded twice: check and render once here, so the inner runs import nothing new."""
    from crosscheck._render_html import render_page
    render_page([reports.get("seed_net", "buggy", oracles=("fd",))])


@pytest.fixture
def seed_tests(pytester):
    pytester.makepyfile(seed_net=SEED_NET.read_text(), test_seed=TESTS)
    return pytester


def test_assert_gradients_passes_correct_and_fails_buggy_naming_blocks(seed_tests):
    result = seed_tests.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*AssertionError: hand-written gradient is wrong in block(s) b1, W2*",
        "*seed/buggy: FLAGGED 2 of 6 block(s): b1, W2*",
        "*b1: hand = 4.000 × reference (fd)*",
        "*W2: hand = 2.000 × reference (fd)*",
        "FAILED test_seed.py::test_buggy*",
    ])
    assert "test_correct FAILED" not in result.stdout.str()
    assert not (seed_tests.path / "reports").exists()


def test_report_dir_saves_json_and_html_per_assertion(seed_tests):
    result = seed_tests.runpytest("-p", "no:cacheprovider", "--crosscheck-report", "reports")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["crosscheck: saved 2 report(s) in *reports (index.html, "
                                 "run.json)"])
    out = seed_tests.path / "reports"
    names = sorted(p.name for p in out.iterdir())
    assert names == ["index.html", "run.json", "test_seed.py_test_buggy.html",
                     "test_seed.py_test_buggy.json", "test_seed.py_test_correct.html",
                     "test_seed.py_test_correct.json"]
    buggy = json.loads((out / "test_seed.py_test_buggy.json").read_text())
    assert buggy["test"] == "test_seed.py::test_buggy" and buggy["flagged"] == ["b1", "W2"]
    assert buggy["schema"] == "crosscheck.report/1"
    html = (out / "test_seed.py_test_buggy.html").read_text()
    assert "W2" in html and "b1" in html and "<script" not in html
    index = (out / "index.html").read_text()
    assert "test_seed.py::test_correct" in index and "test_seed.py::test_buggy" in index
    run = read_run(out / "run.json")
    assert [r["test"] for r in run] == ["test_seed.py::test_correct", "test_seed.py::test_buggy"]
    cmp = compare_runs(run[:1], run)
    assert [f["case"] for f in cmp.new_failures] == ["seed/buggy"]


def test_runs_do_not_leak_into_each_other(seed_tests, request):
    recorders = list(testing._RECORDERS)
    first = seed_tests.runpytest("-p", "no:cacheprovider", "--crosscheck-report", "one",
                                 "-k", "buggy")
    first.assert_outcomes(failed=1, deselected=1)
    second = seed_tests.runpytest("-p", "no:cacheprovider", "--crosscheck-report", "two",
                                  "-k", "correct")
    second.assert_outcomes(passed=1, deselected=1)
    assert testing._RECORDERS == recorders          # every run removed its recorder
    two = sorted(p.name for p in (seed_tests.path / "two").iterdir())
    assert two == ["index.html", "run.json", "test_seed.py_test_correct.html",
                   "test_seed.py_test_correct.json"]
    # this (outer) run keeps no report of the inner runs' assertions
    from crosscheck._pytest_plugin import _STATE
    assert request.config.stash[_STATE].pairs == []


def test_report_dir_without_assertions_writes_an_empty_index(pytester):
    pytester.makepyfile(test_plain="def test_nothing():\n    assert True\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--crosscheck-report", "r")
    result.assert_outcomes(passed=1)
    doc = json.loads((pytester.path / "r" / "run.json").read_text())
    assert doc["schema"] == "crosscheck.run/1" and doc["reports"] == []
    assert "0 case(s)" in (pytester.path / "r" / "index.html").read_text()


def test_option_is_in_help(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--crosscheck-report=DIR*"])
