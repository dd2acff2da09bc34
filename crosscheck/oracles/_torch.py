"""``torch.autograd`` in float64."""

from __future__ import annotations

import threading
import time

import numpy as np

from ._base import (OracleResult, Problem, explain_failure, framework_loss,
                    to_float64_block)

NAME = "torch"
REQUIRES = "torch"
# torch's default dtype is process-wide: Python floats meeting integer tensors (``0.5 * Y``)
# must give float64 during the oracle's run, and concurrent checks must not interleave.
_DEFAULT_DTYPE = threading.Lock()


def version() -> str:
    import torch
    return f"torch {torch.__version__}"


def _convert(value, torch):
    """numpy arrays become torch arrays, also inside dicts, lists and tuples of arguments."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, dict):
        return {k: _convert(v, torch) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_convert(v, torch) for v in value)
    return value


def run(problem: Problem) -> OracleResult:
    import torch

    with _DEFAULT_DTYPE:
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            return _run(problem, torch)
        finally:
            torch.set_default_dtype(previous)


def _run(problem: Problem, torch) -> OracleResult:
    loss = framework_loss(problem, "torch")
    blocks = problem.blocks
    start = time.perf_counter()
    params = {n: torch.tensor(blocks.views[n].copy(), dtype=torch.float64, requires_grad=True)
              for n in blocks.names}
    args = tuple(_convert(a, torch) for a in problem.args)
    value = loss(params, *args)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"the loss returned {type(value).__name__} under torch, not a tensor: "
                        f"the computation left the autograd graph")
    value = value.reshape(())
    if not value.requires_grad:
        raise TypeError("the loss does not depend on the parameters under torch (no autograd "
                        "graph): a value was converted to a Python number or a numpy array")
    leaves = [params[n] for n in blocks.names]
    grads = torch.autograd.grad(value, leaves, allow_unused=True)
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
