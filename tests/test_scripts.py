"""The Quick start's main job: scripts/compare.py checks every reference case as expected,
and says so in one closing line."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _compare_module():
    spec = importlib.util.spec_from_file_location("_crosscheck_compare_script",
                                                  ROOT / "scripts" / "compare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _expected_counts():
    """``(correct, planted bugs, modules)`` as the reference modules' ``EXPECTED`` say."""
    compare = _compare_module()
    correct = bugs = modules = 0
    for _, module in compare._modules():
        modules += 1
        for case in module.cases:
            if module.EXPECTED[case.name]["flagged"]:
                bugs += 1
            else:
                correct += 1
    return correct, bugs, modules


def test_compare_script_reproduces_every_reference_expectation(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "table.md"
    proc = subprocess.run([sys.executable, "scripts/compare.py", "--oracles", "fd,torch",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = out.read_text()
    assert table.startswith("| case | block | fd | torch | verdict | diagnosis |")
    # every planted bug shows up, with its kind; every reference module is in the table
    assert "| seed_net/buggy | b1 |" in table and "scale 4" in table
    assert "| deep_net/buggy | W1 |" in table
    for stem in ("seed_net", "deep_net", "linear_1d", "softmax_regression", "l2_net",
                 "layer_norm", "rnn", "relu_kinks", "seed_numpy", "deep_numpy", "layers"):
        assert f"| {stem}/" in table, stem
    assert "| layers/affine/buggy | x |" in table
    assert "UNEXPECTED" not in proc.stderr
    correct, bugs, modules = _expected_counts()
    assert proc.stdout.splitlines()[-1] == (
        f"compare: {correct + bugs} cases from {modules} reference modules × 2 oracles "
        f"(fd, torch): all {correct} correct cases agree, all {bugs} planted bugs flagged on "
        f"exactly their blocks")
    assert "compare:" not in table          # the verdict closes the output, not the table


def test_compare_verdict_names_what_did_not_come_out_as_expected():
    compare = _compare_module()
    assert compare.verdict(1, 1, 1, ["fd"], ["m/buggy: flagged [], expected ['w']"]) == (
        "compare: 2 cases from 1 reference modules × 1 oracle (fd): 1 unexpected: "
        "m/buggy: flagged [], expected ['w']")


class _Block:
    def __init__(self, verdict):
        self.verdict = verdict


class _Report:
    def __init__(self, flagged, verdicts):
        self.flagged = flagged
        self.blocks = {name: _Block(v) for name, v in verdicts.items()}


def test_a_correct_case_must_be_vouched_for_not_merely_unflagged():
    surprise = _compare_module()._surprise
    unsure = _Report([], {"W1": "inconclusive", "b1": "ok"})
    assert surprise("m/correct", unsure, {"flagged": []}) == (
        "m/correct: inconclusive on ['W1'], expected []")
    assert surprise("m/correct", unsure, {"flagged": [], "inconclusive": ["W1"]}) is None
    assert surprise("m/buggy", _Report([], {"w": "ok"}), {"flagged": ["w"]}) == (
        "m/buggy: flagged [], expected ['w']")
    assert surprise("m/new", unsure, None) == "m/new: no EXPECTED entry"
