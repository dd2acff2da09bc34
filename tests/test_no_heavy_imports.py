"""Heavy backends stay lazy: ``import crosscheck`` and ``crosscheck --help`` import neither jax
nor torch (each proved in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT, run_python

HEAVY = ("jax", "jaxlib", "torch")

_REPORT = ("import json, sys; print(json.dumps(sorted(m for m in sys.modules "
           "if m.split('.')[0] in {heavy!r})))").format(heavy=set(HEAVY))


def _loaded(code):
    proc = run_python(code + "\n" + _REPORT)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_crosscheck_imports_neither_jax_nor_torch():
    assert _loaded("import crosscheck") == []


def test_public_names_import_neither():
    assert _loaded("import crosscheck\n"
                   "crosscheck.check, crosscheck.Case, crosscheck.CheckError, crosscheck.classic\n"
                   "import crosscheck.testing\n"
                   "import crosscheck._cli, crosscheck._targets, crosscheck._render_text") == []


@pytest.mark.parametrize("argv", [["--help"], ["check", "--help"]])
def test_cli_help_imports_neither(argv):
    code = ("import contextlib, io, crosscheck._cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n"
            f"        crosscheck._cli.main({argv!r})\n"
            "    except SystemExit as exc:\n"
            "        assert exc.code == 0, exc.code\n")
    assert _loaded(code) == []


def test_fd_only_check_imports_neither():
    code = ("import numpy as np, crosscheck\n"
            "r = crosscheck.check(lambda p: float(np.sum(p['w'] ** 2)), "
            "lambda p: {'w': 2 * p['w']}, {'w': np.array([1.0, 2.0])}, oracles=('fd',))\n"
            "assert r.ok\n"
            "str(r); r.to_dict()\n")
    assert _loaded(code) == []


def test_importtime_of_cli_help_lists_no_heavy_module():
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "crosscheck", "--help"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")]
    assert "crosscheck._cli" in imported
    assert "usage:" in proc.stdout
    assert not [m for m in imported if m.split(".")[0] in HEAVY]
