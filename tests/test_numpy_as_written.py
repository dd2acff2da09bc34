"""Numpy as written: the seeds' own numpy code, unchanged, checked under jax and torch.

The losses here are plain numpy (``np.dot``, ``np.multiply``, ``np.int64(A2 > 0)``,
``np.nanmean``), in user modules that import their helpers from other user modules
(``from gc_utils import relu, sigmoid``) or reach them through a module object
(``model.forward_propagate``). The jax and torch oracles run that code with ``np`` rebound
(``crosscheck._rebind``); these tests prove that both oracles really ran on every block, that
the verdicts are the seeds' (a correct backward passes, a planted bug is flagged on exactly its
blocks), that what jax or torch cannot trace is named with its line and its fix while the other
references still decide, and that the user's modules are untouched -- also when checks run
concurrently.
"""

from __future__ import annotations

import dis
import importlib
import inspect
import re
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import crosscheck
from crosscheck._targets import _load_file, load
from conftest import ROOT

jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")

REFERENCE = ROOT / "reference"
SEEDS = ROOT.parent / "shared" / "seeds"   # the course documents, beside the project
DOC = ROOT / "docs" / "numpy-as-written.md"


# ------------------------------------------------------------------ loading, as the CLI does
@pytest.fixture(scope="module")
def seed_numpy():
    """``reference/seed_numpy.py`` loaded by path with its folder on ``sys.path`` (the CLI's way)."""
    return _load_file(REFERENCE / "seed_numpy.py")


@pytest.fixture(scope="module")
def deep_numpy():
    return _load_file(REFERENCE / "deep_numpy.py")


@pytest.fixture(scope="module")
def gc_utils(seed_numpy):
    module = sys.modules[seed_numpy.relu.__module__]
    assert module.__file__ == str(REFERENCE / "gc_utils.py")
    return module


class _Reports:
    """One report per (module, case) for this file."""

    def __init__(self):
        self.cache = {}

    def get(self, module, name):
        key = (module.__name__, name)
        if key not in self.cache:
            case = next(c for c in module.cases if c.name == name)
            self.cache[key] = crosscheck.check(case.loss, case.grad, case.params, *case.args,
                                               case=name)
        return self.cache[key]


@pytest.fixture(scope="module")
def reports():
    return _Reports()


def _assert_both_autodiff_ran_everywhere(report):
    data = report.to_dict()
    for name in ("fd", "jax", "torch"):
        assert report.oracles[name].error is None, (name, report.oracles[name].error)
        assert "error" not in data["oracles"][name]
    for oracle in ("jax", "torch"):
        assert data["oracles"][oracle]["parity"] is True
        assert report.forward[oracle] == pytest.approx(report.forward["numpy"], rel=1e-12)
    for block, entry in data["blocks"].items():
        for oracle in ("fd", "jax", "torch"):
            value = entry["difference"][oracle]
            assert isinstance(value, float) and np.isfinite(value), (block, oracle, value)


# ------------------------------------------------------------------ verbatim
def _seed(prefix):
    path = next(SEEDS.glob(f"{prefix}_*.txt"), None)
    if path is None:
        pytest.skip(f"seed {prefix} not available at {SEEDS}")
    return "\n".join(line.rstrip() for line in path.read_text(encoding="utf-8").splitlines())


def _source(fn):
    return "\n".join(line.rstrip() for line in inspect.getsource(fn).splitlines())


def test_seed_numpy_is_the_seeds_code_verbatim(seed_numpy, gc_utils):
    seed000, seed003 = _seed("000"), _seed("003")
    for fn in (seed_numpy.forward_propagation_n, seed_numpy.backward_propagation_n):
        assert _source(fn) in seed000, fn.__name__
    bug_w2 = "    dW2 = 1. / m * np.dot(dZ2, A1.T) * 2"
    bug_b1 = "    db1 = 4. / m * np.sum(dZ1, axis=1, keepdims=True)"
    assert bug_w2 in seed003 and bug_b1 in seed003
    expected = (_source(seed_numpy.backward_propagation_n)
                .replace("def backward_propagation_n(", "def backward_propagation_n_buggy(")
                .replace("    dW2 = 1. / m * np.dot(dZ2, A1.T)\n", bug_w2 + "\n")
                .replace("    db1 = 1. / m * np.sum(dZ1, axis=1, keepdims=True)\n", bug_b1 + "\n"))
    assert _source(seed_numpy.backward_propagation_n_buggy) == expected
    assert _source(seed_numpy.gradient_check_n_test_case) in seed003
    for fn in (gc_utils.relu, gc_utils.sigmoid):
        assert _source(fn) in seed003
    assert "from gc_utils import sigmoid, relu, dictionary_to_vector, vector_to_dictionary, " \
           "gradients_to_vector" in seed000
    for fn in (seed_numpy.forward_propagation_n, gc_utils.relu, gc_utils.sigmoid):
        assert "array_namespace" not in _source(fn) and "xp." not in _source(fn)
    X, Y, _ = seed_numpy.gradient_check_n_test_case()
    assert Y.shape == (3,) and Y.dtype.kind == "i"


def test_deep_numpy_is_the_seeds_code_verbatim(deep_numpy):
    seed002 = _seed("002")
    for fn in (deep_numpy.sigmoid, deep_numpy.relu, deep_numpy.forward_propagate,
               deep_numpy.compute_cost, deep_numpy.backward_propagate,
               deep_numpy.gradient_check_n_test_case):
        assert _source(fn) in seed002, fn.__name__
    buggy = _source(deep_numpy.backward_propagate_buggy).replace(
        "def backward_propagate_buggy(", "def backward_propagate(")
    assert buggy in seed002
    assert "-np.nanmean(logprobs)" in _source(deep_numpy.compute_cost)
    assert deep_numpy.Y.shape == (3,)


# ------------------------------------------------------------------ 1. the seeds' 3-layer net
@pytest.mark.parametrize("name", ["correct", "buggy"])
def test_seed_numpy_verdicts_with_both_autodiff_oracles(seed_numpy, reports, name):
    report = reports.get(seed_numpy, name)
    expected = seed_numpy.EXPECTED[name]
    assert report.flagged == expected["flagged"]
    assert report.ok is (not expected["flagged"])
    for block, (kind, factor) in expected["kinds"].items():
        assert report.blocks[block].diagnosis.kind == kind
        assert report.blocks[block].diagnosis.factor == pytest.approx(factor, rel=1e-6)
    _assert_both_autodiff_ran_everywhere(report)


def test_seed_numpy_agrees_with_the_array_api_version(seed_numpy, reports):
    """The verbatim numpy loss and seed_net's array-API rewrite are the same function."""
    spec = importlib.util.spec_from_file_location("_cc_nw_seed_net", REFERENCE / "seed_net.py")
    seed_net = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seed_net)
    report = reports.get(seed_numpy, "buggy")
    assert report.forward["numpy"] == pytest.approx(
        float(seed_net.loss(seed_net.parameters, seed_net.X, seed_net.Y)), rel=1e-14)


def test_seed_numpy_imports_as_a_package_module_too(monkeypatch):
    """``import reference.seed_numpy`` takes relu/sigmoid from ``reference.gc_utils``."""
    monkeypatch.syspath_prepend(str(ROOT))
    for name in ("reference.seed_numpy", "reference.gc_utils"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    module = importlib.import_module("reference.seed_numpy")
    assert module.relu.__module__ == "reference.gc_utils"
    assert module.relu is sys.modules["reference.gc_utils"].relu
    case = module.buggy
    report = crosscheck.check(case.loss, case.grad, case.params, *case.args, taylor=False)
    assert report.flagged == ["b1", "W2"]
    assert report.oracles["jax"].error is None and report.oracles["torch"].error is None


def test_seed_numpy_on_the_command_line():
    cases = load(f"{REFERENCE / 'seed_numpy.py'}:cases")
    assert [t.label for t in cases] == ["seed_numpy/correct", "seed_numpy/buggy"]


# ------------------------------------------------------------------ 2. seed 002 through its module
@pytest.mark.parametrize("name", ["correct", "buggy"])
def test_deep_numpy_verdicts_with_both_autodiff_oracles(deep_numpy, reports, name):
    report = reports.get(deep_numpy, name)
    expected = deep_numpy.EXPECTED[name]
    assert report.flagged == expected["flagged"]
    for block, (kind, factor) in expected["kinds"].items():
        assert report.blocks[block].diagnosis.kind == kind
        assert report.blocks[block].diagnosis.factor == pytest.approx(factor, rel=1e-6)
    _assert_both_autodiff_ran_everywhere(report)


def test_deep_numpy_loss_goes_through_module_attributes(deep_numpy, monkeypatch):
    """The loss reads ``model.forward_propagate``/``model.compute_cost`` at call time, under
    every oracle: replacing the module's attribute changes what jax and torch compute."""
    loss = deep_numpy.loss
    assert deep_numpy.model is deep_numpy
    ops = [(i.opname, i.argval) for i in dis.get_instructions(loss)]
    assert ("LOAD_GLOBAL", "model") in ops
    for attr in ("forward_propagate", "compute_cost"):
        assert any(op in ("LOAD_ATTR", "LOAD_METHOD") and arg == attr for op, arg in ops), attr
        assert ("LOAD_GLOBAL", attr) not in ops
    case = deep_numpy.correct
    original = deep_numpy.compute_cost
    f0 = float(loss(case.params, *case.args))
    monkeypatch.setattr(deep_numpy, "compute_cost", lambda AL, Y: 2 * original(AL, Y))
    report = crosscheck.check(loss, lambda p, X, Y: {k: 2 * v for k, v in case.grad(p, X, Y).items()},
                              case.params, *case.args, taylor=False)
    assert report.ok
    for framework in ("numpy", "jax", "torch"):
        assert report.forward[framework] == pytest.approx(2 * f0, rel=1e-12), framework
    monkeypatch.undo()
    assert deep_numpy.compute_cost is original


# ------------------------------------------------------------------ 3. in-place masked write
def inplace_relu_loss(p, X, Y):
    m = X.shape[1]
    A1 = np.dot(p["W1"], X) + p["b1"]
    A1[A1 < 0] = 0
    Z2 = np.dot(p["W2"], A1) + p["b2"]
    return np.sum((Z2 - Y) ** 2) / (2 * m)


def inplace_relu_grad(p, X, Y):
    m = X.shape[1]
    Z1 = np.dot(p["W1"], X) + p["b1"]
    A1 = np.maximum(Z1, 0)
    dZ2 = (np.dot(p["W2"], A1) + p["b2"] - Y) / m
    dZ1 = np.dot(p["W2"].T, dZ2) * (Z1 > 0)
    return {"W1": dZ1 @ X.T, "b1": dZ1.sum(axis=1, keepdims=True),
            "W2": dZ2 @ A1.T, "b2": dZ2.sum(axis=1, keepdims=True)}


def inplace_relu_grad_buggy(p, X, Y):
    m = X.shape[1]
    Z1 = np.dot(p["W1"], X) + p["b1"]
    A1 = np.maximum(Z1, 0)
    dZ2 = (np.dot(p["W2"], A1) + p["b2"] - Y) / m
    dZ1 = np.dot(p["W2"].T, dZ2)  # BUG: the ReLU's derivative forgotten
    return {"W1": dZ1 @ X.T, "b1": dZ1.sum(axis=1, keepdims=True),
            "W2": dZ2 @ A1.T, "b2": dZ2.sum(axis=1, keepdims=True)}


def inplace_clip_loss(p, X, Y):
    m = X.shape[1]
    A1 = np.exp(np.dot(p["W1"], X) + p["b1"])
    A1[A1 > 2] = 2
    Z2 = np.dot(p["W2"], A1) + p["b2"]
    return np.sum((Z2 - Y) ** 2) / (2 * m)


def inplace_clip_grad(p, X, Y):
    m = X.shape[1]
    E = np.exp(np.dot(p["W1"], X) + p["b1"])
    A1 = np.minimum(E, 2)
    dZ2 = (np.dot(p["W2"], A1) + p["b2"] - Y) / m
    dZ1 = np.dot(p["W2"].T, dZ2) * E * (E < 2)
    return {"W1": dZ1 @ X.T, "b1": dZ1.sum(axis=1, keepdims=True),
            "W2": dZ2 @ A1.T, "b2": dZ2.sum(axis=1, keepdims=True)}


def _two_layer(seed=0):
    rng = np.random.default_rng(seed)
    params = {"W1": rng.standard_normal((4, 3)), "b1": rng.standard_normal((4, 1)),
              "W2": rng.standard_normal((2, 4)), "b2": rng.standard_normal((2, 1))}
    return params, rng.standard_normal((3, 6)), rng.standard_normal((2, 6))


def _line_of(fn, text):
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, line in enumerate(lines) if line.strip() == text)


THIS = Path(__file__).name


def test_inplace_masked_write_runs_under_all_three():
    """``A1[A1 < 0] = 0``: jax runs it as a functional update (``.at[...]``), torch's autograd
    follows the write; the correct gradient agrees with all three."""
    params, X, Y = _two_layer()
    report = crosscheck.check(inplace_relu_loss, inplace_relu_grad, params, X, Y)
    assert all(report.oracles[n].error is None for n in ("fd", "jax", "torch"))
    assert report.ok and report.flagged == []
    for block in report.blocks.values():
        assert block.difference["fd"] < 1e-8
        assert block.difference["jax"] < 1e-12 and block.difference["torch"] < 1e-12


def test_inplace_masked_write_planted_bug_still_flagged():
    params, X, Y = _two_layer()
    report = crosscheck.check(inplace_relu_loss, inplace_relu_grad_buggy, params, X, Y)
    assert report.flagged == ["W1", "b1"]
    for name in report.flagged:
        assert set(report.blocks[name].disagree) >= {"fd", "jax", "torch"}


def test_inplace_write_on_a_value_the_backward_needs_runs_functionally_under_torch():
    """``np.exp`` saves its output for its backward: torch's autograd refuses a write into it,
    so the torch oracle runs the code again with the write made into a copy, and says so."""
    params, X, Y = _two_layer(1)
    report = crosscheck.check(inplace_clip_loss, inplace_clip_grad, params, X, Y)
    assert all(report.oracles[n].error is None for n in ("fd", "jax", "torch"))
    assert report.oracles["torch"].mode == "functional writes"
    assert report.oracles["jax"].mode in ("jit", "eager")
    assert report.ok, str(report)
    bad = crosscheck.check(inplace_clip_loss, lambda p, X, Y: {**inplace_clip_grad(p, X, Y),
                                                             "b2": 0 * p["b2"]}, params, X, Y)
    assert bad.flagged == ["b2"]
    assert set(bad.blocks["b2"].disagree) >= {"fd", "jax", "torch"}


# ------------------------------------------------------------------ 6. jax: tracing first
def item_loss(p, X, Y):
    r = np.dot(p["W"], X) - Y
    s = np.sum(r ** 2)
    return float(s.item()) * s


def item_grad(p, X, Y):            # d(s²) = 2 s ds, ds = 2 r Xᵀ
    r = p["W"] @ X - Y
    return {"W": 4 * np.sum(r ** 2) * (r @ X.T)}


def item_grad_as_plain_jax_sees_it(p, X, Y):   # float(s) held constant: half the gradient
    r = p["W"] @ X - Y
    return {"W": 2 * np.sum(r ** 2) * (r @ X.T)}


def branch_loss(p, X, Y):
    r = np.dot(p["W"], X) - Y
    if r.sum() > 0:
        return np.sum(r ** 2)
    return np.sum(r ** 4)


def branch_grad(p, X, Y):
    r = p["W"] @ X - Y
    return {"W": (2 * r if r.sum() > 0 else 4 * r ** 3) @ X.T}


def _one_layer(shift):
    rng = np.random.default_rng(3)
    return {"W": rng.standard_normal((1, 3))}, rng.standard_normal((3, 5)), \
        rng.standard_normal((1, 5)) + shift


def test_plain_jax_grad_is_silently_wrong_on_item():
    """Why the pre-check exists: plain ``jax.grad`` lets ``.item()`` through, wrongly."""
    from crosscheck._rebind import run_rebound
    params, X, Y = _one_layer(0.0)
    rebound = run_rebound(item_loss, "jax")
    with jax.enable_x64(True):
        g = jax.grad(lambda p: rebound(p, X, Y))({"W": jax.numpy.asarray(params["W"])})
    np.testing.assert_allclose(np.asarray(g["W"]), item_grad_as_plain_jax_sees_it(params, X, Y)["W"],
                               rtol=1e-12)
    assert not np.allclose(np.asarray(g["W"]), item_grad(params, X, Y)["W"])


def test_item_conversion_is_an_error_under_both_and_fd_decides():
    params, X, Y = _one_layer(0.0)
    line = _line_of(item_loss, "return float(s.item()) * s")
    report = crosscheck.check(item_loss, item_grad, params, X, Y)
    data = report.to_dict()["oracles"]
    assert data["jax"]["error"] == (
        f"converts a traced value to a Python number (`.item()`) at {THIS}:{line} "
        f"(`return float(s.item()) * s`); keep it an array: under jax the gradient through that "
        f"number would be silently lost")
    # torch's guard refuses the same conversion rather than cutting the graph silently
    assert data["torch"]["error"].startswith(
        f"converts a traced value to a Python number (`float(...)`/`.item()`) at {THIS}:{line} ")
    assert "silently cuts the gradient" in data["torch"]["error"]
    assert report.ok, str(report)
    assert report.blocks["W"].agree == ["fd"]
    wrong = crosscheck.check(item_loss, item_grad_as_plain_jax_sees_it, params, X, Y)
    assert wrong.flagged == ["W"] and wrong.blocks["W"].diagnosis.factor == pytest.approx(0.5)


@pytest.mark.parametrize("shift, square", [(-10.0, True), (10.0, False)],
                         ids=["if-branch", "else-branch"])
def test_branch_on_array_value_runs_eagerly_under_jax_and_all_three_decide(shift, square):
    """jit cannot trace ``if r.sum() > 0:``; jax differentiates it eagerly, on concrete values,
    exactly as numpy takes the branch, and the report says it ran eagerly."""
    params, X, Y = _one_layer(shift)
    assert (float(np.sum(params["W"] @ X - Y)) > 0) is square
    report = crosscheck.check(branch_loss, branch_grad, params, X, Y)
    assert all(report.oracles[n].error is None for n in ("fd", "jax", "torch"))
    assert report.oracles["jax"].mode == "eager"
    assert report.ok and sorted(report.blocks["W"].agree) == ["fd", "jax", "torch"]

    def other_branch(p, X, Y):   # the gradient of the branch not taken: wrong here
        r = p["W"] @ X - Y
        return {"W": (4 * r ** 3 if square else 2 * r) @ X.T}

    wrong = crosscheck.check(branch_loss, other_branch, params, X, Y)
    assert wrong.flagged == ["W"]
    assert sorted(wrong.blocks["W"].disagree) == ["fd", "jax", "torch"]


# ------------------------------------------------------------------ 5. modules untouched
def _module_state(module):
    d = vars(module)
    return {"keys": list(d), "ids": {k: id(v) for k, v in d.items()},
            "np": d.get("np"),
            "code": {k: (v.__code__, id(v.__globals__)) for k, v in d.items()
                     if inspect.isfunction(v) and v.__module__ == module.__name__}}


def _assert_unchanged(modules, before):
    for module, state in zip(modules, before):
        after = _module_state(module)
        assert after["keys"] == state["keys"], module.__name__
        assert after["ids"] == state["ids"], module.__name__
        assert after["code"] == state["code"], module.__name__
        assert module.np is np
        for fn in after["code"]:
            assert getattr(module, fn).__globals__ is vars(module)


def test_modules_unchanged_after_checks(seed_numpy, deep_numpy, gc_utils, reports):
    modules = (seed_numpy, deep_numpy, gc_utils)
    before = [_module_state(m) for m in modules]
    params_before = {k: v.copy() for k, v in seed_numpy.parameters.items()}
    for module in (seed_numpy, deep_numpy):
        for case in module.cases:
            crosscheck.check(case.loss, case.grad, case.params, *case.args, fd=4, taylor=False)
    _assert_unchanged(modules, before)
    assert all(np.array_equal(seed_numpy.parameters[k], v) for k, v in params_before.items())
    assert seed_numpy.relu(np.array([-1.0, 2.0])).tolist() == [0.0, 2.0]


def test_modules_unchanged_and_results_right_with_concurrent_checks(seed_numpy, deep_numpy,
                                                                    gc_utils):
    modules = (seed_numpy, deep_numpy, gc_utils)
    before = [_module_state(m) for m in modules]
    jobs = [(seed_numpy, "correct"), (seed_numpy, "buggy"), (seed_numpy, "correct"),
            (seed_numpy, "buggy"), (deep_numpy, "correct"), (deep_numpy, "buggy")]
    barrier = threading.Barrier(len(jobs))
    results, errors = {}, []

    def run(i, module, name):
        case = next(c for c in module.cases if c.name == name)
        try:
            barrier.wait()
            results[i] = crosscheck.check(case.loss, case.grad, case.params, *case.args)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append((i, exc))

    threads = [threading.Thread(target=run, args=(i, *job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for i, (module, name) in enumerate(jobs):
        report = results[i]
        assert report.flagged == module.EXPECTED[name]["flagged"], (module.__name__, name)
        _assert_both_autodiff_ran_everywhere(report)
    _assert_unchanged(modules, before)


# ------------------------------------------------------------------ the benchmark
def test_bench_rebind_quick_prints_the_table():
    from conftest import run_python

    out = run_python("import runpy, sys; sys.argv = ['bench_rebind.py', '--quick']; "
                     "runpy.run_path('scripts/bench_rebind.py', run_name='__main__')")
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| model | params | oracle | rebound numpy (ms/call) |")
    assert [r.split(" | ")[2] for r in rows[1:]] == ["jax", "torch", "jax", "torch"]
    for row in rows[1:]:
        ratio = float(row.split(" | ")[5])
        assert 0 < ratio < 50, row


# ------------------------------------------------------------------ the document
def _doc_names(text):
    block = re.search(r"<!-- torch-supported:start -->(.*?)<!-- torch-supported:end -->", text, re.S)
    assert block, "docs/numpy-as-written.md lost its torch-supported block"
    return re.findall(r"`([^`]+)`", block.group(1))


def test_doc_lists_exactly_the_torch_layer_names():
    from crosscheck import _torch_numpy

    names = _doc_names(DOC.read_text(encoding="utf-8"))
    assert len(names) == len(set(names))
    assert names == _torch_numpy.supported()
