"""Centered differences on an executor: thread or process pools, or a Dask cluster.

The in-process loop (``oracles._fd.Engine.centered``) perturbs one element at a time, in
place, on a private float64 buffer. Here the same loop runs on chunks of elements, each
chunk on a worker that holds its own copy of the buffer: :func:`evaluate_chunk` is that loop
as a pure, picklable function, and :func:`map_chunks` splits the elements into chunks,
submits them to any ``concurrent.futures.Executor`` or a ``dask.distributed.Client`` and
puts the results back in order. The arithmetic is the in-process loop's, so the values are
bit for bit the same wherever they are computed (same numpy and BLAS build assumed).

Shipping the loss:
    a loss must be importable on the workers or travel *by value*. :func:`ensure_by_value`
    registers the loss's module with ``cloudpickle.register_pickle_by_value`` when workers
    could not import it by name (a script, a file loaded by path, source that is not
    installed); :func:`map_chunks` does this, and pickles the loss with cloudpickle, for every
    executor that is not a thread pool.

Dask:
    :func:`local_cluster` starts single-threaded worker processes with glibc's allocator set
    for many short loss calls. Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``
    (``distributed.nanny.pre-spawn-environ``), so glibc hands the heap back to the system
    after nearly every call and asks for it again on the next: the 64-128-64-1 MLP's loss
    (16,641 parameters) ran 1.9 times slower at batch 128 (no difference at batch 32). Setting
    that variable also switches off glibc's adaptive mmap threshold, so arrays of 128 KiB or
    more are then mmapped and unmapped on every call: at batch 512, lifting the trim
    threshold alone gained nothing, lifting ``MALLOC_MMAP_THRESHOLD_`` to 32 MiB as well made
    the loss 3.3 times faster. ``scripts/bench.py`` measures this.

Neither dask nor cloudpickle is imported until an executor needs it.
"""

from __future__ import annotations

import concurrent.futures
import importlib.machinery
import math
import os
import sys
import sysconfig
import warnings
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

CHUNKS_PER_WORKER = 12      # many small chunks per worker: a slow worker delays little
MIN_CHUNK = 32              # elements per chunk at least: submitting a task costs ~1 ms on Dask
# glibc's allocator in Dask workers (see local_cluster): never hand the heap back after a loss
# call, and serve arrays up to 32 MiB from the heap rather than a fresh mmap each time.
WORKER_ENVIRON = {
    "MALLOC_TRIM_THRESHOLD_": str(2 ** 30),
    "MALLOC_MMAP_THRESHOLD_": str(2 ** 25),
}
TRIM_THRESHOLD = WORKER_ENVIRON["MALLOC_TRIM_THRESHOLD_"]
PRE_SPAWN_KEY = "distributed.nanny.pre-spawn-environ"


# --- the work of one chunk -----------------------------------------------------------------

def _views(flat: np.ndarray, names: Sequence[str], shapes: Any) -> dict:
    """``{name: view}`` into ``flat``, blocks laid out in ``names`` order (as ``make_blocks``)."""
    if isinstance(shapes, Mapping):
        shapes = [shapes[n] for n in names]
    params, start = {}, 0
    for name, shape in zip(names, shapes):
        shape = tuple(shape)
        size = int(np.prod(shape, dtype=np.int64))
        params[name] = flat[start:start + size].reshape(shape)
        start += size
    if start != flat.size:
        raise ValueError(f"the blocks' shapes add up to {start} elements but `flat` has "
                         f"{flat.size}; pass the names and shapes of the blocks in `flat`.")
    return params


def evaluate_chunk(loss: Callable, names: Sequence[str], shapes: Any, flat: np.ndarray,
                   args: tuple, index: np.ndarray, plus: np.ndarray,
                   minus: np.ndarray) -> tuple:
    """``(J₊, J₋)``: the loss with element ``index[k]`` set to ``plus[k]``, then ``minus[k]``.

    Works on its own float64 copy of ``flat`` (the caller's buffer, or data shared by a
    worker, is never written), rebuilds the parameter dict as views into that copy, and for
    each ``k`` perturbs one element in place, calls ``loss(params, *args)`` twice and restores
    the element: the same arithmetic as the in-process loop, so the same bits.

    Args:
        loss: ``loss(params, *args) -> scalar``.
        names: block names, in their order in ``flat``.
        shapes: the blocks' shapes, a sequence aligned with ``names`` or ``{name: shape}``.
        flat: all parameters, 1-D.
        args: the extra arguments of ``loss``.
        index: flat indices to perturb.
        plus, minus: the values ``θᵢ + h`` and ``θᵢ − h`` to set at each index.

    Returns:
        Two float64 arrays of ``index``'s length.
    """
    flat = np.array(flat, dtype=np.float64, copy=True).reshape(-1)
    params = _views(flat, names, shapes)
    index = np.asarray(index, dtype=np.int64).reshape(-1)
    plus = np.asarray(plus, dtype=np.float64).reshape(-1)
    minus = np.asarray(minus, dtype=np.float64).reshape(-1)
    fp = np.empty(index.size)
    fm = np.empty(index.size)

    def call() -> float:
        v = loss(params, *args)
        return float(v) if isinstance(v, (float, np.floating)) else v.item()

    for k, i in enumerate(index.tolist()):
        x0 = flat[i]
        flat[i] = plus[k]
        fp[k] = call()
        flat[i] = minus[k]
        fm[k] = call()
        flat[i] = x0
    return fp, fm


# --- shipping the loss ---------------------------------------------------------------------

@lru_cache(maxsize=1)
def _installed_top_levels() -> frozenset:
    import importlib.metadata
    return frozenset(importlib.metadata.packages_distributions())


def _library_roots() -> tuple:
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    try:
        import site
        roots.update(site.getsitepackages())
        roots.add(site.getusersitepackages())
    except (AttributeError, ImportError):   # pragma: no cover - embedded interpreters
        pass
    return tuple(Path(r).resolve() for r in roots if r)


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


def _portable(loss: Callable) -> Callable:
    try:
        import cloudpickle  # noqa: F401
    except ImportError:
        return loss
    ensure_by_value(loss)
    return _ByValue(loss)


# --- executors -----------------------------------------------------------------------------

def is_dask_client(executor: Any) -> bool:
    """True for a ``dask.distributed.Client`` (checked without importing dask)."""
    return type(executor).__module__.startswith("distributed")


def worker_count(executor: Any) -> int:
    """How many tasks the executor runs at once, when it says; else the machine's cores."""
    n = None
    if is_dask_client(executor):
        try:
            n = sum(executor.nthreads().values())
        except Exception:  # noqa: BLE001 - an unreachable scheduler fails later, clearly
            n = None
    else:
        n = getattr(executor, "_max_workers", None)
    return int(n) if isinstance(n, (int, np.integer)) and n > 0 else (os.cpu_count() or 1)


def chunk_bounds(n: int, workers: int, chunk: Optional[int] = None) -> list:
    """``[(start, stop), ...]`` covering ``range(n)``: balanced, none empty.

    ``CHUNKS_PER_WORKER`` chunks per worker, fewer if they would hold under ``MIN_CHUNK``
    elements (or at most ``chunk`` elements each when given); sizes differ by at most one.
    """
    if n <= 0:
        return []
    if chunk:
        count = math.ceil(n / chunk)                                # at most `chunk` each
    else:
        count = max(1, min(CHUNKS_PER_WORKER * workers, n // MIN_CHUNK))   # at least MIN_CHUNK
    edges = np.linspace(0, n, count + 1).round().astype(np.int64)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def _validate(executor, flat, index, plus, minus, chunk) -> tuple:
    if not callable(getattr(executor, "submit", None)):
        raise TypeError(
            f"`executor` must be a `concurrent.futures.Executor` or a "
            f"`dask.distributed.Client`, got {type(executor).__name__}; pass e.g. "
            f"`ThreadPoolExecutor(4)` or `Client('tcp://scheduler:8786')`.")
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer))
                              or chunk < 1):
        raise ValueError(f"`chunk` must be a positive number of elements, got {chunk!r}.")
    flat = np.ascontiguousarray(flat, dtype=np.float64).reshape(-1)
    index = np.asarray(index, dtype=np.int64).reshape(-1)
    plus = np.asarray(plus, dtype=np.float64).reshape(-1)
    minus = np.asarray(minus, dtype=np.float64).reshape(-1)
    if not (index.size == plus.size == minus.size):
        raise ValueError(f"`index`, `plus` and `minus` must have one entry per perturbed element; "
                         f"got {index.size}, {plus.size} and {minus.size}.")
    if index.size and (index.min() < 0 or index.max() >= flat.size):
        raise ValueError(f"`index` holds positions outside `flat` (size {flat.size}).")
    return flat, index, plus, minus


def map_chunks(executor: Any, loss: Callable, names: Sequence[str], shapes: Any,
               flat: np.ndarray, args: tuple, index: np.ndarray, plus: np.ndarray,
               minus: np.ndarray, chunk: Optional[int] = None,
               progress: Optional[Callable[[int], Any]] = None) -> tuple:
    """:func:`evaluate_chunk` over chunks of ``index`` on an executor; results in order.

    Args:
        executor: any ``concurrent.futures.Executor`` (thread or process pool, ...) or a
            ``dask.distributed.Client``. A Dask client gets ``flat``, ``args`` and the loss
            scattered to every worker once (``broadcast=True``); the chunk tasks are
            submitted with ``pure=False``.
        loss, names, shapes, flat, args, index, plus, minus: as for :func:`evaluate_chunk`.
        chunk: elements per chunk; by default about ``CHUNKS_PER_WORKER`` chunks per worker
            (the executor's worker count when it says, else the machine's cores), at least
            ``MIN_CHUNK`` elements each.
        progress: called as ``progress(done_elements)`` each time a chunk completes.

    Returns:
        ``(J₊, J₋)``, float64 arrays of ``index``'s length, in ``index``'s order.

    Raises:
        TypeError: ``executor`` has no ``submit``.
        ValueError: ``index``, ``plus``, ``minus`` differ in length or ``chunk`` is invalid.
        Exception: whatever the loss raised on a worker (the other chunks are cancelled).

    Notes:
        Every executor but a thread pool pickles the loss with cloudpickle, by value when
        workers could not import it (:func:`ensure_by_value`). A thread pool shares the
        loss and ``args`` with this process: the loss must not modify them (``check``
        refuses such a loss up front).
    """
    flat, index, plus, minus = _validate(executor, flat, index, plus, minus, chunk)
    names = list(names)
    shapes = [tuple(shapes[n]) for n in names] if isinstance(shapes, Mapping) else \
        [tuple(s) for s in shapes]
    args = tuple(args)
    bounds = chunk_bounds(index.size, worker_count(executor), chunk)
    fp = np.empty(index.size)
    fm = np.empty(index.size)
    if not bounds:
        return fp, fm
    if is_dask_client(executor):
        return _map_dask(executor, loss, names, shapes, flat, args, index, plus, minus,
                         bounds, progress, fp, fm)
    if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
        loss = _portable(loss)
    futures = {executor.submit(evaluate_chunk, loss, names, shapes, flat, args,
                               index[a:b], plus[a:b], minus[a:b]): (a, b) for a, b in bounds}
    done = 0
    try:
        for future in concurrent.futures.as_completed(futures):
            a, b = futures[future]
            fp[a:b], fm[a:b] = future.result()
            done += b - a
            if progress is not None:
                progress(done)
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    return fp, fm


def _map_dask(client, loss, names, shapes, flat, args, index, plus, minus, bounds, progress,
              fp, fm) -> tuple:
    from distributed import as_completed

    shared = client.scatter([_portable(loss), flat, args], broadcast=True, hash=False)
    futures = [client.submit(evaluate_chunk, shared[0], names, shapes, shared[1], shared[2],
                             index[a:b], plus[a:b], minus[a:b], pure=False)
               for a, b in bounds]
    try:
        if progress is not None:
            where = {f.key: (a, b) for f, (a, b) in zip(futures, bounds)}
            done = 0
            for future in as_completed(futures):
                a, b = where[future.key]
                done += b - a
                progress(done)
        results = client.gather(futures)
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        client.cancel(shared)
    for (a, b), (p, m) in zip(bounds, results):
        fp[a:b], fm[a:b] = p, m
    return fp, fm


# --- a local Dask cluster ------------------------------------------------------------------

def _restore_environ(saved: Mapping[str, str]) -> None:
    for key in [k for k in os.environ if k not in saved]:
        del os.environ[key]
    for key, value in saved.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


def worker_environ() -> dict:
    """The allocator variables as this process sees them (run it on workers to check)."""
    return {key: os.environ.get(key) for key in WORKER_ENVIRON}


def local_cluster(n_workers: Optional[int] = None, **cluster_kwargs: Any) -> tuple:
    """Start a local Dask cluster for centered differences: ``(cluster, client)``.

    ``n_workers`` single-threaded worker processes (default: ``os.cpu_count()``), no
    dashboard, and glibc's allocator set for many short loss calls in the workers
    (``WORKER_ENVIRON``: ``MALLOC_TRIM_THRESHOLD_`` lifted from Dask's 65536 to 1 GiB and
    ``MALLOC_MMAP_THRESHOLD_`` to 32 MiB; see the module docstring for the measurements).
    This process's environment is left as it was (the nanny writes its pre-spawn variables
    into ``os.environ`` while it starts workers; they are put back).

    Close both when done, client first::

        cluster, client = local_cluster(2)
        try:
            report = crosscheck.check(loss, grad, params, X, y, executor=client)
        finally:
            client.close()
            cluster.close()

    Args:
        n_workers: worker processes.
        **cluster_kwargs: passed to ``distributed.LocalCluster`` (e.g. ``memory_limit``).

    Returns:
        ``(cluster, client)``.

    Raises:
        ImportError: ``distributed`` is not installed (``pip install 'crosscheck[dask]'``).
        ValueError: ``n_workers`` is not a positive integer.

    Warns:
        RuntimeWarning: a worker does not see ``WORKER_ENVIRON`` (the cluster works, with
        the allocator settings it got).
    """
    if n_workers is None:
        n_workers = os.cpu_count() or 1
    if isinstance(n_workers, bool) or not isinstance(n_workers, (int, np.integer)) \
            or n_workers < 1:
        raise ValueError(f"`n_workers` must be a positive integer, got {n_workers!r}.")
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ImportError("a Dask cluster needs `distributed`: `pip install "
                          "'crosscheck[dask]'` (dask[distributed] and cloudpickle).") from exc
    options = {"n_workers": int(n_workers), "threads_per_worker": 1, "processes": True,
               "dashboard_address": None, **cluster_kwargs}
    # The nanny reads the config key, but a variable already in this process's environment
    # wins over it (a previous cluster leaves 65536 there: the nanny writes its pre-spawn
    # variables into os.environ before spawning). Set both; restore the environment after.
    saved = os.environ.copy()
    os.environ.update(WORKER_ENVIRON)
    try:
        with dask.config.set({f"{PRE_SPAWN_KEY}.{k}": v for k, v in WORKER_ENVIRON.items()}):
            cluster = LocalCluster(**options)
    finally:
        _restore_environ(saved)
    try:
        client = Client(cluster)
    except BaseException:
        cluster.close()
        raise
    seen = client.run(worker_environ)
    wrong = {w: v for w, v in seen.items() if v != WORKER_ENVIRON}
    if wrong:
        got = next(iter(wrong.values()))
        warnings.warn(
            f"Dask workers {sorted(wrong)} run with {got}, not {WORKER_ENVIRON}: the config "
            f"key `{PRE_SPAWN_KEY}` did not reach them; losses may run slower there.",
            RuntimeWarning, stacklevel=2)
    return cluster, client


__all__ = ["ensure_by_value", "evaluate_chunk", "local_cluster", "map_chunks", "worker_environ"]
