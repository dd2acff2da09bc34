"""∂J/∂(tap offset) per reference: what localisation compares the backward's intermediates with.

:class:`Tapped` is the loss with its forward's intermediates tapped (:mod:`crosscheck._taps`).
Each runner differentiates it by the zero offsets of the taps, and by the parameters too when
``with_params`` (:func:`crosscheck.locate` alone; ``check()`` has judged the parameter blocks
already and asks for the offsets only). A runner returns ``({name: gradient}, {name: error
estimate} or None)``; autodiff has no error estimate.

* :func:`fd`: centered differences on the numpy loss, one element of one offset (or
  parameter) at a time, step ``h = ε^(1/3)·max(1, |x|)`` (``x`` the tapped value there); the
  error estimate is ``|D(h) − D(2h)|`` (D(2h)'s truncation error is four times D(h)'s) plus
  the rounding ``ε·|J|/h``. Four loss calls per element: affordable for the intermediates of
  small models only, which is why ``check()`` uses it only when no autodiff reference ran,
  and refuses beyond ``BUDGETS["tap_fd_max"]`` elements.
* :func:`jax_gradients`: the user's numpy code rebound (:mod:`crosscheck._rebind`), then
  ``jax.value_and_grad`` compiled with ``jax.jit`` where it traces (the jax oracle's
  :func:`~crosscheck.oracles._jax._value_and_grad`, sharing its compilation cache), eagerly
  where it does not. Taps read their session at trace time, inside the traced function.
* :func:`torch_gradients`: the same code under ``torch.autograd.grad``; parameters are
  plain tensors unless their gradients are asked for, so the backward pass stops at the taps.

Where it breaks: centered differences on a tapped value straddle a kink of the forward at
the check point (a ReLU input at exactly 0) just as they do on parameters; autodiff
references are the ones to trust there.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ._taps import Session, retarget, session, tappable, tapped_function
from ._tolerances import EPS
from ._user_calls import private_copy


class Tapped:
    """The loss with its forward's intermediates tapped: what every reference differentiates.

    ``forward`` None leaves the loss as it is (explicit ``crosscheck.tap`` calls only); names
    ``forward`` does not assign exactly once are explained in ``notes``.
    """

    def __init__(self, loss, forward, names, notes: list):
        self.loss, self.notes = loss, notes
        if forward is None:
            return
        single, why = tappable(forward, names)
        notes.extend(why)
        if single:
            self.loss = retarget(loss, forward, tapped_function(forward, single))

    def shapes(self, params, args) -> dict:
        """``{tap name: shape}`` in the order the forward runs them (one recording evaluation)."""
        with session(Session()) as recording:
            self.loss(private_copy(params), *private_copy(args))
        return recording.shapes


def fd(tapped: Tapped, params, args, shapes, with_params: bool = True) -> tuple:
    """Centered differences of J by every tap offset (and parameter): ``({name: estimate}, {name: error})``."""
    offsets = {n: np.zeros(s) for n, s in shapes.items()}
    point = {n: np.asarray(v, np.float64).copy() for n, v in params.items()}
    base = {n: np.asarray(v) for n, v in _values(tapped, point, args).items()}

    def J(p, o):
        with session(Session(o)):
            return float(tapped.loss(private_copy(p), *private_copy(args)))

    j0 = abs(J(point, offsets))
    todo = [*((n, point[n], "p") for n in point if with_params), *((n, offsets[n], "o") for n in offsets)]
    estimates, errors = {}, {}
    for name, array, where in todo:
        scale = base[name] if where == "o" else array
        est, err = np.zeros(array.shape), np.zeros(array.shape)
        for index in np.ndindex(array.shape):
            h = EPS ** (1 / 3) * max(1.0, abs(float(np.reshape(scale, array.shape)[index])))
            d = []
            for step in (h, 2 * h):
                saved = array[index]
                array[index] = saved + step
                up = J(point, offsets)
                array[index] = saved - step
                down = J(point, offsets)
                array[index] = saved
                d.append((up - down) / (2 * step))
            est[index], err[index] = d[0], abs(d[0] - d[1]) + EPS * max(j0, 1e-300) / h
        estimates[name], errors[name] = est, err
    return estimates, errors


def _values(tapped, point, args) -> dict:
    """The tapped intermediates' values at ``point`` (for the step rule), by a zero-offset run."""
    values = {}

    class Keep(Session):
        def add(self, name, value, by_hand=False):
            values[name] = value
            if by_hand:
                self.by_hand.add(name)
            return value

    with session(Keep()):
        tapped.loss(private_copy(point), *private_copy(args))
    return values


def jax_gradients(tapped: Tapped, params, args, shapes, with_params: bool = True) -> tuple:
    """``jax.value_and_grad`` of the rebound, tapped loss by offsets and parameters (float64, jit where it traces)."""
    import jax
    import jax.numpy as jnp

    from ._rebind import rebind_object, run_rebound
    from .oracles._jax import _value_and_grad

    loss = run_rebound(tapped.loss, "jax")
    with jax.enable_x64(True):
        jargs = tuple(_to(a, _device, lambda v: rebind_object(v, "jax")) for a in args)

        def scalar(x):
            p, o = x
            with session(Session(o)):
                return jnp.reshape(loss(p, *jargs), ())

        p = {n: jax.device_put(np.asarray(v, np.float64)) for n, v in params.items()}
        o = {n: jnp.zeros(s, jnp.float64) for n, s in shapes.items()}
        _, (gp, go), _ = _value_and_grad(jax, scalar, (p, o))
        chosen = {**gp, **go} if with_params else go
        out = {n: np.asarray(g, np.float64) for n, g in chosen.items()}
    return out, None


def _device(array: np.ndarray):
    """A jax array of a numeric numpy array (``device_put`` compiles nothing); others as they are."""
    import jax

    return jax.device_put(array) if array.dtype.kind in "biufc" else array


def torch_gradients(tapped: Tapped, params, args, shapes, with_params: bool = True) -> tuple:
    """``torch.autograd.grad`` of the rebound, tapped loss by offsets (and parameters), float64."""
    import torch

    from . import _torch_numpy
    from ._rebind import rebind_object, run_rebound
    from .oracles._torch import _DEFAULT_DTYPE

    loss = run_rebound(tapped.loss, "torch")
    with _DEFAULT_DTYPE:
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            leaves = {n: torch.tensor(np.asarray(v, np.float64), requires_grad=with_params)
                      for n, v in params.items()}
            zeros = {n: torch.zeros(s, dtype=torch.float64, requires_grad=True) for n, s in shapes.items()}
            targs = tuple(_to(a, lambda v: _torch_numpy.constant(v.copy()),
                              lambda v: rebind_object(_torch_numpy.wrap(v), "torch")) for a in args)
            with session(Session({n: _torch_numpy.wrap(t) for n, t in zeros.items()})):
                value = _torch_numpy.unwrap(loss({n: _torch_numpy.wrap(t) for n, t in leaves.items()}, *targs))
            wrt = {**(leaves if with_params else {}), **zeros}
            grads = torch.autograd.grad(value.reshape(()), list(wrt.values()), allow_unused=True)
        finally:
            torch.set_default_dtype(previous)
    shape = {**{n: np.shape(v) for n, v in params.items()}, **shapes}
    return {n: np.zeros(shape[n]) if g is None else g.detach().cpu().numpy().astype(np.float64)
            for n, g in zip(wrt, grads)}, None


def _to(value, array, other):
    if isinstance(value, np.ndarray):
        return array(value)
    if isinstance(value, dict):
        return {k: _to(v, array, other) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and value.__class__ in (list, tuple):
        return value.__class__(_to(v, array, other) for v in value)
    return value if isinstance(value, (int, float, complex, str, type(None))) else other(value)


#: reference name -> runner ``(tapped, params, args, shapes, with_params) -> (gradients, errors)``.
RUNNERS: Mapping[str, Any] = {"fd": fd, "jax": jax_gradients, "torch": torch_gradients}
