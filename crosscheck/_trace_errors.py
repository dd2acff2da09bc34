"""Why a framework could not run a "numpy as written" loss, in one sentence.

The jax and torch oracles run the user's own code objects with ``np`` rebound
(see :mod:`crosscheck._rebind`).  Some numpy idioms cannot be traced; this
module turns the resulting framework exception into a sentence that names the
construct, the user's ``file:line`` and the way out.  No jax or torch import
happens here at module import time.
"""

from __future__ import annotations

import contextlib
import functools
import linecache
import os
import re
import sys

from ._user_code import is_user_file, is_user_frame

__all__ = ["NotTraceable", "UnsupportedName", "explain", "as_not_traceable", "detached_message",
           "is_user_file", "user_location", "caller_location", "torch_guard"]


class NotTraceable(Exception):
    """An oracle (jax or torch) cannot run the loss as written.

    Not a :class:`~crosscheck._errors.CheckError`: the input is fine for the
    finite-difference oracle, only this framework cannot trace it.
    ``location`` is ``(filename, lineno)`` of the user's line, or ``None``.
    """

    def __init__(self, message, location=None):
        super().__init__(message)
        self.location = location


class UnsupportedName(NotTraceable, AttributeError):
    """``np.<name>`` is missing from the framework's numpy namespace.

    Also an ``AttributeError`` so that ``hasattr(np, name)`` stays ``False``.
    """


# --------------------------------------------------------------------- user code
# one definition, in crosscheck._user_code
_FRAMEWORKS = ("numpy", "jax", "jaxlib", "torch", "crosscheck", "array_api_compat")


def library_callee(tb):
    """``module.function`` of the library code the innermost user frame called (``None`` if none).

    The frame right after the last user frame of the traceback, when it belongs to a library
    other than numpy, the frameworks and crosscheck: the call that received a traced array.
    """
    last_user, frames = None, []
    while tb is not None:
        frames.append(tb.tb_frame)
        if is_user_frame(tb.tb_frame):
            last_user = len(frames) - 1
        tb = tb.tb_next
    if last_user is None or last_user + 1 >= len(frames):
        return None
    frame = frames[last_user + 1]
    module = frame.f_globals.get("__name__") or ""
    if module.split(".")[0] in _FRAMEWORKS:
        return None
    public = ".".join(part for part in module.split(".") if not part.startswith("_"))
    return f"{public or module}.{getattr(frame.f_code, 'co_qualname', frame.f_code.co_name)}"


def _fmt(location):
    return f"{os.path.basename(location[0])}:{location[1]}" if location else "an unknown line"


def user_location(tb, within=None):
    """``(filename, lineno)`` of the innermost user frame of traceback ``tb`` (``None`` if none).

    With ``within`` (a code object), only frames from the first one running that code
    inwards count: an error raised after the loss returned (e.g. in ``backward()``)
    is not pinned on the caller's script.
    """
    found, inside = None, within is None
    while tb is not None:
        code = tb.tb_frame.f_code
        inside = inside or code is within
        if inside and is_user_frame(tb.tb_frame):
            found = (code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def _code_of(fn):
    fn = getattr(fn, "__crosscheck_rebound__", fn)
    fn = getattr(fn, "__func__", fn)
    fn = getattr(fn, "func", fn)  # functools.partial
    code = getattr(fn, "__code__", None)
    if code is None:
        code = getattr(getattr(type(fn), "__call__", None), "__code__", None)
    return code


def caller_location():
    """``(filename, lineno)`` of the innermost user frame on the current stack (``None`` if none)."""
    frame = sys._getframe(1)
    while frame is not None:
        if is_user_frame(frame):
            return (frame.f_code.co_filename, frame.f_lineno)
        frame = frame.f_back
    return None


def _source(location):
    if not location:
        return ""
    return linecache.getline(location[0], location[1]).strip()


# ------------------------------------------------------------------ messages
def random_call(name, framework):
    """The NotTraceable raised when the loss calls ``np.random.<name>``."""
    loc = caller_location()
    return NotTraceable(
        f"the loss calls `np.random.{name}` at {_fmt(loc)}: the loss must be deterministic; "
        f"draw random numbers outside the loss and pass them as arguments "
        f"(the {framework} oracle cannot reproduce numpy's random stream)", loc)


def conversion_error(framework, how):
    """The NotTraceable raised when the loss turns a value that depends on the parameters into a number."""
    loc = caller_location()
    shown = f" (`{_source(loc)}`)" if _source(loc) else ""
    return NotTraceable(
        f"converts a traced value to a Python number (`{how}`) at {_fmt(loc)}{shown}; keep it an "
        f"array: under {framework} the gradient through that number would be silently lost", loc)


def unsupported_name(name, framework, prefix="np"):
    """The NotTraceable raised for a numpy (or scipy.special) name the framework's namespace lacks."""
    loc = caller_location()
    if prefix == "np":
        layer = "torch's numpy layer" if framework == "torch" else f"{framework}'s numpy namespace"
    else:
        layer = f"crosscheck's `{prefix}` over {framework}"
    # the names torch understands are listed in the docs (kept equal to the code by a test)
    docs = ("docs/numpy-as-written.md#names-under-torch" if framework == "torch" and prefix == "np"
            else "docs/numpy-as-written.md")
    text = (f"`{prefix}.{name}` (at {_fmt(loc)}) is not available under the {framework} oracle "
            f"({layer} has no `{name}`); use a name listed in {docs}, or pass a "
            f"per-framework loss `loss={{'numpy': f, '{framework}': g}}`")
    return UnsupportedName(text, loc)


def _is_mask(index) -> bool:
    """An index that reads as a boolean mask: a comparison, or ``&``/``|``/``~`` of masks."""
    import ast

    if isinstance(index, ast.Compare):
        return True
    if isinstance(index, ast.UnaryOp) and isinstance(index.op, (ast.Invert, ast.Not)):
        return _is_mask(index.operand) or isinstance(index.operand, ast.Name)
    if isinstance(index, ast.BinOp) and isinstance(index.op, (ast.BitAnd, ast.BitOr, ast.BitXor)):
        return _is_mask(index.left) or _is_mask(index.right)
    return isinstance(index, ast.Name) and "mask" in index.id.lower()


def rewrite_suggestion(line) -> str:
    """Valid Python that replaces the in-place write ``line`` (``A[idx] = v``, ``A[idx] += v``).

    A boolean mask becomes ``A = np.where(mask, v, A)``. Any other index: the write goes into a
    local copy (``A = A.copy()`` first), which crosscheck runs as a functional update; the
    suggested statements are checked to compile.
    """
    import ast

    fallback = "build the new array with `np.where(mask, new_value, A)` instead"
    try:
        statement = ast.parse(line.split("#", 1)[0].strip()).body[0]
    except (SyntaxError, IndexError, ValueError):
        return fallback
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target, op = statement.targets[0], None
    elif isinstance(statement, ast.AugAssign):
        target, op = statement.target, statement.op
    else:
        return fallback
    if not isinstance(target, ast.Subscript):
        return fallback
    container, index, value = ast.unparse(target.value), target.slice, ast.unparse(statement.value)
    shown_index = (", ".join(ast.unparse(e) for e in index.elts) if isinstance(index, ast.Tuple)
                   else ast.unparse(index))
    if _is_mask(index):
        new = value if op is None else ast.unparse(ast.BinOp(target.value, op, statement.value))
        suggestion = [f"{container} = np.where({shown_index}, {new}, {container})"]
    else:
        symbol = "" if op is None else ast.unparse(ast.BinOp(ast.Name("a"), op, ast.Name("b"))).split()[1]
        local = container if isinstance(target.value, ast.Name) else "A"
        suggestion = [f"{local} = {container}.copy()", f"{local}[{shown_index}] {symbol}= {value}"]
        if local != container:
            suggestion.append(f"{container} = {local}")
    for text in suggestion:
        compile(text, "<suggestion>", "exec")
    shown = "; ".join(f"`{t}`" for t in suggestion)
    return f"write {shown} instead" if len(suggestion) == 1 else \
        f"write into a local copy: {shown} (crosscheck runs writes into local arrays functionally)"


def explain(exc, framework, fn=None) -> str:
    """One sentence: what construct in the loss ``framework`` could not run, where, and the way out.

    Args:
        exc: the exception raised while running (or differentiating) the rebound loss.
        framework: ``"jax"`` or ``"torch"``.
        fn: the user's loss (used only to name it when no user line is found).
    """
    if isinstance(exc, NotTraceable):
        return str(exc)
    loc = _locate(exc, fn)
    where = _fmt(loc)
    line = _source(loc)
    quoted = f" (`{line}`)" if line else ""
    name = type(exc).__name__
    text = str(exc)
    low = text.lower()
    if loc is None and fn is not None:
        where = f"{where} in `{getattr(fn, '__qualname__', type(fn).__name__)}`"

    if ("immutable" in low and "assignment" in low) or ".at[" in text or "not support item assignment" in low:
        what = f"`{line}`" if line else "an item assignment"
        return f"in-place write {what} at {where} cannot be traced by {framework}; {rewrite_suggestion(line)}"
    if name == "NonConcreteBooleanIndexError" or "boolean indices must be concrete" in low:
        return (f"indexes with a boolean mask at {where}{quoted}, which gives a data-dependent shape "
                f"{framework} cannot trace; keep the shape fixed, e.g. `np.sum(np.where(mask, x, 0))`")
    if name == "TracerBoolConversionError" or "boolean conversion of traced" in low:
        return (f"branches on an array value at {where}{quoted}; {framework} cannot trace Python control flow "
                f"that depends on array values; use np.where(cond, a, b) instead")
    if name in ("ConcretizationTypeError", "TracerIntegerConversionError") or "concrete value is expected" in low:
        return (f"converts a traced value to a Python number (`float(...)`/`.item()`/`int(...)`) at {where}{quoted}; "
                f"keep it as an array (use np.float64(x) or leave it as is)")
    callee = library_callee(exc.__traceback__)
    if callee is not None:
        return (f"passes a traced array to library code `{callee}` at {where}{quoted}, which "
                f"{framework} cannot differentiate (crosscheck runs library code as it is); compute "
                f"it with `np` in your own code, pass a per-framework loss, or, if that library is "
                f"plain Python over numpy, name it in `rebind_modules=[...]`")
    if name == "TracerArrayConversionError" or "can't call numpy() on tensor that requires grad" in low \
            or "__array__() was called on" in low:
        return (f"passes a traced array to code crosscheck cannot rebind (a library function such as scipy, or "
                f"numpy reached through an object) at {where}{quoted}; call numpy through the name `np` "
                f"in your own code, or pass a per-framework loss")
    if "modified by an inplace operation" in low or "requires grad is being used in an in-place" in low:
        at = f" at {where}{quoted}" if loc else " (an `A[...] = ...` or `A += ...` on an array the gradient needs)"
        return (f"the loss modifies an array in place{at}, which {framework} cannot differentiate; "
                f"build a new array instead, e.g. `A = np.where(mask, 0, A)`")
    if "does not require grad and does not have a grad_fn" in low:
        return detached_message(fn, framework)
    loss_name = getattr(fn, "__qualname__", "the loss") if fn is not None else "the loss"
    if "only defined for scalar-output" in low or "implicitly created only for scalar outputs" in low:
        shape = re.search(r"shape: (\(.*?\))", text)
        return (f"`{loss_name}` must return a scalar to be differentiated by {framework}"
                + (f"; it returned shape {shape[1]}" if shape else ""))
    if "requires real-valued outputs" in low:
        return (f"`{loss_name}` returned an integer value under {framework}, which has no gradient "
                f"(e.g. `np.int64(...)` of the result); return a float")
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"{framework} could not run the loss: {name}: {first} (at {where})"


def as_not_traceable(exc, framework, fn=None) -> NotTraceable:
    """``exc`` itself if already a NotTraceable, else a NotTraceable carrying :func:`explain`'s sentence.

    Use as ``raise as_not_traceable(exc, "jax", loss) from exc``.
    """
    if isinstance(exc, NotTraceable):
        return exc
    return NotTraceable(explain(exc, framework, fn), _locate(exc, fn))


def _locate(exc, fn):
    code = _code_of(fn) if fn is not None else None
    if code is not None and is_user_file(code.co_filename):
        return user_location(exc.__traceback__, within=code)
    return user_location(exc.__traceback__)


def detached_message(fn=None, framework="torch") -> str:
    """Message for a loss whose torch output does not require grad (graph broken silently)."""
    name = getattr(fn, "__qualname__", "the loss")
    return (f"under the {framework} oracle `{name}` returned a value that does not depend on the parameters: "
            f"the graph was broken (e.g. `.item()`, `float(...)`, `np.int64(...)` on the result, or a "
            f"conversion through numpy); keep the computation in arrays")


# ------------------------------------------------------------------ torch guard
_SCALAR_CONVERSIONS = frozenset({"item", "__float__", "__int__", "__index__", "tolist"})
_NUMPY_CONVERSIONS = frozenset({"numpy", "__array__"})


@functools.lru_cache(maxsize=1)
def _guard_mode_class():
    from torch.overrides import TorchFunctionMode

    class _Guard(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            name = getattr(func, "__name__", "")
            if args and getattr(args[0], "requires_grad", False) and (
                    name in _SCALAR_CONVERSIONS or name in _NUMPY_CONVERSIONS):
                loc = caller_location()
                shown = f" (`{_source(loc)}`)" if _source(loc) else ""
                if name in _NUMPY_CONVERSIONS:
                    raise NotTraceable(
                        f"passes a traced array to code crosscheck cannot rebind (a library function such as "
                        f"scipy, or numpy reached through an object) at {_fmt(loc)}{shown}; call numpy through "
                        f"the name `np` in your own code, or pass a per-framework loss", loc)
                raise NotTraceable(
                    f"converts a traced value to a Python number (`float(...)`/`.item()`) at {_fmt(loc)}{shown}; "
                    f"keep it as an array: under torch this silently cuts the gradient", loc)
            return func(*args, **(kwargs or {}))

    return _Guard


@contextlib.contextmanager
def torch_guard():
    """Within: converting a grad-requiring tensor to a Python number raises NotTraceable."""
    with _guard_mode_class()():
        yield
