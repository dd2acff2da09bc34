"""The pytest plugin end to end, with ``pytester``: ``assert_gradients`` in a user's test
file, and ``--crosscheck-report DIR``."""

from __future__ import annotations

import html
import json
from pathlib import Path
from types import SimpleNamespace

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
                                 "run.json): 1 agrees, 1 flagged"])
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


def test_a_failure_shows_the_test_line_and_the_table_not_the_helper(seed_tests):
    result = seed_tests.runpytest("-p", "no:cacheprovider", "-k", "buggy")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines([
        "    def test_buggy():",
        "        c = seed_net.buggy",
        '>       assert_gradients(c.loss, c.grad, c.params, *c.args, oracles=("fd",), '
        'case="seed/buggy")',
        "E       AssertionError: hand-written gradient is wrong in block(s) b1, W2",
        "E       seed/buggy: FLAGGED 2 of 6 block(s): b1, W2*",
        "E         b1: hand = 4.000 × reference (fd) on all 5 elements of `b1`*",
        "E         W2: hand = 2.000 × reference (fd) on all 15 elements of `W2`*",
        "test_seed.py:12: AssertionError",
    ])
    out = result.stdout.str()
    helper = Path(testing.__file__)
    for line in helper.read_text(encoding="utf-8").splitlines():
        if len(line.strip()) > 20:               # every line of substance of testing.py
            assert line.strip() not in out, line
    assert helper.name not in out                # no `.../testing.py:NN` location either
    for argument in ("loss = <function", "params = {", "args = (", "options = {"):
        assert argument not in out


EXPECTING = """
import numpy as np
import pytest
import seed_net
from crosscheck.testing import assert_gradients


def check(c, **options):
    assert_gradients(c.loss, c.grad, c.params, *c.args, oracles=("fd",), **options)


def test_correct():
    check(seed_net.correct)


def test_catches_the_planted_bug():
    with pytest.raises(AssertionError, match="wrong in block"):
        check(seed_net.buggy)


@pytest.mark.xfail(reason="a known bug", strict=True)
def test_known_bug():
    check(seed_net.buggy)


def test_buggy():
    check(seed_net.buggy)


def test_catches_the_bug_then_fails_otherwise():
    with pytest.raises(AssertionError, match="wrong in block"):
        check(seed_net.buggy)
    assert False, "something else"


def _float32(p, X):
    Z = p["W"].astype(np.float32) @ X.astype(np.float32)
    return float(np.sum(np.tanh(Z) ** 2))


def _float32_grad(p, X):
    H = np.tanh(p["W"] @ X)
    return {"W": (2 * H * (1 - H ** 2)) @ X.T}


def _float32_model():
    rng = np.random.default_rng(0)
    return {"W": rng.standard_normal((3, 4))}, rng.standard_normal((4, 5))


def test_float32_accepted():
    params, X = _float32_model()
    assert_gradients(_float32, _float32_grad, params, X, oracles=("fd",),
                     allow_inconclusive=True)


def test_float32_unproven():
    params, X = _float32_model()
    assert_gradients(_float32, _float32_grad, params, X, oracles=("fd",))
"""


def test_report_dir_counts_a_flag_its_test_expected_apart_from_a_failure(pytester):
    pytester.makepyfile(seed_net=SEED_NET.read_text(), test_expecting=EXPECTING)
    result = pytester.runpytest("-p", "no:cacheprovider", "--crosscheck-report", "r")
    result.assert_outcomes(passed=3, failed=3, xfailed=1)
    result.stdout.fnmatch_lines([
        "E       AssertionError: something else",
        "E       AssertionError: crosscheck could not vouch for the hand-written gradient in "
        "block(s) W: no block is flagged, *",
        "FAILED test_expecting.py::test_buggy - *",
        "FAILED test_expecting.py::test_catches_the_bug_then_fails_otherwise - *",
        "FAILED test_expecting.py::test_float32_unproven - *",
    ])
    result.stdout.fnmatch_lines([
        "crosscheck: saved 7 report(s) in *r (index.html, run.json): 1 agrees, 2 inconclusive, "
        "2 flagged, 2 flagged as expected",
    ])


def test_the_status_of_a_report():
    from crosscheck._pytest_plugin import status

    def report(flagged=(), inconclusive=()):
        # the attributes a status is read from, `outcome` as the core Report derives it
        outcome = "flagged" if flagged else "inconclusive" if inconclusive else "agrees"
        return SimpleNamespace(flagged=list(flagged), inconclusive=list(inconclusive),
                               outcome=outcome)

    assert status(report(), expected=False) == "agrees"
    assert status(report(inconclusive=["W"]), expected=True) == "inconclusive"
    assert status(report(flagged=["b1"]), expected=False) == "flagged"
    assert status(report(flagged=["b1"], inconclusive=["W"]), expected=True) == \
        "flagged as expected"
    old = SimpleNamespace(flagged=[], inconclusive=["W"])     # a Report without `outcome`
    assert status(old, expected=False) == "inconclusive"


XDIST_WORKER = """
import json
import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    # what pytest-xdist sets on a worker's config before configuring it
    config.workerinput = {"workerid": "gw3"}
    config.workeroutput = {}


def pytest_unconfigure(config):
    (config.rootpath / "workeroutput.json").write_text(json.dumps(config.workeroutput))
"""


def test_an_xdist_worker_saves_into_its_own_folder_and_tells_the_controller(seed_tests):
    seed_tests.makeconftest(XDIST_WORKER)
    result = seed_tests.runpytest("-p", "no:cacheprovider", "--crosscheck-report", "r")
    result.assert_outcomes(passed=1, failed=1)
    out = seed_tests.path / "r"
    assert sorted(p.name for p in out.iterdir()) == ["gw3"]   # nothing a sibling overwrites
    assert sorted(p.name for p in (out / "gw3").iterdir()) == [
        "index.html", "run.json", "test_seed.py_test_buggy.html", "test_seed.py_test_buggy.json",
        "test_seed.py_test_correct.html", "test_seed.py_test_correct.json"]
    sent = json.loads((seed_tests.path / "workeroutput.json").read_text())
    assert sent == {"crosscheck_report": {"directory": str(out / "gw3"), "saved": 2,
                                          "counts": "1 agrees, 1 flagged"}}


def test_under_xdist_every_worker_keeps_its_reports(seed_tests):
    pytest.importorskip("xdist")
    result = seed_tests.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2",
                                             "--crosscheck-report", "r")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["crosscheck: a pytest-xdist worker saved * report(s) in "
                                 "*gw* (index.html, run.json): *"])
    out = seed_tests.path / "r"
    assert not (out / "index.html").exists()          # the controller runs no test
    tests = sorted(r["test"] for run in out.glob("gw*/run.json") for r in read_run(run))
    assert tests == ["test_seed.py::test_buggy", "test_seed.py::test_correct"]


COLLIDING = """
import pytest
import seed_net
from crosscheck.testing import assert_gradients


def check(c, case=None):
    assert_gradients(c.loss, c.grad, c.params, *c.args, oracles=("fd",), case=case)


def test_twice():
    check(seed_net.correct, "first")
    check(seed_net.correct, "second")


@pytest.mark.parametrize("v", ["x/y", "x_y", "x_y-2", "X_Y"])
def test_a(v):
    check(seed_net.correct)


def test_catches_the_planted_bug():
    with pytest.raises(AssertionError):
        check(seed_net.buggy, "seed/buggy")
"""


def test_report_dir_gives_every_report_its_own_files_named_in_its_heading(pytester):
    pytester.makepyfile(seed_net=SEED_NET.read_text(), test_colliding=COLLIDING)
    result = pytester.runpytest("-p", "no:cacheprovider", "--crosscheck-report", "r")
    result.assert_outcomes(passed=6)
    out = pytester.path / "r"
    stem = "test_colliding.py_test_"
    files = {p.name: json.loads(p.read_text())["test"] for p in out.glob("*.json")
             if p.name != "run.json"}
    ids = ["test_twice", "test_twice", "test_a[x/y]", "test_a[x_y]", "test_a[x_y-2]",
           "test_a[X_Y]", "test_catches_the_planted_bug"]
    ids = [f"test_colliding.py::{i}" for i in ids]
    # two reports of one test, ids that slug alike, a slug that looks numbered, and names
    # that differ in case only (one file on macOS and Windows): none overwrites another
    assert files == {f"{stem}twice.json": ids[0], f"{stem}twice-2.json": ids[1],
                     f"{stem}a_x_y.json": ids[2], f"{stem}a_x_y-2.json": ids[3],
                     f"{stem}a_x_y-2-2.json": ids[4], f"{stem}a_X_Y-3.json": ids[5],
                     f"{stem}catches_the_planted_bug.json": ids[6]}
    assert all((out / name.replace(".json", ".html")).exists() for name in files)
    assert [r["test"] for r in read_run(out / "run.json")] == ids
    index = (out / "index.html").read_text()
    assert index.count("<h2 ") == 7
    assert ('<h2 class="ok"><code>test_colliding.py::test_twice</code> first: all 6 block(s) '
            'agree') in index
    assert ('<h2 class="ok"><code>test_colliding.py::test_twice</code> second: all 6 '
            'block(s) agree') in index
    for test_id in ids[2:6]:
        assert f'<h2 class="ok"><code>{html.escape(test_id)}</code> all 6 block(s)' in index
    assert ('<h2 class="wrong"><code>test_colliding.py::test_catches_the_planted_bug</code> '
            'seed/buggy: FLAGGED 2 of 6 block(s): b1, W2') in index
    assert ('<td class="expected">flagged as expected</td><td>b1, W2</td>') in index
    assert ("7 case(s): 6 agree, 1 flagged as expected "
            "(test_colliding.py::test_catches_the_planted_bug)") in index
    result.stdout.fnmatch_lines(["crosscheck: saved 7 report(s) in *r (index.html, "
                                 "run.json): 6 agree, 1 flagged as expected"])
