"""Calling the user's code safely: private copies, and guards against a loss or gradient
that mutates its inputs or is not deterministic."""

from __future__ import annotations

import copy
import types
from typing import Any, Optional

import numpy as np

from ._errors import CheckError
from ._inputs import (Blocks, grad_keys, intermediate_grads, low_precision_blocks, normalize_grad,
                      scalar_loss, unpack_grad)
from ._tolerances import EPS



def _holds_data(value: Any) -> bool:
    """An object of the user's whose attributes hold data (a model, a dataset): copied per call."""
    return (hasattr(value, "__dict__") and not isinstance(value, (type, types.ModuleType))
            and not callable(value))


def written(a: Any, b: Any, where: str = "args", depth: int = 0) -> Optional[str]:
    """Where ``b`` (a copy of ``a`` the user's code received) differs from ``a``: ``args[1].W``."""
    if depth > 4:
        return None
    if isinstance(a, np.ndarray):
        same = isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
        return None if same else where
    if isinstance(a, dict) and isinstance(b, dict):
        return next((w for k, v in a.items()
                     if (w := written(v, b.get(k), f"{where}[{k!r}]", depth + 1))), None)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return next((w for i, (x, y) in enumerate(zip(a, b))
                     if (w := written(x, y, f"{where}[{i}]", depth + 1))), None)
    if _holds_data(a) and _holds_data(b) and a is not b:
        return next((w for k, v in vars(a).items()
                     if (w := written(v, vars(b).get(k), f"{where}.{k}", depth + 1))), None)
    return None


def _same_args(a: Any, b: Any) -> bool:
    return written(a, b) is None


def private_copy(args: Any) -> Any:
    """A private copy of the arguments: arrays, containers, and objects holding data."""
    if isinstance(args, np.ndarray):
        return args.copy()
    if isinstance(args, dict):
        return {k: private_copy(v) for k, v in args.items()}
    if isinstance(args, (list, tuple)):
        items = [private_copy(v) for v in args]
        return type(args)(*items) if hasattr(args, "_fields") else type(args)(items)   # namedtuple
    if _holds_data(args):
        try:
            return copy.deepcopy(args)
        except Exception:  # noqa: BLE001 - an object that cannot be copied is passed as it is
            return args
    return args


def _changed_block(before: Blocks, after: Blocks) -> Optional[str]:
    for name in before.names:
        if not np.array_equal(before.views[name], after.views[name]):
            return name
    return None


def base_loss(loss, blocks: Blocks, args: tuple) -> float:
    """The numpy loss at the check point; refuse a loss that mutates or is not deterministic."""
    values = []
    for _ in range(2):
        work, work_args = blocks.copy(), private_copy(args)
        try:
            raw = loss(work.as_dict(), *work_args)
        except Exception as exc:
            raise CheckError(f"`loss` raised {type(exc).__name__} at the check point: {exc}; "
                             f"crosscheck needs a loss that runs on the given params and "
                             f"args.") from exc
        changed = _changed_block(blocks, work)
        if changed:
            raise CheckError(
                f"`loss` modifies the parameters it is given (block `{changed}` changed during "
                f"the call); centered differences need a loss that leaves its inputs alone: "
                f"compute on a copy or avoid in-place operators such as `+=` on parameters.")
        place = written(args, work_args)
        if place:
            raise CheckError(f"`loss` modifies its extra arguments (the data) during the call "
                             f"(`{place}` changed); compute on a copy instead.")
        values.append(scalar_loss(raw, "at the check point"))
    if abs(values[0] - values[1]) > 4 * EPS * abs(values[0]):
        raise CheckError(
            f"`loss` is not deterministic: evaluated twice at the same parameters it returned "
            f"{values[0]!r} and {values[1]!r} (dropout or an unseeded random generator?). "
            f"Gradient checks compare loss values at nearby points, so the loss must be "
            f"deterministic: fix the dropout mask or seed the generator inside the loss.")
    return values[0]


def hand_gradient(grad, blocks: Blocks, args: tuple) -> tuple:
    """The hand-written gradient; refuse one that is not deterministic or writes into its inputs.

    Returns:
        ``(gradients, loss value or None, notes, {block: dtype} of blocks it returned in
        float32/float16, ``({block: its key in grad's dict}, {key: array} of the
        intermediates it returned besides, ``dZ1``)``)``.
    """
    results, notes = [], []
    for _ in range(2):
        work, work_args = blocks.copy(), private_copy(args)
        try:
            out = grad(work.as_dict(), *work_args)
        except CheckError:
            raise
        except Exception as exc:
            raise CheckError(f"`grad` raised {type(exc).__name__}: {exc}; it must return the "
                             f"gradient for the given params and args.") from exc
        changed = _changed_block(blocks, work)
        if changed:
            raise CheckError(
                f"`grad` modifies the parameters it is given (block `{changed}` changed during "
                f"the call); crosscheck gave it a private copy, so your arrays are intact — but a "
                f"backward pass that writes into its inputs is a bug (an optimizer step, a `-=`): "
                f"compute on a copy.")
        place = written(args, work_args)
        if place:
            raise CheckError(
                f"`grad` writes into its arguments (`{place}` changed during the call); "
                f"crosscheck gave it a private copy, so your data is intact — but a backward pass "
                f"that writes into its inputs is a bug: compute on a copy.")
        results.append(normalize_grad(out, blocks))
        low = low_precision_blocks(out, blocks)
        extra = (grad_keys(unpack_grad(out), blocks), intermediate_grads(out, blocks))
    (first, value), (second, _) = results
    for name in blocks.names:
        if not np.array_equal(first[name], second[name], equal_nan=True):
            delta = float(np.nanmax(np.abs(first[name] - second[name])))
            raise CheckError(
                f"`grad` is not deterministic: called twice on the same inputs it returned "
                f"different values for block `{name}` (max difference {delta:.3g}); seed or "
                f"remove its randomness.")
    return first, value, notes, low, extra
