"""Layers as first-class cases: ``Case.layer`` builds the Case ``check_layer`` checks, and the
command line, suites, run files, JUnit, HTML and ``crosscheck compare`` take it as any other.

The layer module below plants two bugs in one backward (``dw`` doubled, ``db`` averaged over
the batch instead of summed), so that "exactly the flagged blocks" means two of three.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import crosscheck
from crosscheck import Case, CheckError
from crosscheck._cli import main
from crosscheck._targets import load
from conftest import ROOT

LAYER = """\
import numpy as np
from crosscheck import Case


def tanh_forward(x, w, b, mode):
    out = np.tanh(x @ w + b) * mode["gain"]
    return out, (x, w, out, mode["gain"])


def tanh_backward(dout, cache):
    x, w, out, gain = cache
    dz = dout * gain * (1 - (out / gain) ** 2)
    return dz @ w.T, x.T @ dz, dz.sum(axis=0)


def tanh_backward_buggy(dout, cache):
    x, w, out, gain = cache
    dz = dout * gain * (1 - (out / gain) ** 2)
    return dz @ w.T, 2 * x.T @ dz, dz.mean(axis=0)   # BUG: dw doubled, db averaged


rng = np.random.default_rng(3)
inputs = {"x": rng.standard_normal((5, 4)), "w": rng.standard_normal((4, 3)),
          "b": rng.standard_normal(3), "mode": {"gain": 1.5}}
good = Case.layer("good", tanh_forward, tanh_backward, **inputs)
bad = Case.layer("bad", tanh_forward, tanh_backward_buggy, **inputs)
only_fd = Case.layer("only_fd", tanh_forward, tanh_backward, **inputs, oracles=["fd"])
cases = [good, bad]
"""


def _cli(args, cwd, timeout=600):
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    return subprocess.run([sys.executable, "-m", "crosscheck", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout, env=env)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tanh_layer.py").write_text(LAYER)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _layer_module():
    from crosscheck._targets import _load_file
    return _load_file(ROOT / "reference" / "layers.py")


def _without_timings(data):
    """A report's ``to_dict()`` without what differs from run to run: times and the name."""
    if isinstance(data, dict):
        return {k: _without_timings(v) for k, v in data.items()
                if k not in ("seconds", "case") and not k.endswith("seconds")}
    if isinstance(data, list):
        return [_without_timings(v) for v in data]
    return data


# --------------------------------------------------------------------------- Case.layer

def test_case_layer_is_the_case_check_layer_checks():
    layers = _layer_module()
    name, forward, backward, inputs = layers.layer_inputs()[1]           # affine/buggy
    case = Case.layer(name, forward, backward, **inputs, oracles=["fd"])
    assert type(case) is Case and case.name == "affine/buggy"
    assert list(case.params) == ["x", "w", "b"] and case.params["w"] is inputs["w"]
    assert set(case.loss) == {"numpy", "jax", "torch"}
    assert len(case.args) == 1 and case.args[0].shape == (4, 5)           # dout
    assert case.options == {"oracles": ["fd"], "seed": 0}
    report = crosscheck.check(case.loss, case.grad, case.params, *case.args, **case.options)
    direct = crosscheck.check_layer(forward, backward, **inputs, oracles=["fd"])
    assert report.flagged == direct.flagged == ["x"]
    assert _without_timings(report.to_dict()) == _without_timings(direct.to_dict())


def test_case_layer_takes_check_layers_options():
    layers = _layer_module()
    x = np.random.default_rng(0).standard_normal((3, 4))
    dout = np.ones((3, 4))
    case = Case.layer("relu", layers.relu_forward, layers.relu_backward_buggy, x=x, dout=dout,
                      seed=4, fd=3, tolerances={"fd_safety": 8.0})
    assert case.args[0] is dout
    assert case.options == {"fd": 3, "tolerances": {"fd_safety": 8.0}, "seed": 4}
    _, forward, backward, inputs = layers.layer_inputs()[0]
    assert list(Case.layer("a", forward, backward, wrt=["w"], **inputs).params) == ["w"]


def test_a_subclass_builds_its_own_kind():
    layers = _layer_module()
    [case] = [c for c in layers.cases if c.name == "relu/correct"]
    assert isinstance(case, layers.LayerCase) and isinstance(case, Case)
    assert case.check(oracles=["fd"]).case == "layers/relu/correct"


def test_case_layer_names_its_case_by_its_first_argument():
    layers = _layer_module()
    x = np.ones((2, 3))
    with pytest.raises(CheckError, match=re.escape(
            "`Case.layer` names its case by its first argument ('relu'); drop "
            "`case='other'`.")):
        Case.layer("relu", layers.relu_forward, layers.relu_backward, x=x, case="other")


def test_case_layer_refuses_bad_input_before_the_forward_runs():
    calls = []

    def forward(x):
        calls.append(x)
        return x, None

    with pytest.raises(CheckError, match=r"^unknown oracle"):
        Case.layer("f", forward, lambda dout, cache: dout, x=np.ones(2), oracles=["nope"])
    with pytest.raises(CheckError, match=r"^`backward` must be callable, got int"):
        Case.layer("f", forward, 3, x=np.ones(2))
    assert calls == []


def test_positional_cases_still_work():
    case = Case("c", len, len, {"w": np.ones(1)}, [1], {"oracles": ["fd"]})
    assert case.args == (1,) and case.options == {"oracles": ["fd"]}


# --------------------------------------------------------------------------- crosscheck check

def test_check_runs_the_reference_layer_cases_as_the_issue_asks():
    """The reproduction: ``crosscheck check reference/layers.py:layer_cases`` exited 2."""
    pytest.importorskip("jax")
    pytest.importorskip("torch")
    run = _cli(["check", "reference/layers.py:layer_cases", "--quiet", "--json", "-"], ROOT)
    assert run.returncode == 1, run.stderr
    reports = json.loads(run.stdout)
    assert [r["case"] for r in reports] == [
        "layers/affine/correct", "layers/affine/buggy", "layers/relu/correct",
        "layers/relu/buggy", "layers/batchnorm/correct", "layers/batchnorm/buggy"]
    assert [r["flagged"] for r in reports] == [[], ["x"], [], ["x"], [], ["x"]]
    for report in reports:
        assert all(report["oracles"][o].get("error") is None for o in ("fd", "jax", "torch"))
    assert "layers/affine/buggy: FLAGGED 1 of 3 block(s): x" in run.stderr


@pytest.mark.parametrize("target, code, flagged", [
    ("reference/layers.py:affine/correct", 0, []),
    ("reference/layers.py:batchnorm/buggy", 1, ["x"]),
])
def test_check_one_reference_layer_by_its_name(target, code, flagged, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["check", target, "--oracles", "fd", "--quiet", "--json", "-"]) == code
    report = json.loads(capsys.readouterr().out)
    assert report["case"] == "layers/" + target.split(":")[1]
    assert report["flagged"] == flagged


def test_check_a_correct_and_a_planted_bug_layer(folder, capsys):
    assert main(["check", "models/tanh_layer.py:good", "--oracles", "fd", "--quiet"]) == 0
    assert "tanh_layer/good: all 3 block(s) agree" in capsys.readouterr().out
    assert main(["check", "models/tanh_layer.py:bad", "--oracles", "fd", "--json", "bad.json",
                 "--quiet"]) == 1
    assert "tanh_layer/bad: FLAGGED 2 of 3 block(s): w, b" in capsys.readouterr().out
    report = json.loads((folder / "bad.json").read_text())
    assert report["flagged"] == ["w", "b"]
    assert report["blocks"]["x"]["verdict"] == "ok"
    assert report["blocks"]["w"]["diagnosis"]["kind"] == "scale"
    assert report["blocks"]["w"]["diagnosis"]["factor"] == pytest.approx(2.0, rel=1e-6)


def test_a_layer_cases_own_options_are_used(folder, capsys):
    assert main(["check", "models/tanh_layer.py:only_fd", "--json", "o.json", "--quiet"]) == 0
    capsys.readouterr()
    assert list(json.loads((folder / "o.json").read_text())["oracles"]) == ["fd"]


def test_check_layer_cases_in_processes_of_their_own(folder, capsys):
    assert main(["check", "models/tanh_layer.py:cases", "--oracles", "fd", "--isolate",
                 "--json", "i.json", "--quiet"]) == 1
    capsys.readouterr()
    reports = json.loads((folder / "i.json").read_text())
    assert [(r["case"], r["flagged"]) for r in reports] == [("tanh_layer/good", []),
                                                           ("tanh_layer/bad", ["w", "b"])]


# --------------------------------------------------------------------------- suites, outputs

SUITE = """\
[tool.crosscheck]
cases = ["models/tanh_layer.py:cases", "{root}/reference/layers.py:relu/buggy"]
oracles = ["fd"]
seed = 2
"""


def test_a_suite_with_layer_cases_runs_and_reports_them(folder, capsys):
    (folder / "pyproject.toml").write_text(SUITE.format(root=ROOT))
    code = main(["run", "--quiet", "--json", "r.json", "--junit", "j.xml", "--html", "r.html",
                 "--markdown", "r.md"])
    out = capsys.readouterr().out
    assert code == 1
    assert "tanh_layer/bad: FLAGGED 2 of 3 block(s): w, b" in out
    assert "layers/relu/buggy: FLAGGED 1 of 1 block(s): x" in out
    doc = json.loads((folder / "r.json").read_text())
    assert doc["schema"] == "crosscheck.run/1"
    assert [(r["case"], r["flagged"], r["seed"]) for r in doc["reports"]] == [
        ("tanh_layer/good", [], 2), ("tanh_layer/bad", ["w", "b"], 2),
        ("layers/relu/buggy", ["x"], 2)]
    suite = ET.parse(folder / "j.xml").getroot().find("testsuite")
    cases = {c.attrib["name"]: c for c in suite.findall("testcase")}
    assert list(cases) == ["tanh_layer/good", "tanh_layer/bad", "layers/relu/buggy"]
    assert cases["tanh_layer/good"].find("failure") is None
    assert cases["tanh_layer/bad"].attrib["classname"] == "models/tanh_layer.py"
    message = cases["tanh_layer/bad"].find("failure").attrib["message"]
    assert "w" in message and "b" in message
    for page in ("r.html", "r.md"):
        text = (folder / page).read_text()
        assert "tanh_layer/bad" in text and "layers/relu/buggy" in text


def test_compare_names_a_layer_case_that_newly_fails(folder, capsys):
    assert main(["run", "models/tanh_layer.py:good", "--oracles", "fd", "--json", "old.json",
                 "--quiet"]) == 0
    assert main(["run", "models/tanh_layer.py:cases", "--oracles", "fd", "--json", "new.json",
                 "--quiet"]) == 1
    capsys.readouterr()
    assert main(["compare", "old.json", "new.json"]) == 1
    out = capsys.readouterr().out
    assert "NEW FAILURE  tanh_layer/bad: flagged w, b (before: absent)" in out


def test_load_finds_layer_cases_like_any_other(folder):
    targets = load("models/tanh_layer.py:cases")
    assert [(t.label, type(t.case)) for t in targets] == [("tanh_layer/good", Case),
                                                          ("tanh_layer/bad", Case)]


def test_every_check_option_reaches_a_layer_locate_included():
    from crosscheck._layer import CHECK_OPTIONS
    import inspect as _inspect
    wanted = {n for n, p in _inspect.signature(crosscheck.check).parameters.items()
              if p.kind is _inspect.Parameter.KEYWORD_ONLY} - {"seed"}
    assert set(CHECK_OPTIONS) == wanted
    x, w = np.ones((2, 3)), np.full((3, 2), 0.5)
    report = crosscheck.check_layer(lambda x, w: (x @ w, (x, w)),
                                    lambda dout, cache: {"x": dout @ cache[1].T,
                                                         "w": cache[0].T @ dout},
                                    x=x, w=w, locate=False, oracles=("fd",))
    assert report.ok


def test_a_layer_input_named_like_an_option_is_refused_by_name():
    x = np.ones((2, 3))
    with pytest.raises(crosscheck.CheckError,
                       match=r"^the layer input `tolerances` has the name of check\(\)'s option"):
        crosscheck.check_layer(lambda x, tolerances: (x * tolerances, None),
                               lambda dout, cache: {}, x=x, tolerances=np.ones(3))


def test_case_layer_refuses_a_forward_without_a_cache_and_a_name_that_is_no_string():
    x, w = np.ones((2, 3)), np.ones((3, 2))
    with pytest.raises(crosscheck.CheckError,
                       match=r"^`forward` must return `\(out, cache\)` for check_layer"):
        crosscheck.Case.layer("a", lambda x, w: 1.0, lambda d, c: {}, x=x, w=w)
    with pytest.raises(crosscheck.CheckError, match=r"^a Case's `name` must be a non-empty string"):
        crosscheck.Case.layer(3, lambda x, w: (x @ w, None), lambda d, c: {}, x=x, w=w)
    with pytest.raises(crosscheck.CheckError, match=r"^a Case's `name` must be a non-empty string"):
        crosscheck.Case("", lambda p: 0.0, lambda p: {}, {"w": np.ones(2)})
