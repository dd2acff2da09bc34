"""What is "the user's code": one definition, used by every part of crosscheck that asks.

The rebinding runs the user's functions with ``np`` bound to jax's or torch's numpy and
leaves library code alone; error messages point at the user's innermost line; a loss shipped
to remote workers travels by value when its module is the user's own source. All three ask
the same question, answered here:

* user code is code whose source file is outside the standard library, outside
  ``site-packages``/``dist-packages`` and outside crosscheck itself; code made by ``exec`` or
  typed in a notebook (``"<string>"``, ``"<ipython-input-…>"``) counts as the user's, and
  generated code belongs to the module that made it;
* a library module named in ``check(..., rebind_modules=[...])`` counts as the user's while
  an oracle runs with that setting (:data:`OPTED_IN`).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import site
import sys
import sysconfig
import types

_PKG_DIR = os.path.dirname(os.path.realpath(__file__))

#: Library modules the current oracle run treats as the user's own code (``rebind_modules``).
OPTED_IN: contextvars.ContextVar = contextvars.ContextVar("crosscheck_rebind_modules", default=())


@functools.lru_cache(maxsize=None)
def library_roots() -> tuple:
    """The folders library code lives in: the standard library, site-packages, crosscheck."""
    roots = set()
    for scheme_vars in (None, {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}):
        paths = sysconfig.get_paths(vars=scheme_vars) if scheme_vars else sysconfig.get_paths()
        for key in ("stdlib", "platstdlib", "purelib", "platlib"):
            if paths.get(key):
                roots.add(paths[key])
    with contextlib.suppress(Exception):
        roots.update(site.getsitepackages())
    with contextlib.suppress(Exception):
        roots.add(site.getusersitepackages())
    roots.add(_PKG_DIR)
    return tuple(sorted({os.path.join(os.path.realpath(r), "") for r in roots if r}))


def opted_in(module_name) -> bool:
    """True if ``module_name`` is, or is inside, a module named in ``rebind_modules``."""
    names = OPTED_IN.get()
    return bool(names) and isinstance(module_name, str) and any(
        module_name == n or module_name.startswith(n + ".") for n in names)


@functools.lru_cache(maxsize=4096)
def is_user_file(filename) -> bool:
    """True for a source file written by the user (not stdlib, site-packages or crosscheck)."""
    if not filename:
        return False
    if filename.startswith("<"):
        # "<string>", "<stdin>", "<ipython-input-…>" are user code; frozen stdlib is not.
        return not (filename.startswith("<frozen") or filename == "<built-in>")
    path = os.path.realpath(filename)
    parts = path.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return False
    return not any(os.path.join(path, "").startswith(root) or path.startswith(root)
                   for root in library_roots())


def is_user_frame(frame) -> bool:
    """A traceback or stack frame running the user's code."""
    filename = frame.f_code.co_filename
    if filename.startswith("<"):  # generated code ("<string>") belongs to the module that made it
        module = sys.modules.get(frame.f_globals.get("__name__") or "")
        if module is not None and getattr(module, "__file__", None):
            return is_user_file(module.__file__)
    return is_user_file(filename)


def is_user_code(obj) -> bool:
    """True if ``obj`` (function, method, partial, code, module, class or filename) is the user's own code.

    Built-ins (no Python source) are never user code.
    """
    if isinstance(obj, str):
        return is_user_file(obj)
    if isinstance(obj, types.MethodType):
        obj = obj.__func__
    if isinstance(obj, functools.partial):
        obj = obj.func
    if opted_in(getattr(obj, "__module__", None) if not isinstance(obj, types.ModuleType) else obj.__name__):
        return True  # a library module the user asked to check as their own (rebind_modules)
    if isinstance(obj, types.CodeType):
        return is_user_file(obj.co_filename)
    if isinstance(obj, types.FunctionType):
        filename = obj.__code__.co_filename
        if filename.startswith("<"):  # generated code ("<string>") belongs to its module
            module = sys.modules.get(getattr(obj, "__module__", None) or "")
            if module is not None and "_cc_target" not in vars(module) and getattr(module, "__file__", None):
                return is_user_file(module.__file__)
        return is_user_file(filename)
    if isinstance(obj, types.ModuleType):
        filename = getattr(obj, "__file__", None)
        return is_user_file(filename) if filename else obj.__name__ == "__main__"
    if isinstance(obj, type):
        module = sys.modules.get(obj.__module__)
        return module is not None and is_user_code(module)
    return False
