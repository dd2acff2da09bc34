"""The public API type-checks: mypy, configured in pyproject.toml ([tool.mypy]), on the
modules users import from. Internal modules are followed for their types only
(``follow_imports = "silent"``)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = (
    "crosscheck/__init__.py",
    "crosscheck/_case.py",
    "crosscheck/testing.py",
    "crosscheck/_errors.py",
    "crosscheck/_schemas.py",
)


def _mypy(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    env.pop("MYPYPATH", None)
    return subprocess.run([sys.executable, "-m", "mypy", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=600, env=env)


@pytest.fixture(scope="module")
def mypy_available():
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install -e '.[dev]')")


def test_public_api_type_checks(mypy_available, tmp_path):
    result = _mypy("--config-file", str(ROOT / "pyproject.toml"),
                   "--cache-dir", str(tmp_path / "cache"), *PUBLIC)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout, result.stdout


USER_CODE = """\
import numpy as np
import crosscheck
from crosscheck import Case, CheckError, Report
from crosscheck.testing import assert_gradients


def loss(p: dict[str, np.ndarray], x: np.ndarray) -> float:
    return float(((p["w"] * x).sum()) ** 2)


def grad(p: dict[str, np.ndarray], x: np.ndarray) -> dict[str, np.ndarray]:
    return {"w": 2 * (p["w"] * x).sum() * x}


params = {"w": np.array([1.0, 2.0])}
x = np.array([3.0, -1.0])
case = Case("demo", loss, grad, params, (x,), {"oracles": ("fd",)})
report: Report = crosscheck.check(case.loss, case.grad, case.params, *case.args)
ok: bool = report.ok
flagged: list = report.flagged
data: dict = report.to_dict()
again: Report = assert_gradients(loss, grad, params, x, oracles=["fd"])
version: str = crosscheck.__version__
try:
    pass
except CheckError as exc:
    message: str = str(exc)
"""
USER_MISTAKE = """\
from crosscheck import Case

case = Case("demo", lambda p: 0.0, lambda p: {}, {}, args=3)
"""


def test_user_code_type_checks_against_the_public_api(mypy_available, tmp_path):
    """What a user's mypy sees of crosscheck: typical code passes, a wrongly typed argument
    is caught."""
    (tmp_path / "user.py").write_text(USER_CODE)
    (tmp_path / "mistake.py").write_text(USER_MISTAKE)
    config = ("--config-file", str(ROOT / "pyproject.toml"), "--cache-dir",
              str(tmp_path / "cache"))
    good = _mypy(*config, str(tmp_path / "user.py"))
    bad = _mypy(*config, str(tmp_path / "mistake.py"))
    assert good.returncode == 0, good.stdout + good.stderr
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "mistake.py:3: error" in bad.stdout and '"args"' in bad.stdout, bad.stdout
