"""Calling the user's code safely: private copies, and guards against a loss or gradient
that mutates its inputs or is not deterministic."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ._errors import CheckError
from ._inputs import Blocks, low_precision_blocks, normalize_grad, scalar_loss
from ._tolerances import EPS



def _same_args(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b, equal_nan=True)
    if isinstance(a, dict):
        return all(_same_args(v, b[k]) for k, v in a.items())
    if isinstance(a, (list, tuple)):
        return all(_same_args(x, y) for x, y in zip(a, b))
    return True


def _copy_args(args: Any) -> Any:
    if isinstance(args, np.ndarray):
        return args.copy()
    if isinstance(args, dict):
        return {k: _copy_args(v) for k, v in args.items()}
    if isinstance(args, (list, tuple)):
        return type(args)(_copy_args(v) for v in args)
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
        work, work_args = blocks.copy(), _copy_args(args)
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
        if not _same_args(args, work_args):
            raise CheckError("`loss` modifies its extra arguments (the data) during the call; "
                             "compute on a copy instead.")
        values.append(scalar_loss(raw, "at the check point"))
    if abs(values[0] - values[1]) > 4 * EPS * abs(values[0]):
        raise CheckError(
            f"`loss` is not deterministic: evaluated twice at the same parameters it returned "
            f"{values[0]!r} and {values[1]!r} (dropout or an unseeded random generator?). "
            f"Gradient checks compare loss values at nearby points, so the loss must be "
            f"deterministic: fix the dropout mask or seed the generator inside the loss.")
    return values[0]


def hand_gradient(grad, blocks: Blocks, args: tuple) -> tuple:
    """The hand-written gradient; refuse a non-deterministic one, note a mutating one.

    Returns:
        ``(gradients, loss value or None, notes, {block: dtype} of blocks it returned in
        float32/float16)``.
    """
    results, notes = [], []
    for _ in range(2):
        work, work_args = blocks.copy(), _copy_args(args)
        try:
            out = grad(work.as_dict(), *work_args)
        except CheckError:
            raise
        except Exception as exc:
            raise CheckError(f"`grad` raised {type(exc).__name__}: {exc}; it must return the "
                             f"gradient for the given params and args.") from exc
        changed = _changed_block(blocks, work)
        if changed and not notes:
            notes.append(f"`grad` modifies the parameters it is given (block `{changed}`); "
                         f"crosscheck gave it a private copy, so no other reference saw the "
                         f"change — but fix it: a backward pass should not write to its inputs.")
        results.append(normalize_grad(out, blocks))
        low = low_precision_blocks(out, blocks)
    (first, value), (second, _) = results
    for name in blocks.names:
        if not np.array_equal(first[name], second[name], equal_nan=True):
            delta = float(np.nanmax(np.abs(first[name] - second[name])))
            raise CheckError(
                f"`grad` is not deterministic: called twice on the same inputs it returned "
                f"different values for block `{name}` (max difference {delta:.3g}); seed or "
                f"remove its randomness.")
    return first, value, notes, low
