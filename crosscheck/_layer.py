"""``check_layer``: layers as people write them, ``forward → (out, cache)`` and
``backward(dout, cache) → (dx, dw, db, …)`` (the cs231n convention).

The oracles differentiate the scalar ``Σ out · dout`` for a seeded random upstream gradient
``dout``; its gradient with respect to each input is exactly what ``backward(dout, cache)``
must return. The forward runs as written under jax and torch (``np`` rebound, see
``crosscheck._rebind``), or, given as ``{"numpy": f, "jax": g, "torch": h}``, each framework
runs its own forward, as ``check()`` runs per-framework losses.

One builder, :func:`layer_case`, turns a layer into the ``(loss, grad, params, args,
options)`` of a :class:`~crosscheck.Case`: ``check_layer`` checks the Case it builds at once,
and ``Case.layer`` hands it to the command line, suites and scripts, which check it as they
check every Case -- so a layer is checked the same way wherever it is named.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from ._case import Case
from ._check import check
from ._errors import CheckError
from ._inputs import array_subclass_error
from ._prepare import settings
from ._report import Report

#: check()'s keyword options (``seed`` is the layer's own): read off its signature, so that an
#: option added there reaches layers too.
CHECK_OPTIONS = tuple(name for name, p in inspect.signature(check).parameters.items()
                      if p.kind is inspect.Parameter.KEYWORD_ONLY and name != "seed")
FRAMEWORKS = ("numpy", "jax", "torch")


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


def _forwards(forward: Any) -> dict:
    """``forward`` as ``{framework: callable}`` with ``numpy`` always there.

    A dict gives per-framework forwards the way ``check()``'s dict gives per-framework
    losses; the numpy one is required, because centered differences, the output's shape and
    the cache ``backward`` receives all come from it. A callable is the numpy forward, which
    jax and torch run rebound.
    """
    if not isinstance(forward, Mapping):
        return {"numpy": forward}
    keys = ", ".join(f"`{k}`" for k in forward) or "none"
    unknown = [k for k in forward if k not in FRAMEWORKS]
    if unknown:
        raise CheckError(f"`forward` dict has unknown key(s) "
                         f"{', '.join(f'`{k}`' for k in unknown)} (its keys: {keys}); use "
                         f"`numpy`, `jax`, `torch`, e.g. `check_layer({{\"numpy\": f, "
                         f"\"torch\": f_torch}}, backward, x=x)`.")
    if "numpy" not in forward:
        raise CheckError(f"`forward` dict has no `numpy` entry (its keys: {keys}); centered "
                         f"differences and the cache `backward` receives come from the numpy "
                         f"forward: add `\"numpy\": forward_np`.")
    for key, fn in forward.items():
        if not callable(fn):
            raise CheckError(f"`forward[{key!r}]` must be callable, got {type(fn).__name__}; "
                             f"pass that framework's forward function.")
    return dict(forward)


def _validate_inputs(forward: Any, backward: Any, inputs: dict, wrt: Any) -> Optional[list]:
    """Refuse, before any user code runs, inputs check_layer would misread; ``wrt`` as a
    list (or None). ``forward`` is the numpy forward."""
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


def _framework_arrays(framework: str) -> Callable:
    """A converter for the pass-through inputs of a forward written for ``framework``: numpy
    arrays (inside dicts, lists and tuples too) become that framework's arrays, as ``check()``
    converts the arguments of a per-framework loss."""
    if framework == "jax":
        import jax.numpy as jnp

        def array(value: np.ndarray) -> Any:
            return jnp.asarray(value)
    else:
        import torch

        def array(value: np.ndarray) -> Any:
            return torch.from_numpy(value.copy())

    def convert(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return array(value)
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)) and value.__class__ in (list, tuple):
            return value.__class__(convert(v) for v in value)
        return value
    return convert


def _given(forward: Callable, framework: str, names: list, constants: dict) -> Callable:
    """The layer loss of a forward the user wrote for ``framework``: it runs as it is (no
    rebinding) on that framework's arrays; the converter is made on first use, so building
    a case imports neither jax nor torch."""
    cache: dict = {}

    def loss(params, dout):
        if "fn" not in cache:
            cache["fn"] = _layer_loss(forward, names, constants,
                                      convert=_framework_arrays(framework))
        return cache["fn"](params, dout)
    loss.__qualname__ = f"check_layer.<Σ out·dout of {getattr(forward, '__name__', 'forward')}>"
    return loss


def _losses(forwards: dict, names: list, constants: dict) -> dict:
    """``check()``'s per-framework loss dict: each framework's own forward where one was
    given, else the numpy forward rebound."""
    losses = {"numpy": _layer_loss(forwards["numpy"], names, constants)}
    for framework in ("jax", "torch"):
        if framework in forwards:
            losses[framework] = _given(forwards[framework], framework, names, constants)
        else:
            losses[framework] = _rebound(forwards["numpy"], framework, names, constants)
    return losses


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
    if not isinstance(out, tuple) or len(out) != 2:
        raise CheckError("`forward` must return `(out, cache)` for check_layer, so that "
                         "`backward(dout, cache)` can run.")
    out = out[0]
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


def _blocks(forward: Callable, inputs: dict, wrt: Optional[list]) -> tuple:
    """``(names, arrays)``: the inputs to check, and every float array input of ``forward``
    in its argument order (``backward`` returns one gradient per array input)."""
    signature = None
    try:
        signature = inspect.signature(forward)
        order = [p.name for p in signature.parameters.values()
                 if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY, p.POSITIONAL_ONLY)]
    except (TypeError, ValueError):
        order = list(inputs)
    missing = [n for n in order if n not in inputs and signature is not None and
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
    return names, arrays


def layer_case(cls: type, name: str, forward: Any, backward: Callable, *,
               wrt: Optional[Sequence[str]], seed: int, dout: Optional[np.ndarray],
               inputs: dict) -> Case:
    """The :class:`Case` that checks a layer: the one path of ``check_layer`` and ``Case.layer``.

    ``inputs`` holds the forward's inputs and ``check()``'s options (``CHECK_OPTIONS``);
    every option is validated, and every input refused that would be misread, before the
    forward runs -- once, on the inputs, for the output's shape (a random ``dout`` is drawn
    from ``seed``). The Case's loss is ``check()``'s per-framework dict of ``Σ out · dout``,
    its one argument ``dout``; its options hold ``seed`` and the options given, without
    ``case`` (the Case's name names it).

    Raises:
        CheckError: as :func:`check_layer` says.
    """
    inputs = dict(inputs)
    clash = [k for k in CHECK_OPTIONS if isinstance(inputs.get(k), np.ndarray)]
    if clash:
        raise CheckError(f"the layer input `{clash[0]}` has the name of check()'s option "
                         f"`{clash[0]}`, so it would be read as that option: rename the "
                         f"forward's argument.")
    options = {k: inputs.pop(k) for k in CHECK_OPTIONS if k in inputs}
    forwards = _forwards(forward)
    wrt = _validate_inputs(forwards["numpy"], backward, inputs, wrt)
    settings(seed=seed, **options)   # refuse bad options before any user code runs
    names, arrays = _blocks(forwards["numpy"], inputs, wrt)
    params = {n: inputs[n] for n in names}
    constants = {k: v for k, v in inputs.items() if k not in params}
    dout = _upstream(forwards["numpy"], inputs, dout, seed)
    grad = _layer_gradient(forwards["numpy"], backward, names, arrays, constants)
    options.pop("case", None)
    return cls(name, _losses(forwards, names, constants), grad, params, (dout,),
               {**options, "seed": seed})


def check_layer(forward: Callable | Mapping[str, Callable], backward: Callable, *,
                wrt: Optional[Sequence[str]] = None, seed: int = 0,
                dout: Optional[np.ndarray] = None, **inputs: Any) -> Report:
    """Check a layer's hand-written ``backward`` against its ``forward``.

    Args:
        forward: ``forward(**inputs) -> (out, cache)`` (per-framework ones may return just
            ``out``), plain numpy or array API; or a dict of per-framework forwards
            ``{"numpy": f, "jax": g, "torch": h}`` (``numpy`` is required: centered differences and the cache ``backward`` receives
            come from it; a framework left out runs the numpy one rebound), as ``check()``
            takes per-framework losses. A framework's own forward receives that framework's
            arrays, pass-through inputs included.
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
            of floats where an array is meant; an option is invalid; ``forward`` is a dict
            with keys other than ``numpy``, ``jax``, ``torch`` or without ``numpy``;
            ``forward`` raises or returns no array; ``dout`` does not fit the output; or
            ``backward`` returns the wrong number of gradients.

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
    numpy_forward = forward.get("numpy") if isinstance(forward, Mapping) else forward
    label = inputs.get("case", getattr(numpy_forward, "__name__", None))
    case = layer_case(Case, str(label), forward, backward, wrt=wrt, seed=seed, dout=dout,
                      inputs=inputs)
    return check(case.loss, case.grad, case.params, *case.args, case=label, **case.options)
