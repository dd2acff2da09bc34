"""Faults on the command line, end to end in subprocesses: user code that exits, Ctrl-C, a run
killed outright, and ``--isolate`` -- nothing lost, nothing falsely green.

Also the pieces they rest on, in process: the isolated worker's messages and report rebuild,
the partial run file, and the progress stages that name every long phase.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import crosscheck
from crosscheck import CheckError

MODELS = """\
import os, signal, sys, time
import numpy as np
from crosscheck import Case

def loss(p):
    return (p["w"] ** 2).sum()

def exits(p):
    sys.exit(0)

def killed(p):
    os.kill(os.getpid(), signal.SIGKILL)

def quits(p):
    os._exit(3)

def sleepy(p):
    time.sleep(60)
    return (p["w"] ** 2).sum()

def twice(p):
    return {"w": 2 * p["w"]}

W = {"w": np.array([1.0, 2.0])}
good = Case("good", loss, twice, W)
wrong = Case("wrong", loss, lambda p: {"w": 3 * p["w"]}, W)
exiting = Case("exiting", exits, twice, W)
killing = Case("killing", killed, twice, W)
quitting = Case("quitting", quits, twice, W)
sleeping = Case("sleeping", sleepy, twice, W)
suite = [good, sleeping, wrong]

def factory():
    sys.exit(3)
"""
EXIT_LINE = MODELS.splitlines().index("    sys.exit(0)") + 1
FILES = {
    "models.py": MODELS,
    "exits_at_import.py": "import sys\n\nsys.exit(0)\n",
    "segfaults_at_import.py": "import os, signal\n\nos.kill(os.getpid(), signal.SIGSEGV)\n",
}
WAIT = 15   # seconds a subprocess gets to reach the point a test waits for
STARTED: list = []   # processes a test started, ended at its teardown if still running


@pytest.fixture
def folder(tmp_path):
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def _env() -> dict:
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("PYTHONWARNINGS", None)
    return env


@pytest.fixture(autouse=True)
def _end_what_we_started():
    yield
    while STARTED:
        proc, group = STARTED.pop()
        if proc.poll() is None:
            (os.killpg(proc.pid, signal.SIGKILL) if group else proc.kill())
            proc.communicate()


def _start(args, cwd, **kwargs) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "crosscheck", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), **kwargs)
    STARTED.append((proc, kwargs.get("start_new_session", False)))
    return proc


def _cli(args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crosscheck", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=60, env=_env())


def _running(path, label, proc) -> dict:
    """The run file once it says the run is checking ``label``."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):   # not written yet (never half-written: atomic)
            data = {}
        if (data.get("partial") or {}).get("current") == label:
            return data
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"`{path}` never named `{label}` as running: {proc.communicate()}")


def _cases(reports) -> list:
    return [r["case"] for r in reports]


# --------------------------------------------------------------------------- sys.exit

def test_sys_exit_in_a_loss_is_that_cases_could_not_check_and_the_others_go_on(folder):
    run = _cli(["check", "models.py:wrong", "models.py:exiting", "models.py:good",
                "--oracles", "fd", "--quiet", "--json", "out.json", "--junit", "j.xml"], folder)
    assert run.returncode == 2, run.stderr            # could not check, never 0 after a flag
    data = json.loads((folder / "out.json").read_text())
    assert isinstance(data, list) and _cases(data) == ["models/wrong", "models/exiting",
                                                       "models/good"]
    assert data[0]["flagged"] == ["w"] and data[2]["ok"] is True
    message = (f"the case's code called sys.exit(0) at models.py:{EXIT_LINE}; a loss or "
               f"gradient must return a value or raise, not end the process.")
    assert data[1] == {"schema": "crosscheck.report/1", "case": "models/exiting",
                       "error": message, "outcome": "could not check"}
    assert f"crosscheck: models/exiting: {message}" in run.stderr
    assert ("crosscheck: 3 case(s): 1 agree, 1 flagged (models/wrong), 1 could not be checked "
            "(models/exiting)") in run.stdout
    suite = ET.parse(folder / "j.xml").getroot().find("testsuite")
    assert (suite.attrib["tests"], suite.attrib["failures"], suite.attrib["errors"]) == \
        ("3", "1", "1")


def test_sys_exit_at_a_targets_import_is_that_targets_could_not_check(folder):
    run = _cli(["run", "models.py:good", "exits_at_import.py:case", "models.py:wrong",
                "--oracles", "fd", "--quiet", "--json", "run.json"], folder)
    assert run.returncode == 2, run.stderr
    data = json.loads((folder / "run.json").read_text())
    assert "partial" not in data                      # the run finished
    assert _cases(data["reports"]) == ["models/good", "exits_at_import.py:case",
                                       "models/wrong"]
    message = ("target `exits_at_import.py:case`: importing it called sys.exit(0) at "
               "exits_at_import.py:3; a module that defines cases must not exit when "
               "imported: put its script part under `if __name__ == \"__main__\":`.")
    assert data["reports"][1] == {"case": "exits_at_import.py:case", "error": message,
                                  "outcome": "could not check"}
    assert f"crosscheck: {message}" in run.stderr
    assert data["reports"][0]["ok"] is True and data["reports"][2]["flagged"] == ["w"]


def test_sys_exit_in_a_case_factory_is_a_check_error(folder, monkeypatch):
    from crosscheck._targets import load
    monkeypatch.syspath_prepend(str(folder))
    with pytest.raises(CheckError, match=r"^target `models\.py:factory`: calling `factory\(\)` "
                                         r"called sys\.exit\(3\) at models\.py:\d+$"):
        load("models.py:factory", base=folder)


# --------------------------------------------------------------------------- Ctrl-C

def test_ctrl_c_saves_the_finished_cases_says_so_and_exits_130(folder):
    proc = _start(["run", "models.py:suite", "--oracles", "fd", "--json", "run.json",
                   "--junit", "j.xml", "--markdown", "s.md"], folder)
    running = _running(folder / "run.json", "models/sleeping", proc)
    assert _cases(running["reports"]) == ["models/good"]
    assert running["partial"] == {"state": "running", "current": "models/sleeping",
                                  "not_run": ["models/sleeping", "models/wrong"],
                                  "not_loaded": []}
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.splitlines()[-1] == ("crosscheck: interrupted after 1 of 3 case(s); finished "
                                    "results saved to run.json, j.xml, s.md")
    assert "crosscheck: 1 case(s): 1 agree" in out
    data = json.loads((folder / "run.json").read_text())
    assert _cases(data["reports"]) == ["models/good"] and data["reports"][0]["ok"] is True
    assert data["partial"] == {"state": "interrupted", "current": "models/sleeping",
                               "not_run": ["models/sleeping", "models/wrong"],
                               "not_loaded": []}
    cases = ET.parse(folder / "j.xml").getroot().find("testsuite").findall("testcase")
    assert [c.attrib["name"] for c in cases] == ["models/good"]
    summary = (folder / "s.md").read_text()
    assert "crosscheck run (interrupted after 1 of 3 case(s))" in summary
    assert "models/good" in summary
    # a partial run file is still a run file: `crosscheck compare` reads its finished cases
    from crosscheck._run_file import read_run
    assert _cases(read_run(folder / "run.json")) == ["models/good"]


def test_sigterm_as_a_ci_timeout_sends_it_saves_the_finished_cases_and_exits_143(folder):
    proc = _start(["run", "models.py:suite", "--oracles", "fd", "--json", "run.json",
                   "--junit", "j.xml", "--markdown", "s.md"], folder)
    _running(folder / "run.json", "models/sleeping", proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    assert err.splitlines()[-1] == ("crosscheck: terminated (SIGTERM) after 1 of 3 case(s); "
                                    "finished results saved to run.json, j.xml, s.md")
    data = json.loads((folder / "run.json").read_text())
    assert _cases(data["reports"]) == ["models/good"]
    assert data["partial"]["state"] == "interrupted"
    cases = ET.parse(folder / "j.xml").getroot().find("testsuite").findall("testcase")
    assert [c.attrib["name"] for c in cases] == ["models/good"]
    assert "crosscheck run (terminated (SIGTERM) after 1 of 3 case(s))" in (folder / "s.md").read_text()


def test_ctrl_c_at_the_terminal_under_isolate_ends_the_worker_too(folder):
    # A terminal sends SIGINT to the whole foreground process group, workers included.
    proc = _start(["check", "models.py:good", "models.py:sleeping", "models.py:wrong",
                   "--isolate", "--oracles", "fd", "--quiet", "--json", "out.json"], folder,
                  start_new_session=True)
    _running(folder / "out.json", "models/sleeping", proc)
    time.sleep(1.0)   # the worker is in the loss by now (no harm if it is still starting)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.splitlines()[-1] == ("crosscheck: interrupted after 1 of at least 3 case(s); "
                                    "finished results saved to out.json")
    data = json.loads((folder / "out.json").read_text())
    assert _cases(data["reports"]) == ["models/good"]
    assert data["partial"]["state"] == "interrupted"
    assert data["partial"]["not_loaded"] == ["models.py:wrong"]
    assert _alive_in_group(proc.pid) == []   # no worker outlives the run


def _alive_in_group(pgid: int) -> list:
    """Processes of group ``pgid`` still running (zombies, which only wait for a reaper --
    multiprocessing's resource tracker once the parent is gone -- do not count)."""
    if not os.path.isdir("/proc"):
        return []
    deadline, alive = time.monotonic() + 5, []
    while time.monotonic() < deadline:
        alive = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                alive.append(int(pid))
        if not alive:
            break
        time.sleep(0.1)
    return alive


# --------------------------------------------------------------------------- killed outright

def test_a_run_killed_outright_leaves_its_finished_cases_on_disk(folder):
    (folder / "run.json").write_text('{"schema": "crosscheck.run/1", "reports": []}')  # old run
    proc = _start(["run", "models.py:suite", "--oracles", "fd", "--json", "run.json"], folder)
    _running(folder / "run.json", "models/sleeping", proc)
    proc.kill()                                       # as the out-of-memory killer does
    proc.communicate(timeout=WAIT)
    data = json.loads((folder / "run.json").read_text())
    assert data["schema"] == "crosscheck.run/1"
    assert _cases(data["reports"]) == ["models/good"]
    assert data["reports"][0]["schema"] == "crosscheck.report/1"   # the whole report
    assert data["partial"]["state"] == "running"                   # never marked complete
    assert data["partial"]["current"] == "models/sleeping"         # the prime suspect
    assert not list(folder.glob(".run.json.*"))                    # no temporary file left


# --------------------------------------------------------------------------- --isolate

def test_isolate_a_crashed_case_is_could_not_check_naming_the_signal(folder):
    run = _cli(["run", "models.py:good", "models.py:killing", "segfaults_at_import.py:case",
                "models.py:exiting", "models.py:quitting", "models.py:wrong", "--isolate",
                "--oracles", "fd", "--quiet", "--json", "run.json", "--junit", "j.xml"], folder)
    assert run.returncode == 2, run.stderr
    data = json.loads((folder / "run.json").read_text())
    assert "partial" not in data
    reports = {r["case"]: r for r in data["reports"]}
    assert list(reports) == ["models/good", "models/killing", "segfaults_at_import.py:case",
                             "models/exiting", "models/quitting", "models/wrong"]
    assert reports["models/good"]["ok"] is True
    assert reports["models/wrong"]["flagged"] == ["w"]
    assert reports["models/killing"]["error"].startswith(
        "the case's process was killed by SIGKILL (the out-of-memory killer sends it")
    assert reports["segfaults_at_import.py:case"]["error"].startswith(
        "target `segfaults_at_import.py:case`: the process importing it was killed by SIGSEGV "
        "(a crash in compiled code")
    assert reports["models/exiting"]["error"].startswith("the case's code called sys.exit(0)")
    assert reports["models/quitting"]["error"] == (
        "the case's process exited with status 3 without a result (did the code call "
        "`os._exit`?)")
    assert "crosscheck: models/killing: the case's process was killed by SIGKILL" in run.stderr
    assert ("6 case(s): 1 agree, 1 flagged (models/wrong), 4 could not be checked"
            in run.stdout)
    suite = ET.parse(folder / "j.xml").getroot().find("testsuite")
    assert (suite.attrib["tests"], suite.attrib["errors"]) == ("6", "4")


def _timeless(value):
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def test_isolate_reports_what_an_in_process_run_reports(folder):
    args = ["check", "models.py:good", "models.py:wrong", "--oracles", "fd", "--quiet"]
    here = _cli([*args, "--json", "here.json"], folder)
    apart = _cli([*args, "--isolate", "--json", "apart.json"], folder)
    assert here.returncode == apart.returncode == 1, apart.stderr
    assert here.stdout == apart.stdout
    assert _timeless(json.loads((folder / "here.json").read_text())) == \
        _timeless(json.loads((folder / "apart.json").read_text()))


def test_help_documents_isolate_and_interruption():
    for command in ("check", "run"):
        text = subprocess.run([sys.executable, "-m", "crosscheck", command, "--help"],
                              capture_output=True, text=True, env=_env()).stdout
        flat = " ".join(text.split())
        assert "--isolate" in flat and "process of its own" in flat
        assert "130: interrupted (Ctrl-C)" in flat
        assert "marked `partial` until the run ends" in flat


# --------------------------------------------------------------------------- the pieces

@pytest.mark.parametrize("exitcode, message", [
    (-9, "the case's process was killed by SIGKILL (the out-of-memory killer sends it, as "
         "does `kill -9`)"),
    (-11, "the case's process was killed by SIGSEGV (a crash in compiled code: numpy, jax, "
          "torch or an extension module)"),
    (-signal.SIGUSR1, "the case's process was killed by SIGUSR1"),
    (0, "the case's process exited with status 0 without a result (did the code call "
        "`os._exit`?)"),
])
def test_death_names_the_signal(exitcode, message):
    from crosscheck._isolate import death
    assert death(exitcode) == message


def test_a_rebuilt_report_is_the_report():
    from crosscheck._isolate import rebuild
    w = np.array([[1.0, -2.0], [0.5, 3.0]])
    report = crosscheck.check(lambda p: np.sum(p["w"] ** 3) + np.sum(p["b"] ** 2),
                              lambda p: {"w": 2 * p["w"] ** 2, "b": 2 * p["b"]},
                              {"w": w, "b": np.array([1.0, 2.0])}, oracles=("fd",),
                              case="toy/wrong", progress=False)
    assert report.flagged == ["w"]
    again = rebuild(report.to_dict(), {n: b.mismatch for n, b in report.blocks.items()})
    assert again.to_dict() == report.to_dict()
    assert str(again) == str(report)
    assert again.blocks["w"].diagnosis.kind == report.blocks["w"].diagnosis.kind
    np.testing.assert_array_equal(again.blocks["w"].mismatch, report.blocks["w"].mismatch)


def test_partial_document_and_atomic_write(tmp_path):
    from crosscheck._run_file import partial_document, write_atomically
    doc = partial_document([], "crosscheck run", current="m/a", not_run=["m/a", "m/b"],
                           not_loaded=["x.py:c"])
    assert doc["schema"] == "crosscheck.run/1" and doc["reports"] == []
    assert doc["partial"] == {"state": "running", "current": "m/a", "not_run": ["m/a", "m/b"],
                              "not_loaded": ["x.py:c"]}
    path = tmp_path / "sub" / "run.json"
    write_atomically(path, "old")
    write_atomically(path, "new")
    assert path.read_text() == "new" and os.listdir(path.parent) == ["run.json"]
    (tmp_path / "taken").mkdir()
    with pytest.raises(OSError):
        write_atomically(tmp_path / "taken", "text")
    assert sorted(os.listdir(tmp_path)) == ["sub", "taken"]   # no temporary file left


def test_progress_names_every_long_phase(monkeypatch):
    """noise, the first pass, directional derivatives and refinement each run as a stage
    whose total is the loss evaluations it spends -- no silent phase, no bar stuck at 100%."""
    from crosscheck._progress import Progress
    stages = []
    original = Progress.stage

    def record(self, total, label):
        stages.append((label, total))
        return original(self, total, label)

    monkeypatch.setattr(Progress, "stage", record)
    loss = lambda p: np.sum(np.tanh(p["w"]) ** 2)  # noqa: E731
    grad = lambda p: {"w": 2 * np.tanh(p["w"]) * (1 - np.tanh(p["w"]) ** 2)}  # noqa: E731
    params = {"w": np.linspace(-1.0, 1.0, 6)}
    crosscheck.check(loss, grad, params, oracles=("fd",), progress=False, taylor=False)
    assert stages == [("noise", 48), ("centered differences", 12), ("refinement", 48)]
    stages.clear()
    crosscheck.check(loss, grad, params, oracles=("fd",), progress=False, taylor=False, fd=2)
    assert ("directional derivatives", 16) in stages     # 2 directions × 4 rungs × 2


def test_progress_counts_every_evaluation_of_a_stage(monkeypatch):
    import crosscheck._progress as progress_module
    from crosscheck.oracles._fd import measure_noise
    monkeypatch.setattr(progress_module, "DELAY", 3600.0)
    bar = progress_module.Progress(True)
    seen = []
    original = bar.evaluated
    monkeypatch.setattr(bar, "evaluated", lambda n: (seen.append(n), original(n)))
    flat = np.array([1.0, 2.0])
    measure_noise(lambda: float(np.sum(flat ** 2)), flat, np.ones(2), 5.0, progress=bar)
    assert sum(seen) == 48 and bar._done == 48


def test_compare_with_a_run_that_stopped_early_lists_its_missing_cases_as_not_run(folder):
    full = _cli(["run", "models.py:good", "models.py:wrong", "--oracles", "fd", "--quiet",
                 "--json", "old.json"], folder)
    assert full.returncode == 1, full.stderr
    proc = _start(["run", "models.py:good", "models.py:sleeping", "models.py:wrong",
                   "--oracles", "fd", "--quiet", "--json", "new.json"], folder)
    _running(folder / "new.json", "models/sleeping", proc)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=WAIT)
    cmp = _cli(["compare", "old.json", "new.json"], folder)
    assert cmp.returncode == 2, cmp.stdout + cmp.stderr
    assert "NOT RUN      models/wrong: the new run stopped before it (before: flagged w)" in \
        cmp.stdout, cmp.stdout
    assert "REMOVED" not in cmp.stdout
    assert cmp.stdout.splitlines()[0].endswith(
        "1 not run (the new run stopped early: models/wrong)")
