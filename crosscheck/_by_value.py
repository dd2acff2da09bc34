"""Shipping a loss to workers: by reference when they can import it, by value otherwise.

A loss defined in a script (``__main__``), in a file loaded by path, or in source that is not
installed cannot be imported by name on a remote worker; cloudpickle can send such a module's
functions *by value* once the module is registered with ``register_pickle_by_value``.
Installed packages (editable installs included) travel by reference as usual.
"""

from __future__ import annotations

import importlib.machinery
import sys
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Callable

from ._user_code import library_roots


@lru_cache(maxsize=1)
def _installed_top_levels() -> frozenset:
    import importlib.metadata
    return frozenset(importlib.metadata.packages_distributions())


def _library_roots() -> tuple:
    return tuple(Path(r).resolve() for r in library_roots())   # one definition: _user_code


def _under(path: Path, roots) -> bool:
    return any(path == r or r in path.parents for r in roots)


def _module_of(fn: Any):
    """The module an object's code lives in (unwrapping partials, methods, instances)."""
    for _ in range(16):
        if isinstance(fn, partial):
            fn = fn.func
        elif hasattr(fn, "__func__"):
            fn = fn.__func__
        else:
            break
    name = getattr(fn, "__module__", None)
    if name is None or not isinstance(name, str):
        name = getattr(type(fn), "__module__", None)
    return sys.modules.get(name) if name else None


def needs_by_value(module) -> bool:
    """Whether workers could fail to import ``module`` by name (see :func:`ensure_by_value`)."""
    name = module.__name__
    if name in ("__main__", "__mp_main__"):
        return True
    if name in sys.builtin_module_names:
        return False
    top = name.partition(".")[0]
    if top == "crosscheck":
        return False            # workers need crosscheck installed anyway
    file = getattr(module, "__file__", None)
    spec = importlib.machinery.PathFinder.find_spec(top, sys.path)   # by name, not sys.modules
    if spec is None or file is None:
        return True             # loaded by path under a private name, or built in memory
    here = Path(file).resolve()
    if spec.submodule_search_locations:
        homes = [Path(p).resolve() for p in spec.submodule_search_locations]
        if not _under(here, homes):
            return True         # another package of that name would be imported
    elif spec.origin is None or Path(spec.origin).resolve() != here:
        return True
    if _under(here, _library_roots()) or top in _installed_top_levels():
        return False            # installed: importable wherever the environment is the same
    return True                 # local source (a script's folder, tests): not on the workers


def ensure_by_value(fn: Any) -> bool:
    """Make ``fn`` travel by value to remote workers when they could not import it.

    Rule: a function is pickled *by reference* (module name + qualified name) unless its
    module is registered with ``cloudpickle.register_pickle_by_value``. Workers can resolve a
    reference only to a module they can import by name from an installed location. So the
    module is registered by value when it is ``__main__`` (a script), when it cannot be found
    by its name on ``sys.path`` (a file loaded by path under a private name), or when it is
    found but lives outside site-packages and the standard library and belongs to no installed
    distribution (a script's folder, a test directory). Installed packages (including
    editable installs) and crosscheck itself stay by reference.

    Args:
        fn: the loss (a function, ``functools.partial``, bound method or callable object).

    Returns:
        True when the module was registered by value (now or before).
    """
    module = _module_of(fn)
    if module is None or not needs_by_value(module):
        return False
    import cloudpickle
    if module.__name__ not in cloudpickle.list_registry_pickle_by_value():
        cloudpickle.register_pickle_by_value(module)
    return True


class _ByValue:
    """A callable pickled once with cloudpickle; unpickles as the callable itself.

    Executors pickle with the standard pickler (Dask checks only the top-level object for
    cloudpickle's by-value registry); this wrapper makes the loss always go through
    cloudpickle, so the by-value registration holds however deep the loss sits in a task.
    """

    def __init__(self, fn: Callable):
        import cloudpickle
        self.fn = fn
        self.payload = cloudpickle.dumps(fn)

    def __reduce__(self):
        import cloudpickle
        return cloudpickle.loads, (self.payload,)

    def __call__(self, *args, **kwargs):   # pragma: no cover - unpickled as the loss itself
        return self.fn(*args, **kwargs)


def portable(loss: Callable) -> Callable:
    try:
        import cloudpickle  # noqa: F401
    except ImportError:
        return loss
    ensure_by_value(loss)
    return _ByValue(loss)


# --- executors -----------------------------------------------------------------------------


__all__ = ["ensure_by_value", "needs_by_value", "portable"]
