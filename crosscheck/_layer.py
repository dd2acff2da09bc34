"""``check_layer``: layers as people write them, ``forward → (out, cache)`` and
``backward(dout, cache) → (dx, dw, db, …)`` (the cs231n convention).

The oracles differentiate the scalar ``Σ out · dout`` for a seeded random upstream gradient
``dout``; its gradient with respect to each input is exactly what ``backward(dout, cache)``
must return. The forward runs as written under jax and torch (``np`` rebound, see
``crosscheck._rebind``).
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from ._check import check
from ._errors import CheckError
from ._inputs import array_subclass_error
from ._prepare import settings
from ._report import Report

CHECK_OPTIONS = ("oracles", "tolerances", "case", "fd", "executor", "progress", "taylor",
                 "batch", "rebind_modules")


def _is_block(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"


def _float_list(value: Any) -> bool:
    """A list or tuple of floats (nested or not): an array the caller forgot to make one."""
    if not isinstance(value, (list, tuple)) or not value:
        return False
    try:
        arr = np.asarray(value)
    except Exception:  # noqa: BLE001 - ragged or odd: not an array, passed through
        return False
    return arr.dtype.kind == "f" and arr.ndim >= 1


def _refuse_array_subclasses(value: Any, where: str, name: str) -> None:
    """``np.matrix`` and masked arrays, anywhere in an input (settings dicts too)."""
    problem = array_subclass_error(value, where, name)
    if problem:
        raise CheckError(problem)
    if isinstance(value, dict):
        for k, v in value.items():
            _refuse_array_subclasses(v, f"{where}[{k!r}]", f"{name}[{k!r}]")
    elif isinstance(value, (list, tuple)):
        for j, v in enumerate(value):
            _refuse_array_subclasses(v, f"{where}[{j}]", f"{name}[{j}]")


def _validate_inputs(forward: Any, backward: Any, inputs: dict, wrt: Any) -> Optional[list]:
    """Refuse, before any user code runs, inputs check_layer would misread; ``wrt`` as a
    list (or None)."""
    for which, fn in (("forward", forward), ("backward", backward)):
        if not callable(fn):
            raise CheckError(f"`{which}` must be callable, got {type(fn).__name__}; pass the "
                             f"layer's functions, e.g. `check_layer(affine_forward, "
                             f"affine_backward, x=x, w=w, b=b)`.")
    given = wrt
    if wrt is not None:
        wrt = (None if isinstance(wrt, (str, bytes, Mapping)) or not hasattr(wrt, "__iter__")
               else list(wrt))
        if wrt is None or not all(isinstance(n, str) for n in wrt):
            raise CheckError(f"`wrt` must be a list of input names such as ['x', 'w'], got "
                             f"{given!r}.")
    for name, value in inputs.items():
        try:
            _refuse_array_subclasses(value, f"input `{name}`", name)
        except RecursionError:
            raise CheckError(f"input `{name}` nests lists, tuples or dicts too deeply to copy "
                             f"(or holds itself); pass it without cycles.") from None
        if _float_list(value) and (wrt is None or name in wrt):
            raise CheckError(
                f"input `{name}` is a {type(value).__name__} of floats; check_layer checks the "
                f"gradients of float ndarray inputs and passes other inputs through as they "
                f"are, so `{name}` would not be checked: pass `np.asarray({name})`, or name the "
                f"inputs to check with `wrt=[...]` to pass `{name}` through as it is.")
    return wrt


def _fresh(constants: dict) -> dict:
    """A private copy of the pass-through inputs for one forward call.

    Layers written in the cs231n convention write into their settings (``batchnorm_forward``
    stores ``bn_param["running_mean"]``): every call gets its own copy, so the user's dict is
    never modified, one call never sees another's values, and a jax tracer or torch tensor
    stored during an oracle's run never reaches the numpy calls (or the user).
    """
    out = {}
    for k, v in constants.items():
        if isinstance(v, np.ndarray):
            out[k] = v.copy()
        elif isinstance(v, (int, float, complex, str, bool, type(None))):
            out[k] = v
        else:
            try:
                out[k] = copy.deepcopy(v)
            except Exception:  # noqa: BLE001 - an uncopyable object is passed as it is
                out[k] = v
    return out


def _layer_loss(forward: Callable, names: list, constants: dict,
                convert: Optional[Callable] = None) -> Callable:
    def loss(params, dout):
        fresh = _fresh(constants)
        if convert is not None:
            fresh = {k: convert(v) for k, v in fresh.items()}
        out = forward(**params, **fresh)
        if isinstance(out, tuple):
            out = out[0]
        return (out * dout).sum()  # a method every framework's arrays have
    loss.__qualname__ = f"check_layer.<Σ out·dout of {getattr(forward, '__name__', 'forward')}>"
    return loss


def _rebound(forward: Callable, framework: str, names: list, constants: dict,
             functional: bool = False) -> Callable:
    """The layer loss with ``forward`` rebound to ``framework`` on first use.

    Under torch the loss also carries its variant with in-place writes made into copies
    (``__crosscheck_functional__``), which the torch oracle tries when autograd refuses a
    write (see :mod:`crosscheck._functional`).
    """
    cache = {}

    def loss(params, dout):
        if "fn" not in cache:
            from ._rebind import jax_namespace, rebind, run_rebound, torch_namespace
            namespace = jax_namespace() if framework == "jax" else torch_namespace(functional)
            # numpy arrays inside pass-through inputs (``bn_param["running_mean"]``) become
            # the framework's arrays, as the rebinding does for globals: torch's operators
            # refuse to meet numpy arrays (``ndarray + tensor`` fails).
            cache["fn"] = _layer_loss(run_rebound(forward, framework, functional), names, constants,
                                      convert=lambda value: rebind(value, namespace))
        if framework == "torch":  # the forward is numpy code: it gets arrays with numpy's methods
            from ._torch_numpy import unwrap, wrap
            return unwrap(cache["fn"]({k: wrap(v) for k, v in params.items()}, wrap(dout)))
        return cache["fn"](params, dout)

    if framework == "torch" and not functional:
        loss.__crosscheck_functional__ = _rebound(forward, framework, names, constants, True)
    return loss


def _layer_gradient(forward: Callable, backward: Callable, names: list, arrays: list,
                    constants: dict) -> Callable:
    """``grad(p, dout)``: the layer's backward on its forward's cache, keyed by input name."""
    def grad(p, d):
        result = forward(**p, **_fresh(constants))
        if not isinstance(result, tuple) or len(result) != 2:
            raise CheckError("`forward` must return `(out, cache)` for check_layer, so that "
                             "`backward(dout, cache)` can run.")
        grads = backward(d, result[1])
        if isinstance(grads, Mapping):
            return {n: grads[n] for n in names if n in grads} | {k: v for k, v in grads.items()}
        grads = grads if isinstance(grads, (tuple, list)) else (grads,)
        if len(grads) != len(arrays):
            raise CheckError(
                f"`backward` returned {len(grads)} gradient(s) but `forward` has "
                f"{len(arrays)} float array input(s) ({', '.join(arrays)}); return one gradient "
                f"per array input, in the forward's argument order.")
        by_name = dict(zip(arrays, grads))
        return {n: by_name[n] for n in names}
    return grad


def _upstream(forward: Callable, inputs: dict, dout: Any, seed: Any) -> np.ndarray:
    """Run the forward once on the inputs; the given ``dout`` checked against its output,
    or a seeded random one of the output's shape."""
    try:
        out = forward(**_fresh(inputs))
    except Exception as exc:
        raise CheckError(f"`forward` raised {type(exc).__name__} on the given inputs: {exc}; "
                         f"check_layer needs a forward that runs on them (pass every input "
                         f"by name, arrays as numpy arrays).") from exc
    out = out[0] if isinstance(out, tuple) else out
    try:
        kind = np.asarray(out).dtype.kind
    except Exception:  # noqa: BLE001 - ragged or odd: not an array
        kind = "O"
    if kind not in "biuf":
        raise CheckError(f"`forward` returned {type(out).__name__} as its output; check_layer "
                         f"needs `(out, cache)` with `out` a real array.")
    if dout is None:
        return np.random.default_rng(seed).standard_normal(np.shape(out))
    problem = array_subclass_error(dout, "`dout`", "dout")
    if problem:
        raise CheckError(problem)
    if not isinstance(dout, np.ndarray) or dout.dtype.kind not in "biuf":
        raise CheckError(f"`dout` must be a real numpy array of the output's shape "
                         f"{np.shape(out)}, got {type(dout).__name__}; pass "
                         f"`np.asarray(dout, dtype=float)`.")
    if not np.all(np.isfinite(dout)):
        raise CheckError("`dout` holds NaN/Inf; pass a finite upstream gradient (or none: "
                         "check_layer then draws a seeded random one).")
    if np.shape(dout) != np.shape(out):
        raise CheckError(f"`dout` has shape {np.shape(dout)} but the forward's output has "
                         f"shape {np.shape(out)}; pass an upstream gradient of the output's "
                         f"shape.")
    return dout


def check_layer(forward: Callable, backward: Callable, *, wrt: Optional[Sequence[str]] = None,
                seed: int = 0, dout: Optional[np.ndarray] = None, **inputs: Any) -> Report:
    """Check a layer's hand-written ``backward`` against its ``forward``.

    Args:
        forward: ``forward(**inputs) -> (out, cache)`` (or just ``out``), plain numpy or array API.
        backward: ``backward(dout, cache)`` returning the gradients in the order of
            ``forward``'s array parameters (``(dx, dw, db)`` for ``forward(x, w, b)``), a single
            array when there is one, or a dict keyed by input name.
        wrt: the inputs to check (default: every float array input). Other inputs (dicts of
            settings such as ``bn_param``, integer arrays, scalars) are passed through, a
            fresh copy for every call: a forward that writes into them (running averages)
            never modifies the caller's objects.
        seed: seeds the random upstream gradient ``dout`` (and the check's own choices).
        dout: the upstream gradient to use instead of a random one.
        **inputs: the forward's inputs by name, and options of :func:`crosscheck.check`
            (``oracles``, ``tolerances``, ``fd``, ``case``, …).

    Returns:
        A :class:`Report` whose blocks are named by the forward's argument names.

    Raises:
        CheckError: an input is missing, is a ``np.matrix`` or a masked array, or is a list
            of floats where an array is meant; an option is invalid; ``forward`` raises or
            returns no array; ``dout`` does not fit the output; or ``backward`` returns the
            wrong number of gradients.

    Example:
        >>> import numpy as np, crosscheck
        >>> def fwd(x, w):
        ...     return x @ w, (x, w)
        >>> def bwd(dout, cache):
        ...     x, w = cache
        ...     return dout @ w.T, x.T @ dout
        >>> r = np.random.default_rng(0)
        >>> crosscheck.check_layer(fwd, bwd, x=r.standard_normal((2, 3)),
        ...                        w=r.standard_normal((3, 4)), oracles=["fd"]).ok
        True
    """
    options = {k: inputs.pop(k) for k in CHECK_OPTIONS if k in inputs}
    wrt = _validate_inputs(forward, backward, inputs, wrt)
    settings(seed=seed, **options)   # refuse bad options before any user code runs
    try:
        signature = inspect.signature(forward)
        order = [p.name for p in signature.parameters.values()
                 if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY, p.POSITIONAL_ONLY)]
    except (TypeError, ValueError):
        order = list(inputs)
    missing = [n for n in order if n not in inputs and
               signature.parameters[n].default is inspect.Parameter.empty]
    if missing:
        raise CheckError(f"`forward` takes {', '.join(f'`{n}`' for n in missing)} but "
                         f"check_layer was not given {'it' if len(missing) == 1 else 'them'}; "
                         f"pass every input by name, e.g. `check_layer(fwd, bwd, x=x, w=w)`.")
    arrays = [n for n in order if n in inputs and _is_block(np.asarray(inputs[n]))
              and isinstance(inputs[n], np.ndarray)]
    names = list(wrt) if wrt is not None else arrays
    for n in names:
        if n not in arrays:
            raise CheckError(f"input `{n}` is not a float array input of `forward`; check_layer "
                             f"checks the gradients of float array inputs ({', '.join(arrays)}).")
    params = {n: inputs[n] for n in names}
    constants = {k: v for k, v in inputs.items() if k not in params}
    dout = _upstream(forward, inputs, dout, seed)

    grad = _layer_gradient(forward, backward, names, arrays, constants)
    loss = {"numpy": _layer_loss(forward, names, constants),
            "jax": _rebound(forward, "jax", names, constants),
            "torch": _rebound(forward, "torch", names, constants)}
    options.setdefault("case", getattr(forward, "__name__", None))
    return check(loss, grad, params, dout, seed=seed, **options)
