"""A numpy-named layer over torch, float64 throughout: what ``np`` means under the torch oracle.

Every function converts its array arguments (numpy arrays, Python numbers, lists)
to tensors -- floats to float64, integer and bool arrays keep their dtype -- so
``np.dot(W, X)`` works whether ``X`` is a tensor or a numpy array.  Reductions take
numpy's ``axis`` (int or tuple) and ``keepdims``.  ``np.max``/``np.maximum`` split
the gradient evenly at ties, like jax.  The dtype names (``np.float64``,
``np.int64``, ...) work both as ``dtype=`` arguments and as casts
(``np.int64(mask)``).  Only the names in :data:`SUPPORTED` exist; crosscheck's
rebinding turns any other ``np.<name>`` into a clear NotTraceable error.

torch is imported on first use, never when this module is imported.
"""

from __future__ import annotations

import builtins as _builtins
import math as _math
import operator as _operator

import numpy as _np


class _LazyTorch:
    """Stands in for the ``torch`` module until first use, then replaces itself."""

    def __getattr__(self, name):
        import torch as real

        globals()["torch"] = real
        return getattr(real, name)


torch = _LazyTorch()


# ------------------------------------------------------------------ conversion
def _has_tensor(x):
    return isinstance(x, torch.Tensor) or (
        isinstance(x, (list, tuple)) and _builtins.any(_has_tensor(v) for v in x))


def _t(x):
    """A tensor for ``x``; floats become float64, integer/bool arrays keep their dtype."""
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, bool):
        return torch.tensor(x)
    if isinstance(x, int):
        return torch.tensor(x, dtype=torch.int64)
    if isinstance(x, float):
        return torch.tensor(x, dtype=torch.float64)
    if isinstance(x, (list, tuple)) and _has_tensor(x):
        parts = [_t(v) for v in x]
        dt = parts[0].dtype
        for p in parts[1:]:
            dt = torch.promote_types(dt, p.dtype)
        return torch.stack([p.to(dt) for p in parts])
    a = _np.asarray(x)
    kind = a.dtype.kind
    if kind == "f":
        a = a.astype(_np.float64)
    elif kind == "c":
        a = a.astype(_np.complex128)
    elif kind == "u" and a.dtype != _np.uint8:
        a = a.astype(_np.int64)
    elif kind not in "biu":
        raise TypeError(f"crosscheck's torch numpy layer cannot convert a {a.dtype} array to a tensor")
    return torch.from_numpy(_np.array(a, copy=True))


def constant(a):
    """A numpy array the loss reaches through a global, closure or attribute, as a tensor.

    float64/int/bool arrays share memory (zero copy, so in-place changes stay visible);
    others are converted like :func:`asarray`; arrays torch cannot hold are left alone.
    """
    try:
        if a.flags.writeable and a.dtype in (_np.float64, _np.int64, _np.int32, _np.bool_):
            return torch.from_numpy(a)
        return _t(a)
    except (TypeError, ValueError):
        return a


def _tf(x):
    """``_t`` then integer/bool to float64 (numpy's exp/log/mean of ints are float64)."""
    x = _t(x)
    return x if (x.is_floating_point() or x.is_complex()) else x.to(torch.float64)


def _promoted(*xs):
    ts = [_t(x) for x in xs]
    dt = ts[0].dtype
    if _builtins.all(t.dtype == dt for t in ts):
        return ts
    for t in ts[1:]:
        dt = torch.promote_types(dt, t.dtype)
    return [t.to(dt) for t in ts]


def _binary(a, b):
    """Both operands for an operator: at least one tensor; Python scalars stay scalars.

    An integer tensor meeting a Python float is made float64 first (torch would give float32).
    """
    if not isinstance(a, torch.Tensor) and not isinstance(b, torch.Tensor):
        return _t(a), _t(b)
    a = a if isinstance(a, (torch.Tensor, int, float, bool)) else _t(a)
    b = b if isinstance(b, (torch.Tensor, int, float, bool)) else _t(b)
    if isinstance(b, float) and not a.is_floating_point():
        a = a.to(torch.float64)
    elif isinstance(a, float) and not b.is_floating_point():
        b = b.to(torch.float64)
    return a, b



_TORCH_DTYPES = ("float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "bool",
                 "complex128", "complex64")


def _dtype(d):
    if d is None:
        return None
    if isinstance(d, _DType):
        return d.torch
    if isinstance(d, torch.dtype):
        return d
    name = _np.dtype(d).name
    if name not in _TORCH_DTYPES:
        raise TypeError(f"dtype {name} has no torch counterpart in crosscheck's torch numpy layer")
    return getattr(torch, name)


class _DType:
    """A numpy dtype name: a ``dtype=`` argument, a cast (``np.int64(mask)``) and an isinstance target."""

    def __init__(self, name, torch_name):
        self.__name__ = name
        self._torch_name = torch_name

    @property
    def torch(self):
        return getattr(torch, self._torch_name)

    def __call__(self, x=0):
        return _t(x).to(self.torch)

    def __instancecheck__(self, obj):
        return isinstance(obj, torch.Tensor) and obj.ndim == 0 and obj.dtype == self.torch

    def __repr__(self):
        return f"<crosscheck torch dtype {self.__name__}>"


float64 = _DType("float64", "float64")
float32 = _DType("float32", "float32")
int64 = _DType("int64", "int64")
int32 = _DType("int32", "int32")
bool_ = _DType("bool_", "bool")
int_ = int64
double = float64


def _shape(shape):
    return tuple(shape) if isinstance(shape, (tuple, list, torch.Size)) else (int(shape),)


def _dims(axis):
    return tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)


def _reduce(op, a, axis, keepdims, **kw):
    if axis is None and not keepdims:
        return op(a, **kw)
    dims = tuple(range(a.ndim)) if axis is None else _dims(axis)
    if not dims:
        return a
    return op(a, dim=dims, keepdim=keepdims, **kw)


# ------------------------------------------------------------------ creation
def array(object, dtype=None, copy=True, ndmin=0):
    out = _t(object)
    if copy and out is object:
        out = out.clone()
    while out.ndim < ndmin:
        out = out.unsqueeze(0)
    return out if dtype is None else out.to(_dtype(dtype))


def asarray(a, dtype=None):
    out = _t(a)
    return out if dtype is None else out.to(_dtype(dtype))


def full(shape, fill_value, dtype=None):
    fill = _t(fill_value)
    dt = _dtype(dtype) or fill.dtype
    return torch.zeros(_shape(shape), dtype=dt) + fill.to(dt)  # keeps a traced fill value differentiable


def full_like(a, fill_value, dtype=None):
    a = _t(a)
    dt = _dtype(dtype) or a.dtype
    return torch.zeros_like(a, dtype=dt) + _t(fill_value).to(dt)


def eye(N, M=None, k=0, dtype=float):
    i = torch.arange(N)[:, None]
    j = torch.arange(N if M is None else M)[None, :]
    return (j - i == k).to(_dtype(dtype))


def arange(start, stop=None, step=1, dtype=None):
    if stop is None:
        start, stop = 0, start
    floats = _builtins.any(isinstance(v, float) for v in (start, stop, step))
    return torch.arange(start, stop, step, dtype=_dtype(dtype) or (torch.float64 if floats else torch.int64))


def linspace(start, stop, num=50, dtype=None):
    return torch.linspace(start, stop, num, dtype=_dtype(dtype) or torch.float64)


# One-line wrappers: numpy's name and signature, torch's function, float64 inputs where numpy gives floats.
def copy(a): return _t(a).clone()
def zeros(shape, dtype=float): return torch.zeros(_shape(shape), dtype=_dtype(dtype))
def ones(shape, dtype=float): return torch.ones(_shape(shape), dtype=_dtype(dtype))
def zeros_like(a, dtype=None): return torch.zeros_like(_t(a), dtype=_dtype(dtype))
def ones_like(a, dtype=None): return torch.ones_like(_t(a), dtype=_dtype(dtype))


# ------------------------------------------------------------------ elementwise
def divide(x1, x2):
    a, b = _binary(x1, x2)
    if isinstance(a, torch.Tensor) and not (a.is_floating_point() or a.is_complex()):
        a = a.to(torch.float64)  # torch would give float32 for int / int
    elif isinstance(b, torch.Tensor) and not (b.is_floating_point() or b.is_complex()):
        b = b.to(torch.float64)
    return a / b


def clip(a, a_min=None, a_max=None):
    out = _t(a)  # maximum/minimum rather than clamp: gradient 0.5 at the bounds, like jax
    if a_min is not None:
        out = maximum(out, a_min)
    if a_max is not None:
        out = minimum(out, a_max)
    return out


def where(condition, x=None, y=None):
    cond = _t(condition)
    cond = cond if cond.dtype == torch.bool else cond != 0
    if x is None and y is None:
        return torch.where(cond)
    return torch.where(cond, *_promoted(x, y))


def add(x1, x2): return _operator.add(*_binary(x1, x2))
def subtract(x1, x2): return _operator.sub(*_binary(x1, x2))
def multiply(x1, x2): return _operator.mul(*_binary(x1, x2))
def power(x1, x2): return _operator.pow(*_binary(x1, x2))
def negative(x): return -_t(x)
def exp(x): return torch.exp(_tf(x))
def log(x): return torch.log(_tf(x))
def log1p(x): return torch.log1p(_tf(x))
def expm1(x): return torch.expm1(_tf(x))
def log2(x): return torch.log2(_tf(x))
def log10(x): return torch.log10(_tf(x))
def sqrt(x): return torch.sqrt(_tf(x))
def square(x): return torch.square(_t(x))
def abs(x): return torch.abs(_t(x))
def sign(x): return torch.sign(_t(x))
def tanh(x): return torch.tanh(_tf(x))
def sinh(x): return torch.sinh(_tf(x))
def cosh(x): return torch.cosh(_tf(x))
def sin(x): return torch.sin(_tf(x))
def cos(x): return torch.cos(_tf(x))
def tan(x): return torch.tan(_tf(x))
def arctan(x): return torch.arctan(_tf(x))
def floor(x): return torch.floor(_tf(x))
def ceil(x): return torch.ceil(_tf(x))
def maximum(x1, x2): return torch.maximum(*_promoted(x1, x2))  # gradient 0.5 each at ties, like jax
def minimum(x1, x2): return torch.minimum(*_promoted(x1, x2))
def logaddexp(x1, x2): return torch.logaddexp(*_promoted(x1, x2))
def isnan(x): return torch.isnan(_t(x))
def isfinite(x): return torch.isfinite(_t(x))
def isinf(x): return torch.isinf(_t(x))


true_divide = divide
absolute = abs


# ------------------------------------------------------------------ reductions
def prod(a, axis=None, keepdims=False):
    a = _t(a)
    if axis is None:
        out = torch.prod(a)
        return out.reshape((1,) * a.ndim) if keepdims else out
    for d in sorted((d % a.ndim for d in _dims(axis)), reverse=True):  # torch.prod takes one dim
        a = torch.prod(a, dim=d, keepdim=keepdims)
    return a


def cumsum(a, axis=None):
    a = _t(a)
    return torch.cumsum(a.reshape(-1), dim=0) if axis is None else torch.cumsum(a, dim=axis)


# max/min are amax/amin: the gradient is split evenly between tied maxima, like jax.
def sum(a, axis=None, keepdims=False, dtype=None): return _reduce(torch.sum, _t(a), axis, keepdims, dtype=_dtype(dtype))
def nansum(a, axis=None, keepdims=False): return _reduce(torch.nansum, _t(a), axis, keepdims)
def mean(a, axis=None, keepdims=False): return _reduce(torch.mean, _tf(a), axis, keepdims)
def nanmean(a, axis=None, keepdims=False): return _reduce(torch.nanmean, _tf(a), axis, keepdims)
def max(a, axis=None, keepdims=False): return _reduce(torch.amax, _t(a), axis, keepdims)
def min(a, axis=None, keepdims=False): return _reduce(torch.amin, _t(a), axis, keepdims)
def std(a, axis=None, ddof=0, keepdims=False): return _reduce(torch.std, _tf(a), axis, keepdims, correction=ddof)
def var(a, axis=None, ddof=0, keepdims=False): return _reduce(torch.var, _tf(a), axis, keepdims, correction=ddof)
def any(a, axis=None, keepdims=False): return _reduce(torch.any, _t(a).to(torch.bool), axis, keepdims)
def all(a, axis=None, keepdims=False): return _reduce(torch.all, _t(a).to(torch.bool), axis, keepdims)
def argmax(a, axis=None): return torch.argmax(_t(a), dim=axis)
def argmin(a, axis=None): return torch.argmin(_t(a), dim=axis)


amax = max
amin = min


# ------------------------------------------------------------------ shapes
def transpose(a, axes=None):
    a = _t(a)
    return a.permute(*(reversed(range(a.ndim)) if axes is None else axes))


def squeeze(a, axis=None):
    a = _t(a)
    return a.squeeze() if axis is None else a.squeeze(_dims(axis))


def expand_dims(a, axis):
    a = _t(a)
    n = a.ndim + len(_dims(axis))
    for d in sorted(d % n for d in _dims(axis)):
        a = a.unsqueeze(d)
    return a


def concatenate(arrays, axis=0):
    ts = _promoted(*arrays)
    return torch.cat([t.reshape(-1) for t in ts]) if axis is None else torch.cat(ts, dim=axis)


def hstack(tup):
    ts = [atleast_1d(t) for t in _promoted(*tup)]
    return torch.cat(ts, dim=0 if ts[0].ndim == 1 else 1)


def reshape(a, newshape): return torch.reshape(_t(a), _shape(newshape))
def ravel(a): return torch.reshape(_t(a), (-1,))
def atleast_1d(a): return _t(a).reshape(1) if _t(a).ndim == 0 else _t(a)
def atleast_2d(a): return atleast_1d(a).unsqueeze(0) if atleast_1d(a).ndim == 1 else atleast_1d(a)
def stack(arrays, axis=0): return torch.stack(_promoted(*arrays), dim=axis)
def vstack(tup): return torch.cat([atleast_2d(t) for t in _promoted(*tup)], dim=0)
def broadcast_to(array, shape): return torch.broadcast_to(_t(array), _shape(shape))
def tile(A, reps): return torch.tile(_t(A), _shape(reps))
def shape(a): return tuple(_t(a).shape)
def ndim(a): return _t(a).ndim
def size(a): return _t(a).numel()


# ------------------------------------------------------------------ linear algebra
def dot(a, b):
    a, b = _promoted(a, b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    if (a.ndim <= 2 and b.ndim <= 2) or b.ndim == 1:
        return torch.matmul(a, b)
    return torch.tensordot(a, b, dims=([a.ndim - 1], [b.ndim - 2]))  # numpy: last of a with 2nd-last of b


def outer(a, b):
    a, b = _promoted(a, b)
    return torch.outer(a.reshape(-1), b.reshape(-1))


def tensordot(a, b, axes=2):
    a, b = _promoted(a, b)
    dims = axes if isinstance(axes, int) else [list(_dims(axes[0])), list(_dims(axes[1]))]
    return torch.tensordot(a, b, dims=dims)


def matmul(x1, x2): return torch.matmul(*_promoted(x1, x2))
def einsum(subscripts, *operands): return torch.einsum(subscripts, *_promoted(*operands))
def diag(v, k=0): return torch.diag(_t(v), k)
def trace(a): return torch.trace(_t(a))
def _norm(x, ord=None, axis=None, keepdims=False): return torch.linalg.norm(_tf(x), ord=ord, dim=axis, keepdim=keepdims)
def _inv(a): return torch.linalg.inv(_tf(a))
def _det(a): return torch.linalg.det(_tf(a))
def _solve(a, b): return torch.linalg.solve(*_promoted(_tf(a), b))


class _Submodule:
    """``np.linalg`` under torch: only the listed functions exist."""

    def __init__(self, name, functions):
        self.__name__ = name
        self.__dict__.update(functions)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        from crosscheck._trace_errors import unsupported_name

        raise unsupported_name(f"{self.__name__}.{name}", "torch")


linalg = _Submodule("linalg", {"norm": _norm, "inv": _inv, "det": _det, "solve": _solve})

# ------------------------------------------------------------------ constants
newaxis = None
pi = _math.pi
e = _math.e
inf = _math.inf
nan = _math.nan
errstate = _np.errstate
seterr = _np.seterr


def __getattr__(name):
    # `ndarray` is torch.Tensor, resolved lazily so importing this module never imports torch
    if name == "ndarray":
        return torch.Tensor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "abs", "absolute", "add", "all", "amax", "amin", "any", "arange", "arctan", "argmax", "argmin", "array",
    "asarray", "atleast_1d", "atleast_2d", "bool_", "broadcast_to", "ceil", "clip", "concatenate", "copy",
    "cos", "cosh", "cumsum", "diag", "divide", "dot", "double", "e", "einsum", "errstate", "exp", "expand_dims",
    "expm1", "eye", "float32", "float64", "floor", "full", "full_like", "hstack", "inf", "int32", "int64", "int_",
    "isfinite", "isinf", "isnan", "linalg", "linspace", "log", "log10", "log1p", "log2", "logaddexp", "matmul",
    "max", "maximum", "mean", "min", "minimum", "multiply", "nan", "nanmean", "nansum", "ndarray", "ndim",
    "negative", "newaxis", "ones", "ones_like", "outer", "pi", "power", "prod", "ravel", "reshape", "seterr",
    "shape", "sign", "sin", "sinh", "size", "sqrt", "square", "squeeze", "stack", "std", "subtract", "sum", "tan",
    "tanh", "tensordot", "tile", "trace", "transpose", "true_divide", "var", "vstack", "where", "zeros",
    "zeros_like",
]

#: Every ``np.<name>`` the torch oracle understands (``linalg`` offers norm, inv, det, solve).
SUPPORTED = sorted(__all__)
