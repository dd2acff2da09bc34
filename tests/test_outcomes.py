"""One outcome per case -- agrees, flagged, inconclusive, could not check -- in every output,
the exit codes that follow from it, ``report.save``, ``-k``, and each oracle error said once.

The inconclusive case is the issue's own: a float32 logistic loss checked with centered
differences alone, which cannot resolve a relative error of 1e-3 there (0.0051), so no
reference vouches for the gradient although nothing disagrees with it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import crosscheck
from conftest import tanh_grad, tanh_loss, tanh_model
from crosscheck import CheckError
from crosscheck._cli import main
from crosscheck._cli_args import (EXIT_ERROR, EXIT_FLAGGED, EXIT_INCONCLUSIVE, EXIT_OK, exit_code,
                                  gravest)
from crosscheck._render_html import render_page
from crosscheck._render_junit import render_junit, skipped_message
from crosscheck._render_markdown import render_markdown
from crosscheck._render_text import headline
from crosscheck._run_comparison import compare_runs
from crosscheck._run_file import Outcome, read_run, run_document, summary

MODEL = '''\
import numpy as np
from crosscheck import Case

rng = np.random.default_rng(4)
X = rng.standard_normal((16, 3)).astype(np.float32)
y = np.sign(rng.standard_normal(16)).astype(np.float32)
w = (2.0 * rng.standard_normal(3)).astype(np.float32)


def loss(p, X, y):
    w = p["w"].astype(np.float32)      # the whole loss in float32, as the user wrote it
    return np.mean(np.log(1 + np.exp(-y * (X @ w))))


def grad(p, X, y):
    w = p["w"].astype(np.float32)
    s = 1 / (1 + np.exp(y * (X @ w)))
    return {"w": X.T @ (-y * s) / len(y)}


def double(p, X, y):
    return {"w": 2 * grad(p, X, y)["w"]}


def square(p, X, y):
    return np.sum(p["v"] ** 2)


logistic = Case("logistic", loss, grad, {"w": w}, (X, y))
wrong = Case("wrong", loss, double, {"w": w}, (X, y))
good = Case("good", square, lambda p, X, y: {"v": 2 * p["v"]}, {"v": np.array([1.0, -2.0])},
            (X, y))
broken = Case("broken", square, lambda p, X, y: {"v": p["v"].ravel()[:1]},
              {"v": np.array([1.0, -2.0])}, (X, y))
'''
REASON = ("agrees with centered differences, but they resolve only 0.0051 (relative) here — a "
          "bug that size would pass: add an autodiff reference or compute the loss in float64")


@pytest.fixture
def models(tmp_path, monkeypatch):
    """``models/logit.py`` in a scratch folder that is the current one."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "logit.py").write_text(MODEL)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def logit(tmp_path_factory):
    path = tmp_path_factory.mktemp("logit") / "logit_model.py"
    path.write_text(MODEL)
    spec = importlib.util.spec_from_file_location("_crosscheck_tests_logit", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check(case, **options):
    return crosscheck.check(case.loss, case.grad, case.params, *case.args,
                            case=f"logit/{case.name}", oracles=("fd",), **options)


@pytest.fixture(scope="module")
def unsure(logit):
    return _check(logit.logistic)


@pytest.fixture(scope="module")
def three(logit, unsure):
    """Outcomes of the four kinds: agrees, flagged, inconclusive, could not check."""
    return [Outcome("logit/good", _check(logit.good), None, 0.5),
            Outcome("logit/wrong", _check(logit.wrong), None, 0.25),
            Outcome("logit/logistic", unsure, None, 0.125),
            Outcome("logit.py:gone", None, "no file `logit.py`.", 0.0)]


# --------------------------------------------------------------------------- the report

def test_float32_logistic_with_centered_differences_alone_is_inconclusive(unsure):
    assert unsure.blocks["w"].verdict == "inconclusive"
    assert unsure.blocks["w"].reason == REASON
    assert unsure.ok is True and unsure.flagged == []   # `ok` keeps its meaning
    assert unsure.vouched is False
    assert unsure.outcome == "inconclusive"
    assert unsure.to_dict()["outcome"] == "inconclusive"


def test_outcome_and_vouched_of_agreeing_and_flagged_reports(three):
    good, wrong = three[0].report, three[1].report
    assert (good.outcome, good.vouched, good.ok) == ("agrees", True, True)
    assert (wrong.outcome, wrong.vouched, wrong.ok) == ("flagged", False, False)
    assert [o.outcome for o in three] == ["agrees", "flagged", "inconclusive", "could not check"]
    assert [o.status for o in three] == ["ok", "flagged", "ok", "error"]   # as report.ok


def test_reports_and_run_files_with_outcomes_validate(three):
    pytest.importorskip("jsonschema")
    from crosscheck._schemas import validator

    doc = json.loads(json.dumps(run_document(three, "crosscheck run")))
    validator("run-1").validate(doc)
    assert doc["outcomes"] == {"agrees": 1, "flagged": 1, "inconclusive": 1,
                               "could not check": 1}
    assert [r["outcome"] for r in doc["reports"]] == ["agrees", "flagged", "inconclusive",
                                                      "could not check"]
    bad = json.loads(json.dumps(three[2].report.to_dict()))
    bad["outcome"] = "maybe"
    assert list(validator("report-1").iter_errors(bad))


# --------------------------------------------------------------------------- every output

def test_terminal_headline_and_summary_say_inconclusive(unsure, three):
    assert headline(unsure) == ("logit/logistic: INCONCLUSIVE 1 of 1 block(s): w; none "
                                "flagged — by centered differences alone")
    assert str(unsure).splitlines()[0] == headline(unsure)
    assert f"  w: {REASON}" in str(unsure).splitlines()
    assert summary(three) == ("4 case(s): 1 agree, 1 flagged (logit/wrong), 1 inconclusive "
                              "(logit/logistic), 1 could not be checked (logit.py:gone)")
    assert summary([three[2]]) == "1 case(s): 0 agree, 1 inconclusive (logit/logistic)"


def test_junit_inconclusive_is_skipped_with_the_reason(three):
    root = ET.fromstring(render_junit(three, timestamp="T", hostname="H"))
    suite = root.find("testsuite")
    assert {k: suite.attrib[k] for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "4", "failures": "1", "errors": "1", "skipped": "1"}
    assert root.attrib["skipped"] == "1"
    good, wrong, unsure, gone = suite.findall("testcase")
    assert [len(c.findall(t)) for c in (good, wrong, unsure, gone)
            for t in ("failure", "error", "skipped")] == [0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0]
    skipped = unsure.find("skipped")
    assert skipped.attrib["message"] == (f"inconclusive w — w: {REASON} (by centered "
                                         f"differences alone)")
    assert skipped.attrib["message"] == skipped_message(three[2].report)
    assert skipped.attrib["type"] == "crosscheck.inconclusive"
    assert "INCONCLUSIVE 1 of 1 block(s): w" in unsure.find("system-out").text


def test_markdown_marks_inconclusive_apart_from_agrees(three):
    lines = render_markdown(three, title="t").splitlines()
    assert "| logit/good | ✅ agrees |  | by centered differences alone |" in lines
    assert "| logit/logistic | ❔ inconclusive |  | by centered differences alone |" in lines
    assert not [line for line in lines if "logit/logistic" in line and "✅" in line]
    assert "### logit/logistic" in lines   # its details, with the reason
    assert ("❔ logit/logistic: INCONCLUSIVE 1 of 1 block(s): w; none flagged — by centered "
            "differences alone") in lines
    assert f"- w (inconclusive): {REASON}" in lines
    assert "### logit/good" not in lines


def test_html_shows_the_outcome_of_every_case(three):
    html = render_page(three, title="t")
    assert '<td class="inconclusive">INCONCLUSIVE</td>' in html
    assert '<td class="ok">agrees</td>' in html and '<td class="wrong">FLAGGED</td>' in html
    assert '<td class="error">could not check</td>' in html
    assert ('<h2 class="inconclusive">logit/logistic: INCONCLUSIVE 1 of 1 block(s): w; none '
            'flagged — by centered differences alone</h2>') in html


# --------------------------------------------------------------------------- exit codes

def test_exit_code_order_and_the_allowing_flag(three):
    good, wrong, unsure, gone = three
    assert exit_code([good]) == EXIT_OK == 0
    assert exit_code([good, unsure]) == EXIT_INCONCLUSIVE == 3
    assert exit_code([good, unsure], allow_inconclusive=True) == EXIT_OK
    assert exit_code([unsure, wrong]) == EXIT_FLAGGED == 1
    assert exit_code([unsure, wrong, gone], allow_inconclusive=True) == EXIT_ERROR == 2
    assert gravest(EXIT_INCONCLUSIVE, EXIT_ERROR) == EXIT_ERROR   # a write failure outranks 3
    assert gravest(EXIT_OK, EXIT_INCONCLUSIVE) == EXIT_INCONCLUSIVE
    assert gravest(EXIT_FLAGGED, EXIT_INCONCLUSIVE) == EXIT_FLAGGED


def test_cli_check_inconclusive_exits_3_and_every_output_says_so(models, capsys):
    code = main(["check", "models/logit.py:logistic", "--oracles", "fd", "--junit", "j.xml",
                 "--markdown", "s.md", "--html", "r.html", "--json", "r.json"])
    out = capsys.readouterr().out
    assert code == 3
    assert "logit/logistic: INCONCLUSIVE 1 of 1 block(s): w; none flagged" in out
    assert out.splitlines()[-1] == "crosscheck: 1 case(s): 0 agree, 1 inconclusive (logit/logistic)"
    case = ET.parse(models / "j.xml").getroot().find("testsuite").find("testcase")
    assert case.find("skipped").attrib["message"].startswith(f"inconclusive w — w: {REASON}")
    assert "| logit/logistic | ❔ inconclusive |" in (models / "s.md").read_text()
    assert "INCONCLUSIVE" in (models / "r.html").read_text()
    assert json.loads((models / "r.json").read_text())["outcome"] == "inconclusive"


def test_the_command_exits_3_for_the_issues_case(models):
    """``python -m crosscheck``, as a CI job runs it: the process's own exit status."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    for flags, code in (([], 3), (["--allow-inconclusive"], 0)):
        proc = subprocess.run([sys.executable, "-m", "crosscheck", "check",
                               "models/logit.py:logistic", "--oracles", "fd", *flags],
                              cwd=models, capture_output=True, text=True, timeout=300, env=env)
        assert proc.returncode == code, proc.stderr
        assert proc.stdout.splitlines()[-1] == (
            "crosscheck: 1 case(s): 0 agree, 1 inconclusive (logit/logistic)")


@pytest.mark.parametrize("flags, code", [([], 3), (["--strict"], 3),
                                         (["--allow-inconclusive"], 0)])
def test_cli_inconclusive_flags(models, capsys, flags, code):
    for command in ("check", "run"):
        assert main([command, "models/logit.py:logistic", "--oracles", "fd", "--quiet",
                     *flags]) == code
        assert "1 inconclusive (logit/logistic)" in capsys.readouterr().out


def test_cli_allowing_inconclusive_never_hides_a_flag_or_an_error(models, capsys):
    assert main(["check", "models/logit.py:logistic", "models/logit.py:wrong", "--oracles",
                 "fd", "--quiet", "--allow-inconclusive"]) == 1
    assert main(["run", "models/logit.py:logistic", "models/logit.py:broken", "--oracles",
                 "fd", "--quiet", "--allow-inconclusive"]) == 2
    assert "1 inconclusive (logit/logistic), 1 could not be checked" in capsys.readouterr().out


def test_cli_strict_and_allow_inconclusive_exclude_each_other(models, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["check", "models/logit.py:logistic", "--strict", "--allow-inconclusive"])
    assert exc.value.code == 2
    assert ("argument --allow-inconclusive: not allowed with argument --strict"
            in capsys.readouterr().err)


def _help(command: str, capsys) -> str:
    """The help text without its white space: argparse wraps lines, at hyphens too."""
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    return "".join(capsys.readouterr().out.split())


def test_cli_help_documents_exit_3_and_the_flags(capsys):
    for command in ("check", "run"):
        text = _help(command, capsys)
        assert ("3:noblockflaggedbutacaseisinconclusive(0with--allow-inconclusive)" in text)
        assert "--strictaninconclusivecase(noblockflagged)exits3" in text
        assert "-kPATTERNcheckonlythecaseswhoselabel--`file/case`" in text
    text = _help("compare", capsys)
    assert "3whennothingdoesbutacaseisnewlyinconclusive(0with--allow-inconclusive)" in text


# --------------------------------------------------------------------------- compare

def _doc(case, outcome, flagged=(), inconclusive=()):
    return {"schema": "crosscheck.report/1", "case": case, "outcome": outcome,
            "ok": not flagged, "flagged": list(flagged), "inconclusive": list(inconclusive),
            "blocks": {}, "oracles": {}}


def test_compare_shows_a_case_that_is_no_longer_vouched_for():
    old = [_doc("a", "agrees"), _doc("b", "inconclusive", inconclusive=["W"]),
           _doc("c", "inconclusive", inconclusive=["W"]), _doc("d", "flagged", ["W"])]
    new = [_doc("a", "inconclusive", inconclusive=["W"]), _doc("b", "agrees"),
           _doc("c", "flagged", ["W"]), _doc("d", "inconclusive", inconclusive=["W"])]
    cmp = compare_runs(old, new)
    assert cmp.inconclusive == [{"case": "a", "now": "inconclusive W", "before": "agrees"},
                                {"case": "d", "now": "inconclusive W", "before": "flagged W"}]
    assert [f["case"] for f in cmp.fixed] == ["b"]
    assert cmp.new_failures == [{"case": "c", "now": "flagged W", "before": "inconclusive W"}]
    assert cmp.failed and not cmp.unvouched
    from crosscheck._render_comparison import render_comparison
    text = render_comparison(cmp)
    assert "  NOT VOUCHED  a: inconclusive W (before: agrees)" in text.splitlines()
    assert "1 new failure(s) (c), 2 newly inconclusive (a, d), 1 fixed" in text


def test_compare_exit_3_for_a_newly_inconclusive_case(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    old = {"case": "a", "schema": "crosscheck.report/1", "ok": True, "flagged": [],
           "inconclusive": []}   # written before reports had `outcome`: derived
    (tmp_path / "old.json").write_text(json.dumps([old]))
    (tmp_path / "new.json").write_text(json.dumps([_doc("a", "inconclusive",
                                                        inconclusive=["W"])]))
    assert main(["compare", "old.json", "new.json"]) == 3
    assert "NOT VOUCHED  a: inconclusive W (before: agrees)" in capsys.readouterr().out
    assert main(["compare", "old.json", "new.json", "--allow-inconclusive"]) == 0
    assert main(["compare", "new.json", "old.json", "--strict"]) == 0   # vouched again: fixed
    assert "FIXED        a: agrees now (before: inconclusive W)" in capsys.readouterr().out


def test_compare_says_a_case_still_inconclusive_and_exits_0(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    doc = [_doc("a", "inconclusive", inconclusive=["W"])]
    (tmp_path / "old.json").write_text(json.dumps(doc))
    (tmp_path / "new.json").write_text(json.dumps(doc))
    assert main(["compare", "old.json", "new.json"]) == 0     # nothing new: not the job's to fail
    assert capsys.readouterr().out.splitlines()[0].endswith("1 still inconclusive (a)")


@pytest.mark.parametrize("change, match", [
    ({"outcome": "agrees", "flagged": ["W"], "ok": False},
     r"says `outcome: agrees` where its blocks say 'flagged'"),
    ({"outcome": "fine"}, r"has `outcome` = 'fine', not one of 'agrees', 'flagged'"),
    ({"inconclusive": "W"}, r"has `inconclusive` = 'W', not a list of block names"),
])
def test_read_run_refuses_an_outcome_its_blocks_contradict(tmp_path, change, match):
    (tmp_path / "r.json").write_text(json.dumps([{**_doc("a", "agrees"), **change}]))
    with pytest.raises(CheckError, match=match):
        read_run(tmp_path / "r.json")


# --------------------------------------------------------------------------- report.save

@pytest.mark.parametrize("name, start", [
    ("r.html", "<!DOCTYPE html>"), ("r.json", "{\n"), ("r.md", "## logit/logistic"),
    ("r.txt", "logit/logistic: INCONCLUSIVE"), ("R.XML", '<?xml version="1.0"'),
])
def test_save_by_suffix(unsure, tmp_path, name, start):
    path = unsure.save(tmp_path / "deep" / name)
    assert path == tmp_path / "deep" / name
    text = path.read_text(encoding="utf-8")
    assert text.startswith(start)
    assert "inconclusive" in text.lower()
    assert [p.name for p in (tmp_path / "deep").iterdir()] == [name]   # no temporary left
    if name == "r.json":
        assert json.loads(text) == json.loads(json.dumps(unsure.to_dict()))


def test_save_markdown_has_the_table_and_the_reason(unsure, tmp_path):
    text = unsure.save(str(tmp_path / "r.md")).read_text(encoding="utf-8")
    assert "| w | 3 | 7.52e-06 | ?? |" in text.splitlines()
    assert f"- w (inconclusive): {REASON}" in text.splitlines()


@pytest.mark.parametrize("name, match", [
    ("r.pdf", r"cannot save a report as `.*r\.pdf`: it has suffix `\.pdf`; end the path with "
              r"one of \.html, \.json, \.md, \.txt, \.xml \(HTML, JSON, Markdown, text, JUnit "
              r"XML\)\."),
    ("report", r"cannot save a report as `.*report`: it has no suffix; end the path with one "
               r"of \.html"),
])
def test_save_refuses_an_unknown_suffix(unsure, tmp_path, name, match):
    with pytest.raises(CheckError, match=match):
        unsure.save(tmp_path / name)
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- -k PATTERN

def test_k_selects_cases_by_label(models, capsys):
    assert main(["check", "models/logit.py:logistic", "models/logit.py:wrong", "--oracles",
                 "fd", "--quiet", "-k", "WRO", "--json", "k.json"]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "crosscheck: 1 case(s): 0 agree, 1 flagged (logit/wrong)"
    assert json.loads((models / "k.json").read_text())["case"] == "logit/wrong"
    (models / "pyproject.toml").write_text(
        '[tool.crosscheck]\ncases = ["models/logit.py:logistic", "models/logit.py:good"]\n'
        'oracles = ["fd"]\n')
    assert main(["run", "--quiet", "-k", "logit/go"]) == 0   # the label: file/case
    assert capsys.readouterr().out.splitlines()[-1] == "crosscheck: 1 case(s): 1 agree"


def test_k_matching_no_case_exits_2_naming_the_pattern(models, capsys):
    assert main(["check", "models/logit.py:logistic", "models/logit.py:good", "--oracles",
                 "fd", "--quiet", "-k", "nothing"]) == 2
    err = capsys.readouterr().err
    assert ("crosscheck: -k `nothing` matched none of the 2 case(s) found (logit/logistic, "
            "logit/good); it keeps the cases whose label (`file/case`) contains it, ignoring "
            "case.") in err
    assert main(["run", "models/nope.py:x", "-k", "x", "--quiet"]) == 2
    err = capsys.readouterr().err   # the target's own error says why nothing matched
    assert "nope.py" in err and "-k `x`" not in err


# --------------------------------------------------------------------------- said once

@pytest.fixture(scope="module")
def torch_failed():
    pytest.importorskip("torch")

    def broken(p, X, y):
        raise ZeroDivisionError("division by zero in the custom op")

    params, X, y = tanh_model()
    return crosscheck.check({"numpy": tanh_loss, "torch": broken}, tanh_grad, params, X, y,
                            oracles=("fd", "torch"), case="tanh/torch-fails")


def test_each_oracle_error_is_said_once(torch_failed):
    error = torch_failed.oracles["torch"].error
    assert "ZeroDivisionError: division by zero in the custom op" in error
    assert f"torch: {error}" in torch_failed.notes     # the data keeps it among the notes
    assert str(torch_failed).count("division by zero in the custom op") == 1
    from crosscheck._render_markdown import render_report_markdown
    assert render_report_markdown(torch_failed).count("division by zero") == 1
    assert render_page([torch_failed]).count("division by zero in the custom op") == 1


# --------------------------------------------------------------------------- HTML details

def test_html_has_the_taylor_line_the_worst_elements_and_the_full_width(logit):
    pytest.importorskip("matplotlib")
    wrong = _check(logit.wrong)
    html = render_page([wrong])
    assert "<li>Taylor remainder order (2 = consistent, 1 = wrong): w 1.00</li>" in html
    element = wrong.blocks["w"].diagnosis.elements[0]
    assert (f'<tr><td class="num">{tuple(element["index"])}</td><td class="num">'
            f'{element["hand"]:.6g}</td><td class="num">{element["reference"]:.6g}</td></tr>'
            ) in html
    assert '<table class="worst"><tr><th>element</th><th>hand</th><th>fd</th></tr>' in html
    assert "max-width: 1100px" not in html


def test_tolerance_ticks_are_labelled_per_oracle(reports):
    pytest.importorskip("matplotlib")
    pytest.importorskip("jax")
    pytest.importorskip("torch")
    from crosscheck import _render_html

    report = reports.get("seed_net", "buggy")
    labels = []

    def figure(**kwargs):
        fig = _render_html._figure()(**kwargs)
        labels.append(fig)
        return fig

    assert _render_html.difference_chart(report, figure).startswith("data:image/png;base64,")
    texts = [t.get_text() for ax in labels[0].axes for t in ax.texts]
    assert texts == ["fd tol.", "jax tol.", "torch tol."]
    legend = [t.get_text() for t in labels[0].axes[0].get_legend().get_texts()]
    assert "tolerance (per oracle)" in legend


def test_heat_map_names_its_axes(reports):
    pytest.importorskip("matplotlib")
    from crosscheck import _render_html

    block = reports.get("seed_net", "buggy", oracles=("fd",)).blocks["W2"]
    figs = []

    def figure(**kwargs):
        figs.append(_render_html._figure()(**kwargs))
        return figs[-1]

    assert _render_html.mismatch_map(block, figure).startswith("data:image/png;base64,")
    ax = figs[0].axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("column", "row")
    assert ax.get_title(loc="left").startswith("W2: ")
    assert figs[0].axes[1].get_ylabel() == "|hand − ref| / tolerance (above 1: beyond)"
    np.testing.assert_array_equal(ax.get_xticks(), np.arange(5))


@pytest.mark.parametrize("path", [None, 3, b"r.json"])
def test_save_refuses_what_is_no_path(unsure, path):
    with pytest.raises(CheckError, match=r"^`report\.save` needs a path \(a str or pathlib\.Path\)"):
        unsure.save(path)


def test_save_expands_home_and_names_a_path_it_cannot_write(unsure, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert unsure.save("~/r.json") == tmp_path / "r.json"
    assert (tmp_path / "r.json").is_file()
    (tmp_path / "folder.json").mkdir()
    with pytest.raises(CheckError, match=r"^cannot save the report to `.*folder\.json`: "):
        unsure.save(tmp_path / "folder.json")


def test_k_on_a_target_that_does_not_load_says_only_why_it_did_not(models, capsys):
    assert main(["check", "models/missing.py:x", "--oracles", "fd", "-k", "zzz"]) == 2
    err = capsys.readouterr().err
    assert "-k `zzz`" not in err and "missing.py" in err
