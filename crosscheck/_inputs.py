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


def array_subclass_error(value: Any, where: str, name: str = "x") -> str | None:
    """Why ``value`` must not be silently made a plain array, or ``None`` when it may.

    ``np.matrix`` and masked arrays are ndarrays that behave differently: a matrix's ``*``
    is a matrix product and every result stays 2-D; a masked array hides values that
    ``np.asarray`` would hand over as if they were data. Either, converted without a word,
    would be checked as a different model from the one the user runs. ``where`` names the
    input (``block `W1```), ``name`` the variable the fix refers to.
    """
    if isinstance(value, np.ma.MaskedArray):
        return (f"{where} is a masked array (`numpy.ma.MaskedArray`); crosscheck will not drop "
                f"the mask and check the values under it as if they were data. Pass a plain "
                f"ndarray: fill the masked entries (`{name}.filled(0.0)`, or the value you "
                f"mean) and, if the model needs the mask, pass it as an array of its own "
                f"(`np.ma.getmaskarray({name})`).")
    if isinstance(value, np.matrix):
        return (f"{where} is a `numpy.matrix`, whose `*` is a matrix product and whose "
                f"results stay 2-D, so the loss would not compute what it computes on arrays. "
                f"Pass a plain ndarray, `np.asarray({name})`, and write matrix products "
                f"with `@`.")
    return None


def _as_array(value: Any, where: str, name: str) -> np.ndarray:
    """``value`` as a numpy array, or a :class:`CheckError` naming ``where`` and the fix."""
    problem = array_subclass_error(value, where, name)
    if problem:
        raise CheckError(problem)
    try:
        return _to_numpy(value)
    except Exception as exc:  # noqa: BLE001 - whatever the object raised, the input is at fault
        text = str(exc).split("\n")[0]
        if "inhomogeneous" in text:
            raise CheckError(
                f"{where} is a ragged nested sequence (its rows have different lengths), not "
                f"an array; pass a numpy array of one shape, or split it into blocks of one "
                f"shape each.") from None
        raise CheckError(f"{where} cannot be turned into a numpy array ({type(exc).__name__}: "
                         f"{text}); pass a numpy array.") from None


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


def refuse_unencodable(text: str, what: str, consequence: str) -> None:
    """Refuse a name that cannot be written as UTF-8 (a lone surrogate): no report could hold it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start:exc.end].encode("unicode_escape").decode("ascii")
        raise CheckError(f"{what} cannot be written as UTF-8 (it holds {bad}, a lone "
                         f"surrogate), {consequence}") from None


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
        refuse_unencodable(name, f"parameter block name {name!r}",
                           "so no report could name the block: name it with ordinary characters.")
        arr = _as_array(value, f"block `{name}`", name)
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
        arr = _as_array(arg, where, "X")
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
        items = [_prepare_arg(v, f"{where}[{j}]") for j, v in enumerate(arg)]
        if isinstance(arg, tuple) and hasattr(arg, "_fields"):   # a namedtuple
            return type(arg)(*items)
        return type(arg)(items)
    return arg


def prepare_args(args: tuple) -> tuple:
    """Private copies of the extra arguments (also inside dicts, lists and tuples): float
    arrays become float64, other arrays are copied as they are.

    Raises:
        CheckError: an argument is a ``np.matrix`` or a masked array, holds NaN/Inf floats,
            cannot be made an array, or nests too deeply (or holds itself).
    """
    out = []
    for i, arg in enumerate(args):
        where = f"argument {i + 1} after `params`"
        try:
            out.append(_prepare_arg(arg, where))
        except RecursionError:
            raise CheckError(
                f"{where} nests lists, tuples or dicts too deeply to copy (or holds itself); "
                f"pass the data as arrays, or as containers without cycles.") from None
    return tuple(out)


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
    if out != 0 and abs(out) < np.finfo(np.float64).tiny:
        raise CheckError(
            f"`loss` is {out!r} {where}, a subnormal number (below 2.2e-308, the smallest "
            f"normal float64), where rounding is no longer relative to the value and no "
            f"tolerance can be derived from it; check at a point where the loss is a normal "
            f"number (parameters of order 1, not subnormal ones such as 1e-310), or scale "
            f"the loss up.")
    return out


def unpack_grad(out: Any) -> Any:
    """The dict of a ``(loss, dict)`` or ``(dict, loss)`` pair; anything else as it is."""
    if isinstance(out, (tuple, list)) and len(out) == 2:
        if isinstance(out[1], Mapping):
            return out[1]
        if isinstance(out[0], Mapping):
            return out[0]
    return out


# How each key style reads, for error messages.
_STYLE_WORDS = {"{}": "keyed like `params`", "d{}": "the seeds' `d` + name",
                "d_{}": "`d_` + name", "grad_{}": "`grad_` + name", "{}_grad": "name + `_grad`"}


def grad_keys(out: Mapping, blocks: Blocks) -> dict:
    """``{block: key of out holding its gradient, or None}``: the first of
    ``GRAD_KEY_STYLES`` present for each block.

    Raises:
        CheckError: one key is what two blocks would read (parameters ``w`` and ``dw``,
            and a gradient keyed ``dw``): which block it belongs to cannot be known.
    """
    chosen = {}
    for name in blocks.names:
        chosen[name] = next(((st.format(name), st) for st in GRAD_KEY_STYLES
                             if st.format(name) in out), (None, None))
    readers: dict = {}
    for name, (key, style) in chosen.items():
        if key is not None:
            readers.setdefault(key, []).append((name, style))
    clashes = [(key, who) for key, who in readers.items() if len(who) > 1]
    if clashes:
        described = "; ".join(
            f"`{key}` could be the gradient of "
            + " or of ".join(f"block `{name}` ({_STYLE_WORDS[style]})" for name, style in who)
            for key, who in clashes)
        exact = ", ".join(f"{name!r}: ..." for name in blocks.names[:6])
        exact += ", ..." if len(blocks.names) > 6 else ""
        raise CheckError(
            f"`grad` returned keys that fit more than one parameter block: {described}. "
            f"crosscheck will not guess which is meant: key the gradient exactly like "
            f"`params`, `{{{exact}}}`.")
    return {name: key for name, (key, _) in chosen.items()}


def low_precision_blocks(out: Any, blocks: Blocks) -> dict:
    """Blocks for which ``grad`` returned float32/float16: ``{name: dtype name}``."""
    out = unpack_grad(out)
    found = {}
    if isinstance(out, Mapping):
        for name, key in grad_keys(out, blocks).items():
            dtype = getattr(out.get(key), "dtype", None) if key is not None else None
            if dtype is not None and getattr(dtype, "kind", "") == "f" and dtype.itemsize < 8:
                found[name] = str(dtype)
    return found


def intermediate_grads(out: Any, blocks: Blocks) -> dict:
    """``{key: float64 array}`` for the keys of ``grad``'s dict that no block reads and that name
    an intermediate the seeds' way (``dZ1`` → ``Z1``): what localisation checks.

    The parameter blocks ignore these keys (:func:`normalize_grad`); a value that is not a real
    numeric array is left out here too (it cannot be compared with a reference).
    """
    out = unpack_grad(out)
    if not isinstance(out, Mapping):
        return {}
    taken = set(grad_keys(out, blocks).values())
    found = {}
    for key, value in out.items():
        if key in taken or not isinstance(key, str) or len(key) < 2 or not key.startswith("d") \
                or isinstance(value, np.ma.MaskedArray):
            continue
        try:
            arr = _to_numpy(value)
        except Exception:  # noqa: BLE001 - not an array: nothing to compare
            continue
        if arr.dtype.kind in "biuf":
            found[key] = np.array(arr, dtype=np.float64)
    return found


def normalize_grad(out: Any, blocks: Blocks) -> tuple:
    """Turn what ``grad`` returned into float64 blocks keyed like ``params``.

    Accepts a dict keyed like params (``W1``) or the seeds' way (``dW1``; extra keys
    such as ``dZ1`` are ignored), or a ``(loss_value, dict)`` pair.

    Returns:
        ``(gradients, loss_value_or_None)``.

    Raises:
        CheckError: a block is missing, has the wrong shape or is not numeric, or a key
            fits two blocks (see :func:`grad_keys`).
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
    for name, key in grad_keys(out, blocks).items():
        if key is None:
            keys = [style.format(name) for style in GRAD_KEY_STYLES]
            tried = ", ".join(f"`{k}`" for k in keys[:2])
            raise CheckError(
                f"`grad` returned no gradient for block `{name}` (looked for {tried}); "
                f"return one array per parameter block.")
        value = out[key]
        shape = blocks.shapes[name]
        if isinstance(value, np.ma.MaskedArray):
            raise CheckError(
                f"`grad` returned a masked array (`numpy.ma.MaskedArray`) for block `{name}`; "
                f"its masked entries would be compared as if they were data: return a plain "
                f"ndarray of shape {shape} (`np.ma.filled(d{name}, 0.0)`, or the values you "
                f"mean).")
        try:
            arr = _to_numpy(value)
        except Exception as exc:  # noqa: BLE001 - whatever the object raised, grad is at fault
            text = str(exc).split("\n")[0]
            what = ("a ragged nested sequence (rows of different lengths)"
                    if "inhomogeneous" in text else
                    f"something that is not an array ({type(exc).__name__}: {text})")
            raise CheckError(f"`grad` returned {what} for block `{name}`; return an array of "
                             f"the parameter's shape {shape}.") from None
        if arr.dtype.kind not in "biuf":
            raise CheckError(f"`grad` returned dtype {arr.dtype} for block `{name}`; "
                             f"return a real float array.")
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
