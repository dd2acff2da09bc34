"""Centered differences on executors: same bits as the in-process loop, wherever they run."""

from __future__ import annotations

import importlib.util
import os
import sys
import textwrap
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest

from crosscheck._by_value import ensure_by_value, needs_by_value
from crosscheck._cluster import WORKER_ENVIRON, local_cluster
from crosscheck._executors import (CHUNKS_PER_WORKER, MIN_CHUNK, chunk_bounds, evaluate_chunk,
                                   map_chunks, worker_count)
from crosscheck._inputs import prepare_args, prepare_loss, prepare_params
from crosscheck.oracles import Problem
from crosscheck.oracles._fd import FIRST_STEP, Engine, element_scales

from conftest import run_python


def mlp_loss(params, X, y):
    """A ReLU MLP with a squared error; module level, so process pools can pickle it."""
    a = np.maximum(params["W1"] @ X + params["b1"], 0.0)
    a = np.maximum(params["W2"] @ a + params["b2"], 0.0)
    r = params["W3"] @ a + params["b3"] - y
    return 0.5 * np.sum(r * r) / X.shape[1]


def array_loss(params, X, y):
    """The same loss returned as a 0-d array (converted with ``.item()``)."""
    return np.asarray(mlp_loss(params, X, y)).reshape(())


def mlp(sizes=(6, 16, 8, 1), batch=7, seed=0):
    rng = np.random.default_rng(seed)
    params = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]), 1):
        params[f"W{i}"] = rng.standard_normal((b, a)) / np.sqrt(a)
        params[f"b{i}"] = rng.standard_normal((b, 1)) * 0.1
    return params, rng.standard_normal((sizes[0], batch)), rng.standard_normal((1, batch))


def setup(loss=mlp_loss, **kwargs):
    """``(engine, problem, index, plus, minus)``: the in-process loop and its inputs."""
    params, X, y = mlp(**kwargs)
    blocks, args = prepare_params(params), prepare_args((X, y))
    f0 = float(loss(blocks.copy().as_dict(), *args))
    problem = Problem(prepare_loss(loss), blocks, args, f0, 1e-16)
    engine = Engine(problem)
    index = np.arange(blocks.size)
    x0 = blocks.flat[index]
    scale = element_scales(blocks)[index]
    return engine, problem, index, x0 + FIRST_STEP * scale, x0 - FIRST_STEP * scale


def reference(engine):
    """``Engine.centered`` on every element (the loop the executors must reproduce)."""
    fp, fm, _ = engine.centered(np.arange(engine.flat.size), FIRST_STEP)
    return fp, fm


def chunk_args(problem, index, plus, minus):
    b = problem.blocks
    return b.names, b.shapes, b.flat, problem.args, index, plus, minus


def assert_same_bits(got, want):
    for g, w in zip(got, want):
        assert g.dtype == np.float64
        np.testing.assert_array_equal(g.view(np.int64), w.view(np.int64))


# --- evaluate_chunk ------------------------------------------------------------------------

@pytest.mark.parametrize("loss", [mlp_loss, array_loss], ids=["float", "0-d array"])
def test_evaluate_chunk_matches_the_in_process_loop_bit_for_bit(loss):
    engine, problem, index, plus, minus = setup(loss)
    before = problem.blocks.flat.copy()
    got = evaluate_chunk(loss, *chunk_args(problem, index, plus, minus))
    assert_same_bits(got, reference(engine))
    np.testing.assert_array_equal(problem.blocks.flat, before)   # never writes the caller's


def test_evaluate_chunk_matches_a_copy_loop_on_a_subset():
    engine, problem, index, plus, minus = setup()
    pick = np.array([40, 3, 3, 0, problem.blocks.size - 1])
    fp, fm = evaluate_chunk(mlp_loss, *chunk_args(problem, pick, plus[pick], minus[pick]))
    b = problem.blocks
    for k, i in enumerate(pick):
        for value, out in ((plus[i], fp[k]), (minus[i], fm[k])):
            work = b.copy()
            work.flat[i] = value
            assert out == float(mlp_loss(work.as_dict(), *problem.args))


def test_evaluate_chunk_takes_shapes_as_a_sequence():
    engine, problem, index, plus, minus = setup()
    b = problem.blocks
    shapes = [b.shapes[n] for n in b.names]
    got = evaluate_chunk(mlp_loss, b.names, shapes, b.flat, problem.args, index, plus, minus)
    assert_same_bits(got, reference(engine))


def test_evaluate_chunk_refuses_shapes_that_do_not_fit():
    engine, problem, index, plus, minus = setup()
    b = problem.blocks
    with pytest.raises(ValueError, match=r"add up to \d+ elements but `flat` has"):
        evaluate_chunk(mlp_loss, b.names[:-1], b.shapes, b.flat, problem.args, index, plus,
                       minus)


# --- chunking ------------------------------------------------------------------------------

@pytest.mark.parametrize("n,workers", [(1, 2), (31, 2), (100, 2), (16641, 2), (16641, 8),
                                       (1000003, 64)])
def test_chunks_cover_everything_balanced_and_never_empty(n, workers):
    bounds = chunk_bounds(n, workers)
    sizes = np.array([b - a for a, b in bounds])
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(b1[1] == b2[0] for b1, b2 in zip(bounds, bounds[1:]))
    assert sizes.min() >= 1 and sizes.max() - sizes.min() <= 1
    if n >= 2 * MIN_CHUNK:
        assert sizes.min() >= MIN_CHUNK
    if n >= MIN_CHUNK * CHUNKS_PER_WORKER * workers:
        assert len(bounds) == CHUNKS_PER_WORKER * workers     # many chunks per worker


def test_explicit_chunk_size_and_empty_work():
    assert chunk_bounds(10, 2, chunk=3) == [(0, 2), (2, 5), (5, 8), (8, 10)]
    assert chunk_bounds(0, 2) == []


def test_worker_count_reads_the_pool_size():
    with ThreadPoolExecutor(3) as ex:
        assert worker_count(ex) == 3
    assert worker_count(object()) == (os.cpu_count() or 1)


# --- map_chunks on concurrent.futures executors --------------------------------------------

def test_map_chunks_on_a_thread_pool_is_bit_identical_and_reports_progress():
    engine, problem, index, plus, minus = setup()
    seen = []
    with ThreadPoolExecutor(2) as ex:
        got = map_chunks(ex, mlp_loss, *chunk_args(problem, index, plus, minus), chunk=8,
                         progress=seen.append)
    assert_same_bits(got, reference(engine))
    assert len(seen) == len(chunk_bounds(index.size, 2, 8)) > 1
    assert seen == sorted(seen) and seen[-1] == index.size


def test_map_chunks_on_a_process_pool_is_bit_identical():
    import multiprocessing
    engine, problem, index, plus, minus = setup()
    # spawn, not fork: forking a process that has loaded jax (multithreaded) can deadlock
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as ex:
        got = map_chunks(ex, mlp_loss, *chunk_args(problem, index, plus, minus))
    assert_same_bits(got, reference(engine))


def test_map_chunks_keeps_the_order_of_a_shuffled_index():
    engine, problem, index, plus, minus = setup()
    order = np.random.default_rng(1).permutation(index.size)
    with ThreadPoolExecutor(2) as ex:
        fp, fm = map_chunks(ex, mlp_loss, *chunk_args(problem, index[order], plus[order],
                                                       minus[order]), chunk=5)
    want_p, want_m = reference(engine)
    np.testing.assert_array_equal(fp, want_p[order])
    np.testing.assert_array_equal(fm, want_m[order])


def failing_loss(params, X, y):
    raise FloatingPointError("the loss failed on purpose")


def test_a_failing_loss_raises_its_own_error():
    engine, problem, index, plus, minus = setup()
    with ThreadPoolExecutor(2) as ex, pytest.raises(FloatingPointError, match="on purpose"):
        map_chunks(ex, failing_loss, *chunk_args(problem, index, plus, minus))


def test_map_chunks_validates_its_arguments():
    engine, problem, index, plus, minus = setup()
    with pytest.raises(TypeError, match=r"`executor` must be a `concurrent.futures.Executor`"):
        map_chunks(object(), mlp_loss, *chunk_args(problem, index, plus, minus))
    with ThreadPoolExecutor(1) as ex:
        with pytest.raises(ValueError, match=r"one entry per perturbed element; got \d+, 3"):
            map_chunks(ex, mlp_loss, *chunk_args(problem, index, plus[:3], minus))
        with pytest.raises(ValueError, match=r"`chunk` must be a positive number"):
            map_chunks(ex, mlp_loss, *chunk_args(problem, index, plus, minus), chunk=0)
        with pytest.raises(ValueError, match=r"`index` holds positions outside `flat`"):
            map_chunks(ex, mlp_loss, *chunk_args(problem, index + 1, plus, minus))


# --- shipping the loss by value ------------------------------------------------------------

SCRIPT_LOSS = textwrap.dedent("""
    import numpy as np
    OFFSET = 0.25          # a module global: travels with the function when by value

    def loss(params, X, y):
        a = np.maximum(params["W1"] @ X + params["b1"], 0.0)
        a = np.maximum(params["W2"] @ a + params["b2"], 0.0)
        r = params["W3"] @ a + params["b3"] - y
        return 0.5 * np.sum(r * r) / X.shape[1] + OFFSET
""")


@pytest.fixture
def path_loaded(tmp_path):
    """A loss in a file loaded by path under a private name (not importable by name)."""
    path = tmp_path / "user_script_loss.py"
    path.write_text(SCRIPT_LOSS)
    name = "_crosscheck_tests_by_path_loss"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(name, None)


def test_which_modules_travel_by_value(path_loaded):
    import json

    assert needs_by_value(path_loaded)                   # loaded by path
    assert needs_by_value(sys.modules[__name__])         # local source, not installed
    assert not needs_by_value(np)                        # site-packages
    assert not needs_by_value(json)                      # standard library
    assert not needs_by_value(sys)                       # built in
    assert not needs_by_value(sys.modules["crosscheck._executors"])


def test_ensure_by_value_registers_the_module_of_a_script_loss(path_loaded):
    import functools

    import cloudpickle

    assert ensure_by_value(functools.partial(path_loaded.loss))
    assert path_loaded.__name__ in cloudpickle.list_registry_pickle_by_value()
    assert ensure_by_value(path_loaded.loss)             # idempotent
    assert not ensure_by_value(np.sum)
    cloudpickle.unregister_pickle_by_value(path_loaded)


def test_a_main_module_is_by_value():
    import types

    main = types.ModuleType("__main__")
    assert needs_by_value(main)


def test_importing_executors_imports_no_heavy_backend():
    proc = run_python("import sys, crosscheck._executors; "
                      "print(sorted(m for m in ('dask', 'distributed', 'cloudpickle', 'jax', "
                      "'torch') if m in sys.modules))")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# --- Dask ----------------------------------------------------------------------------------

ENVIRON_SEEN = {}


@pytest.fixture(scope="module")
def dask_client():
    """``local_cluster(2)`` started where a previous cluster left the nanny's 65536 behind."""
    pytest.importorskip("distributed")
    saved = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    os.environ["MALLOC_TRIM_THRESHOLD_"] = "65536"
    before = dict(os.environ)
    try:
        cluster, client = local_cluster(n_workers=2)
        ENVIRON_SEEN["unchanged"] = dict(os.environ) == before
    finally:
        if saved is None:
            os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
        else:
            os.environ["MALLOC_TRIM_THRESHOLD_"] = saved
    yield client
    client.close()
    cluster.close()


def test_local_cluster_leaves_this_process_environment_alone(dask_client):
    assert ENVIRON_SEEN["unchanged"]


def test_local_cluster_lifts_the_trim_threshold_in_every_worker(dask_client):
    seen = dask_client.run(lambda: {k: os.environ.get(k) for k in
                                    ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")})
    assert len(seen) == 2
    assert all(v == WORKER_ENVIRON for v in seen.values())
    assert int(WORKER_ENVIRON["MALLOC_TRIM_THRESHOLD_"]) >= 2 ** 30
    assert sorted(dask_client.nthreads().values()) == [1, 1]
    assert worker_count(dask_client) == 2


def test_map_chunks_on_dask_is_bit_identical_and_reports_progress(dask_client):
    engine, problem, index, plus, minus = setup()
    seen = []
    got = map_chunks(dask_client, mlp_loss, *chunk_args(problem, index, plus, minus),
                     progress=seen.append)
    assert_same_bits(got, reference(engine))
    assert seen == sorted(seen) and seen[-1] == index.size
    assert len(seen) == len(chunk_bounds(index.size, 2))


def test_a_loss_loaded_by_path_reaches_dask_workers_by_value(dask_client, path_loaded):
    engine, problem, index, plus, minus = setup(path_loaded.loss)
    got = map_chunks(dask_client, path_loaded.loss, *chunk_args(problem, index, plus, minus))
    assert_same_bits(got, reference(engine))
    import cloudpickle
    cloudpickle.unregister_pickle_by_value(path_loaded)


def _mlp_grad(params, X, y):
    z1 = params["W1"] @ X + params["b1"]
    a1 = np.maximum(z1, 0.0)
    z2 = params["W2"] @ a1 + params["b2"]
    a2 = np.maximum(z2, 0.0)
    r = (params["W3"] @ a2 + params["b3"] - y) / X.shape[1]
    d2 = (params["W3"].T @ r) * (z2 > 0)
    d1 = (params["W2"].T @ d2) * (z1 > 0)
    return {"W3": r @ a2.T, "b3": r.sum(axis=1, keepdims=True),
            "W2": d2 @ a1.T, "b2": d2.sum(axis=1, keepdims=True),
            "W1": d1 @ X.T, "b1": d1.sum(axis=1, keepdims=True)}


def _buggy_grad(params, X, y):
    return {**_mlp_grad(params, X, y), "b2": 2 * _mlp_grad(params, X, y)["b2"]}


@pytest.mark.parametrize("grad", [_mlp_grad, _buggy_grad], ids=["correct", "buggy"])
def test_check_on_dask_gives_the_in_process_differences_per_block(dask_client, grad):
    import crosscheck
    params, X, y = mlp(sizes=(12, 32, 16, 1), batch=9)
    args = dict(oracles=("fd",), fd="all", taylor=False, progress=False)
    here = crosscheck.check(mlp_loss, grad, params, X, y, **args)
    there = crosscheck.check(mlp_loss, grad, params, X, y, executor=dask_client, **args)
    assert here.flagged == there.flagged == ([] if grad is _mlp_grad else ["b2"])
    for name, block in here.blocks.items():
        assert there.blocks[name].difference["fd"] == block.difference["fd"], name
    assert there.oracles["fd"].evaluations == here.oracles["fd"].evaluations


def test_a_failing_loss_raises_from_dask(dask_client):
    engine, problem, index, plus, minus = setup()
    with pytest.raises(FloatingPointError, match="on purpose"):
        map_chunks(dask_client, failing_loss, *chunk_args(problem, index, plus, minus))


def test_local_cluster_refuses_a_bad_worker_count():
    with pytest.raises(ValueError, match=r"`n_workers` must be a positive integer, got 0"):
        local_cluster(0)


# --- the benchmark script ------------------------------------------------------------------

def test_bench_quick_runs_and_writes_its_table(tmp_path, root):
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    out = tmp_path / "bench.md"
    proc = run_python(f"import runpy, sys; sys.argv = ['bench.py', '--quick', '--no-dask', '--no-cold', "
                      f"'--out', {str(out)!r}]; runpy.run_path('scripts/bench.py', "
                      f"run_name='__main__')", timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = out.read_text()
    assert text.strip() in proc.stdout
    assert "Machine: " in text and "| model | params | method |" in text
    for method in ('check(fd="all")', 'check(fd="auto")', "seeds' copy loop",
                   "torch gradcheck (full)", "torch gradcheck fast_mode", "jax check_grads"):
        assert method in text
    seed_rows = [line for line in text.splitlines() if "check(fd=" in line][:2]
    assert all("| quiet |" in line and "caught (W2, b1)" in line for line in seed_rows)


def test_bench_cold_measures_both_sides_in_fresh_processes(root):
    """scripts/bench_cold.py: the floor and the whole check, each in its own process; the
    check runs all three references (the measurement refuses a check where one sat out)."""
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    sys.path.insert(0, str(root / "scripts"))
    try:
        import bench_cold
        result = {side: bench_cold.run_side(side, ("layer_norm",)) for side in ("floor", "check")}
    finally:
        sys.path.remove(str(root / "scripts"))
    assert set(result["floor"]) == set(result["check"]) == {"layer_norm"}
    rows = bench_cold.table(result)
    assert rows[0] == "| model | floor, cold (s) | whole check, cold (s) | × floor |"
    assert rows[-1].startswith("| **all six** |")
