"""Library functions the user's numpy code calls, and what they become under jax and torch.

Rebinding never runs library code with the framework's arrays: scipy's compiled functions
would convert them to numpy (cutting the gradient), and its Python functions call numpy by
their own name. A few library entry points are so common in hand-written losses that the
rebinding maps them to the framework's equivalent instead:

* ``scipy.special`` (the module, or functions imported from it: ``expit``, ``logit``,
  ``logsumexp``, ``softmax``, ``log_softmax``, ``gammaln``, ``digamma``, ``xlogy``, ``erf``,
  ...) becomes ``jax.scipy.special`` under jax and the functions of ``torch.special`` (with
  numpy's signatures) under torch. A name the framework lacks is refused by name, at the
  line that uses it.
* ``array_api_compat.array_namespace`` under torch answers for the arrays of torch's numpy
  layer (see :mod:`crosscheck._torch_numpy`).

Everything else from a library runs as it is (see :mod:`crosscheck._rebind`).
"""

from __future__ import annotations

import functools
import sys
import types

SPECIAL = "scipy.special"


def replacement(value, namespace_factory):
    """What library object ``value`` becomes in code rebound to a framework, or ``None``.

    Args:
        value: a module, function or ufunc the user's code reaches.
        namespace_factory: ``framework_name -> NumpyNamespace`` used to build the
            framework's ``scipy.special`` namespace (so missing names raise like ``np``'s).
    """
    special = sys.modules.get(SPECIAL)
    framework = namespace_factory.framework
    if isinstance(value, types.ModuleType):
        if special is not None and value is special:
            return special_namespace(framework, namespace_factory)
        if framework == "torch" and value.__name__ == "array_api_compat":
            return _array_api_compat_for_torch(value)
        return None
    name = getattr(value, "__name__", None)
    if not isinstance(name, str):
        return None
    if special is not None and getattr(special, name, None) is value:
        return getattr(special_namespace(framework, namespace_factory), name)
    if framework == "torch" and name in ("array_namespace", "get_namespace") \
            and (getattr(value, "__module__", "") or "").startswith("array_api_compat"):
        from ._torch_numpy import array_namespace
        return array_namespace
    return None


class _ArrayAPICompat(types.ModuleType):
    """``array_api_compat`` as rebound code under torch sees it (``from array_api_compat import
    array_namespace`` inside a function): ``array_namespace`` knows the numpy layer's arrays."""

    def __init__(self, module):
        super().__init__(module.__name__, module.__doc__)
        self.__dict__["_cc_module"] = module

    def __getattr__(self, name):
        if name in ("array_namespace", "get_namespace"):
            from ._torch_numpy import array_namespace
            return array_namespace
        return getattr(self.__dict__["_cc_module"], name)


@functools.lru_cache(maxsize=1)
def _array_api_compat_for_torch(module):
    return _ArrayAPICompat(module)


_SPECIAL_NAMESPACES: dict = {}


def special_namespace(framework, namespace_factory):
    """``scipy.special`` under ``framework``: missing names raise NotTraceable when used."""
    hit = _SPECIAL_NAMESPACES.get(framework)
    if hit is None:
        if framework == "jax":
            source = _jax_special()
        else:
            source = _torch_special()
        hit = _SPECIAL_NAMESPACES[framework] = namespace_factory.make(f"scipy.special over {framework}",
                                                                      source, "scipy.special")
    return hit


# ------------------------------------------------------------------ scipy.special over jax
@functools.lru_cache(maxsize=1)
def _jax_special():
    """``jax.scipy.special``, plus the names scipy has that it lacks."""
    import jax.nn
    import jax.scipy.special as special

    source = types.SimpleNamespace(**{n: getattr(special, n) for n in dir(special) if not n.startswith("_")})
    if not hasattr(source, "log_expit"):
        source.log_expit = jax.nn.log_sigmoid
    if not hasattr(source, "psi"):
        source.psi = special.digamma
    return source


# ------------------------------------------------------------------ scipy.special over torch
def _elementwise(torch_fn):
    from ._torch_numpy import layer, wrap

    def call(*args, out=None, **kwargs):
        if out is not None or kwargs:
            raise TypeError(f"{torch_fn.__name__}: only positional arguments are supported under torch")
        tnp = layer()
        tensors = [tnp.asarray(a).tensor for a in args]
        tensors = [t if t.is_floating_point() else t.double() for t in tensors]
        return wrap(torch_fn(*tensors))

    call.__name__ = torch_fn.__name__
    return call


def _logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    from ._torch_numpy import layer

    tnp = layer()
    a = tnp.asarray(a)
    if b is not None:
        b = tnp.asarray(b)
        a = a + tnp.log(tnp.abs(b))
    peak = tnp.max(a, axis=axis, keepdims=True)
    peak = tnp.where(tnp.isfinite(peak), peak, 0.0)
    terms = tnp.exp(a - peak) * (tnp.sign(b) if b is not None else 1.0)
    total = tnp.sum(terms, axis=axis, keepdims=True)
    result = tnp.log(tnp.abs(total)) + peak
    if not keepdims:
        result = tnp.squeeze(result, axis=axis) if axis is not None else result.reshape(())
    if return_sign:
        sign = tnp.sign(total)
        return result, (sign if keepdims else (tnp.squeeze(sign, axis=axis) if axis is not None
                                               else sign.reshape(())))
    return result


def _softmax(x, axis=None):
    from ._torch_numpy import layer

    tnp = layer()
    x = tnp.asarray(x)
    shifted = tnp.exp(x - tnp.max(x, axis=axis, keepdims=True))
    return shifted / tnp.sum(shifted, axis=axis, keepdims=True)


def _log_softmax(x, axis=None):
    from ._torch_numpy import layer

    tnp = layer()
    x = tnp.asarray(x)
    return x - _logsumexp(x, axis=axis, keepdims=True)


@functools.lru_cache(maxsize=1)
def _torch_special():
    import torch

    special = torch.special
    functions = {
        "expit": special.expit, "logit": special.logit, "gammaln": special.gammaln,
        "digamma": special.digamma, "psi": special.digamma, "xlogy": special.xlogy,
        "xlog1py": special.xlog1py, "erf": special.erf, "erfc": special.erfc,
        "erfinv": special.erfinv, "erfcx": special.erfcx, "ndtr": special.ndtr,
        "ndtri": special.ndtri, "log_ndtr": special.log_ndtr, "i0": special.i0,
        "i0e": special.i0e, "i1": special.i1, "i1e": special.i1e, "entr": special.entr,
        "expm1": special.expm1, "log1p": special.log1p, "exp2": special.exp2,
        "sinc": special.sinc, "gamma": _gamma,
    }
    functions["log_expit"] = torch.nn.functional.logsigmoid
    source = types.SimpleNamespace(**{name: _elementwise(fn) for name, fn in functions.items()})
    source.logsumexp, source.softmax, source.log_softmax = _logsumexp, _softmax, _log_softmax
    return source


def _gamma(x):
    """Γ(x) = sign × exp(gammaln(x)); Γ < 0 on (-2k-1, -2k), k = 0, 1, … (an odd floor below 0)."""
    import torch

    negative = (x < 0) & (torch.remainder(torch.floor(x), 2) == 1)
    return torch.exp(torch.special.gammaln(x)) * torch.where(negative, -1.0, 1.0).to(x.dtype)
