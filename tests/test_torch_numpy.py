"""numpy's semantics over torch (torch's numpy layer, with crosscheck's additions): numpy's values
and dtypes, float64, jax-like gradients at ties, numpy's array methods, clear errors."""

import importlib
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from crosscheck import _torch_numpy
from crosscheck._rebind import run_rebound, torch_namespace
from crosscheck._trace_errors import NotTraceable, UnsupportedName

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
A = RNG.normal(size=(3, 4))
B = RNG.normal(size=(4, 2))
V = RNG.normal(size=4)
T3 = RNG.normal(size=(2, 3, 4))
POS = RNG.uniform(0.5, 2.0, size=(3, 4))
IA = np.array([[1, 2, 3], [4, 5, 6]])
NANS = np.where(RNG.uniform(size=(3, 4)) < 0.3, np.nan, A)

CASES = {
    "dot 1d.1d": (lambda xp, a: xp.dot(a, a), V),
    "dot 2d.2d": (lambda xp, a, b: xp.dot(a, b), A, B),
    "dot 2d.1d": (lambda xp, a, v: xp.dot(a, v), A, V),
    "dot scalar": (lambda xp, a: xp.dot(2.5, a), A),
    "dot 3d.2d": (lambda xp, t, b: xp.dot(t, b), T3, B),
    "dot 1d.3d": (lambda xp, t: xp.dot(xp.ones(3), t), T3),
    "dot int.float": (lambda xp, i, b: xp.dot(i, b[:3]), IA, B),
    "matmul": (lambda xp, a, b: xp.matmul(a, b), A, B),
    "multiply scalar": (lambda xp, a: xp.multiply(-1.5, a), A),
    "multiply int mask": (lambda xp, a: xp.multiply(a, xp.int64(a > 0)), A),
    "add sub": (lambda xp, a: xp.subtract(xp.add(a, 1), a ** 2), A),
    "divide ints": (lambda xp, i: xp.divide(i, 4), IA),
    "true_divide": (lambda xp, a, p: xp.true_divide(a, p), A, POS),
    "power": (lambda xp, p: xp.power(p, 2.5) + xp.power(2.0, p), POS),
    "unary": (lambda xp, p: xp.exp(p) + xp.log(p) + xp.log1p(p) + xp.expm1(p) + xp.sqrt(p) + xp.square(p)
              + xp.abs(-p) + xp.tanh(p) + xp.sin(p) + xp.cos(p) + xp.sign(p - 1), POS),
    "exp of ints": (lambda xp, i: xp.exp(i), IA),
    "maximum scalar": (lambda xp, a: xp.maximum(0, a), A),
    "minimum mixed": (lambda xp, a, p: xp.minimum(a, 0.5) + xp.minimum(p, a), A, POS),
    "clip": (lambda xp, a: xp.clip(a, -0.5, 0.5), A),
    "where": (lambda xp, a: xp.where(a > 0, a, 0), A),
    "where scalars": (lambda xp, a: xp.where(a > 0, 1.0, 0.0), A),
    "logaddexp": (lambda xp, a, p: xp.logaddexp(a, p), A, POS),
    "isnan isfinite": (lambda xp, n: xp.isnan(n) ^ xp.isfinite(n), NANS),
    "sum": (lambda xp, a: xp.sum(a), A),
    "sum axis keepdims": (lambda xp, a: xp.sum(a, axis=1, keepdims=True), A),
    "sum axis tuple": (lambda xp, t: xp.sum(t, axis=(0, 2)), T3),
    "sum None keepdims": (lambda xp, t: xp.sum(t, keepdims=True), T3),
    "sum bool": (lambda xp, a: xp.sum(a > 0), A),
    "mean neg axis": (lambda xp, t: xp.mean(t, axis=-1), T3),
    "mean ints": (lambda xp, i: xp.mean(i, axis=0), IA),
    "max min": (lambda xp, t: xp.max(t, axis=(1, 2), keepdims=True) - xp.min(t, axis=0, keepdims=True), T3),
    "amax": (lambda xp, a: xp.amax(a), A),
    "prod": (lambda xp, t: xp.prod(t, axis=(0, 2), keepdims=True), T3),
    "prod all": (lambda xp, p: xp.prod(p), POS),
    "nansum nanmean": (lambda xp, n: xp.nansum(n, axis=0) + xp.nanmean(n, axis=0) + xp.nanmean(n), NANS),
    "std var": (lambda xp, t: xp.std(t, axis=(0, 1)) + xp.var(t, axis=2, ddof=1, keepdims=True), T3),
    "argmax": (lambda xp, a: xp.argmax(a) + xp.argmax(a, axis=1) + xp.argmin(a, axis=0)[:3], A),
    "reshape": (lambda xp, t: xp.reshape(t, (4, -1)) + xp.ravel(t)[:6], T3),
    "transpose": (lambda xp, t: xp.transpose(t) + xp.transpose(xp.transpose(t, (1, 2, 0)), (1, 0, 2)), T3),
    "squeeze expand": (lambda xp, a: xp.squeeze(xp.expand_dims(a, (0, -1)), axis=0)
                       + xp.expand_dims(a, 1)[:, 0, :, None], A),
    "concatenate": (lambda xp, a: xp.concatenate([a, a], axis=1)[:, 2:6]
                    + xp.concatenate((a, xp.ones((1, 4), dtype=int)))[1:], A),
    "concatenate None": (lambda xp, a, v: xp.concatenate([a, v], axis=None), A, V),
    "stack": (lambda xp, a: xp.stack([a, 2 * a], axis=1), A),
    "hstack vstack": (lambda xp, v, a: xp.hstack([v, v])[2:6] + xp.vstack([v, v])[1, :], V, A),
    "hstack 2d": (lambda xp, a: xp.hstack((a, a)), A),
    "creation": (lambda xp: xp.zeros((2, 3)) + xp.ones(3) + xp.full((2, 3), 0.5) + xp.eye(2, 3, k=1), ),
    "arange": (lambda xp: xp.arange(5) * 2 + xp.arange(1, 4.0, 0.5)[:5], ),
    "like": (lambda xp, a: xp.zeros_like(a) + xp.ones_like(a) + xp.full_like(a, 3.0), A),
    "outer einsum tensordot": (lambda xp, v, a, b: xp.outer(v, v)[:3] + xp.einsum("ij,jk->ik", a, b) @ xp.ones((2, 4))
                               + xp.tensordot(a, b, axes=1) @ xp.ones((2, 4)), V, A, B),
    "tensordot pairs": (lambda xp, t, a: xp.tensordot(t, a, axes=([1, 2], [0, 1])), T3, A),
    "linalg.norm": (lambda xp, a, v: xp.linalg.norm(a) + xp.linalg.norm(v) + xp.linalg.norm(a, axis=1)[0], A, V),
    "array list": (lambda xp: xp.array([1, 2, 3]) + xp.asarray([[0.5], [1.5]]), ),
    "casts": (lambda xp, a: xp.float64(xp.int64(a > 0)) + xp.int32(xp.abs(a) * 3) + xp.float32(1.0), A),
    "dtype args": (lambda xp: xp.zeros(3, dtype=xp.int64) + xp.ones(3, dtype=int)
                   + xp.array([1, 2, 3], dtype=xp.float64), ),
    "constants": (lambda xp, a: xp.multiply(a, xp.pi) + xp.e + xp.sum(a[:, xp.newaxis, :], axis=1)
                  + xp.isinf(xp.inf) + xp.isnan(xp.nan), A),
    "cumsum diag trace": (lambda xp, a: xp.cumsum(a, axis=1)[0] + xp.cumsum(a)[:4] + xp.trace(a) + xp.diag(a)[0], A),
}


def _to_numpy(out):
    if isinstance(out, tuple):
        return tuple(_to_numpy(o) for o in out)
    out = _torch_numpy.unwrap(out)
    return out.detach().numpy() if isinstance(out, torch.Tensor) else np.asarray(out)


@pytest.fixture(autouse=True)
def _float64_default():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)   # as the torch oracle runs
    yield
    torch.set_default_dtype(previous)


@pytest.mark.parametrize("as_tensor", [False, True], ids=["numpy-inputs", "layer-inputs"])
@pytest.mark.parametrize("name", list(CASES))
def test_matches_numpy_values_and_dtypes(name, as_tensor):
    fn, *inputs = CASES[name]
    expected = np.asarray(fn(np, *inputs))
    args = [_torch_numpy.wrap(torch.from_numpy(x.copy())) for x in inputs] if as_tensor else inputs
    got = _torch_numpy.unwrap(fn(torch_namespace(), *args))
    assert isinstance(got, torch.Tensor)
    np.testing.assert_allclose(_to_numpy(got), expected, rtol=1e-12, atol=1e-12)
    kind = {"f": torch.float64, "b": torch.bool}.get(expected.dtype.kind)
    assert got.dtype == (kind or getattr(torch, expected.dtype.name)), (got.dtype, expected.dtype)


def test_conversions_keep_float64_and_do_not_share_memory():
    ns = torch_namespace()
    f32 = np.ones(3, dtype=np.float32)
    assert ns.asarray(f32).dtype.name == "float32"   # numpy's rule inside the loss …
    assert _torch_numpy.constant(f32).dtype.name == "float64"   # … float inputs reach it as float64
    assert ns.asarray(np.ones(2, dtype=np.int32)).dtype.name == "int32"
    assert ns.asarray(np.ones(2, dtype=bool)).dtype.name in ("bool", "bool_")
    assert ns.asarray(0.5).dtype.name == "float64" and ns.asarray(3).dtype.name == "int64"
    user = np.zeros(3)
    copy = ns.array(user)
    copy += 1.0
    assert (user == 0).all()
    t = _torch_numpy.wrap(torch.ones(2, dtype=torch.float64, requires_grad=True))
    assert ns.asarray(t) is t
    copied = ns.array(t)
    assert copied is not t and copied.tensor.requires_grad
    stacked = ns.array([t[0], 2.0, t[1]])   # a list holding traced values stays in the graph
    assert stacked.tensor.requires_grad and stacked.dtype.name == "float64" and stacked.shape == (3,)
    assert _torch_numpy.wrap(np.float64(0.5)) == 0.5 and type(_torch_numpy.wrap(np.float64(0.5))) is float


def test_numpys_array_methods():
    """The methods real code calls on arrays are numpy's, not torch's."""
    ns = torch_namespace()
    a = _torch_numpy.constant(A.copy())
    np.testing.assert_allclose(_to_numpy(a.dot(B)), A.dot(B), rtol=1e-12)
    np.testing.assert_allclose(_to_numpy(a.var(axis=0)), A.var(axis=0), rtol=1e-12)   # ddof 0
    np.testing.assert_allclose(_to_numpy(a.max(axis=1)), A.max(axis=1), rtol=1e-12)   # values only
    np.testing.assert_allclose(_to_numpy(a.astype(ns.float64).copy().T), A.T, rtol=1e-12)
    np.testing.assert_allclose(_to_numpy(a.sum(axis=0, keepdims=True)), A.sum(axis=0, keepdims=True))
    assert a.reshape(4, 3).shape == (4, 3) and int(ns.uint8(3)) == 3
    padded = ns.pad(a, ((1, 1), (0, 2)), "constant")
    np.testing.assert_array_equal(_to_numpy(padded), np.pad(A, ((1, 1), (0, 2)), "constant"))


def test_add_at_accumulates_repeated_indices_and_differentiates():
    ns = torch_namespace()
    W = torch.tensor(B.copy(), requires_grad=True)
    out = ns.zeros((5, 2))
    idx = np.array([0, 3, 0, 4])
    ns.add.at(out, idx, _torch_numpy.wrap(W)[[0, 1, 2, 3]])
    expected = np.zeros((5, 2))
    np.add.at(expected, idx, B[[0, 1, 2, 3]])
    np.testing.assert_allclose(_to_numpy(out), expected, rtol=1e-12)
    out.tensor.sum().backward()
    np.testing.assert_array_equal(W.grad.numpy(), np.ones((4, 2)))


def _grad(f, x):
    x = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    _torch_numpy.unwrap(f(_torch_numpy.wrap(x))).backward()
    return x.grad.numpy()


def test_ties_split_the_gradient_like_jax():
    ns = torch_namespace()
    np.testing.assert_array_equal(_grad(lambda x: ns.sum(ns.maximum(0, x)), [0.0, 1.0, -1.0]), [0.5, 1, 0])
    np.testing.assert_array_equal(_grad(lambda x: ns.max(x), [1.0, 2.0, 2.0]), [0, 0.5, 0.5])
    np.testing.assert_array_equal(_grad(lambda x: ns.sum(ns.clip(x, 0.0, 1.0)), [-1, 0, 0.5, 1, 2]),
                                  [0, 0.5, 1, 0.5, 0])


def test_gradients_agree_with_jax():
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")

    def loss(xp, W, X):
        Z = xp.dot(W, X)
        H = xp.maximum(0, Z) + xp.tanh(Z) * xp.int64(Z > 0)
        P = xp.exp(H - xp.max(H, axis=0, keepdims=True))
        P = P / xp.sum(P, axis=0, keepdims=True)
        return -xp.nanmean(xp.log(P[0])) + xp.std(Z, axis=(0, 1)) + xp.linalg.norm(W) ** 2 / xp.prod(xp.abs(W[0]))

    W, X = RNG.normal(size=(3, 4)), RNG.normal(size=(4, 6))
    with jax.enable_x64(True):
        expected = np.asarray(jax.grad(lambda w: loss(jnp, w, jnp.asarray(X)))(jnp.asarray(W)))
    got = _grad(lambda w: loss(torch_namespace(), w, X), W)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_supported_names():
    names = _torch_numpy.supported()
    assert names == sorted(names)
    expected = {"dot", "maximum", "nanmean", "int64", "float64", "linalg", "newaxis", "ndarray", "pad",
                "uint8", "clip", "put_along_axis", "diag_indices_from", "count_nonzero", "nan_to_num",
                "empty", "add", "errstate"}
    assert expected <= set(names)
    ns = torch_namespace()
    for name in names:
        getattr(ns, name)
    assert not hasattr(ns, "polyfit")


@pytest.mark.parametrize("expr, shown", [("np.polyfit(x, x, 1)", "polyfit"),
                                         ("np.vectorize(abs)(x)", "vectorize"),
                                         ("np.polynomial.polynomial.polyval(x, [1, 2])",
                                          "polynomial.polynomial")])
def test_missing_name_is_named_with_its_line(tmp_path, monkeypatch, expr, shown):
    (tmp_path / "uses_missing.py").write_text(textwrap.dedent(f"""
        import numpy as np

        def loss(x):
            y = np.sum(x)
            return y + np.sum({expr})
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("uses_missing", None)
    mod = importlib.import_module("uses_missing")
    try:
        assert np.isfinite(mod.loss(np.arange(1.0, 4.0)))  # numpy itself is fine
        message = (rf"^`np\.{shown}` \(at uses_missing\.py:6\) is not available under the torch oracle "
                   rf"\(torch's numpy layer has no `{shown}`\); use a name listed in "
                   r"docs/numpy-as-written\.md#names-under-torch, or pass a per-framework loss "
                   r"`loss=\{'numpy': f, 'torch': g\}`$")
        with pytest.raises(UnsupportedName, match=message) as info:
            run_rebound(mod.loss, "torch")(_torch_numpy.wrap(torch.arange(1.0, 4.0, dtype=torch.float64)))
        assert isinstance(info.value, NotTraceable) and isinstance(info.value, AttributeError)
        assert info.value.location[1] == 6
        # the section the message points at exists (its names are checked by test_numpy_as_written)
        docs = Path(__file__).resolve().parent.parent / "docs" / "numpy-as-written.md"
        assert "\n## Names under torch\n" in docs.read_text()
    finally:
        sys.modules.pop("uses_missing", None)


def test_a_torch_without_its_numpy_layer_is_named_and_the_others_decide(monkeypatch):
    """torch._numpy is private to torch: where it is missing, one sentence says which torch is
    needed, the torch oracle sits out, and fd and jax still decide."""
    import crosscheck
    from crosscheck import _rebind

    def missing():
        raise _torch_numpy.TorchNumpyUnavailable(
            "torch 9.9 has no usable numpy layer (`torch._numpy`: ModuleNotFoundError: gone); "
            "the torch oracle runs plain numpy code through it: install torch>=2.1, or pass a "
            "per-framework loss `loss={'numpy': f, 'torch': g}`")

    monkeypatch.setattr(_torch_numpy, "layer", missing)
    monkeypatch.setattr(_torch_numpy, "namespace_source", missing)
    monkeypatch.setattr(_rebind, "_NAMESPACES", {})
    rng = np.random.default_rng(1)
    W, X = rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    report = crosscheck.check(lambda p, X: np.sum(np.dot(p["W"], X) ** 2),
                              lambda p, X: {"W": 2 * np.dot(p["W"], X) @ X.T}, {"W": W}, X)
    assert report.oracles["torch"].error == (
        "torch 9.9 has no usable numpy layer (`torch._numpy`: ModuleNotFoundError: gone); the torch "
        "oracle runs plain numpy code through it: install torch>=2.1, or pass a per-framework loss "
        "`loss={'numpy': f, 'torch': g}`")
    assert report.ok and report.references == ["fd", "jax"]
