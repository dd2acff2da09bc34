"""The Quick start's main job: scripts/compare.py checks every reference case as expected."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


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
    assert "UNEXPECTED" not in proc.stderr
