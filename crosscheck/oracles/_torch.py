"""``torch.autograd`` in float64."""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np

from ._base import (OracleResult, Problem, Request, explain_failure, framework_loss, library_scope,
                    to_float64_block)

NAME = "torch"
REQUIRES = "torch"
KIND = "autodiff"
RANK = 1
# torch's default dtype is process-wide: Python floats meeting integer tensors (``0.5 * Y``)
# must give float64 during the oracle's run, and concurrent checks must not interleave.
_DEFAULT_DTYPE = threading.Lock()


def version() -> str:
    import torch
    return f"torch {torch.__version__}"


def _convert(value, torch):
    """numpy arrays become torch tensors, also inside dicts, lists and tuples of arguments."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, dict):
        return {k: _convert(v, torch) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_convert(v, torch) for v in value)
    return value


def _as_numpy_layer(value, functional):
    """Arguments for code written in numpy: the numpy layer's arrays (copies of the caller's),
    and the user's objects with their methods rebound."""
    from .. import _torch_numpy
    from .._rebind import rebind_object
    if isinstance(value, np.ndarray):
        return _torch_numpy.constant(value.copy())
    if isinstance(value, dict):
        return {k: _as_numpy_layer(v, functional) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and value.__class__ in (list, tuple):
        return value.__class__(_as_numpy_layer(v, functional) for v in value)
    from .._user_calls import private_copy
    return rebind_object(_torch_numpy.wrap(private_copy(value)), "torch", functional)


def run(problem: Problem, request: Request = Request()) -> OracleResult:
    import torch

    with _DEFAULT_DTYPE, library_scope(problem):
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            return _run(problem, torch)
        finally:
            torch.set_default_dtype(previous)


def _run(problem: Problem, torch) -> OracleResult:
    """Differentiate the loss; where autograd refuses an in-place write, again with functional writes.

    numpy code writes into arrays (``h[h < 0] = 0``, ``dW[:, j] += ...``). torch's autograd
    follows such writes, except into a tensor an earlier operation saved for its backward
    (the output of ``exp``, say): then the backward raises. The second try runs the same
    code with each write made into a copy (:mod:`crosscheck._functional`); forward parity
    then vouches that the copy semantics computed the same loss.
    """
    try:
        return _attempt(problem, torch, functional=False)
    except RuntimeError as exc:
        if "modified by an inplace operation" not in str(exc):
            raise
    return dataclasses.replace(_attempt(problem, torch, functional=True), mode="functional writes")


def _attempt(problem: Problem, torch, functional: bool) -> OracleResult:
    loss, given = framework_loss(problem, "torch", functional)
    if given and functional:  # a loss crosscheck built (check_layer) may carry its own variant
        loss = getattr(loss, "__crosscheck_functional__", loss)
    blocks = problem.blocks
    start = time.perf_counter()
    leaves = {n: torch.tensor(blocks.views[n].copy(), dtype=torch.float64, requires_grad=True)
              for n in blocks.names}
    if given:
        params, args = leaves, tuple(_convert(a, torch) for a in problem.args)
    else:  # numpy code: it sees arrays with numpy's methods and semantics
        from .. import _torch_numpy
        params = {n: _torch_numpy.wrap(t) for n, t in leaves.items()}
        args = tuple(_as_numpy_layer(a, functional) for a in problem.args)
    value = loss(params, *args)
    if not given:
        from .._torch_numpy import unwrap
        value = unwrap(value)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"the loss returned {type(value).__name__} under torch, not a tensor: "
                        f"the computation left the autograd graph")
    value = value.reshape(())
    if not value.requires_grad:
        raise TypeError("the loss does not depend on the parameters under torch (no autograd "
                        "graph): a value was converted to a Python number or a numpy array")
    grads = torch.autograd.grad(value, [leaves[n] for n in blocks.names], allow_unused=True)
    out, notes = {}, []
    for name, g in zip(blocks.names, grads):
        if g is None:  # the loss never touches this block: its gradient is exactly zero
            out[name] = np.zeros(blocks.shapes[name])
            notes.append(f"the loss does not depend on block `{name}` (torch: unused)")
        else:
            out[name] = to_float64_block(g.detach().cpu().numpy(), name, blocks.shapes[name],
                                         "torch")
    return OracleResult(NAME, version=version(), grads=out, forward=float(value.detach()),
                        seconds=time.perf_counter() - start, notes=notes,
                        covered={n: np.ones(blocks.shapes[n], bool) for n in blocks.names})


def explain(exc: BaseException, problem: Problem) -> str:
    return explain_failure(exc, "torch", problem)
