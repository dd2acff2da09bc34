"""Validate once, at the door.

Everything the user hands to :func:`crosscheck.check` passes through this module and comes
out as clean data: named float64 blocks in one private buffer, float64 copies of the
arguments, and a hand-written gradient checked block by block against the parameters'
shapes. Everything downstream trusts what comes out of here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from ._errors import CheckError

# Keys under which a hand-written gradient for block ``W1`` may be found, in order.
GRAD_KEY_STYLES = ("{}", "d{}", "d_{}", "grad_{}", "{}_grad")


def _to_numpy(value: Any) -> np.ndarray:
    """Turn an array-like (numpy, jax, torch, list, scalar) into a numpy array."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _index(shape: tuple, flat_index: int) -> tuple:
    return tuple(int(i) for i in np.unravel_index(flat_index, shape)) if shape else ()


@dataclass
class Blocks:
    """Named parameter blocks as views into one private, contiguous float64 buffer.

    ``flat`` is the buffer; ``views[name]`` is block ``name`` reshaped; ``slices[name]`` is
    its range in ``flat``. Oracles that perturb an element write into ``flat`` and restore it.
    """

    names: list
    shapes: dict
    slices: dict
    flat: np.ndarray
    views: dict
    notes: list = field(default_factory=list)

    @property
    def size(self) -> int:
        return int(self.flat.size)

    def copy(self) -> "Blocks":
        """A new buffer holding the same values (a fresh copy for one consumer)."""
        return make_blocks({n: self.views[n] for n in self.names}, self.names)

    def as_dict(self) -> dict:
        return {n: self.views[n] for n in self.names}

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for name in self.names:
            digest.update(f"{name}:{self.shapes[name]};".encode())
            digest.update(np.ascontiguousarray(self.views[name]).tobytes())
        return "sha256:" + digest.hexdigest()[:16]


def make_blocks(values: Mapping[str, np.ndarray], names: list) -> Blocks:
    shapes = {n: tuple(np.shape(values[n])) for n in names}
    sizes = [int(np.prod(shapes[n], dtype=np.int64)) for n in names]
    flat = np.empty(sum(sizes), dtype=np.float64)
    slices, views, start = {}, {}, 0
    for name, size in zip(names, sizes):
        slices[name] = slice(start, start + size)
        flat[start:start + size] = np.ravel(values[name])
        views[name] = flat[start:start + size].reshape(shapes[name])
        start += size
    return Blocks(list(names), shapes, slices, flat, views)


def prepare_params(params: Any) -> Blocks:
    """Validate ``params`` and return private float64 copies of its blocks.

    Raises:
        CheckError: ``params`` is not a non-empty dict of real, finite arrays.
    """
    if not isinstance(params, Mapping) or not params:
        raise CheckError(
            f"`params` must be a non-empty dict of named parameter blocks, got "
            f"{type(params).__name__}; pass e.g. `{{'W1': W1, 'b1': b1}}`.")
    names, values, notes = [], {}, []
    for name, value in params.items():
        if not isinstance(name, str):
            raise CheckError(f"parameter block names must be strings, got {name!r}; "
                             f"name every block, e.g. `{{'W1': W1}}`.")
        arr = _to_numpy(value)
        if arr.dtype.kind not in "biuf":
            raise CheckError(
                f"block `{name}` has dtype {arr.dtype}; crosscheck checks real-valued "
                f"parameters: pass a float array.")
        if arr.size == 0:
            raise CheckError(f"block `{name}` is empty (shape {arr.shape}); it has no gradient "
                             f"to check: leave it out of `params`.")
        if arr.dtype != np.float64:
            notes.append(f"block `{name}` is {arr.dtype}; checked in float64 (exact upcast).")
        arr = arr.astype(np.float64)
        bad = ~np.isfinite(arr)
        if bad.any():
            first = _index(arr.shape, int(np.flatnonzero(bad)[0]))
            raise CheckError(
                f"block `{name}` holds {int(bad.sum())} NaN/Inf value(s) (first at index "
                f"{first}); a gradient can only be checked at a finite point: pass finite "
                f"parameter values.")
        names.append(name)
        values[name] = arr
    blocks = make_blocks(values, names)
    blocks.notes = notes + degenerate_point_notes(blocks)
    return blocks


def degenerate_point_notes(blocks: Blocks) -> list:
    """Warn about check points that hide bugs: constant blocks and identical rows."""
    notes = []
    for name in blocks.names:
        v = blocks.views[name]
        if v.size > 1 and np.all(v == v.flat[0]):
            what = "all zeros" if v.flat[0] == 0 else "constant"
            notes.append(
                f"block `{name}` is {what}: a symmetric check point can hide bugs; "
                f"check at random values (e.g. `np.random.default_rng(0).standard_normal`).")
        elif v.ndim == 2 and v.shape[0] > 1 and v.shape[1] > 1:
            if len(np.unique(v, axis=0)) < v.shape[0]:
                notes.append(
                    f"block `{name}` has identical rows: symmetric units hide bugs that break "
                    f"the symmetry; check at random values.")
    return notes


def _is_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) or (
        hasattr(value, "__array__") and not np.isscalar(value)
        and not isinstance(value, (list, tuple, dict, str)))


def _prepare_arg(arg: Any, where: str) -> Any:
    if _is_array(arg):
        arr = _to_numpy(arg)
        if arr.dtype.kind == "f":
            arr = arr.astype(np.float64)
            if not np.all(np.isfinite(arr)):
                raise CheckError(
                    f"{where} holds NaN/Inf; a gradient can only be checked on finite data: "
                    f"clean or impute the data first.")
            return arr
        return arr.copy()
    if isinstance(arg, dict):
        return {k: _prepare_arg(v, f"{where}[{k!r}]") for k, v in arg.items()}
    if isinstance(arg, (list, tuple)):
        return type(arg)(_prepare_arg(v, f"{where}[{j}]") for j, v in enumerate(arg))
    return arg


def prepare_args(args: tuple) -> tuple:
    """Private copies of the extra arguments (also inside dicts, lists and tuples): float
    arrays become float64, other arrays are copied as they are."""
    return tuple(_prepare_arg(arg, f"argument {i + 1} after `params`")
                 for i, arg in enumerate(args))


def batch_size(args: tuple) -> int | None:
    """The dimension every array argument shares, if exactly one (the batch size m)."""
    dims = None
    for arg in args:
        if isinstance(arg, np.ndarray) and arg.ndim >= 1:
            dims = set(arg.shape) if dims is None else dims & set(arg.shape)
    if dims and len(dims) == 1:
        m = dims.pop()
        return m if m > 1 else None
    return None


def scalar_loss(value: Any, where: str) -> float:
    """The loss value as a Python float; refuse non-scalars and non-finite values."""
    arr = _to_numpy(value)
    if arr.size != 1:
        raise CheckError(
            f"`loss` returned an array of shape {arr.shape} {where}; it must return one "
            f"scalar (sum or average the per-example losses).")
    if arr.dtype.kind not in "biuf":
        raise CheckError(f"`loss` returned {arr.dtype} {where}; it must return a real scalar.")
    out = float(arr.reshape(()))
    if not np.isfinite(out):
        raise CheckError(
            f"`loss` is {out} {where}; a gradient can only be checked where the loss is "
            f"finite: move the check point (e.g. smaller weights) or guard log/exp.")
    return out


def _unpack_grad(out: Any) -> Any:
    if isinstance(out, (tuple, list)) and len(out) == 2:
        if isinstance(out[1], Mapping):
            return out[1]
        if isinstance(out[0], Mapping):
            return out[0]
    return out


def low_precision_blocks(out: Any, blocks: Blocks) -> dict:
    """Blocks for which ``grad`` returned float32/float16: ``{name: dtype name}``."""
    out = _unpack_grad(out)
    found = {}
    if isinstance(out, Mapping):
        for name in blocks.names:
            key = next((k for k in (st.format(name) for st in GRAD_KEY_STYLES) if k in out), None)
            dtype = getattr(out.get(key), "dtype", None) if key else None
            if dtype is not None and getattr(dtype, "kind", "") == "f" and dtype.itemsize < 8:
                found[name] = str(dtype)
    return found


def normalize_grad(out: Any, blocks: Blocks) -> tuple:
    """Turn what ``grad`` returned into float64 blocks keyed like ``params``.

    Accepts a dict keyed like params (``W1``) or the seeds' way (``dW1``; extra keys
    such as ``dZ1`` are ignored), or a ``(loss_value, dict)`` pair.

    Returns:
        ``(gradients, loss_value_or_None)``.

    Raises:
        CheckError: a block is missing, has the wrong shape or is not numeric.
    """
    loss_value = None
    if isinstance(out, (tuple, list)) and len(out) == 2:
        if isinstance(out[1], Mapping):
            loss_value, out = out
        elif isinstance(out[0], Mapping):
            out, loss_value = out
    if not isinstance(out, Mapping):
        raise CheckError(
            f"`grad` returned {type(out).__name__}; return a dict keyed like `params` "
            f"(e.g. `{{'W1': dW1, ...}}` or the seeds' `{{'dW1': dW1, ...}}`) or a "
            f"`(loss, dict)` pair.")
    grads = {}
    for name in blocks.names:
        keys = [style.format(name) for style in GRAD_KEY_STYLES]
        key = next((k for k in keys if k in out), None)
        if key is None:
            tried = ", ".join(f"`{k}`" for k in keys[:2])
            raise CheckError(
                f"`grad` returned no gradient for block `{name}` (looked for {tried}); "
                f"return one array per parameter block.")
        arr = _to_numpy(out[key])
        if arr.dtype.kind not in "biuf":
            raise CheckError(f"`grad` returned dtype {arr.dtype} for block `{name}`; "
                             f"return a real float array.")
        shape = blocks.shapes[name]
        if arr.shape != shape:
            squeezed = [d for d in shape if d != 1] == [d for d in arr.shape if d != 1]
            hint = (" (`keepdims=True` in the sum keeps it)" if squeezed and arr.ndim < len(shape)
                    else " (it looks transposed)" if arr.shape == shape[::-1] else "")
            raise CheckError(
                f"`grad` returned shape {arr.shape} for block `{name}`, whose parameter has "
                f"shape {shape}; return an array of the parameter's shape{hint}.")
        grads[name] = np.array(arr, dtype=np.float64)
    return grads, loss_value


@dataclass
class Loss:
    """The user's loss, resolved per framework.

    ``loss`` is a callable (array API or plain numpy) or a dict of per-framework callables
    with keys among ``numpy``, ``jax``, ``torch`` (``numpy`` is required: centered
    differences and the forward parity check run on it).
    """

    numpy: Callable
    per_framework: dict

    def for_framework(self, framework: str) -> tuple:
        """``(callable, how)`` for a framework; ``how`` says whether it was rebound."""
        if framework in self.per_framework:
            return self.per_framework[framework], "given"
        return self.numpy, "shared"


def prepare_loss(loss: Any) -> Loss:
    if isinstance(loss, Mapping):
        unknown = set(loss) - {"numpy", "jax", "torch"}
        if unknown:
            raise CheckError(
                f"`loss` dict has unknown key(s) {sorted(unknown)}; use `numpy`, `jax`, "
                f"`torch`.")
        if "numpy" not in loss:
            raise CheckError("`loss` dict has no `numpy` entry; centered differences and "
                             "forward parity run on the numpy loss: add `'numpy': loss_np`.")
        for key, fn in loss.items():
            if not callable(fn):
                raise CheckError(f"`loss['{key}']` is not callable.")
        return Loss(loss["numpy"], {k: v for k, v in loss.items() if k != "numpy"})
    if not callable(loss):
        raise CheckError(f"`loss` must be callable, got {type(loss).__name__}.")
    return Loss(loss, {})
