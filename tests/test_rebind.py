"""Rebinding "numpy as written" losses to jax and torch: same code objects, user modules untouched."""

import functools
import importlib
import json
import subprocess
import sys
import textwrap
import threading

import re

import numpy as np
import pytest

from crosscheck._rebind import is_user_code, rebind, run_rebound
from crosscheck._trace_errors import NotTraceable, as_not_traceable, explain

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
torch = pytest.importorskip("torch")

MODULES = {
    "gc_utils": """
        import numpy as np

        def sigmoid(x):
            return 1 / (1 + np.exp(-x))

        def relu(x):
            return np.maximum(0, x)
        """,
    "seed000": """
        import numpy as np
        from gc_utils import relu, sigmoid

        def forward_propagation_n(X, Y, parameters):
            m = X.shape[1]
            W1 = parameters["W1"]
            b1 = parameters["b1"]
            W2 = parameters["W2"]
            b2 = parameters["b2"]
            W3 = parameters["W3"]
            b3 = parameters["b3"]
            Z1 = np.dot(W1, X) + b1
            A1 = relu(Z1)
            Z2 = np.dot(W2, A1) + b2
            A2 = relu(Z2)
            Z3 = np.dot(W3, A2) + b3
            A3 = sigmoid(Z3)
            logprobs = np.multiply(-np.log(A3), Y) + np.multiply(-np.log(1 - A3), 1 - Y)
            cost = 1. / m * np.sum(logprobs)
            cache = (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)
            return cost, cache

        def loss(parameters, X, Y):
            return forward_propagation_n(X, Y, parameters)[0]
        """,
    "model": """
        import numpy as np

        def sigmoid(Z):
            return 1 / (1 + np.exp(-Z))

        def relu(Z):
            return np.maximum(0, Z)

        def forward_propagate(parameters, X):
            L = len(parameters) // 2
            caches = {}
            A = X
            for l in range(1, L):
                Z = parameters['W' + str(l)] @ A + parameters['b' + str(l)]
                A = relu(Z)
                caches['A' + str(l)] = A
            Z = parameters['W' + str(L)] @ A + parameters['b' + str(L)]
            return sigmoid(Z), caches

        def compute_cost(AL, Y):
            logprobs = Y * np.log(AL) + (1 - Y) * np.log(1 - AL)
            return -np.nanmean(logprobs)
        """,
    "seed002": """
        import model

        def loss(parameters, X, Y):
            AL, _ = model.forward_propagate(parameters, X)
            return model.compute_cost(AL, Y)
        """,
    "styles": """
        import abc
        import functools
        import numpy
        import numpy as onp
        from numpy import exp, dot
        from array_api_compat import array_namespace
        from gc_utils import relu

        def make_closure(np_module, scale):
            act = np_module.tanh
            def loss(p, X):
                return scale * np_module.sum(act(np_module.dot(p["W"], X)) ** 2)
            return loss

        def int64_mask(p, X):
            Z = numpy.dot(p["W"], X)
            mask = numpy.int64(Z > 0)
            return numpy.sum(numpy.multiply(Z, mask) ** 2) + numpy.sum(numpy.square(p["W"]))

        def by_name(p, X):
            return onp.sum(exp(-dot(p["W"], X) ** 2)) + onp.nanmean(relu(p["W"]))

        def importing(p, X):
            import numpy as np2
            from gc_utils import sigmoid
            return np2.sum(sigmoid(p["W"] @ X), axis=1, keepdims=True).sum()

        def series(x, n):
            return onp.sum(x) if n == 0 else onp.sum(x) + series(0.5 * x, n - 1)

        def recursive(p, X):
            return series(onp.tanh(p["W"] @ X), 3)

        def weighted(p, X, w=1.5, act=onp.sin):
            return w * onp.sum(act(p["W"] @ X))

        X_DATA = numpy.linspace(-1, 1, 20).reshape(4, 5)
        SHIFT = {"shift": numpy.ones((3, 5))}

        def data_in_globals(p, X):  # numpy arrays met through globals meet tensors through operators
            return onp.sum((p["W"] @ X_DATA + SHIFT["shift"] * X[:3]) ** 2)

        def array_api(p, X):
            xp = array_namespace(p["W"])
            return xp.sum(xp.tanh(p["W"] @ X) ** 2)

        class Base(abc.ABC):
            def hidden(self, p, X):
                return self.act(dot(p["W"], X))

        class Net(Base):
            def __init__(self):
                self.act = relu

            def hidden(self, p, X):
                return super().hidden(p, X) + onp.tanh(p["W"] @ X)

            @property
            def width(self):
                return onp.float64(X_WIDTH)

            def loss(self, p, X):
                return onp.sum(self.hidden(p, X) ** 2) / self.width

        X_WIDTH = 5
        net = Net()

        def via_instance(p, X):
            return net.loss(p, X)

        partial_loss = functools.partial(weighted, w=2.0)
        """,
}


@pytest.fixture
def mods(tmp_path, monkeypatch):
    for name, src in MODULES.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(src))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    for name in MODULES:
        sys.modules.pop(name, None)
    loaded = {name: importlib.import_module(name) for name in MODULES}
    yield loaded
    for name in MODULES:
        sys.modules.pop(name, None)


def _seed_params(rng):
    shapes = {"W1": (5, 4), "b1": (5, 1), "W2": (3, 5), "b2": (3, 1), "W3": (1, 3), "b3": (1, 1)}
    return {k: rng.normal(size=s) for k, s in shapes.items()}


def _fd(f, params, *args, h=1e-6):
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    for k, v in params.items():
        for i in np.ndindex(v.shape):
            step = np.zeros_like(v)
            step[i] = h
            grads[k][i] = (f({**params, k: v + step}, *args) - f({**params, k: v - step}, *args)) / (2 * h)
    return grads


def _jax(loss, params, *args):
    f = run_rebound(loss, "jax")
    with jax.enable_x64(True):
        pj = {k: jnp.asarray(v) for k, v in params.items()}
        aj = tuple(jnp.asarray(a) for a in args)
        value, grads = jax.value_and_grad(lambda p: f(p, *aj))(pj)
        assert value.dtype == jnp.float64
        return float(value), {k: np.asarray(g) for k, g in grads.items()}


def _torch(loss, params, *args):
    """As the torch oracle runs rebound numpy code: torch's numpy-layer arrays in, a tensor out."""
    from crosscheck._torch_numpy import unwrap, wrap
    f = run_rebound(loss, "torch")
    pt = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    value = unwrap(f({k: wrap(t) for k, t in pt.items()}, *(wrap(torch.as_tensor(a)) for a in args)))
    value.backward()
    assert value.dtype == torch.float64
    return value.detach().item(), {k: t.grad.numpy() for k, t in pt.items()}


def _agree(loss, params, *args):
    reference = loss(params, *args)
    assert isinstance(reference, (float, np.floating))
    fd = _fd(loss, params, *args)
    (vj, gj), (vt, gt) = _jax(loss, params, *args), _torch(loss, params, *args)
    assert vj == pytest.approx(float(reference), rel=1e-12) and vt == pytest.approx(float(reference), rel=1e-12)
    for k in params:
        assert gj[k].dtype == gt[k].dtype == np.float64
        np.testing.assert_allclose(gj[k], fd[k], rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(gt[k], fd[k], rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(gj[k], gt[k], rtol=1e-10, atol=1e-12)


def _snapshot(loaded):
    return {name: dict(vars(mod)) for name, mod in loaded.items()}


def _assert_untouched(loaded, before):
    for name, mod in loaded.items():
        after = vars(mod)
        assert after.keys() == before[name].keys(), name
        assert all(after[k] is before[name][k] for k in after), name
        if "np" in after:
            assert mod.np is np


def test_seed000_forward_with_helpers_imported_by_name(mods):
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(4, 3)), np.array([[1.0, 1.0, 0.0]])
    before = _snapshot(mods)
    _agree(mods["seed000"].loss, _seed_params(rng), X, Y)
    _assert_untouched(mods, before)
    assert mods["gc_utils"].relu.__globals__["np"] is np


def test_seed002_model_module_used_by_attribute(mods):
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(4, 3)), np.array([[1.0, 1.0, 0.0]])
    before = _snapshot(mods)
    _agree(mods["seed002"].loss, _seed_params(rng), X, Y)
    _assert_untouched(mods, before)


@pytest.mark.parametrize("name", ["closure", "int64_mask", "by_name", "importing", "recursive", "weighted",
                                  "bound_method", "via_instance", "partial_loss", "array_api",
                                  "data_in_globals"])
def test_other_styles(mods, name):
    s = mods["styles"]
    loss = {"closure": lambda: s.make_closure(np, 0.7), "bound_method": lambda: s.net.loss}.get(
        name, lambda: getattr(s, name))()
    rng = np.random.default_rng(2)
    before = _snapshot(mods)
    _agree(loss, {"W": rng.normal(size=(3, 4))}, rng.normal(size=(4, 5)))
    _assert_untouched(mods, before)
    assert vars(s.net) == {"act": mods["gc_utils"].relu} and type(s.net) is s.Net


def test_same_code_objects_memoised_and_live(mods):
    s = mods["styles"]
    rebound = run_rebound(s.by_name, "jax")
    assert rebound is not s.by_name and rebound.__code__ is s.by_name.__code__
    assert rebound.__name__ == "by_name" and rebound.__qualname__ == "by_name"
    assert run_rebound(s.by_name, "jax") is rebound
    assert rebound.__globals__["relu"] is not s.relu
    assert rebound.__globals__["relu"].__code__ is s.relu.__code__
    assert rebound.__globals__["onp"] is rebound.__globals__["numpy"]
    with jax.enable_x64(True):
        X = jnp.ones((3, 4))
        first = rebound({"W": X}, X.T)
        s.relu = lambda x: 2 * x  # live: the user's current binding is used
        assert float(rebound({"W": X}, X.T)) != float(first)
    loss = s.make_closure(np, 1.0)
    first = run_rebound(loss, "torch")
    assert run_rebound(loss, "torch") is first
    loss.__closure__[loss.__code__.co_freevars.index("scale")].cell_contents = 3.0  # rebuilt on change
    assert run_rebound(loss, "torch") is not first
    assert float(run_rebound(loss, "torch")({"W": torch.ones(1, 1)}, torch.ones(1, 1))) == pytest.approx(
        3 * np.tanh(1.0) ** 2)


def test_is_user_code(mods):
    assert is_user_code(mods["seed000"].forward_propagation_n)
    assert is_user_code(mods["model"]) and is_user_code(mods["styles"].Net)
    assert is_user_code(mods["styles"].net.loss)
    namespace = {}
    exec("def f(x):\n    return x\n", namespace)
    assert is_user_code(namespace["f"])
    for library in (np.sum, np.linalg.norm, np, json.dumps, json, functools.partial, rebind, run_rebound,
                    jax.grad, torch.sum, len):
        assert not is_user_code(library), library


def test_import_crosscheck_loads_neither_framework():
    code = ("import sys, crosscheck, crosscheck._rebind, crosscheck._torch_numpy, crosscheck._trace_errors\n"
            "print('jax' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_concurrent_original_numpy_sees_numpy(mods):
    loss = mods["seed000"].loss
    rng = np.random.default_rng(4)
    params, X, Y = _seed_params(rng), rng.normal(size=(4, 3)), np.array([[1.0, 0.0, 1.0]])
    expected = loss(params, X, Y)
    failures, barrier = [], threading.Barrier(6)

    def original():
        barrier.wait()
        for _ in range(200):
            value = loss(params, X, Y)
            if type(value) is not np.float64 or value != expected:
                failures.append(type(value))

    def framework(run):
        barrier.wait()
        for _ in range(10):
            run(loss, params, X, Y)

    threads = [threading.Thread(target=original) for _ in range(4)]
    threads += [threading.Thread(target=framework, args=(run,)) for run in (_jax, _torch)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


# ------------------------------------------------------------------ errors
ERRORS = """
import numpy as np

def inplace(p, X):
    A = np.dot(p["W"], X)
    A[A < 0] = 0
    return np.sum(A ** 2)

def noisy(p, X):
    noise = np.random.randn(*X.shape)
    return np.sum(p["W"] @ (X + noise))

def branch(p, X):
    s = np.sum(p["W"] @ X)
    if s > 0:
        return s
    return -s

def to_float(p, X):
    s = np.sum(p["W"] @ X)
    return float(s) * s

def to_item(p, X):
    s = np.sum(p["W"] @ X)
    return s.item() * s

def missing(p, X):
    return np.sum(np.nditer(p["W"]))

def mismatch(p, X):
    return np.sum(np.dot(X, p["W"]))
"""


@pytest.fixture
def errmod(mods):
    return mods["errmod"]


MODULES["errmod"] = ERRORS


def _line(text):
    return ERRORS.splitlines().index(text) + 1


def _run(fn, framework, jit=False):
    P, X = {"W": np.ones((2, 3))}, np.ones((3, 4))
    try:
        if framework == "jax":
            f = run_rebound(fn, "jax")
            with jax.enable_x64(True):
                grad = jax.grad(lambda p: f(p, jnp.asarray(X)))
                (jax.jit(grad) if jit else grad)({"W": jnp.asarray(P["W"])})
        else:
            from crosscheck._torch_numpy import unwrap, wrap
            pt = {"W": wrap(torch.tensor(P["W"], requires_grad=True))}
            unwrap(run_rebound(fn, "torch")(pt, wrap(torch.tensor(X)))).backward()
    except Exception as exc:  # noqa: BLE001 - the point is to explain it
        raise as_not_traceable(exc, framework, fn) from exc
    raise AssertionError("expected the loss to fail")


def test_inplace_write_under_jax_runs_functionally(errmod):
    """``A[A < 0] = 0`` on a local array: jax runs it as ``A = np.where(A < 0, 0, A)``."""
    P, X = {"W": np.array([[1.0, -2.0, 0.5], [-1.0, 1.0, 2.0]])}, np.ones((3, 4))
    f = run_rebound(errmod.inplace, "jax")
    with jax.enable_x64(True):
        g = jax.grad(lambda p: f(p, jnp.asarray(X)))({"W": jnp.asarray(P["W"])})
    A = P["W"] @ X
    np.testing.assert_allclose(np.asarray(g["W"]), (2 * np.maximum(A, 0)) @ X.T, rtol=1e-12)
    assert np.sum(errmod.inplace(P, X)) == np.sum(np.maximum(A, 0) ** 2)   # numpy's own run unchanged


@pytest.mark.parametrize("line, expected", [
    ("A1[A1 < 0] = 0", "write `A1 = np.where(A1 < 0, 0, A1)` instead"),
    ("self.W[mask] *= 2", "write `self.W = np.where(mask, self.W * 2, self.W)` instead"),
    ("scores[np.arange(N), y] = 0",
     "write into a local copy: `scores = scores.copy()`; `scores[np.arange(N), y] = 0` "
     "(crosscheck runs writes into local arrays functionally)"),
    ("delta[outsideWordIdx] -= 1",
     "write into a local copy: `delta = delta.copy()`; `delta[outsideWordIdx] -= 1` "
     "(crosscheck runs writes into local arrays functionally)"),
    ("xs[t][inputs[t]] = 1",
     "write into a local copy: `A = xs[t].copy()`; `A[inputs[t]] = 1`; `xs[t] = A` "
     "(crosscheck runs writes into local arrays functionally)"),
    ("dm1[np.diag_indices_from(dm1)] = 0",
     "write into a local copy: `dm1 = dm1.copy()`; `dm1[np.diag_indices_from(dm1)] = 0` "
     "(crosscheck runs writes into local arrays functionally)"),
])
def test_every_suggested_rewrite_is_valid_python(line, expected):
    from crosscheck._trace_errors import rewrite_suggestion
    text = rewrite_suggestion(line)
    assert text == expected
    for statement in re.findall(r"`([^`]+)`", text):
        compile(statement, "<suggestion>", "exec")


@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_random_inside_loss(errmod, framework):
    line = _line("    noise = np.random.randn(*X.shape)")
    with pytest.raises(NotTraceable, match=rf"^the loss calls `np\.random\.randn` at errmod\.py:{line}: the loss "
                                           r"must be deterministic; draw random numbers outside the loss"):
        _run(errmod.noisy, framework)
    assert np.random.randn(2).shape == (2,)  # the real numpy.random is untouched


def test_branch_on_array_value_under_jax(errmod):
    line = _line("    if s > 0:")
    with pytest.raises(NotTraceable, match=rf"^branches on an array value at errmod\.py:{line} \(`if s > 0:`\);"
                                           r".* use np\.where\(cond, a, b\) instead$"):
        _run(errmod.branch, "jax", jit=True)


@pytest.mark.parametrize("fn, framework, tail", [("to_float", "jax", "keep it as an array"),
                                                  ("to_float", "torch", "silently cuts the gradient"),
                                                  ("to_item", "torch", "silently cuts the gradient")])
def test_scalar_conversion(errmod, fn, framework, tail):
    line = _line("    return float(s) * s" if fn == "to_float" else "    return s.item() * s")
    with pytest.raises(NotTraceable, match=rf"^converts a traced value to a Python number .* at errmod\.py:{line} "
                                           rf"\(`return .* \* s`\); .*{tail}"):
        _run(getattr(errmod, fn), framework)


@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_missing_name(errmod, framework):
    line = _line("    return np.sum(np.nditer(p[\"W\"]))")
    with pytest.raises(NotTraceable, match=rf"^`np\.nditer` \(at errmod\.py:{line}\) is not available under the "
                                           rf"{framework} oracle"):
        _run(errmod.missing, framework)


def test_fallback_names_exception_and_line(errmod):
    line = _line("    return np.sum(np.dot(X, p[\"W\"]))")
    with pytest.raises(NotTraceable, match=rf"^torch could not run the loss: RuntimeError: .* "
                                           rf"\(at errmod\.py:{line}\)$"):
        _run(errmod.mismatch, "torch")
    assert explain(ValueError("boom"), "jax") == ("jax could not run the loss: ValueError: boom "
                                                  "(at an unknown line)")
