"""The command line end to end: ``crosscheck run`` (suites, outputs), ``check`` with the new
outputs, and ``crosscheck compare``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from crosscheck import CheckError
from crosscheck._cli import main, resolve_suite

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = """\
[project]
name = "scratch"

[tool.crosscheck]
cases = ["reference/seed_net.py:correct", "reference/seed_net.py:buggy"]
oracles = ["fd", "torch"]
"""
CASES = """\
import numpy as np
from crosscheck import Case

def loss(p):
    return (p["w"] ** 2).sum()

def crash(p):
    raise RuntimeError("boom")

good = Case("good", loss, lambda p: {"w": 2 * p["w"]}, {"w": np.array([1.0, 2.0])})
wrong = Case("wrong", loss, lambda p: {"w": 3 * p["w"]}, {"w": np.array([1.0, 2.0])})
broken = Case("broken", crash, lambda p: {"w": 2 * p["w"]}, {"w": np.array([1.0, 2.0])})
cases = [broken, good]
"""


def _cli(args, cwd, timeout=600):
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    return subprocess.run([sys.executable, "-m", "crosscheck", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A folder with copies of reference/*.py, a suite, and one full run of it."""
    root = tmp_path_factory.mktemp("suite")
    (root / "reference").mkdir()
    for path in (ROOT / "reference").glob("*.py"):
        shutil.copy(path, root / "reference" / path.name)
    (root / "pyproject.toml").write_text(PYPROJECT)
    run = _cli(["run", "--junit", "j.xml", "--json", "r.json", "--html", "r.html",
                "--markdown", "r.md"], root)
    return root, run


# --------------------------------------------------------------------------- acceptance

def test_run_checks_the_suite_and_writes_every_output(scratch):
    root, run = scratch
    assert run.returncode == 1, run.stderr
    assert "crosscheck: 2 case(s): 1 agree, 1 flagged (seed_net/buggy)" in run.stdout
    suite = ET.parse(root / "j.xml").getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == 2
    failures = [c for c in cases if c.find("failure") is not None]
    assert [c.attrib["name"] for c in failures] == ["seed_net/buggy"]
    assert all(c.attrib["classname"] == "reference/seed_net.py" for c in cases)
    assert all(float(c.attrib["time"]) > 0 for c in cases)
    assert "b1" in failures[0].find("failure").attrib["message"]
    html, md = (root / "r.html").read_text(), (root / "r.md").read_text()
    for text in (html, md):
        assert "W2" in text and "b1" in text
    assert 'src="data:image/png;base64,' in html and 'src="http' not in html
    doc = json.loads((root / "r.json").read_text())
    assert doc["schema"] == "crosscheck.run/1"
    assert set(doc["metadata"]) >= {"versions", "time", "host", "command"}
    assert doc["metadata"]["command"].startswith("crosscheck run --junit j.xml")
    assert [r["case"] for r in doc["reports"]] == ["seed_net/correct", "seed_net/buggy"]
    assert all(r["schema"] == "crosscheck.report/1" for r in doc["reports"])
    assert list(doc["reports"][0]["oracles"]) == ["fd", "torch"]   # the suite's oracles
    assert doc["suite"]["cases"] == ["reference/seed_net.py:correct",
                                     "reference/seed_net.py:buggy"]


def test_compare_names_the_newly_failing_case(scratch):
    root, _ = scratch
    old = _cli(["run", "reference/seed_net.py:correct", "--oracles", "fd", "--json", "old.json",
                "--quiet"], root)
    assert old.returncode == 0, old.stderr           # targets replace the suite's cases
    assert [r["case"] for r in json.loads((root / "old.json").read_text())["reports"]] == [
        "seed_net/correct"]
    cmp = _cli(["compare", "old.json", "r.json", "--markdown", "cmp.md"], root)
    assert cmp.returncode == 1, cmp.stderr
    assert "NEW FAILURE  seed_net/buggy: flagged b1, W2 (before: absent)" in cmp.stdout
    assert cmp.stdout.startswith("crosscheck compare: 1 new failure(s) (seed_net/buggy)")
    assert "seed_net/buggy" in (root / "cmp.md").read_text()
    back = _cli(["compare", "r.json", "old.json"], root)
    assert back.returncode == 0 and "REMOVED      seed_net/buggy" in back.stdout


# --------------------------------------------------------------------------- run, in-process

@pytest.fixture
def cases_dir(tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "cases.py").write_text(CASES)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_crashing_case_never_stops_the_others(cases_dir, capsys):
    (cases_dir / "pyproject.toml").write_text(
        '[tool.crosscheck]\ncases = ["models/cases.py:cases", "models/missing.py:x"]\n'
        'oracles = ["fd"]\nseed = 5\n')
    code = main(["run", "--quiet", "--junit", "out/j.xml", "--json", "out/r.json",
                 "--markdown", "out/r.md", "--html", "out/r.html"])
    out, err = capsys.readouterr()
    assert code == 2
    assert "cases/broken: `loss` raised RuntimeError" in err
    assert "no file" in err and "models/missing.py" in err
    assert ("crosscheck: 3 case(s): 1 agree, 2 could not be checked (cases/broken, "
            "models/missing.py:x)") in out
    suite = ET.parse(cases_dir / "out" / "j.xml").getroot().find("testsuite")
    assert suite.attrib["errors"] == "2" and suite.attrib["tests"] == "3"
    errors = [c.attrib["name"] for c in suite.findall("testcase") if c.find("error") is not None]
    assert errors == ["cases/broken", "models/missing.py:x"]
    doc = json.loads((cases_dir / "out" / "r.json").read_text())
    assert doc["reports"][0]["case"] == "cases/broken" and "error" in doc["reports"][0]
    assert doc["reports"][1]["seed"] == 5 and list(doc["reports"][1]["oracles"]) == ["fd"]
    assert "could not check" in (cases_dir / "out" / "r.md").read_text()
    assert "RuntimeError" in (cases_dir / "out" / "r.html").read_text()


def test_command_line_options_override_the_suite(cases_dir, capsys):
    (cases_dir / "pyproject.toml").write_text(
        '[tool.crosscheck]\ncases = ["models/cases.py:good"]\noracles = ["fd"]\nseed = 5\n'
        'tolerances = {fd_safety = 8.0}\n')
    assert main(["run", "--seed", "7", "--json", "r.json", "--quiet"]) == 0
    report = json.loads((cases_dir / "r.json").read_text())["reports"][0]
    assert report["seed"] == 7 and report["tolerances"]["fd_safety"] == 8.0
    assert main(["run", "models/cases.py:wrong", "--json", "w.json", "--quiet"]) == 1
    assert json.loads((cases_dir / "w.json").read_text())["reports"][0]["case"] == "cases/wrong"
    capsys.readouterr()


def test_run_config_elsewhere_resolves_paths_from_there(cases_dir, tmp_path_factory, capsys,
                                                        monkeypatch):
    (cases_dir / "pyproject.toml").write_text(
        '[tool.crosscheck]\ncases = ["models/cases.py:good"]\noracles = ["fd"]\n')
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    assert main(["run", "--config", str(cases_dir / "pyproject.toml"), "--quiet"]) == 0
    assert "1 case(s): 1 agree" in capsys.readouterr().out


@pytest.mark.parametrize("setup, config, match", [
    (None, None, r"nothing to run: no `pyproject.toml` in .* declares no cases\. Add a "
                 r"`\[tool.crosscheck\]` table with `cases = \[\"path/to/model.py:NAME\"\]`"),
    ('[project]\nname = "x"\n', None, r"nothing to run: `pyproject.toml` declares no cases"),
    ('[tool.crosscheck]\ncases = "x"\n', None, r"`cases` must be a list of targets"),
    (None, "nope.toml", r"no file `nope.toml`; pass the pyproject.toml that holds the "
                        r"`\[tool.crosscheck\]` table\."),
])
def test_run_errors_exit_2(cases_dir, capsys, setup, config, match):
    if setup is not None:
        (cases_dir / "pyproject.toml").write_text(setup)
    with pytest.raises(CheckError, match=match):
        resolve_suite(config, [])
    assert main(["run", *(["--config", config] if config else [])]) == 2
    assert re.search(match, capsys.readouterr().err)


def test_unwritable_output_exits_2(cases_dir, capsys):
    (cases_dir / "taken").mkdir()
    assert main(["check", "models/cases.py:good", "--oracles", "fd", "--junit", "taken"]) == 2
    assert "crosscheck: cannot write `taken`" in capsys.readouterr().err


# --------------------------------------------------------------------------- check

def test_check_keeps_its_json_and_gains_every_output(cases_dir, capsys):
    assert main(["check", "models/cases.py:good", "--oracles", "fd", "--quiet",
                 "--json", "one.json", "--junit", "j.xml", "--markdown", "c.md",
                 "--html", "c.html"]) == 0
    one = json.loads((cases_dir / "one.json").read_text())
    assert isinstance(one, dict) and one["schema"] == "crosscheck.report/1"
    assert ET.parse(cases_dir / "j.xml").getroot().find("testsuite").attrib["tests"] == "1"
    assert "cases/good" in (cases_dir / "c.md").read_text()
    assert "cases/good" in (cases_dir / "c.html").read_text()
    assert main(["check", "models/cases.py:good", "models/cases.py:wrong", "--oracles", "fd",
                 "--quiet", "--json", "two.json"]) == 1
    two = json.loads((cases_dir / "two.json").read_text())
    assert isinstance(two, list) and [r["case"] for r in two] == ["cases/good", "cases/wrong"]
    out = capsys.readouterr().out
    assert "crosscheck: 2 case(s): 1 agree, 1 flagged (cases/wrong)" in out


# --------------------------------------------------------------------------- compare

def test_compare_accepts_check_outputs_and_thresholds(cases_dir, capsys):
    old = {"schema": "crosscheck.report/1", "case": "c", "ok": True, "flagged": [],
           "oracles": {"fd": {"seconds": 0.1}}}
    new = dict(old, oracles={"fd": {"seconds": 0.5}})
    (cases_dir / "old.json").write_text(json.dumps(old))
    (cases_dir / "new.json").write_text(json.dumps([new]))
    assert main(["compare", "old.json", "new.json"]) == 0
    assert "0 slower oracle(s)" in capsys.readouterr().out
    assert main(["compare", "old.json", "new.json", "--slower-seconds", "0.2"]) == 0
    assert "SLOWER       c: fd 0.100 s → 0.500 s (5.0×)" in capsys.readouterr().out
    assert main(["compare", "old.json", "new.json", "--slower-ratio", "6",
                 "--slower-seconds", "0"]) == 0
    assert "0 slower oracle(s)" in capsys.readouterr().out


@pytest.mark.parametrize("args, match", [
    (["missing.json", "ok.json"], "crosscheck: cannot read `missing.json`"),
    (["bad.json", "ok.json"], "crosscheck: `bad.json` is not JSON"),
    (["ok.json", "ok.json", "--slower-ratio", "0.5"],
     "crosscheck: --slower-ratio must be at least 1 and --slower-seconds at least 0"),
])
def test_compare_unreadable_input_exits_2(cases_dir, capsys, args, match):
    (cases_dir / "ok.json").write_text('{"schema": "crosscheck.report/1", "case": "c", '
                                       '"ok": true, "flagged": []}')
    (cases_dir / "bad.json").write_text("{")
    assert main(["compare", *args]) == 2
    assert match in capsys.readouterr().err


# --------------------------------------------------------------------------- the docs

def test_nightly_workflow_runs_the_suite_and_compares():
    yaml = pytest.importorskip("yaml")
    text = (ROOT / "docs" / "nightly-workflow.yml").read_text()
    flow = yaml.safe_load(text)
    assert "schedule" in flow[True] or "schedule" in flow.get("on", {})
    steps = [s for job in flow["jobs"].values() for s in job["steps"]]
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "crosscheck run" in runs and "--junit" in runs and "--html" in runs
    assert "crosscheck compare" in runs
    uses = [s.get("uses", "") for s in steps]
    assert any(u.startswith("actions/upload-artifact") for u in uses)
    assert "nightly-workflow.yml" in (ROOT / "docs" / "nightly.md").read_text()
