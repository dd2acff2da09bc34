"""The command line, end to end: ``python -m crosscheck check TARGET…`` in a subprocess.

Exit status 0 all agree, 1 some block flagged, 2 could not check, 3 inconclusive (the
outcomes themselves are tested in test_outcomes.py). The heavy runs (all three oracles) are
started together once per module and shared by the tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

HEAVY = {
    "seed_buggy": ["reference/seed_net.py:buggy"],
    "seed_correct": ["reference/seed_net.py:correct"],
    "deep": ["reference/deep_net.py:correct", "reference/deep_net.py:buggy"],
}


def _env():
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("PYTHONWARNINGS", None)
    return env


def _start(args, json_path=None):
    cmd = [sys.executable, "-m", "crosscheck", *args]
    if json_path is not None:
        cmd += ["--json", str(json_path)]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env())


class Run:
    def __init__(self, proc, json_path):
        self.stdout, self.stderr = proc.communicate(timeout=300)
        self.code = proc.returncode
        self.json_path = json_path

    @property
    def data(self):
        return json.loads(self.json_path.read_text())


def cli(*args, json_path=None):
    return Run(_start(["check", *args], json_path), json_path)


@pytest.fixture(scope="module")
def heavy(tmp_path_factory):
    pytest.importorskip("jax")
    pytest.importorskip("torch")
    directory = tmp_path_factory.mktemp("cli")
    procs = {key: (_start(["check", *targets], directory / f"{key}.json"),
                   directory / f"{key}.json") for key, targets in HEAVY.items()}
    return {key: Run(proc, path) for key, (proc, path) in procs.items()}


def test_seed_net_buggy_exits_1_and_flags_b1_w2(heavy):
    run = heavy["seed_buggy"]
    assert run.code == 1, run.stderr
    data = run.data
    assert data["schema"] == "crosscheck.report/1"
    assert data["case"] == "seed_net/buggy"
    assert data["flagged"] == ["b1", "W2"]
    assert data["ok"] is False
    assert data["blocks"]["b1"]["diagnosis"]["kind"] == "scale"
    assert data["blocks"]["b1"]["diagnosis"]["factor"] == pytest.approx(4.0, rel=1e-6)
    assert data["blocks"]["W2"]["diagnosis"]["factor"] == pytest.approx(2.0, rel=1e-6)
    assert "FLAGGED 2 of 6 block(s): b1, W2" in run.stdout
    assert "1 flagged (seed_net/buggy)" in run.stdout


def test_seed_net_correct_exits_0_with_tight_differences(heavy):
    run = heavy["seed_correct"]
    assert run.code == 0, run.stderr
    data = run.data
    assert data["flagged"] == [] and data["ok"] is True
    assert set(data["blocks"]) == {"W1", "b1", "W2", "b2", "W3", "b3"}
    for name, block in data["blocks"].items():
        assert block["difference"]["fd"] <= 1e-9, (name, block["difference"])
        assert block["difference"]["jax"] <= 1e-12, (name, block["difference"])
        assert block["difference"]["torch"] <= 1e-12, (name, block["difference"])
    assert "all 6 block(s) agree" in run.stdout


def test_deep_net_buggy_flags_w1_w2_and_correct_flags_nothing(heavy):
    run = heavy["deep"]
    assert run.code == 1, run.stderr
    correct, buggy = run.data
    assert correct["case"] == "deep_net/correct" and correct["flagged"] == []
    assert correct["ok"] is True
    assert buggy["case"] == "deep_net/buggy" and buggy["flagged"] == ["W1", "W2"]
    assert buggy["blocks"]["W1"]["diagnosis"]["factor"] == pytest.approx(3.0, rel=1e-6)


def test_several_targets_write_a_list(heavy):
    run = heavy["deep"]
    data = run.data
    assert isinstance(data, list) and len(data) == 2
    assert all(d["schema"] == "crosscheck.report/1" for d in data)
    assert "2 case(s): 1 agree, 1 flagged (deep_net/buggy)" in run.stdout
    assert "deep_net/correct: all 6 block(s) agree" in run.stdout
    assert "deep_net/buggy: FLAGGED 2 of 6 block(s): W1, W2" in run.stdout


def test_single_target_writes_an_object(heavy):
    assert isinstance(heavy["seed_buggy"].data, dict)


# --- cheap runs: no check happens, or centered differences only --------------------------------

@pytest.mark.parametrize("target, message", [
    ("reference/no_such_model.py:correct", "no file `reference/no_such_model.py`"),
    ("reference/seed_net.py:nothing", "`reference/seed_net.py` has no `nothing`"),
    ("reference/seed_net.py", "is not `path/to/file.py:NAME` or `module:NAME`"),
    ("reference/seed_net.py:X", "`X` is not a crosscheck.Case"),
    ("no_such_module_xyz:cases", "importing it raised ModuleNotFoundError"),
])
def test_bad_target_exits_2_with_a_message_on_stderr(tmp_path, target, message):
    run = cli(target, json_path=tmp_path / "r.json")
    assert run.code == 2
    assert message in run.stderr
    assert run.stderr.startswith("crosscheck: ")
    assert "Traceback" not in run.stderr
    assert "1 could not be checked" in run.stdout
    data = run.data
    assert data["case"] == target and message in data["error"]


def test_a_bad_target_among_good_ones_exits_2(tmp_path):
    run = cli("reference/linear_1d.py:buggy", "reference/nope.py:x", "--oracles", "fd",
              json_path=tmp_path / "r.json")
    assert run.code == 2
    data = run.data
    assert isinstance(data, list) and len(data) == 2
    assert data[0]["flagged"] == ["theta"]
    assert "error" in data[1]


def test_case_that_cannot_be_checked_exits_2(tmp_path):
    model = tmp_path / "flat_bias.py"
    model.write_text(
        "import numpy as np\n"
        "from crosscheck import Case\n"
        "p = {'b1': np.ones((5, 1))}\n"
        "case = Case('flat', lambda p: float(np.sum(p['b1'] ** 2)),\n"
        "            lambda p: {'db1': 2 * p['b1'].ravel()}, p)\n")
    run = cli(f"{model}:case", "--oracles", "fd")
    assert run.code == 2
    assert "shape (5,) for block `b1`" in run.stderr


def test_module_target_and_cases_list_with_fd_only(tmp_path):
    run = cli("reference.linear_1d:cases", "--oracles", "fd", json_path=tmp_path / "r.json")
    assert run.code == 1, run.stderr
    data = run.data
    assert [d["case"] for d in data] == ["linear_1d/correct", "linear_1d/buggy"]
    assert list(data[0]["oracles"]) == ["fd"]
    assert data[1]["flagged"] == ["theta"]


def test_quiet_prints_only_headlines():
    run = cli("reference/linear_1d.py:cases", "--oracles", "fd", "--quiet")
    assert run.code == 1
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    assert lines[0] == "linear_1d/correct: all 1 block(s) agree — by centered differences alone"
    assert lines[1] == "linear_1d/buggy: FLAGGED 1 of 1 block(s): theta — by centered differences alone"
    assert lines[2].startswith("crosscheck: 2 case(s)")
    assert len(lines) == 3


def test_unknown_oracle_on_the_command_line_exits_2():
    run = cli("reference/linear_1d.py:correct", "--oracles", "fd,autograd")
    assert run.code == 2
    assert "unknown oracle(s) ['autograd']" in run.stderr


def test_help_exits_0():
    proc = subprocess.run([sys.executable, "-m", "crosscheck", "--help"], cwd=ROOT,
                          capture_output=True, text=True, env=_env(), timeout=60)
    assert proc.returncode == 0
    assert "check" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "crosscheck", "check", "--help"], cwd=ROOT,
                          capture_output=True, text=True, env=_env(), timeout=60)
    assert proc.returncode == 0
    assert "--json" in proc.stdout and "--oracles" in proc.stdout


def test_no_command_is_a_usage_error():
    proc = subprocess.run([sys.executable, "-m", "crosscheck"], cwd=ROOT,
                          capture_output=True, text=True, env=_env(), timeout=60)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr


def test_main_in_process_returns_the_exit_code(capsys):
    from crosscheck._cli import main

    assert main(["check", str(ROOT / "reference/linear_1d.py") + ":correct", "--oracles",
                 "fd"]) == 0
    code = main(["check", str(ROOT / "reference/linear_1d.py") + ":buggy", "--oracles", "fd"])
    assert code == 1
    out = capsys.readouterr().out
    assert "FLAGGED 1 of 1 block(s): theta" in out
