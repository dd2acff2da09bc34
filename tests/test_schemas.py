"""The published JSON formats against their shipped schemas (crosscheck/schemas/*.json):
real reports, real ``check --json`` output, real run files (``crosscheck run --json`` and the
pytest plugin's ``run.json``), and documents with one key misspelled or mistyped."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import load_reference, tanh_grad, tanh_loss, tanh_model

jsonschema = pytest.importorskip("jsonschema")

from crosscheck._schemas import FILES, TAGS, schema, validator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SUITE = """\
[project]
name = "scratch"

[tool.crosscheck]
cases = ["reference/seed_net.py:correct", "reference/seed_net.py:buggy",
         "models/cases.py:broken", "models/missing.py:x"]
oracles = ["fd"]
seed = 3
fd = "auto"
tolerances = {fd_safety = 8.0}
"""
CASES = """\
import numpy as np
from crosscheck import Case

def crash(p):
    raise RuntimeError("boom")

broken = Case("broken", crash, lambda p: {"w": 2 * p["w"]}, {"w": np.array([1.0, 2.0])})
"""
PLUGIN_TESTS = """\
import seed_net
from crosscheck.testing import assert_gradients


def test_correct():
    c = seed_net.correct
    assert_gradients(c.loss, c.grad, c.params, *c.args, oracles=("fd",), case="seed/correct")


def test_buggy():
    c = seed_net.buggy
    assert_gradients(c.loss, c.grad, c.params, *c.args, oracles=("fd",), case="seed/buggy")
"""


def _env() -> dict:
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    return env


def _cli(args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crosscheck", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=600, env=_env())


def _json(value):
    """Through the JSON text, as a reader of the file would see it."""
    return json.loads(json.dumps(value))


def _errors(name: str, doc) -> list:
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator(name).iter_errors(doc)]


def assert_valid(name: str, doc) -> None:
    errors = _errors(name, doc)
    assert not errors, "\n".join(errors[:20])


# --------------------------------------------------------------------------- the schemas

@pytest.mark.parametrize("name", sorted(FILES))
def test_schema_files_are_valid_draft_2020_12(name):
    data = schema(name)
    jsonschema.Draft202012Validator.check_schema(data)
    assert data["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert data["$id"] == f"urn:crosscheck:schema:{name}"


def test_schema_by_document_tag_and_unknown_name():
    for tag, name in TAGS.items():
        assert schema(tag) == schema(name)
        assert schema(tag)["title"] == tag
    with pytest.raises(KeyError, match="report-1"):
        schema("report-2")


def test_schema_tags_match_what_the_library_writes():
    from crosscheck._report import SCHEMA
    assert schema("report-1")["$defs"]["report"]["properties"]["schema"]["const"] == SCHEMA
    assert schema("run-1")["properties"]["schema"]["const"] == "crosscheck.run/1"


# --------------------------------------------------------------------------- real reports

@pytest.mark.parametrize("case", ["correct", "buggy"])
def test_seed_net_reports_validate(reports, case):
    doc = _json(reports.get("seed_net", case).to_dict())
    assert_valid("report-1", doc)
    assert set(doc["oracles"]) == {"fd", "jax", "torch"}


def test_buggy_report_with_diagnoses_validates(reports):
    doc = _json(reports.get("seed_net", "buggy").to_dict())
    assert doc["blocks"]["b1"]["diagnosis"]["kind"] == "scale"   # the optional parts are there
    assert doc["blocks"]["W1"]["diagnosis"] is None
    assert_valid("report-1", doc)


def test_fd_only_report_validates(reports):
    doc = _json(reports.get("seed_net", "buggy", oracles=("fd",)).to_dict())
    assert doc["references"] == ["fd"] and "mode" not in doc["oracles"]["fd"]
    assert_valid("report-1", doc)


def test_report_with_a_failed_oracle_validates():
    pytest.importorskip("torch")
    import crosscheck

    def broken(p, X, y):
        raise ZeroDivisionError("division by zero in the custom op")

    params, X, y = tanh_model()
    report = crosscheck.check({"numpy": tanh_loss, "torch": broken}, tanh_grad, params, X, y,
                              oracles=("fd", "torch"), case="tanh/torch-fails")
    doc = _json(report.to_dict())
    assert "ZeroDivisionError" in doc["oracles"]["torch"]["error"]
    assert doc["references"] == ["fd"]
    assert all(b["difference"]["torch"] is None for b in doc["blocks"].values())
    assert_valid("report-1", doc)


def test_nonfinite_and_zero_diagnoses_validate():
    import crosscheck

    params, X, y = tanh_model()

    def nan_w(p, X, y):
        return {**tanh_grad(p, X, y), "W": np.full_like(p["W"], np.nan)}

    def zero_b(p, X, y):
        return {**tanh_grad(p, X, y), "b": np.zeros_like(p["b"])}

    for grad, kind in ((nan_w, "nonfinite"), (zero_b, "zero")):
        doc = _json(crosscheck.check(tanh_loss, grad, params, X, y, oracles=("fd",)).to_dict())
        kinds = [b["diagnosis"]["kind"] for b in doc["blocks"].values() if b["diagnosis"]]
        assert kinds == [kind]
        assert_valid("report-1", doc)


@pytest.mark.parametrize("name", ["affine/buggy", "batchnorm/correct"])
def test_check_layer_report_validates(name):
    layers = load_reference("layers")
    case = next(c for c in layers.layer_cases() if c.name == name)
    report = case.check()
    assert report.case == f"layers/{name}"
    assert_valid("report-1", _json(report.to_dict()))


# --------------------------------------------------------------------------- the command line

def test_cli_check_json_validates(tmp_path):
    out = tmp_path / "out.json"
    proc = _cli(["check", "reference/seed_net.py:buggy", "--json", str(out)], ROOT)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["flagged"] == ["b1", "W2"]
    assert_valid("report-1", doc)


def test_cli_check_json_of_a_case_that_could_not_be_checked_validates(tmp_path):
    out = tmp_path / "out.json"
    proc = _cli(["check", "reference/no_such_model.py:x", "--json", str(out)], ROOT)
    assert proc.returncode == 2, proc.stderr
    doc = json.loads(out.read_text())
    assert set(doc) >= {"case", "error"}
    assert_valid("report-1", doc)


@pytest.fixture(scope="module")
def run_file(tmp_path_factory):
    """``crosscheck run --json`` over a suite: two seed_net cases, a crash, a missing file."""
    root = tmp_path_factory.mktemp("suite")
    (root / "reference").mkdir()
    shutil.copy(ROOT / "reference" / "seed_net.py", root / "reference" / "seed_net.py")
    (root / "models").mkdir()
    (root / "models" / "cases.py").write_text(CASES)
    (root / "pyproject.toml").write_text(SUITE)
    proc = _cli(["run", "--json", "run.json", "--quiet"], root)
    assert proc.returncode == 2, proc.stderr   # two cases could not be checked
    return json.loads((root / "run.json").read_text())


def test_cli_run_file_validates(run_file):
    assert run_file["schema"] == "crosscheck.run/1"
    assert [("error" in r) for r in run_file["reports"]] == [False, False, True, True]
    assert [r["outcome"] for r in run_file["reports"]] == [
        "agrees", "flagged", "could not check", "could not check"]
    assert run_file["outcomes"] == {"agrees": 1, "flagged": 1, "inconclusive": 0,
                                    "could not check": 2}
    assert run_file["suite"]["oracles"] == ["fd"] and run_file["suite"]["fd"] == "auto"
    assert_valid("run-1", run_file)
    for entry in run_file["reports"]:
        assert_valid("report-1", entry)


def test_pytest_plugin_run_json_and_report_files_validate(tmp_path):
    shutil.copy(ROOT / "reference" / "seed_net.py", tmp_path / "seed_net.py")
    (tmp_path / "test_seed.py").write_text(PLUGIN_TESTS)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         "--crosscheck-report", "reports", "test_seed.py"],
        cwd=tmp_path, text=True, capture_output=True, timeout=600, env=_env())
    assert proc.returncode == 1, proc.stdout + proc.stderr   # test_buggy fails
    out = tmp_path / "reports"
    run = json.loads((out / "run.json").read_text())
    assert [r["test"] for r in run["reports"]] == ["test_seed.py::test_correct",
                                                   "test_seed.py::test_buggy"]
    assert "suite" not in run
    assert_valid("run-1", run)
    for path in sorted(out.glob("test_seed.py_*.json")):
        doc = json.loads(path.read_text())
        assert doc["test"].startswith("test_seed.py::")
        assert_valid("report-1", doc)


# --------------------------------------------------------------------------- what must fail

def _rename(doc: dict, old: str, new: str) -> None:
    doc[new] = doc.pop(old)


REPORT_BREAKAGES = {
    "misspelled top-level key": lambda d: _rename(d, "flagged", "flaged"),
    "missing top-level key": lambda d: d.pop("references"),
    "unknown top-level key": lambda d: d.update(verdict="wrong"),
    "ok as a string": lambda d: d.update(ok="false"),
    "wrong schema tag": lambda d: d.update(schema="crosscheck.report/2"),
    "misspelled block key": lambda d: _rename(d["blocks"]["b1"], "noise_ratio", "noise_ration"),
    "unknown verdict": lambda d: d["blocks"]["b1"].update(verdict="okay"),
    "shape as a string": lambda d: d["blocks"]["b1"].update(shape="5x1"),
    "difference as a string": lambda d: d["blocks"]["b1"]["difference"].update(fd="0.6"),
    "misspelled diagnosis key": lambda d: _rename(d["blocks"]["b1"]["diagnosis"], "factor",
                                                  "factr"),
    "unknown diagnosis kind": lambda d: d["blocks"]["b1"]["diagnosis"].update(kind="scaled"),
    "taylor order as a string": lambda d: d["blocks"]["b1"]["taylor"].update(order="1"),
    "misspelled coverage key": lambda d: _rename(d["blocks"]["b1"]["coverage"]["fd"],
                                                 "elements", "element"),
    "misspelled oracle key": lambda d: _rename(d["oracles"]["jax"], "seconds", "second"),
    "oracle seconds as a string": lambda d: d["oracles"]["torch"].update(seconds="0.1"),
    "unknown oracle mode": lambda d: d["oracles"]["jax"].update(mode="JIT"),
    "misspelled option": lambda d: _rename(d["options"], "taylor", "tailor"),
    "misspelled tolerance": lambda d: _rename(d["tolerances"], "fd_safety", "fd_safty"),
    "forward without numpy": lambda d: d["forward"].pop("numpy"),
    "unknown outcome": lambda d: d.update(outcome="ok"),
    "outcome agrees with a flagged block": lambda d: d.update(outcome="agrees"),
    "outcome inconclusive with a flagged block": lambda d: d.update(outcome="inconclusive"),
}


@pytest.mark.parametrize("breakage", sorted(REPORT_BREAKAGES))
def test_a_broken_report_fails_validation(reports, breakage):
    doc = _json(reports.get("seed_net", "buggy").to_dict())
    assert_valid("report-1", doc)
    REPORT_BREAKAGES[breakage](doc)
    assert _errors("report-1", doc), f"{breakage} was accepted"


RUN_BREAKAGES = {
    "misspelled metadata key": lambda d: _rename(d["metadata"], "versions", "version"),
    "command as a list": lambda d: d["metadata"].update(command=["crosscheck", "run"]),
    "misspelled suite key": lambda d: _rename(d["suite"], "cases", "case"),
    "fd of zero": lambda d: d["suite"].update(fd=0),
    "reports as an object": lambda d: d.update(reports={}),
    "misspelled key in a report": lambda d: _rename(d["reports"][1], "blocks", "block"),
    "misspelled key in an error entry": lambda d: _rename(d["reports"][2], "error", "err"),
    "error entry without case": lambda d: d["reports"][3].pop("case"),
    "error entry with a report's outcome": lambda d: d["reports"][2].update(outcome="flagged"),
    "outcomes without a count": lambda d: d["outcomes"].pop("inconclusive"),
    "outcomes with a misspelled key": lambda d: _rename(d["outcomes"], "agrees", "agree"),
    "a negative count": lambda d: d["outcomes"].update(flagged=-1),
}


@pytest.mark.parametrize("breakage", sorted(RUN_BREAKAGES))
def test_a_broken_run_file_fails_validation(run_file, breakage):
    doc = copy.deepcopy(run_file)
    RUN_BREAKAGES[breakage](doc)
    assert _errors("run-1", doc), f"{breakage} was accepted"


def test_documents_written_before_outcomes_still_validate(reports, run_file):
    """`outcome` and `outcomes` were added within version 1: older files lack them."""
    doc = _json(reports.get("seed_net", "buggy").to_dict())
    assert doc["outcome"] == "flagged"
    doc.pop("outcome")
    assert_valid("report-1", doc)
    old = copy.deepcopy(run_file)
    old.pop("outcomes")
    for entry in old["reports"]:
        entry.pop("outcome")
    assert_valid("run-1", old)


def test_a_partial_run_file_is_valid_and_says_where_the_run_stood():
    """A run cut short leaves a run file with `partial`; the schema knows it."""
    from crosscheck._run_file import partial_document

    doc = partial_document([], "crosscheck run", state="interrupted", current="m.py:b",
                           not_run=["m.py:b"], not_loaded=["n.py:cases"])
    validator("run-1").validate(json.loads(json.dumps(doc)))
    bad = dict(doc, partial={**doc["partial"], "state": "halfway"})
    with pytest.raises(jsonschema.ValidationError):
        validator("run-1").validate(bad)
