"""A local Dask cluster tuned for many short loss calls.

Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``
(``distributed.nanny.pre-spawn-environ``), so glibc hands the heap back to the system after
nearly every call and asks for it again on the next: the 64-128-64-1 MLP's loss (16,641
parameters) ran 1.9 times slower at batch 128. Setting that variable also switches off glibc's
adaptive mmap threshold, so arrays of 128 KiB or more are then mmapped and unmapped on every
call: at batch 512, lifting ``MALLOC_MMAP_THRESHOLD_`` to 32 MiB as well made the loss 3.3
times faster. ``scripts/bench.py`` measures this.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Mapping, Optional

import numpy as np

# glibc's allocator in Dask workers: never hand the heap back after a loss call, and serve
# arrays up to 32 MiB from the heap rather than a fresh mmap each time.
WORKER_ENVIRON = {
    "MALLOC_TRIM_THRESHOLD_": str(2 ** 30),
    "MALLOC_MMAP_THRESHOLD_": str(2 ** 25),
}
TRIM_THRESHOLD = WORKER_ENVIRON["MALLOC_TRIM_THRESHOLD_"]
PRE_SPAWN_KEY = "distributed.nanny.pre-spawn-environ"


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
        ImportError: ``distributed`` is not installed (``pip install 'crosscheck-grad[dask]'``).
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
                          "'crosscheck-grad[dask]'` (dask[distributed] and cloudpickle).") from exc
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


__all__ = ["WORKER_ENVIRON", "local_cluster", "worker_environ"]
