"""What ``np`` means under the torch oracle: numpy's semantics over torch, float64 throughout.

The arrays the user's code sees are ``torch._numpy.ndarray`` objects -- torch's own numpy
layer, the one ``torch.compile`` uses to trace numpy code. Each wraps a tensor (``.tensor``)
and behaves like a numpy array: its *methods* are numpy's (``A.dot(B)`` on 2-D arrays,
``.astype``, ``.copy()``, ``.var(axis=0)`` with ``ddof=0``, ``.max(axis)`` returning values,
``.T``, ``.reshape``, ``.sum(keepdims=)``), dtype promotion and scalar types are numpy's
(``np.uint8(3)``), and indexing reads and writes (``a[mask] = 0``, ``a[idx] += v``,
``out[:, :, t] = ...`` in a loop) run as tensor operations that autograd tracks.

Why torch's layer rather than our own: it implements some 300 numpy names with numpy's
signatures, and torch tests it against numpy's own test suite; the layer it replaces here was
454 lines of wrappers returning raw tensors, on which every array method was torch's, not
numpy's. It is private to torch, so this module is the one place that touches it: it is
imported lazily, checked once (:func:`layer`), and a torch without it gets one sentence
naming the version needed. What it lacks that real code uses is added here (:data:`EXTRAS`):
``np.add.at``/``np.subtract.at``, the ``nan*`` reductions, numpy 2's aliases, ``errstate``,
``np.array`` of a list holding traced arrays, and ``clip`` with jax's gradient at the bounds.

Nothing here imports torch at module import time.
"""

from __future__ import annotations

import functools

import numpy as _np

from ._trace_errors import NotTraceable

#: The oldest torch whose ``torch._numpy`` runs the idioms the tests cover.
MINIMUM_TORCH = "2.1"


class TorchNumpyUnavailable(NotTraceable, ImportError):
    """This torch has no usable ``torch._numpy``: the torch oracle sits out, saying why."""


@functools.lru_cache(maxsize=1)
def layer():
    """``torch._numpy``, or :class:`TorchNumpyUnavailable` naming the torch version needed."""
    import torch

    try:
        import torch._numpy as tnp
        _numpy_default_dtypes(torch)
        tnp.ndarray(torch.zeros(1)).dot(tnp.ones(1))
    except Exception as exc:  # noqa: BLE001 - any failure means the layer is not usable
        raise TorchNumpyUnavailable(
            f"torch {torch.__version__} has no usable numpy layer (`torch._numpy`: "
            f"{type(exc).__name__}: {exc}); the torch oracle runs plain numpy code through it: "
            f"install torch>={MINIMUM_TORCH}, or pass a per-framework loss "
            f"`loss={{'numpy': f, 'torch': g}}`") from exc
    return tnp


def _numpy_default_dtypes(torch) -> None:
    """numpy's default dtypes for the layer, without importing ``torch._dynamo``.

    The layer reads its defaults from ``torch._dynamo.config`` on first use, which imports all
    of torch's compiler (about 2 s, once per process: most of a cold check). The defaults it
    would read are numpy's own -- float64, complex128, int64 -- which is what crosscheck needs;
    they are set only while nothing has set them yet and the compiler is not loaded (a process
    that uses ``torch.compile`` keeps its own configuration).
    """
    import sys

    from torch._numpy import _dtypes_impl

    if getattr(_dtypes_impl, "_default_dtypes", True) is None and "torch._dynamo" not in sys.modules:
        _dtypes_impl._default_dtypes = _dtypes_impl.DefaultDTypes(
            float_dtype=torch.float64, complex_dtype=torch.complex128, int_dtype=torch.int64)


# ------------------------------------------------------------------ crossing the boundary
def wrap(value):
    """A tensor (or a numpy array, scalar, list of them) as the layer's ndarray; anything else as is."""
    import torch

    tnp = layer()
    if isinstance(value, tnp.ndarray):
        return value
    if isinstance(value, torch.Tensor):
        return tnp.ndarray(value)
    if isinstance(value, _np.ndarray):
        return constant(value)
    if isinstance(value, _np.generic):
        return value.item()
    return value


def unwrap(value):
    """The tensor inside the layer's ndarray (``value`` itself otherwise)."""
    tensor = getattr(value, "tensor", None)
    return value if tensor is None else tensor


def constant(a):
    """A numpy array the loss reaches (argument, global, closure, attribute) as the layer's ndarray.

    float64, integer and bool arrays share memory with the user's array when it is writable:
    the rebound code sees later changes, as numpy code would. Writes into it from the loss are
    the loss's business: crosscheck refuses a loss that modifies its inputs before any oracle
    runs. float32/float16 arrays are upcast to float64 (a copy), as every float input is.
    """
    import torch

    tnp = layer()
    if isinstance(a, _np.generic):
        return a.item()
    if a.dtype.kind == "f" and a.dtype != _np.float64:
        a = a.astype(_np.float64)
    elif a.dtype.kind not in "biufc" or a.dtype.byteorder not in "=|":
        return a  # strings, objects, foreign byte order: torch cannot hold them; left as they are
    if not a.flags.writeable:
        a = a.copy()
    return tnp.ndarray(torch.from_numpy(a))


# ------------------------------------------------------------------ what the layer lacks
class _UfuncAt:
    """A binary function with numpy's unbuffered ``.at(a, indices, b)`` (``np.add.at``)."""

    def __init__(self, fn, name, sign):
        self._fn, self.__name__, self._sign = fn, name, sign
        functools.update_wrapper(self, fn)

    def __call__(self, *args, **kwargs):
        return self._fn(*args, **kwargs)

    def at(self, a, indices, b=None):
        """Accumulate ``b`` into ``a`` at ``indices``; repeated indices add up (numpy's rule)."""
        import torch

        tnp = layer()
        target = a.tensor
        positions = tnp.ndarray(torch.arange(target.numel()).reshape(target.shape))[indices].tensor
        values = tnp.asarray(1 if b is None else b).tensor.to(target.dtype)
        values = torch.broadcast_to(values, positions.shape).reshape(-1) * self._sign
        flat = target.reshape(-1).index_add(0, positions.reshape(-1), values)
        target.copy_(flat.reshape(target.shape))  # in place, as numpy: views of `a` see it


def _clip(a, a_min=None, a_max=None, out=None, **kwargs):
    """numpy's clip with maximum/minimum, so the gradient at a bound is 0.5 (as jax's)."""
    tnp = layer()
    if "min" in kwargs:
        a_min = kwargs.pop("min")
    if "max" in kwargs:
        a_max = kwargs.pop("max")
    if kwargs:
        raise TypeError(f"clip() got unexpected keyword arguments {sorted(kwargs)}")
    result = tnp.asarray(a)
    if a_min is not None:
        result = tnp.maximum(result, a_min)
    if a_max is not None:
        result = tnp.minimum(result, a_max)
    if out is not None:
        out[...] = result
        return out
    return result


def _has_traced(value):
    if isinstance(value, (list, tuple)):
        return any(_has_traced(v) for v in value)
    return hasattr(value, "tensor")


def _array(obj, dtype=None, *args, **kwargs):
    """``np.array`` of a list holding the layer's arrays keeps them in the graph (stacked)."""
    tnp = layer()
    if isinstance(obj, (list, tuple)) and _has_traced(obj):
        obj = tnp.stack([_array(v) if isinstance(v, (list, tuple)) else tnp.asarray(v) for v in obj])
    return tnp.array(obj, dtype, *args, **kwargs)


def _asarray(obj, dtype=None, order=None, **kwargs):
    """``np.asarray`` (and ``asanyarray``): numpy's defaults for ``order``/``subok``/``like`` accepted."""
    tnp = layer()
    kwargs = {k: v for k, v in kwargs.items() if not (k in ("subok", "like") and not v)}
    if isinstance(obj, (list, tuple)) and _has_traced(obj):
        return _array(obj, dtype)
    return tnp.asarray(obj, dtype, order="K" if order in (None, "K", "A", "C") else order, **kwargs)


def _nan_reduction(reduce, fill):
    def nan_reduce(a, axis=None, *args, **kwargs):
        tnp = layer()
        a = tnp.asarray(a)
        return reduce(tnp.where(tnp.isnan(a), fill, a), axis, *args, **kwargs)
    return nan_reduce


def _nanmean(a, axis=None, dtype=None, out=None, keepdims=False):
    tnp = layer()
    a = tnp.asarray(a)
    present = ~tnp.isnan(a)
    total = tnp.sum(tnp.where(present, a, 0.0), axis=axis, keepdims=keepdims)
    return total / tnp.sum(present, axis=axis, keepdims=keepdims)


def _nanvar(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
    tnp = layer()
    a = tnp.asarray(a)
    present = ~tnp.isnan(a)
    count = tnp.sum(present, axis=axis, keepdims=True)
    mean = tnp.sum(tnp.where(present, a, 0.0), axis=axis, keepdims=True) / count
    squares = tnp.sum(tnp.where(present, (a - mean) ** 2, 0.0), axis=axis, keepdims=keepdims)
    return squares / (tnp.sum(present, axis=axis, keepdims=keepdims) - ddof)


def _prod(a, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
    """``np.prod`` also over a tuple of axes (the layer takes one axis at a time)."""
    tnp = layer()
    if not isinstance(axis, (tuple, list)):
        return tnp.prod(a, axis=axis, dtype=dtype, out=out, keepdims=keepdims, **kwargs)
    result = tnp.asarray(a)
    for ax in sorted((ax % result.ndim for ax in axis), reverse=True):
        result = tnp.prod(result, axis=ax, dtype=dtype, keepdims=keepdims)
    return result


def _extras():
    tnp = layer()
    inf = float("inf")
    extras = {
        "add": _UfuncAt(tnp.add, "add", 1), "subtract": _UfuncAt(tnp.subtract, "subtract", -1),
        "clip": _clip, "array": _array, "asarray": _asarray, "prod": _prod,
        "nansum": _nan_reduction(tnp.sum, 0.0), "nanprod": _nan_reduction(tnp.prod, 1.0),
        "nanmax": _nan_reduction(tnp.max, -inf), "nanmin": _nan_reduction(tnp.min, inf),
        "nanargmax": _nan_reduction(tnp.argmax, -inf), "nanargmin": _nan_reduction(tnp.argmin, inf),
        "nancumsum": _nan_reduction(tnp.cumsum, 0.0), "nanmean": _nanmean, "nanvar": _nanvar,
        "nanstd": lambda a, axis=None, dtype=None, out=None, ddof=0, keepdims=False:
            tnp.sqrt(_nanvar(a, axis, ddof=ddof, keepdims=keepdims)),
        # numpy 2's array-API names for functions the layer has under their numpy 1 names
        "acos": tnp.arccos, "asin": tnp.arcsin, "atan": tnp.arctan, "atan2": tnp.arctan2,
        "acosh": tnp.arccosh, "asinh": tnp.arcsinh, "atanh": tnp.arctanh, "pow": tnp.power,
        "concat": tnp.concatenate, "permute_dims": tnp.transpose, "bool": tnp.bool_,
        "astype": lambda x, dtype, copy=True: tnp.asarray(x).astype(dtype),
        "matrix_transpose": lambda x: tnp.swapaxes(x, -1, -2),
        "isin": lambda element, test_elements, *a, **k: tnp.asarray(
            _np.isin(_np.asarray(unwrap(tnp.asarray(element)).detach()),
                     _np.asarray(unwrap(tnp.asarray(test_elements)).detach()), *a, **k)),
        "errstate": _np.errstate, "seterr": _np.seterr, "geterr": _np.geterr,
        "asanyarray": _asarray, "iterable": _np.iterable,
    }
    return extras


@functools.lru_cache(maxsize=1)
def namespace_source():
    """The layer's names plus :func:`_extras`, as one object (the rebinding's ``np`` under torch)."""
    import types

    tnp = layer()
    source = types.SimpleNamespace(**{n: getattr(tnp, n) for n in dir(tnp) if not n.startswith("_")})
    for name, value in _extras().items():
        setattr(source, name, value)
    del source.random  # crosscheck's stub stands there: a loss must not draw random numbers
    return source


def supported() -> list:
    """Every ``np.<name>`` the torch oracle understands, sorted."""
    return sorted(vars(namespace_source()))


# ------------------------------------------------------------------ the array API over the layer
class _ArrayAPI:
    """``array_api_compat``'s torch namespace, taking and returning the layer's arrays.

    A loss written against the array API (``xp = array_namespace(X)``) runs under the torch
    oracle with the layer's arrays (the rebinding gives every loss the same arrays): here
    ``array_namespace`` answers with this object, whose functions unwrap their arguments to
    tensors, call array_api_compat's torch function, and wrap the result again.
    """

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        import types

        import array_api_compat.torch as xp
        import torch

        value = getattr(xp, name)
        if isinstance(value, types.ModuleType):
            value = _ArrayAPIModule(value)
        elif callable(value) and not isinstance(value, (type, torch.dtype)):
            value = _speaking(value)
        setattr(self, name, value)
        return value


class _ArrayAPIModule(_ArrayAPI):
    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        if name.startswith("__") or name == "_module":
            raise AttributeError(name)
        value = getattr(self._module, name)
        value = _speaking(value) if callable(value) else value
        setattr(self, name, value)
        return value


def _unwrap_nested(value):
    if isinstance(value, (list, tuple)) and value.__class__ in (list, tuple):
        return value.__class__(_unwrap_nested(v) for v in value)
    torch_dtype = getattr(value, "torch_dtype", None)  # the layer's dtypes, as torch's
    if torch_dtype is not None:
        return torch_dtype
    return unwrap(value)


def _wrap_nested(value):
    import torch

    if isinstance(value, torch.Tensor):
        return wrap(value)
    if isinstance(value, tuple):
        return type(value)(*map(_wrap_nested, value)) if hasattr(value, "_fields") \
            else tuple(map(_wrap_nested, value))
    if isinstance(value, list):
        return [_wrap_nested(v) for v in value]
    return value


def _speaking(fn):
    @functools.wraps(fn)
    def call(*args, **kwargs):
        return _wrap_nested(fn(*_unwrap_nested(args), **{k: _unwrap_nested(v) for k, v in kwargs.items()}))
    return call


ARRAY_API = _ArrayAPI()


def array_namespace(*arrays, **kwargs):
    """``array_api_compat.array_namespace`` that knows the layer's arrays (see :class:`_ArrayAPI`)."""
    if any(hasattr(a, "tensor") for a in arrays):
        return ARRAY_API
    from array_api_compat import array_namespace as original
    return original(*arrays, **kwargs)
