"""In-place writes in the user's own functions, run as functional updates (jax; torch's fallback).

numpy code writes into arrays: ``out[i, j] = np.max(window)``, ``a[:, :, t] = a_next``,
``scores[np.arange(N), y] = 0``, ``dx[mask] *= 0``, ``xs[t][inputs[t]] = 1``,
``np.add.at(dW, idx, dout)``. jax arrays are immutable, and torch's autograd refuses a write
into a tensor an earlier operation saved for its backward. So, for rebound code only (never
the user's module, never library code), the function's source is parsed and each such
statement becomes an assignment of a new array::

    out[i, j] = v           ->  out = __crosscheck_setitem__(out, (i, j), v)
    dx[mask] *= 0           ->  dx = __crosscheck_setitem__(dx, mask, 0, _operator.mul)
    xs[t][k] = 1            ->  xs[t] = __crosscheck_setitem__(xs[t], k, 1)   (and so on up)
    np.add.at(dW, idx, d)   ->  dW = __crosscheck_ufunc_at__(np.add, dW, idx, d)

:func:`setitem` writes functionally into the framework's arrays (``a.at[idx].set(v)``, a
copy under torch) and in place into anything else (a dict, a list, a numpy array the code
made itself), returning the container, so the statement means what it meant before.

Where the two can differ: a write through a *view* held under another name
(``row = a[0]; row[1] = 5`` changes ``a`` in numpy, not here). Forward parity compares the
rewritten code's loss with numpy's and takes the reference out of the decision, with the
reason, when they differ. Names that are not local to the function (a global array written
in place) are left as they are: rebinding them would change the function's scoping.

The rewritten function keeps the original's file name and line numbers, so errors and
tracebacks still point at the user's lines.
"""

from __future__ import annotations

import ast
import copy
import dis
import inspect
import operator
import textwrap
import types

SETITEM = "__crosscheck_setitem__"
UFUNC_AT = "__crosscheck_ufunc_at__"
SLICE = "__crosscheck_slice__"
INPLACE = "__crosscheck_inplace__"

_AUG = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "truediv", ast.FloorDiv: "floordiv",
        ast.Mod: "mod", ast.Pow: "pow", ast.MatMult: "matmul", ast.BitAnd: "and_", ast.BitOr: "or_",
        ast.BitXor: "xor", ast.LShift: "lshift", ast.RShift: "rshift"}
_UFUNCS = ("add", "subtract", "multiply", "maximum", "minimum")


# ------------------------------------------------------------------ does it write?
def _writes(code: types.CodeType) -> bool:
    """True if ``code`` (or a function nested in it) has a subscript store, an augmented
    assignment or an ``.at`` call."""
    if "at" in code.co_names:
        return True
    for instruction in dis.get_instructions(code):
        if instruction.opname == "STORE_SUBSCR" or instruction.opname.startswith("INPLACE_") or (
                instruction.opname == "BINARY_OP" and instruction.argrepr.endswith("=")):
            return True  # `a[i] = v`, and `x -= m` (in place on numpy arrays)
    return any(_writes(c) for c in code.co_consts if isinstance(c, types.CodeType))


# ------------------------------------------------------------------ the rewrite
def _locals(fn_node) -> set:
    """Names local to the function ``fn_node`` (its arguments and what it assigns)."""
    args = fn_node.args
    names = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
    names |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    declared = set()

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(child.name)
                continue
            if isinstance(child, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
                continue
            if isinstance(child, (ast.Global, ast.Nonlocal)):
                declared.update(child.names)
            elif isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                names.add(child.id)
            elif isinstance(child, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in child.names)
            visit(child)

    for statement in fn_node.body:
        visit(ast.Module(body=[statement], type_ignores=[]))
    return names - declared


def _index_expr(node):
    """A subscript's index as an expression (``a:b`` becomes ``slice(a, b)``)."""
    if isinstance(node, ast.Slice):
        parts = [p if p is not None else ast.Constant(None) for p in (node.lower, node.upper, node.step)]
        return ast.Call(ast.Name(SLICE, ast.Load()), parts, [])
    if isinstance(node, ast.Tuple):
        return ast.Tuple([_index_expr(e) for e in node.elts], ast.Load())
    return node


def _root(target):
    while isinstance(target, ast.Subscript):
        target = target.value
    return target


def _load(node):
    node = copy.deepcopy(node)
    for child in ast.walk(node):
        if hasattr(child, "ctx"):
            child.ctx = ast.Load()
    return node


def _store(node):
    node = copy.deepcopy(node)
    node.ctx = ast.Store()
    return node


def _functional_assign(target: ast.Subscript, value, op=None):
    """``target = value`` for a subscript target, as an assignment of the updated container."""
    args = [_load(target.value), _index_expr(_load(target.slice)), value]
    if op is not None:
        args.append(ast.Attribute(ast.Name("__crosscheck_operator__", ast.Load()), op, ast.Load()))
    call = ast.Call(ast.Name(SETITEM, ast.Load()), args, [])
    container = target.value
    if isinstance(container, ast.Subscript):
        return _functional_assign(container, call)
    return ast.Assign([_store(container)], call)


class _Rewriter(ast.NodeTransformer):
    def __init__(self):
        self.scopes = []
        self.changed = False

    def _function(self, node):
        self.scopes.append(_locals(node))
        self.generic_visit(node)
        self.scopes.pop()
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def _rewritable(self, target):
        root = _root(target)
        return (isinstance(target, ast.Subscript) and isinstance(root, ast.Name)
                and bool(self.scopes) and root.id in self.scopes[-1])

    def visit_Assign(self, node):
        if len(node.targets) == 1 and self._rewritable(node.targets[0]):
            self.changed = True
            return ast.copy_location(_functional_assign(node.targets[0], node.value), node)
        return node

    def visit_AugAssign(self, node):
        if self._rewritable(node.target) and type(node.op) in _AUG:
            self.changed = True
            return ast.copy_location(_functional_assign(node.target, node.value, _AUG[type(node.op)]), node)
        if isinstance(node.target, ast.Name) and self.scopes and node.target.id in self.scopes[-1] \
                and type(node.op) in _AUG:
            # `probs /= s` writes into `probs` under torch's numpy layer (jax rebinds the name)
            self.changed = True
            call = ast.Call(ast.Name(INPLACE, ast.Load()),
                            [_load(node.target), node.value,
                             ast.Constant("i" + _AUG[type(node.op)].rstrip("_"))], [])
            return ast.copy_location(ast.Assign([_store(node.target)], call), node)
        return node

    def visit_Expr(self, node):
        call = node.value
        out = next((k for k in getattr(call, "keywords", ()) if k.arg == "out"), None) \
            if isinstance(call, ast.Call) else None
        if out is not None and (isinstance(out.value, ast.Name) and self.scopes
                                and out.value.id in self.scopes[-1] or self._rewritable(out.value)):
            # `np.clip(g, -5, 5, out=g)`: the result, assigned to what `out` named
            self.changed = True
            call.keywords = [k for k in call.keywords if k is not out]
            if isinstance(out.value, ast.Name):
                return ast.copy_location(ast.Assign([_store(out.value)], call), node)
            return ast.copy_location(_functional_assign(out.value, call), node)
        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "at"
                and isinstance(call.func.value, ast.Attribute) and call.func.value.attr in _UFUNCS
                and len(call.args) in (2, 3) and not call.keywords):
            target = call.args[0]
            if isinstance(target, ast.Name) and self.scopes and target.id in self.scopes[-1] \
                    or self._rewritable(target):
                self.changed = True
                args = [call.func.value, _load(target), _index_expr(call.args[1]), *call.args[2:]]
                new_value = ast.Call(ast.Name(UFUNC_AT, ast.Load()), args, [])
                if isinstance(target, ast.Name):
                    return ast.copy_location(ast.Assign([_store(target)], new_value), node)
                return ast.copy_location(_functional_assign(target, new_value), node)
        return node


def rewritten_code(fn: types.FunctionType):
    """``fn``'s code with in-place writes made functional, or ``None`` (nothing to rewrite, or no source).

    Returns ``(code, freevars)``: the new code object and the names of its free variables,
    in its own order (the caller builds the closure from the original's cells by name).
    """
    code = fn.__code__
    if not _writes(code) or code.co_name == "<lambda>":
        return None
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    if not tree.body or not isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef)) \
            or tree.body[0].name != code.co_name:
        return None
    definition = tree.body[0]
    definition.decorator_list = []
    rewriter = _Rewriter()
    rewriter.visit(definition)
    if not rewriter.changed:
        return None
    try:
        new = recompiled(definition, code)
    except (SyntaxError, ValueError):
        return None
    return new, new.co_freevars


def recompiled(definition: ast.FunctionDef, code: types.CodeType) -> types.CodeType:
    """The code of a rewritten ``definition`` of the function whose code is ``code``: the
    same file and line numbers, and its free variables still free -- it is compiled inside a
    function that binds them, so the caller can give it the original closure's cells.

    Raises:
        SyntaxError, ValueError: the rewritten tree does not compile.
    """
    outer = ast.FunctionDef(
        name="__crosscheck_outer__",
        args=ast.arguments(posonlyargs=[], args=[ast.arg(n) for n in code.co_freevars], vararg=None,
                           kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[]),
        body=[definition, ast.Return(ast.Name(definition.name, ast.Load()))], decorator_list=[],
        returns=None, type_comment=None)
    if "type_params" in ast.FunctionDef._fields:  # Python 3.12+
        outer.type_params = []
    module = ast.Module(body=[outer], type_ignores=[])
    ast.fix_missing_locations(module)
    ast.increment_lineno(module, code.co_firstlineno - definition.lineno)
    compiled = compile(module, code.co_filename, "exec")
    outer_code = next(c for c in compiled.co_consts if isinstance(c, types.CodeType))
    return next(c for c in outer_code.co_consts
                if isinstance(c, types.CodeType) and c.co_name == code.co_name)


# ------------------------------------------------------------------ run time
def _is_jax(value) -> bool:
    return hasattr(value, "at") and hasattr(value, "aval")


def _is_torch_layer(value) -> bool:
    return hasattr(value, "tensor")


def setitem(target, index, value, op=None):
    """``target[index] = value`` (or ``op(target[index], value)``), returning the updated target.

    The framework's arrays get a new array (jax: ``.at[index].set``; torch's numpy layer: a
    copy, written into); anything else (dicts, lists, numpy arrays) is written in place, as
    the original statement did.
    """
    if op is not None:
        value = op(target[index], value)
    if _is_jax(target) or (type(target).__module__ == "numpy" and _is_jax(value)):
        import jax.numpy as jnp

        target = jnp.asarray(target)
        mask = index if getattr(index, "dtype", None) == bool else None
        if mask is not None and mask.shape == target.shape and jnp.ndim(value) == 0:
            return jnp.where(mask, value, target)  # also traceable under jit
        return target.at[index].set(value)
    if _is_torch_layer(target) or (type(target).__module__ == "numpy" and _is_torch_layer(value)):
        from ._torch_numpy import layer, wrap

        copy = layer().ndarray(wrap(target).tensor.clone())
        copy[index] = value
        return copy
    target[index] = value
    return target


def inplace(target, value, op):
    """``target op= value``: a new array for the framework's arrays, Python's own rule otherwise."""
    if _is_torch_layer(target) or _is_jax(target):
        name = op[1:]
        return getattr(operator, name + "_" if name in ("and", "or") else name)(target, value)
    return getattr(operator, op)(target, value)


def ufunc_at(ufunc, target, index, value=None):
    """``ufunc.at(target, index, value)``, returning the updated target (new for framework arrays)."""
    name = getattr(ufunc, "__name__", "")
    if _is_jax(target):
        at = target.at[index]
        value = 1 if value is None else value
        return {"add": at.add, "subtract": lambda v: at.add(-v), "multiply": at.multiply,
                "maximum": at.max, "minimum": at.min}[name](value)
    if _is_torch_layer(target):
        from ._torch_numpy import layer

        target = layer().ndarray(target.tensor.clone())
    ufunc.at(target, index, value) if value is not None else ufunc.at(target, index)
    return target


HELPERS = {SETITEM: setitem, UFUNC_AT: ufunc_at, SLICE: slice, INPLACE: inplace,
           "__crosscheck_operator__": operator}
