"""Centered differences on an executor: thread or process pools, or a Dask cluster.

The in-process loop (``oracles._fd.Engine.centered``) perturbs one element at a time, in
place, on a private float64 buffer. Here the same loop runs on chunks of elements, each
chunk on a worker that holds its own copy of the buffer: :func:`evaluate_chunk` is that loop
as a pure, picklable function, and :func:`map_chunks` splits the elements into chunks,
submits them to any ``concurrent.futures.Executor`` or a ``dask.distributed.Client`` and
puts the results back in order. The arithmetic is the in-process loop's, so the values are
bit for bit the same wherever they are computed (same numpy and BLAS build assumed).

Shipping the loss (``crosscheck._by_value``): a loss must be importable on the workers or
travel by value; :func:`map_chunks` pickles it with cloudpickle for every executor that is not
a thread pool. Local Dask clusters tuned for many short loss calls: ``crosscheck._cluster``.

Neither dask nor cloudpickle is imported until an executor needs it.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from ._by_value import portable

CHUNKS_PER_WORKER = 12      # many small chunks per worker: a slow worker delays little
MIN_CHUNK = 32              # elements per chunk at least: submitting a task costs ~1 ms on Dask


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
        loss = portable(loss)
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

    shared = client.scatter([portable(loss), flat, args], broadcast=True, hash=False)
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


__all__ = ["chunk_bounds", "evaluate_chunk", "is_dask_client", "map_chunks", "worker_count"]
