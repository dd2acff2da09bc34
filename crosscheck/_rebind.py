"""Run the user's own numpy code under jax or torch by rebinding ``np``.

``rebind(fn, namespace)`` returns a new function object made from ``fn.__code__``
whose globals are a *live view* of ``fn.__globals__``: every global read goes to
the user's module dict at call time and the value is translated --

* the numpy module (bound to whatever name: ``np``, ``numpy``, ``onp``) -> ``namespace``;
  numpy submodules and names imported from numpy (``from numpy import exp``) -> the
  namespace's attribute of the same name;
* user functions -> their rebound versions (memoised; recursion and cycles are fine);
* user modules (``import model``) -> a proxy module translating attributes lazily;
* user classes -> a subclass whose methods are rebound; user instances -> a view of
  the instance (same ``__dict__``) of that subclass; bound methods, partials, and
  small tuples/lists/dicts holding any of these -> translated copies.

Closure cells and defaults are translated the same way; ``import`` statements run
inside rebound code are translated too.  Nothing of the user's is modified: their
modules, functions and classes keep their numpy bindings, so the finite-difference
oracle (or any other thread) running the original concurrently sees plain numpy.
Library code (stdlib, site-packages, crosscheck itself) is never rebound.
"""

from __future__ import annotations

import abc
import builtins
import functools
import threading
import types
import warnings
import weakref

import numpy as np

from crosscheck import _library
from crosscheck._functional import HELPERS as FUNCTIONAL_HELPERS
from crosscheck._functional import rewritten_code
from crosscheck._trace_errors import NotTraceable, random_call, unsupported_name
from crosscheck._user_code import is_user_code

__all__ = ["rebind", "run_rebound", "is_user_code", "jax_namespace", "torch_namespace", "NumpyNamespace",
           "NotTraceable"]

_PLAIN = (int, float, complex, str, bytes, bool, type(None), range, slice)
_SMALL = 256  # containers larger than this are not scanned


# ------------------------------------------------------------------ user code
# ------------------------------------------------------------------ namespaces
class _Unsupported:
    """Placeholder for a numpy object the namespace lacks: raises when used."""

    def __init__(self, name, framework, prefix="np"):
        self._name, self._framework, self._prefix = name, framework, prefix

    def __call__(self, *args, **kwargs):
        raise unsupported_name(self._name, self._framework, self._prefix)

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise unsupported_name(f"{self._name}.{attr}", self._framework, self._prefix)


class _RandomStub:
    """``np.random`` inside a rebound loss: every function raises NotTraceable when called."""

    def __init__(self, framework):
        self._framework = framework

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)

        def _random(*args, **kwargs):
            raise random_call(name, self._framework)

        _random.__name__ = name
        return _random


def _missing(name, framework, prefix="np"):
    """A numpy submodule the namespace lacks becomes a placeholder (so `np.fft.fft` is named in full);
    any other missing name raises at once."""
    import numpy

    if prefix == "np" and isinstance(getattr(numpy, name, None), types.ModuleType):
        return _Unsupported(name, framework)
    raise unsupported_name(name, framework, prefix)


class NumpyNamespace(types.ModuleType):
    """What ``np`` means in rebound code: names from ``source`` (or ``extra``), clear errors otherwise."""

    def __init__(self, framework, source, names=None, extra=None, convert=None, prefix="np",
                 functional=False):
        super().__init__(f"crosscheck.{framework}_numpy", f"numpy names over {framework}")
        self.__dict__.update({"_cc_framework": framework, "_cc_source": source, "_cc_names": names,
                              "_cc_extra": dict(extra or {}), "_cc_convert": convert,
                              "_cc_prefix": prefix, "_cc_functional": functional})
        if prefix == "np":
            self.__dict__["random"] = _RandomStub(framework)

    def __getattr__(self, name):
        d = self.__dict__
        if name.startswith("__") or name.startswith("_cc_"):
            raise AttributeError(name)
        if name in d["_cc_extra"]:
            value = d["_cc_extra"][name]
        elif d["_cc_names"] is not None and name not in d["_cc_names"]:
            value = _missing(name, d["_cc_framework"], d["_cc_prefix"])
        else:
            value = getattr(d["_cc_source"], name, _Unsupported)
            if value is _Unsupported:
                value = _missing(name, d["_cc_framework"], d["_cc_prefix"])
        d[name] = value  # later look-ups are plain attribute reads
        return value

    def __dir__(self):
        names = d_names if (d_names := self.__dict__["_cc_names"]) is not None else dir(self.__dict__["_cc_source"])
        return sorted(set(names) | set(self.__dict__["_cc_extra"]) | {"random"})

    def __repr__(self):
        return f"<numpy namespace over {self.__dict__['_cc_framework']}>"


_NAMESPACES = {}
_NS_LOCK = threading.Lock()


def jax_namespace() -> NumpyNamespace:
    """``jax.numpy`` wrapped: missing names and ``np.random`` raise NotTraceable.

    ``np.int64(x)``/``np.float64(x)`` are jax.numpy's casts (64-bit under ``jax.enable_x64``).
    """
    with _NS_LOCK:
        if "jax" not in _NAMESPACES:
            import numpy
            import jax.numpy as jnp

            _NAMESPACES["jax"] = NumpyNamespace("jax", jnp, extra={"errstate": numpy.errstate,
                                                                   "seterr": numpy.seterr,
                                                                   "pad": _jax_pad(jnp),
                                                                   "asanyarray": jnp.asarray,
                                                                   "iterable": numpy.iterable},
                                                functional=True)
        return _NAMESPACES["jax"]


def _jax_pad(jnp):
    """``np.pad`` under jax, taking every ``pad_width`` numpy takes (``((0,), (0,), (p,), (p,))``)."""
    import numpy

    def pad(array, pad_width, mode="constant", **kwargs):
        try:
            widths = numpy.asarray(pad_width, dtype=numpy.int64)
        except (TypeError, ValueError):
            return jnp.pad(array, pad_width, mode, **kwargs)  # traced widths: jax's own rules
        widths = numpy.broadcast_to(widths.reshape(-1, widths.shape[-1]) if widths.ndim else widths,
                                    (jnp.ndim(array), 2))
        return jnp.pad(array, tuple(map(tuple, widths.tolist())), mode, **kwargs)

    return pad


def torch_namespace(functional=False) -> NumpyNamespace:
    """numpy's semantics over torch (:mod:`crosscheck._torch_numpy`, torch's own numpy layer), float64.

    numpy arrays and scalars the loss reaches through globals, closures, defaults or
    attributes become that layer's arrays and Python numbers (the layer refuses to meet
    numpy's own). With ``functional``, in-place writes in the user's functions write into
    copies (see :mod:`crosscheck._functional`): the torch oracle's second try when autograd
    refuses an in-place write.
    """
    key = "torch-functional" if functional else "torch"
    with _NS_LOCK:
        if key not in _NAMESPACES:
            from crosscheck import _torch_numpy

            _NAMESPACES[key] = NumpyNamespace("torch", _torch_numpy.namespace_source(),
                                              convert=_torch_numpy.constant, functional=functional)
        return _NAMESPACES[key]


# ------------------------------------------------------------------ numpy objects
@functools.lru_cache(maxsize=1)
def _numpy_index():
    """``id(obj) -> (obj, dotted name)`` for numpy's public callables and submodules."""
    import numpy

    builtin_ids = {id(v) for v in vars(builtins).values()}
    index = {}
    for prefix, module in (("", numpy), ("linalg.", numpy.linalg), ("fft.", numpy.fft), ("random.", numpy.random)):
        for name in dir(module):
            if name.startswith("_"):
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = getattr(module, name, None)
            if id(value) in builtin_ids or not (callable(value) or isinstance(value, types.ModuleType)):
                continue
            index.setdefault(id(value), (value, prefix + name))
    return index


def _numpy_module_name(value):
    name = getattr(value, "__name__", "")
    return name if isinstance(value, types.ModuleType) and (name == "numpy" or name.startswith("numpy.")) else None


# ------------------------------------------------------------------ live views
class _LiveGlobals(dict):
    """A function's globals: reads come live from the user's dict, translated; writes stay here."""

    __slots__ = ("_cc_source", "_cc_rebinder")

    def __missing__(self, key):
        return self._cc_rebinder.translate(self._cc_source[key])


class _ModuleView(types.ModuleType):
    """A user module seen from rebound code: attributes are translated on every read.

    A write (``model_module.model = p``, the way some scripts hand weights to their functions)
    goes where the module's rebound functions read their globals -- the live view of the
    module's globals, never the module itself -- so those functions see the traced values.
    """

    def __init__(self, module, rebinder):
        super().__init__(module.__name__, getattr(module, "__doc__", None))
        for key in ("__file__", "__package__", "__spec__", "__loader__", "__path__"):
            if hasattr(module, key):
                self.__dict__[key] = getattr(module, key)
        self.__dict__["_cc_target"] = module
        self.__dict__["_cc_rebinder"] = rebinder

    def _cc_globals(self):
        return self.__dict__["_cc_rebinder"]._live_globals(vars(self.__dict__["_cc_target"]))

    def __getattr__(self, name):
        if name.startswith("_cc_"):
            raise AttributeError(name)
        written = self._cc_globals()
        if dict.__contains__(written, name) and not name.startswith("__"):
            return dict.__getitem__(written, name)
        return self.__dict__["_cc_rebinder"].translate(getattr(self.__dict__["_cc_target"], name))

    def __setattr__(self, name, value):
        self._cc_globals()[name] = value

    def __delattr__(self, name):
        dict.pop(self._cc_globals(), name, None)

    def __dir__(self):
        return dir(self.__dict__["_cc_target"])

    def __repr__(self):
        return f"<rebound view of module {self.__name__!r}>"


class _Rebinder:
    """All translations towards one namespace, memoised and thread-safe."""

    def __init__(self, namespace):
        self.ns = namespace
        self._convert = namespace.__dict__.get("_cc_convert") if isinstance(namespace, NumpyNamespace) else None
        self.framework = getattr(namespace, "_cc_framework", getattr(namespace, "__name__", "namespace"))
        self.functional = bool(getattr(namespace, "_cc_functional", False))
        self._lock = threading.RLock()
        self._functions = weakref.WeakKeyDictionary()  # fn -> (fingerprint, rebound)
        self._classes = weakref.WeakKeyDictionary()  # cls -> view class (or cls)
        self._modules = {}  # id(module) -> (module, view)
        self._globals = {}  # id(globals dict) -> (dict, live view)
        self._builtins = dict(vars(builtins), __import__=self._import)

    # -- entry point ---------------------------------------------------
    def translate(self, value, depth=0):
        if value is np:
            return self.ns
        cls = value.__class__
        if cls in _PLAIN:
            return value
        if cls is np.ndarray or isinstance(value, np.generic):
            # torch's numpy layer needs its own arrays; jax mixes numpy arrays in by itself
            return value if self._convert is None else self._convert(value)
        if isinstance(value, types.ModuleType):
            return self._module(value)
        if isinstance(value, types.FunctionType):
            if is_user_code(value):
                return self._function(value)
            return self._numpy_object(value)
        if isinstance(value, types.MethodType):
            if isinstance(value.__func__, types.FunctionType) and is_user_code(value.__func__):
                return types.MethodType(self._function(value.__func__), self.translate(value.__self__, depth + 1))
            return value
        if isinstance(value, functools.partial):
            func = self.translate(value.func, depth + 1)
            args = tuple(self.translate(a, depth + 1) for a in value.args)
            kwargs = {k: self.translate(v, depth + 1) for k, v in value.keywords.items()}
            if func is value.func and _same(args, value.args) and _same(kwargs.values(), value.keywords.values()):
                return value
            return functools.partial(func, *args, **kwargs)
        if isinstance(value, type):
            return self._class(value) if is_user_code(value) else self._numpy_object(value)
        if hasattr(value, "__array_priority__"):
            return value  # tensors, jax arrays, numpy scalars
        if cls in (tuple, list, dict):
            return self._container(value, depth)
        if is_user_code(cls):
            return self._instance(value)
        return self._numpy_object(value)  # numpy callables, numpy.random generators; anything else as is

    # -- kinds ------------------------------------------------------------
    def _numpy_object(self, value):
        hit = _numpy_index().get(id(value))
        if hit is None or hit[0] is not value:
            if value.__class__.__module__.startswith("numpy.random") and hasattr(self.ns, "random"):
                return self.ns.random  # a Generator/RandomState: its methods raise NotTraceable
            mapped = _library.replacement(value, self) if self.framework in ("jax", "torch") else None
            return value if mapped is None else mapped
        return self._numpy_submodule(hit[1])

    def make(self, label, source, prefix):
        """A namespace over ``source`` for library code mapped to this framework (see ``_library``)."""
        return NumpyNamespace(self.framework, source, prefix=prefix)

    def _module(self, module):
        if isinstance(module, (_ModuleView, NumpyNamespace)):
            return module
        numpy_name = _numpy_module_name(module)
        if numpy_name == "numpy":
            return self.ns
        if numpy_name is not None:
            return self._numpy_submodule(numpy_name[len("numpy."):])
        if not is_user_code(module):
            mapped = _library.replacement(module, self) if self.framework in ("jax", "torch") else None
            return module if mapped is None else mapped
        with self._lock:
            hit = self._modules.get(id(module))
            if hit is None:
                hit = self._modules[id(module)] = (module, _ModuleView(module, self))
            return hit[1]

    def _numpy_submodule(self, dotted):
        """``namespace.<dotted>``, or a placeholder raising NotTraceable when used."""
        obj = self.ns
        try:
            for part in dotted.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            return _Unsupported(dotted, self.framework)
        return obj

    def _live_globals(self, source):
        with self._lock:
            hit = self._globals.get(id(source))
            if hit is None:
                live = _LiveGlobals()
                live._cc_source, live._cc_rebinder = source, self
                live["__builtins__"] = self._builtins
                if self.functional:
                    live.update(FUNCTIONAL_HELPERS)
                for key in ("__name__", "__file__", "__package__", "__spec__", "__loader__"):
                    if key in source:
                        live[key] = source[key]
                hit = self._globals[id(source)] = (source, live)
            return hit[1]

    def _function(self, fn):
        if getattr(fn, "__crosscheck_rebinder__", None) is self:
            return fn
        original = getattr(fn, "__crosscheck_original__", None)
        if original is not None and original() is not None:
            fn = original()
        fingerprint = _fingerprint(fn)
        with self._lock:
            hit = self._functions.get(fn)
            if hit is not None and _same(hit[0], fingerprint):
                return hit[1]
            cells = None
            if fn.__closure__ is not None:
                cells = tuple(c if name == "__class__" or self._shareable(c) else types.CellType()
                              for name, c in zip(fn.__code__.co_freevars, fn.__closure__))
            code, new_cells = fn.__code__, cells
            if self.functional:
                rewritten = rewritten_code(fn)
                by_name = dict(zip(fn.__code__.co_freevars, cells or ()))
                if rewritten is not None and set(rewritten[1]) <= set(by_name):
                    code = rewritten[0]
                    new_cells = tuple(by_name[n] for n in rewritten[1]) if rewritten[1] else None
            new = types.FunctionType(code, self._live_globals(fn.__globals__), fn.__name__, None, new_cells)
            self._functions[fn] = (fingerprint, new)  # registered before recursing: cycles terminate
            new.__dict__.update(fn.__dict__)
            new.__qualname__, new.__doc__, new.__module__ = fn.__qualname__, fn.__doc__, fn.__module__
            new.__crosscheck_rebinder__ = self
            new.__crosscheck_original__ = weakref.ref(fn)
            if fn.__defaults__:
                new.__defaults__ = tuple(self.translate(v) for v in fn.__defaults__)
            if fn.__kwdefaults__:
                new.__kwdefaults__ = {k: self.translate(v) for k, v in fn.__kwdefaults__.items()}
            if cells is not None:
                for old, cell in zip(fn.__closure__, cells):
                    if cell is not old:
                        cell.cell_contents = self.translate(old.cell_contents)
            return new

    def _class(self, cls):
        if "__crosscheck_view_of__" in cls.__dict__:
            return cls
        with self._lock:
            view = self._classes.get(cls)
            if view is not None:
                return view
            self._classes[cls] = cls  # provisional, for self-references while building
            try:
                view = self._make_class_view(cls)
            except TypeError:  # e.g. a metaclass or layout conflict: the class runs unchanged
                view = cls
            self._classes[cls] = view
            return view

    def _make_class_view(self, cls):
        """``class View(cls, *views of cls's bases)`` holding cls's own methods, rebound.

        MRO: View, cls, view(base1), base1, ...: every method found (also through a
        zero-arg ``super()``, whose ``__class__`` cell keeps the original class) is rebound.
        """
        mro = cls.__mro__[:-1]
        if type(cls) not in (type, abc.ABCMeta) or cls.__mro__[-1] is not object \
                or not all(is_user_code(c) or c is abc.ABC for c in mro) \
                or any("__slots__" in c.__dict__ or "__init_subclass__" in c.__dict__
                       for c in mro if c is not abc.ABC):
            return cls  # unusual class: its methods run unchanged
        bases = [self._class(b) for b in cls.__bases__ if b not in (object, abc.ABC)]
        if any(b.__dict__.get("__crosscheck_view_of__") is None for b in bases):
            return cls
        body = {"__crosscheck_view_of__": cls}
        for name, attr in cls.__dict__.items():
            if name not in ("__dict__", "__weakref__", "__module__", "__qualname__", "__doc__"):
                new = self._descriptor(attr)
                if new is not attr:
                    body[name] = new
        if not any("__getattribute__" in c.__dict__ for c in mro):
            translate = self.translate

            def __getattribute__(obj, name):
                value = object.__getattribute__(obj, name)
                if name in ("__dict__", "__class__") or (
                        value.__class__ is types.MethodType and value.__self__ is obj):
                    return value
                return translate(value)

            body["__getattribute__"] = __getattribute__
        view = type(cls)(cls.__name__, (cls, *bases), body)
        view.__qualname__, view.__module__ = cls.__qualname__, cls.__module__
        return view

    def _descriptor(self, attr):
        if isinstance(attr, types.FunctionType) and is_user_code(attr):
            return self._function(attr)
        if isinstance(attr, (staticmethod, classmethod)) and isinstance(attr.__func__, types.FunctionType):
            return type(attr)(self._function(attr.__func__)) if is_user_code(attr.__func__) else attr
        if isinstance(attr, property):
            parts = [self._descriptor(f) if f is not None else None for f in (attr.fget, attr.fset, attr.fdel)]
            return property(*parts, attr.__doc__)
        return attr

    def _instance(self, obj):
        view_cls = self._class(obj.__class__)
        if view_cls is obj.__class__ or not hasattr(obj, "__dict__"):
            return obj
        view = object.__new__(view_cls)
        object.__setattr__(view, "__dict__", obj.__dict__)  # shared state: reads and writes are live
        return view

    def _container(self, value, depth):
        if depth > 3 or len(value) > _SMALL:
            return value
        if value.__class__ is dict:
            new = {k: self.translate(v, depth + 1) for k, v in value.items()}
            return value if _same(new.values(), value.values()) else new
        new = [self.translate(v, depth + 1) for v in value]
        return value if _same(new, value) else value.__class__(new)

    def _shareable(self, cell):
        """A closure cell the rebound function can share with the original (nothing in it to translate)."""
        try:
            value = cell.cell_contents
        except ValueError:
            return True  # empty cell
        return _is_data(value) and not (self._convert is not None
                                        and (value.__class__ is np.ndarray or isinstance(value, np.generic)))

    def _import(self, name, globals=None, locals=None, fromlist=(), level=0):
        return self.translate(builtins.__import__(name, globals, locals, fromlist, level))




def _is_data(value):
    return value.__class__ in _PLAIN or (not isinstance(value, type) and hasattr(value, "__array_priority__"))


def _fingerprint(fn):
    contents = []
    for cell in fn.__closure__ or ():
        try:
            contents.append(cell.cell_contents)
        except ValueError:
            contents.append(_fingerprint)
    return (fn.__code__, fn.__defaults__, fn.__kwdefaults__, *contents)


def _same(a, b):
    a, b = tuple(a), tuple(b)
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


# ------------------------------------------------------------------ public API
_REBINDERS = {}
_REBINDERS_LOCK = threading.Lock()


def _rebinder(namespace):
    with _REBINDERS_LOCK:
        hit = _REBINDERS.get(id(namespace))
        if hit is None:
            hit = _REBINDERS[id(namespace)] = (namespace, _Rebinder(namespace))
        return hit[1]


def rebind(fn, namespace):
    """``fn`` with numpy replaced by ``namespace`` in it and in every user function/module it reaches.

    The result runs the same code objects as ``fn``; ``fn`` and the user's modules are
    not modified.  Functions that never reference numpy run unchanged.  Results are
    memoised per (fn, namespace) and rebuilt when ``fn``'s code, defaults or closure change.
    """
    return _rebinder(namespace).translate(fn)


def rebind_object(value, framework, functional=False):
    """An argument of the loss as rebound code sees it: a user object's methods rebound.

    A model object passed to the loss (``loss(params, model)`` calling ``model.loglike``)
    is the user's code as much as the loss is; arrays and plain data pass unchanged (the
    oracles convert arrays themselves).
    """
    if value.__class__ in _PLAIN or _is_data(value) or isinstance(value, (np.ndarray, np.generic)):
        return value
    namespace = jax_namespace() if framework == "jax" else torch_namespace(functional)
    return _rebinder(namespace).translate(value)


def run_rebound(fn, framework, functional=False):
    """The loss ``fn`` rebound for ``framework`` (``"jax"`` or ``"torch"``), ready to differentiate.

    Under torch the returned callable also raises NotTraceable when the loss converts a
    grad-requiring tensor to a Python number (``float(x)``, ``x.item()``), which would
    otherwise cut the gradient silently; ``functional`` makes in-place writes write into
    copies (under jax they always do).  jax's 64-bit mode (``jax.enable_x64``) and
    torch's autograd set-up remain the caller's business.
    """
    if framework == "jax":
        return rebind(fn, jax_namespace())
    if framework == "torch":
        rebound = rebind(fn, torch_namespace(functional))
        if not isinstance(rebound, types.FunctionType):
            return _guarded(rebound)  # never store on user objects (instance views share __dict__)
        guarded = rebound.__dict__.get("__crosscheck_guarded__")
        if guarded is None:
            guarded = rebound.__dict__.setdefault("__crosscheck_guarded__", _guarded(rebound))
        return guarded
    raise ValueError(f"framework must be 'jax' or 'torch', not {framework!r}")


def _guarded(rebound):
    from crosscheck._trace_errors import torch_guard

    @functools.wraps(rebound)
    def call(*args, **kwargs):
        with torch_guard():
            return rebound(*args, **kwargs)

    call.__crosscheck_rebound__ = rebound
    return call
