"""``crosscheck.oracles``: the registry, each oracle on its own, and a missing framework.

A framework that is not installed (simulated in a subprocess with ``sys.modules[name] =
None``, which is what ``import`` sees for an uninstalled package) or that fails to import
(a meta-path finder that raises) is reported as that oracle's ``error``; the other oracles
still decide and the verdicts stay right.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from crosscheck import oracles
from crosscheck._inputs import prepare_args, prepare_loss, prepare_params
from crosscheck.oracles import Problem
from conftest import run_python, tanh_grad, tanh_loss, tanh_model


def _problem(loss=tanh_loss, seed=0):
    params, X, y = tanh_model(seed=seed)
    blocks = prepare_params(params)
    spec = prepare_loss(loss)
    f0 = float(spec.numpy(blocks.as_dict(), X, y))
    return Problem(spec, blocks, prepare_args((X, y)), f0, 1e-16, {"seed": 0}), params, X, y


def test_registry_names():
    assert oracles.names() == ("fd", "jax", "torch")
    assert oracles.AUTODIFF == ("jax", "torch")


@pytest.mark.parametrize("name", ["fd", "jax", "torch"])
def test_each_oracle_returns_float64_gradients_of_the_block_shapes(name):
    if name != "fd":
        pytest.importorskip(name)
    problem, params, X, y = _problem()
    result = oracles.run(name, problem)
    assert result.ran and result.error is None and not result.skipped
    assert result.name == name
    assert result.version and result.seconds > 0
    exact = tanh_grad(params, X, y)
    for block, value in exact.items():
        got = result.grads[block]
        assert got.dtype == np.float64 and got.shape == params[block].shape
        tol = 1e-7 if name == "fd" else 1e-14
        np.testing.assert_allclose(got, value, rtol=tol, atol=tol)
    assert result.forward == pytest.approx(problem.loss_value, rel=1e-14)


def test_jax_runs_in_float64_without_changing_the_global_setting():
    jax = pytest.importorskip("jax")
    before = jax.config.jax_enable_x64
    problem, params, X, y = _problem()
    result = oracles.run("jax", problem)
    assert jax.config.jax_enable_x64 == before
    exact = tanh_grad(params, X, y)
    np.testing.assert_allclose(result.grads["W"], exact["W"], rtol=1e-14)


def test_torch_unused_block_is_exactly_zero_with_a_note():
    pytest.importorskip("torch")

    def loss(p, X, y):
        return tanh_loss(p, X, y)

    params, X, y = tanh_model()
    params["unused"] = np.ones(2)
    problem = Problem(prepare_loss(loss), prepare_params(params), (X, y),
                      float(loss(params, X, y)), 1e-16)
    result = oracles.run("torch", problem)
    assert result.grads["unused"].tolist() == [0.0, 0.0]
    assert any("`unused`" in n for n in result.notes)


def test_oracle_failure_becomes_an_error_string():
    pytest.importorskip("torch")

    def bad(p, X, y):
        raise ZeroDivisionError("division by zero in the custom op")

    problem, *_ = _problem(loss={"numpy": tanh_loss, "torch": bad})
    result = oracles.run("torch", problem)
    assert not result.ran
    assert "ZeroDivisionError" in result.error
    assert "division by zero in the custom op" in result.error
    assert result.version and result.version.startswith("torch ")


@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad=True:UserWarning")
def test_torch_loss_leaving_the_graph_is_explained():
    pytest.importorskip("torch")

    def detached(p, X, y):
        return float(tanh_loss(p, X, y))

    problem, *_ = _problem(loss={"numpy": tanh_loss, "torch": detached})
    result = oracles.run("torch", problem)
    assert not result.ran
    assert "returned float under torch" in result.error
    assert "autograd graph" in result.error


# --- a framework missing or broken (subprocesses) ---------------------------------------------

_MODEL = """
import json, sys
import numpy as np
sys.path.insert(0, "tests")
{block}
import crosscheck
from conftest import planted, tanh_grad, tanh_loss, tanh_model
params, X, y = tanh_model()
good = crosscheck.check(tanh_loss, tanh_grad, params, X, y)
bad = crosscheck.check(tanh_loss, planted(tanh_grad, W=lambda g, p: 2 * g,
                                          v=lambda g, p: -g), params, X, y)
print(json.dumps({{"good": good.to_dict(), "bad": bad.to_dict(),
                  "loaded": sorted(m for m in ("jax", "torch") if sys.modules.get(m))}}))
"""

# Not installed: every finder on sys.meta_path is wrapped so that it cannot find the package
# (``find_spec`` returns None and ``import`` raises ModuleNotFoundError, as without it).
_NOT_INSTALLED = """
class _Hide:
    def __init__(self, inner):
        self.inner = inner
    def find_spec(self, fullname, path=None, target=None):
        if fullname == {name!r} or fullname.startswith({name!r} + "."):
            return None
        find = getattr(self.inner, "find_spec", None)
        return find(fullname, path, target) if find else None
    def __getattr__(self, attr):
        return getattr(self.inner, attr)
sys.meta_path[:] = [_Hide(f) for f in sys.meta_path]
"""

# Installed but broken: the package is found, importing it raises (e.g. a jaxlib mismatch).
_BROKEN = """
import importlib.abc, importlib.machinery
class _Fail(importlib.abc.Loader):
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        raise ImportError("simulated broken install of " + module.__name__)
class _Broken(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == {name!r}:
            return importlib.machinery.ModuleSpec(fullname, _Fail())
        return None
sys.meta_path.insert(0, _Broken())
"""

# The classic test idiom: a finder that refuses the import outright from ``find_spec``.
_BLOCKED = """
import importlib.abc
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == {name!r} or fullname.startswith({name!r} + "."):
            raise ModuleNotFoundError(f"No module named {{fullname!r}} (blocked)")
        return None
sys.meta_path.insert(0, _Block())
"""


_HOW = {"not_installed": _NOT_INSTALLED, "broken": _BROKEN, "blocked": _BLOCKED}


@pytest.fixture(scope="module")
def without():
    """Every (framework, how) subprocess, started together once for the module."""
    pytest.importorskip("jax")
    pytest.importorskip("torch")
    from concurrent.futures import ThreadPoolExecutor

    keys = [(name, how) for how in _HOW for name in ("jax", "torch")]
    with ThreadPoolExecutor(max_workers=3) as pool:
        procs = dict(zip(keys, pool.map(
            lambda k: run_python(_MODEL.format(block=_HOW[k[1]].format(name=k[0]))), keys)))
    return procs


def _result(without, name, how):
    proc = without[(name, how)]
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _others_still_decide(out, name):
    other = "torch" if name == "jax" else "jax"
    good, bad = out["good"], out["bad"]
    assert "error" not in good["oracles"][other], good["oracles"][other]
    assert "error" not in good["oracles"]["fd"]
    assert good["ok"] is True and good["flagged"] == []
    assert bad["flagged"] == ["W", "v"]
    assert bad["blocks"]["W"]["diagnosis"]["kind"] == "scale"
    assert bad["blocks"]["W"]["diagnosis"]["factor"] == pytest.approx(2.0, rel=1e-6)
    assert bad["blocks"]["v"]["diagnosis"]["kind"] == "sign"
    for block in good["blocks"].values():
        assert block["difference"][name] is None
        assert block["difference"][other] <= 1e-13
        assert block["difference"]["fd"] <= 1e-9


@pytest.mark.parametrize("name", ["jax", "torch"])
def test_missing_framework_is_skipped_with_a_reason(without, name):
    out = _result(without, name, "not_installed")
    for report in (out["good"], out["bad"]):
        info = report["oracles"][name]
        assert info["skipped"] is True
        assert "skipped" in info["error"] and "not installed" in info["error"]
        assert f"pip install {name}" in info["error"]
    assert name not in out["loaded"]


@pytest.mark.parametrize("name", ["jax", "torch"])
def test_missing_framework_the_others_decide(without, name):
    _others_still_decide(_result(without, name, "not_installed"), name)


@pytest.mark.parametrize("name", ["jax", "torch"])
def test_broken_framework_install_is_an_error_and_the_others_decide(without, name):
    out = _result(without, name, "broken")
    error = out["good"]["oracles"][name]["error"]
    assert "ImportError" in error and "simulated broken install" in error
    _others_still_decide(out, name)


@pytest.mark.parametrize("name", ["jax", "torch"])
def test_import_blocking_finder_is_an_error_not_a_crash(without, name):
    out = _result(without, name, "blocked")
    error = out["good"]["oracles"][name]["error"]
    assert name in error
    _others_still_decide(out, name)
