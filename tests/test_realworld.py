"""Real backward passes from public repositories, checked three ways (``tests/realworld/``).

Each ``rw_*.py`` vendors a hand-written gradient verbatim (repository, path and commit in its
docstring) with a harness (``make``) and an independent port of the forward in plain torch
(``truth``). The ground truth -- which blocks are really wrong -- comes from comparing the
hand-written gradient with that port, never from crosscheck. Then crosscheck must flag
exactly those blocks, and both autodiff references must run on at least 90% of the cases;
the cases where one sits out are listed, with the reason, in docs/numpy-as-written.md.
"""

from __future__ import annotations

import copy
import importlib.util
import inspect
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import crosscheck

pytest.importorskip("jax")
pytest.importorskip("torch")

HERE = Path(__file__).parent / "realworld"
FILES = sorted(HERE.glob("rw_*.py"))
DOC = Path(__file__).parent.parent / "docs" / "numpy-as-written.md"


def _load(path: Path):
    name = f"crosscheck_realworld_{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    with warnings.catch_warnings():  # vendored docstrings with invalid escapes ("\m")
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        spec.loader.exec_module(module)
    return module


def _hand(module, made) -> dict:
    """The hand-written gradient at the case's point, called as the user would."""
    if module.KIND == "check":
        grads = made["grad"](copy.deepcopy(made["params"]), *copy.deepcopy(made["args"]))
        grads = grads[1] if isinstance(grads, tuple) else grads
        return {k: np.asarray(v) for k, v in grads.items() if k in made["params"]}
    inputs = {k: copy.deepcopy(v) for k, v in made["inputs"].items() if k != "wrt"}
    out, cache = made["forward"](**inputs)
    grads = made["backward"](made["dout"].copy(), cache)
    if isinstance(grads, dict):
        return {k: np.asarray(v) for k, v in grads.items()}
    grads = grads if isinstance(grads, (tuple, list)) else (grads,)
    order = [n for n in inspect.signature(made["forward"]).parameters
             if isinstance(made["inputs"].get(n), np.ndarray) and made["inputs"][n].dtype.kind == "f"]
    return dict(zip(order, map(np.asarray, grads)))


def _run(module, made):
    if module.KIND == "check":
        return crosscheck.check(made["loss"], made["grad"], made["params"], *made["args"],
                                case=module.__name__)
    return crosscheck.check_layer(made["forward"], made["backward"], dout=made["dout"],
                                  **made["inputs"])


def _same(a, b) -> bool:
    """Bitwise equality of the caller's data: arrays, containers and objects' attributes."""
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and \
            a.tobytes() == b.tobytes()
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if hasattr(a, "__dict__") and not callable(a) and not isinstance(a, type):
        return _same(vars(a), vars(b))
    return True


@pytest.fixture(scope="module")
def results():
    out = {}
    for path in FILES:
        module = _load(path)
        made = module.make()
        data = {k: made[k] for k in ("params", "args", "inputs", "dout") if k in made}
        before = copy.deepcopy(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the vendored code's own overflows
            report = _run(module, made)
        out[path.stem] = (module, made, report, _same(before, data))
    return out


def test_the_corpus_is_large_enough():
    assert len(FILES) >= 20


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_each_file_names_its_source_and_keeps_a_verbatim_block(path):
    text = path.read_text(encoding="utf-8")
    assert re.search(r"^Repository: [\w.-]+/[\w.-]+", text, re.M), "no Repository line"
    assert re.search(r"^Path: \S+", text, re.M), "no Path line"
    assert re.search(r"^Commit: [0-9a-f]{40}\b", text, re.M), "no 40-hex Commit line"
    assert "# ---- VERBATIM " in text and "# ---- END VERBATIM ----" in text


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_ground_truth_is_what_the_file_says(path):
    """The independent port decides which blocks are wrong; the file's EXPECTED_WRONG says it."""
    module = _load(path)
    made = module.make()
    hand, truth = _hand(module, made), module.truth(made)
    wrong = [name for name in truth
             if not np.allclose(np.reshape(hand[name], np.shape(truth[name])), truth[name],
                                rtol=1e-7, atol=1e-9)]
    assert sorted(wrong) == sorted(module.EXPECTED_WRONG)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_crosscheck_flags_exactly_the_wrong_blocks(results, path):
    module, _, report, untouched = results[path.stem]
    assert sorted(report.flagged) == sorted(module.EXPECTED_WRONG), report
    assert untouched, "the caller's params, args or inputs changed"
    ran = [name for name, oracle in report.oracles.items() if oracle.error is None]
    assert "fd" in ran


def _sit_outs(results) -> dict:
    return {(stem, name): oracle.error
            for stem, (_, _, report, _) in results.items()
            for name, oracle in report.oracles.items()
            if name in ("jax", "torch") and oracle.error is not None}


def test_both_autodiff_references_run_on_at_least_90_percent(results):
    both = [stem for stem, (_, _, report, _) in results.items()
            if all(report.oracles[n].error is None for n in ("jax", "torch"))]
    assert len(both) >= 0.9 * len(results), _sit_outs(results)


def test_every_sit_out_is_listed_in_the_docs(results):
    """docs/numpy-as-written.md names each case where jax or torch sits out, and no other."""
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- realworld-sit-outs:start -->(.*?)<!-- realworld-sit-outs:end -->", text, re.S)
    assert block, "docs/numpy-as-written.md lost its realworld-sit-outs table"
    listed = set(re.findall(r"^\| `(rw_\w+)` \| (jax|torch) \|", block.group(1), re.M))
    assert listed == set(_sit_outs(results)), _sit_outs(results)
