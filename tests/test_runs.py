"""Suites from pyproject.toml, run documents, and two runs compared (crosscheck._runs)."""

from __future__ import annotations

import json
import sys

import pytest

from conftest import run_python
from crosscheck import CheckError
from crosscheck._render_comparison import render_comparison
from crosscheck._run_comparison import compare_runs
from crosscheck._run_file import (SCHEMA, Outcome, as_outcomes, metadata, read_run, run_document,
                                  summary)
from crosscheck._suite import Suite, load_suite


def _pyproject(tmp_path, body: str):
    path = tmp_path / "pyproject.toml"
    path.write_text(body)
    return path


# --------------------------------------------------------------------------- suites

def test_load_suite_reads_every_key(tmp_path):
    path = _pyproject(tmp_path, """
[project]
name = "x"
[tool.crosscheck]
cases = ["reference/seed_net.py:correct", "reference/seed_net.py:buggy"]
oracles = ["fd", "torch", "fd"]
seed = 3
tolerances = {fd_safety = 8.0}
""")
    suite = load_suite(path)
    assert suite.cases == ["reference/seed_net.py:correct", "reference/seed_net.py:buggy"]
    assert suite.oracles == ["fd", "torch"]
    assert suite.seed == 3
    assert suite.tolerances == {"fd_safety": 8.0}
    assert suite.base == tmp_path
    assert suite.to_dict()["config"] == str(path)


def test_load_suite_accepts_oracles_as_a_comma_string(tmp_path):
    suite = load_suite(_pyproject(tmp_path, '[tool.crosscheck]\noracles = "fd, jax"\n'))
    assert suite.oracles == ["fd", "jax"] and suite.cases == []


def test_load_suite_without_the_table_is_empty(tmp_path):
    suite = load_suite(_pyproject(tmp_path, '[project]\nname = "x"\n'))
    assert suite.cases == [] and suite.oracles is None and suite.seed is None


@pytest.mark.parametrize("body, match", [
    ('[tool.crosscheck]\ncases = "a.py:x"\n', r"`cases` must be a list of targets"),
    ('[tool.crosscheck]\ncases = ["a.py:x", 3]\n', r"`cases` must be a list of targets"),
    ('[tool.crosscheck]\ncase = ["a.py:x"]\n', r"unknown key\(s\) `case`; known keys: cases"),
    ('[tool.crosscheck]\noracles = ["fd", "tensorflow"]\n',
     r"`oracles` must be a non-empty list among fd, jax, torch"),
    ('[tool.crosscheck]\noracles = []\n', r"`oracles` must be a non-empty list"),
    ('[tool.crosscheck]\nseed = -1\n', r"`seed` must be a non-negative integer, got -1"),
    ('[tool.crosscheck]\nseed = true\n', r"`seed` must be a non-negative integer, got True"),
    ('[tool.crosscheck]\ntolerances = 3\n', r"`tolerances` must be a table"),
    ('[tool.crosscheck]\ntolerances = {fd_safty = 1.0}\n', r"unknown tolerance `fd_safty`"),
    ('[tool.crosscheck]\ntolerances = {fd_safety = -1.0}\n',
     r"tolerance `fd_safety` must be a non-negative number"),
    ('[tool]\ncrosscheck = 3\n', r"`\[tool.crosscheck\]` in `.*` must be a table"),
    ('[tool.crosscheck\n', r"is not valid TOML"),
])
def test_load_suite_rejects_malformed_tables(tmp_path, body, match):
    with pytest.raises(CheckError, match=match):
        load_suite(_pyproject(tmp_path, body))


def test_load_suite_missing_file(tmp_path):
    with pytest.raises(CheckError, match=r"cannot read `.*nope.toml`"):
        load_suite(tmp_path / "nope.toml")


def test_load_suite_without_tomllib_or_tomli(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tomllib", None)
    monkeypatch.setitem(sys.modules, "tomli", None)
    with pytest.raises(CheckError, match=r"needs Python 3.11 or later, or the `tomli` package"):
        load_suite(_pyproject(tmp_path, "[tool.crosscheck]\n"))


# --------------------------------------------------------------------------- one run

def test_outcomes_summary_and_document(reports):
    correct = reports.get("seed_net", "correct", oracles=("fd",))
    buggy = reports.get("seed_net", "buggy", oracles=("fd",))
    outcomes = [*as_outcomes([correct, buggy]), Outcome("nope.py:x", None, "no file", 0.1)]
    assert [o.status for o in outcomes] == ["ok", "flagged", "error"]
    assert [o.outcome for o in outcomes] == ["agrees", "flagged", "could not check"]
    assert [o.label for o in outcomes] == ["seed_net/correct", "seed_net/buggy", "nope.py:x"]
    assert outcomes[2].source == "nope.py"
    target, report, error = outcomes[2]
    assert (target, report, error) == ("nope.py:x", None, "no file")
    assert summary(outcomes) == ("3 case(s): 1 agree, 1 flagged (seed_net/buggy), "
                                 "1 could not be checked (nope.py:x)")
    doc = run_document(outcomes, "crosscheck run", Suite(cases=["a.py:x"]))
    assert doc["schema"] == SCHEMA
    assert doc["reports"][0]["schema"] == "crosscheck.report/1"
    assert doc["reports"][1]["flagged"] == ["b1", "W2"]
    assert doc["reports"][2] == {"case": "nope.py:x", "outcome": "could not check",
                                 "error": "no file"}
    assert doc["reports"][0]["outcome"] == "agrees" and doc["reports"][1]["outcome"] == "flagged"
    assert doc["outcomes"] == {"agrees": 1, "flagged": 1, "inconclusive": 0,
                               "could not check": 1}
    assert doc["suite"]["cases"] == ["a.py:x"]
    json.dumps(doc)   # JSON-ready


def test_metadata_has_versions_time_host_and_command():
    meta = metadata("crosscheck run --json r.json")
    assert set(meta["versions"]) >= {"python", "numpy", "jax", "torch", "crosscheck"}
    assert meta["versions"]["crosscheck"] and meta["versions"]["numpy"]
    assert meta["time"].endswith("+00:00") and meta["host"] is not None
    assert meta["command"] == "crosscheck run --json r.json"


def test_metadata_imports_no_framework():
    result = run_python(
        "import sys, crosscheck\n"
        "from crosscheck._run_file import metadata\n"
        "metadata('x')\n"
        "assert not {'jax', 'torch', 'matplotlib'} & set(sys.modules), "
        "{'jax', 'torch', 'matplotlib'} & set(sys.modules)\n")
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- two runs

def _report(case, flagged=(), diagnoses=None, seconds=None):
    diagnoses = diagnoses or {}
    blocks = {b: {"verdict": "wrong" if b in flagged else "ok",
                  "diagnosis": diagnoses.get(b)} for b in ("W1", "b1", "W2")}
    oracles = {name: {"version": "v", "seconds": s} for name, s in (seconds or {}).items()}
    return {"schema": "crosscheck.report/1", "case": case, "ok": not flagged,
            "flagged": list(flagged), "blocks": blocks, "oracles": oracles}


def _scale(factor):
    return {"kind": "scale", "factor": factor, "text": f"× {factor}"}


def test_read_run_accepts_runs_and_check_outputs(tmp_path):
    one = _report("a/x")
    (tmp_path / "run.json").write_text(json.dumps({"schema": SCHEMA, "metadata": {},
                                                   "reports": [one]}))
    (tmp_path / "one.json").write_text(json.dumps(one))
    (tmp_path / "list.json").write_text(json.dumps([one, {"schema": "crosscheck.report/1",
                                                          "case": "b/y", "error": "boom"}]))
    assert read_run(tmp_path / "run.json") == [one]
    assert read_run(tmp_path / "one.json") == [one]
    assert [r["case"] for r in read_run(tmp_path / "list.json")] == ["a/x", "b/y"]


@pytest.mark.parametrize("text, match", [
    ("{not json", r"is not JSON .*; pass a file written by `crosscheck run --json`"),
    ('{"schema": "other/1"}', r"holds no crosscheck run or reports"),
    ('[1, 2]', r"holds no crosscheck run or reports"),
    ('{"schema": "crosscheck.run/1", "reports": 3}', r"holds no crosscheck run or reports"),
])
def test_read_run_rejects_other_files(tmp_path, text, match):
    (tmp_path / "x.json").write_text(text)
    with pytest.raises(CheckError, match=match):
        read_run(tmp_path / "x.json")
    with pytest.raises(CheckError, match=r"cannot read `.*missing.json`"):
        read_run(tmp_path / "missing.json")


def test_compare_finds_new_failures_fixes_and_case_changes():
    old = [_report("a/ok"), _report("a/fixed", ["W1"], {"W1": _scale(2.0)}),
           _report("a/gone"), {"case": "a/broken", "error": "boom"}]
    new = [_report("a/ok", ["b1"], {"b1": _scale(4.0)}), _report("a/fixed"),
           _report("a/new", ["W2"]), {"case": "a/broken", "error": "boom again"},
           {"case": "a/crash", "error": "ImportError: x"}]
    cmp = compare_runs(old, new)
    assert cmp.failed
    assert [f["case"] for f in cmp.new_failures] == ["a/ok", "a/new", "a/crash"]
    assert cmp.new_failures[0]["before"] == "agrees"
    assert cmp.new_failures[1]["before"] == "absent"
    assert cmp.new_failures[2]["now"] == "could not be checked: ImportError: x"
    assert [f["case"] for f in cmp.fixed] == ["a/fixed"]
    assert cmp.still_failing == ["a/broken"]
    assert [a["case"] for a in cmp.added] == ["a/new", "a/crash"]
    assert [r["case"] for r in cmp.removed] == ["a/gone"]
    text = render_comparison(cmp)
    assert text.splitlines()[0].startswith("crosscheck compare: 3 new failure(s) (a/ok, a/new, "
                                           "a/crash), 1 fixed")
    for word in ("NEW FAILURE  a/ok: flagged b1", "FIXED", "a/fixed", "REMOVED", "a/gone",
                 "ADDED"):
        assert word in text


def test_compare_changed_diagnosis_and_newly_wrong_blocks():
    old = [_report("c", ["W1"], {"W1": _scale(2.0)}), _report("d", ["W1"], {"W1": _scale(2.0)})]
    new = [_report("c", ["W1"], {"W1": _scale(4.0)}),
           _report("d", ["W1", "W2"], {"W1": {"kind": "sign", "factor": -1.0},
                                       "W2": _scale(3.0)})]
    cmp = compare_runs(old, new)
    assert [(c["case"], c["block"], c["before"], c["now"]) for c in cmp.changed] == [
        ("c", "W1", "scale ×2", "scale ×4"), ("d", "W1", "scale ×2", "sign ×-1")]
    assert cmp.new_blocks == [{"case": "d", "blocks": ["W2"]}]
    assert cmp.failed and not cmp.new_failures
    assert "NEWLY WRONG  d: block(s) W2" in render_comparison(cmp)
    same = compare_runs(old, [_report("c", ["W1"], {"W1": _scale(2.0 + 1e-9)})])
    assert not same.changed and not same.failed


def test_compare_slower_oracles_with_thresholds():
    old = [_report("s", seconds={"fd": 0.2, "jax": 1.0, "torch": 0.01})]
    new = [_report("s", seconds={"fd": 0.6, "jax": 2.5, "torch": 0.4})]
    cmp = compare_runs(old, new)
    # fd: 3× but only +0.4 s; jax: 2.5× and +1.5 s; torch: 40× but +0.39 s
    assert [(s["oracle"], s["before"], s["now"]) for s in cmp.slower] == [("jax", 1.0, 2.5)]
    assert not cmp.failed
    assert "SLOWER       s: jax 1.000 s → 2.500 s (2.5×)" in render_comparison(cmp)
    loose = compare_runs(old, new, slower_ratio=2.0, slower_seconds=0.3)
    assert [s["oracle"] for s in loose.slower] == ["fd", "jax", "torch"]
    strict = compare_runs(old, new, slower_ratio=3.0)
    assert strict.slower == []


def test_compare_nothing_changed():
    runs = [_report("a"), _report("b", ["W1"], {"W1": _scale(2.0)})]
    cmp = compare_runs(runs, runs)
    assert not cmp.failed and cmp.still_failing == ["b"]
    assert render_comparison(cmp).endswith("  nothing changed")


def test_compare_real_reports(reports):
    correct = reports.get("seed_net", "correct", oracles=("fd",)).to_dict()
    buggy = reports.get("seed_net", "buggy", oracles=("fd",)).to_dict()
    cmp = compare_runs([correct], [correct, buggy])
    assert [f["case"] for f in cmp.new_failures] == ["seed_net/buggy"]
    assert cmp.new_failures[0]["now"] == "flagged b1, W2"


@pytest.mark.parametrize("text, want", [('"all"', "all"), ('"auto"', "auto"), ("16", 16)])
def test_suite_fd_key(tmp_path, text, want):
    path = tmp_path / "pyproject.toml"
    path.write_text(f'[tool.crosscheck]\ncases = ["m.py:c"]\nfd = {text}\n')
    assert load_suite(path).fd == want


@pytest.mark.parametrize("text", ['"some"', "0", "true", "2.5"])
def test_suite_fd_key_is_validated(tmp_path, text):
    path = tmp_path / "pyproject.toml"
    path.write_text(f'[tool.crosscheck]\ncases = ["m.py:c"]\nfd = {text}\n')
    with pytest.raises(CheckError, match=r"`fd` must be \"auto\", \"all\" or a positive integer"):
        load_suite(path)
