"""Localisation on seed 002's L-layer network, whose forward and backward are loops (issue 14).

``reference/deep_numpy.py`` holds the seed's code verbatim (one of the reference models). Its forward reassigns ``Z``
and ``A`` once per layer and its backward one local ``dZ``, storing only
``grads['dW' + str(l)]`` and ``grads['db' + str(l)]``. What follows, each pinned here:

* without taps nothing can be tapped automatically: the grad keys ``dZ1 … dZ3`` name locals
  the forward never assigns (it reassigns ``Z`` in its loop), and the note names ``Z`` and
  its lines and suggests a computed tap;
* with explicit ``crosscheck.tap(f"Z{l}", Z)`` in a copy of the forward, each ``dZ{l}`` is
  checked against ∂J/∂Z_l, modulo the seeds' convention m = 3 (``dZ = AL - Y`` for a mean
  cost), and the planted bugs are found;
* the backward's lines and inputs come from running it once under a line tracer
  (``crosscheck._backward_lines``): a loop's line is found for every pass, with the loop
  counter's value (``l = 2``), so a bug entering at one quantity is one entry point and
  everything computed from it "follows from" it.

The backward copies below add one line to the seed's each time ``dZ`` is computed,
``grads['dZ' + str(l)] = dZ``, so that the hand-written intermediates are returned.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

from crosscheck import locate, tap
from crosscheck._backward_lines import SourceLine
from reference import deep_numpy as seed

REFERENCES = ("fd",)
relu, sigmoid = seed.relu, seed.sigmoid   # the seed's helpers, as its forward finds them


def forward_tapped(parameters, X):
    L = len(parameters) // 2

    caches = {}

    A = X
    caches['A0'] = A
    for l in range(1, L):
        Z = tap(f"Z{l}", parameters['W' + str(l)] @ A + parameters['b' + str(l)])
        A = relu(Z)
        caches['A' + str(l)] = A

    Z = tap(f"Z{L}", parameters['W' + str(L)] @ A + parameters['b' + str(L)])
    A = sigmoid(Z)
    caches['A' + str(L)] = A

    return A, caches


def tapped_loss(p, X, Y):
    AL, _ = forward_tapped(p, X)
    return seed.compute_cost(AL, Y)


def backward_with_dz(parameters, Y, caches):
    L = len(parameters) // 2

    grads = {}

    dZ = caches['A' + str(L)] - Y # cross-entropy cost对AL的偏导数 * sigmoid的导数
    grads['dZ' + str(L)] = dZ
    grads['dW' + str(L)] = dZ @ caches['A' + str(L - 1)].T / dZ.shape[1]
    grads['db' + str(L)] = np.mean(dZ, axis=1, keepdims=True)

    for l in reversed(range(1, L)):
        dZ =  parameters['W' + str(l + 1)].T @ dZ * (caches['A' + str(l)] > 0) # ReLU的导数
        grads['dZ' + str(l)] = dZ
        grads['dW' + str(l)] = dZ @ caches['A' + str(l - 1)].T / dZ.shape[1]
        grads['db' + str(l)] = np.mean(dZ, axis=1, keepdims=True)

    return grads


def backward_with_dz_seed_bug(parameters, Y, caches):
    """The seed's own planted bug: ``/ dZ.shape[1]`` dropped from the hidden layers' ``dW``."""
    L = len(parameters) // 2

    grads = {}

    dZ = caches['A' + str(L)] - Y # cross-entropy cost对AL的偏导数 * sigmoid的导数
    grads['dZ' + str(L)] = dZ
    grads['dW' + str(L)] = dZ @ caches['A' + str(L - 1)].T / dZ.shape[1]
    grads['db' + str(L)] = np.mean(dZ, axis=1, keepdims=True)

    for l in reversed(range(1, L)):
        dZ =  parameters['W' + str(l + 1)].T @ dZ * (caches['A' + str(l)] > 0) # ReLU的导数
        grads['dZ' + str(l)] = dZ
        grads['dW' + str(l)] = dZ @ caches['A' + str(l - 1)].T
        grads['db' + str(l)] = np.mean(dZ, axis=1, keepdims=True)

    return grads


def backward_with_dz_sigmoid_bug(parameters, Y, caches):
    """The sigmoid's derivative applied again on top of the cross-entropy's ``AL - Y``."""
    L = len(parameters) // 2

    grads = {}

    AL = caches['A' + str(L)]
    dZ = (AL - Y) * AL * (1 - AL)
    grads['dZ' + str(L)] = dZ
    grads['dW' + str(L)] = dZ @ caches['A' + str(L - 1)].T / dZ.shape[1]
    grads['db' + str(L)] = np.mean(dZ, axis=1, keepdims=True)

    for l in reversed(range(1, L)):
        dZ =  parameters['W' + str(l + 1)].T @ dZ * (caches['A' + str(l)] > 0) # ReLU的导数
        grads['dZ' + str(l)] = dZ
        grads['dW' + str(l)] = dZ @ caches['A' + str(l - 1)].T / dZ.shape[1]
        grads['db' + str(l)] = np.mean(dZ, axis=1, keepdims=True)

    return grads


def backward_with_dz_layer1_bug(parameters, Y, caches):
    """One layer's ``dZ`` wrong inside the loop: layer 1's ReLU mask lets every unit through."""
    L = len(parameters) // 2

    grads = {}

    dZ = caches['A' + str(L)] - Y
    grads['dZ' + str(L)] = dZ
    grads['dW' + str(L)] = dZ @ caches['A' + str(L - 1)].T / dZ.shape[1]
    grads['db' + str(L)] = np.mean(dZ, axis=1, keepdims=True)

    for l in reversed(range(1, L)):
        mask = caches['A' + str(l)] > 0 if l > 1 else caches['A' + str(l)] >= 0
        dZ = parameters['W' + str(l + 1)].T @ dZ * mask
        grads['dZ' + str(l)] = dZ
        grads['dW' + str(l)] = dZ @ caches['A' + str(l - 1)].T / dZ.shape[1]
        grads['db' + str(l)] = np.mean(dZ, axis=1, keepdims=True)

    return grads


def _grad(backward):
    return lambda p, X, Y: backward(p, Y, seed.forward_propagate(p, X)[1])


def _locate(loss, backward):
    return locate(loss, _grad(backward), seed.parameters, seed.X, seed.Y, references=REFERENCES)


def _line_of(fn, text):
    """The line number of ``text`` inside ``fn``'s source (exactly one such line)."""
    lines, first = inspect.getsourcelines(fn)
    hits = [first + i for i, line in enumerate(lines) if line.strip() == text]
    assert len(hits) == 1, (text, hits)
    return hits[0]


def test_the_vendored_code_is_the_seeds_verbatim():
    path = Path(__file__).resolve().parents[1].parent / "shared" / "seeds" / "002_89eabcf3850572b7.txt"
    try:
        with open(path, encoding="utf-8") as f:
            text = "\n".join(line.rstrip() for line in f.read().splitlines())
    except OSError:
        pytest.skip(f"seed 002 not available at {path}")
    def source(fn):   # (trailing spaces aside, as in the document's text above)
        return "\n".join(line.rstrip() for line in inspect.getsource(fn).splitlines())
    for fn in (seed.sigmoid, seed.relu, seed.forward_propagate, seed.compute_cost,
               seed.backward_propagate, seed.gradient_check_n_test_case):
        assert source(fn) in text, fn.__name__
    buggy = source(seed.backward_propagate_buggy).replace(
        "def backward_propagate_buggy(", "def backward_propagate(")
    assert buggy in text
    assert buggy != source(seed.backward_propagate)


#: Backward order, as the traced run computes it: each layer's dZ, then its dW and db.
ORDER = ("dZ3", "dW3", "db3", "dZ2", "dW2", "db2", "dZ1", "dW1", "db1")
DZ_LOOP = "dZ =  parameters['W' + str(l + 1)].T @ dZ * (caches['A' + str(l)] > 0) # ReLU的导数"
DW_LOOP = "grads['dW' + str(l)] = dZ @ caches['A' + str(l - 1)].T / dZ.shape[1]"
DB_LOOP = "grads['db' + str(l)] = np.mean(dZ, axis=1, keepdims=True)"


#: Lines 47 and 51 of reference/deep_numpy.py: ``Z = …`` inside the loop over layers, then after it.
NO_TAP = ("not checked, their intermediate has no tap: `dZ3`, `dZ2`, `dZ1`; the forward assigns no "
          "`Z3`, `Z2`, `Z1` but `forward_propagate` reassigns `Z` (lines 47, 51), as a loop does: tap "
          "each value under a name of its own after it is computed, e.g. `crosscheck.tap(f\"Z{l}\", Z)`.")


@pytest.mark.filterwarnings("ignore:In the future `np.str`:FutureWarning")
def test_without_taps_the_note_names_the_reassigned_forward_name_and_its_lines():
    """``dZ3`` names ``Z3``, which the seed's forward never assigns: it reassigns ``Z`` in a loop."""
    found = _locate(seed.loss, backward_with_dz)
    assert (_line_of(seed.forward_propagate, "Z = parameters['W' + str(l)] @ A + parameters['b' + str(l)]"),
            _line_of(seed.forward_propagate, "Z = parameters['W' + str(L)] @ A + parameters['b' + str(L)]")) \
        == (47, 51)
    assert found.notes == (NO_TAP,)
    assert found.convention is None and found.entry_points == ()
    assert tuple(q.key for q in found.quantities) == ("dW3", "db3", "dW2", "db2", "dW1", "db1")
    assert all(q.verdict == "right" for q in found.quantities)
    assert found["dW2"].source.text == DW_LOOP and found["dW2"].source.during == "l = 2"


@pytest.mark.filterwarnings("ignore:In the future `np.str`:FutureWarning")
def test_with_taps_a_correct_backward_has_the_seeds_convention_and_no_entry_point():
    found = _locate(tapped_loss, backward_with_dz)
    assert str(found) == "intermediates are 3 × ∂J/∂Z (m = 3, the batch size: the seeds' convention)"
    assert found.convention == 3.0 and found.batch == 3
    assert tuple(q.key for q in found.quantities) == ORDER
    assert all(q.verdict == "right" for q in found.quantities)
    assert [found[k].factor for k in ("dZ3", "dZ2", "dZ1")] == [3.0, 3.0, 3.0]
    assert found.entry_points == () and found.notes == ()
    assert [found[k].inputs for k in ORDER] == [(), ("dZ3",), ("dZ3",), ("dZ3",), ("dZ2",), ("dZ2",),
                                                ("dZ2",), ("dZ1",), ("dZ1",)]


@pytest.mark.filterwarnings("ignore:In the future `np.str`:FutureWarning")
def test_loop_lines_are_the_lines_that_compute_each_pass_with_the_counter():
    found = _locate(tapped_loss, backward_with_dz)
    dz_line = _line_of(backward_with_dz, DZ_LOOP)
    for key, during in (("dZ2", "l = 2"), ("dZ1", "l = 1")):
        assert found[key].source == SourceLine(__file__, dz_line, DZ_LOOP, "backward_with_dz", during)
    first = _line_of(backward_with_dz, "dZ = caches['A' + str(L)] - Y # cross-entropy cost对AL的偏导数 * sigmoid的导数")
    assert (found["dZ3"].source.line, found["dZ3"].source.during) == (first, "")
    assert found["db1"].source == SourceLine(__file__, _line_of(backward_with_dz, DB_LOOP), DB_LOOP,
                                             "backward_with_dz", "l = 1")


@pytest.mark.filterwarnings("ignore:In the future `np.str`:FutureWarning")
def test_with_taps_the_seeds_bug_is_in_dw2_and_dw1_each_on_its_pass_of_the_loop():
    found = _locate(tapped_loss, backward_with_dz_seed_bug)
    assert found.convention == 3.0
    assert {q.key for q in found.quantities if q.verdict == "wrong"} == {"dW2", "dW1"}
    assert found["dW2"].factor == 3.0 and found["dW1"].factor == 3.0
    assert found.entry_points == ("dW2", "dW1")
    text = "grads['dW' + str(l)] = dZ @ caches['A' + str(l - 1)].T"
    line = _line_of(backward_with_dz_seed_bug, text)
    assert str(found).splitlines()[1:] == [
        f"the error enters at `dW2`, tests/test_taps_l_layer.py:{line} (`backward_with_dz_seed_bug`, l = 2): `{text}`",
        f"the error enters at `dW1`, tests/test_taps_l_layer.py:{line} (`backward_with_dz_seed_bug`, l = 1): `{text}`"]
    assert found["dW2"].inputs == ("dZ2",) and found["dW1"].inputs == ("dZ1",)


@pytest.mark.filterwarnings("ignore:In the future `np.str`:FutureWarning")
def test_the_seeds_own_buggy_backward_points_at_its_dw_line_in_the_vendored_file():
    """The verbatim seed, no intermediates returned: the parameters' lines still come from the run."""
    found = locate(seed.loss, seed._grad(seed.backward_propagate_buggy), seed.parameters, seed.X, seed.Y, references=REFERENCES)
    assert found.entry_points == ("dW2", "dW1")
    text = "grads['dW' + str(l)] = dZ @ caches['A' + str(l - 1)].T"
    assert found["dW1"].source == SourceLine(inspect.getsourcefile(seed),
                                             _line_of(seed.backward_propagate_buggy, text), text,
                                             "backward_propagate_buggy", "l = 1")


@pytest.mark.filterwarnings("ignore:In the future `np.str`:FutureWarning")
def test_a_sigmoid_bug_enters_at_dz3_with_its_line_and_everything_follows_from_it():
    found = _locate(tapped_loss, backward_with_dz_sigmoid_bug)
    assert all(q.verdict == "wrong" for q in found.quantities)
    assert found.convention is None      # no intermediate is a multiple of its reference
    assert tuple(q.key for q in found.quantities) == ORDER
    assert found.entry_points == ("dZ3",)
    text = "dZ = (AL - Y) * AL * (1 - AL)"
    assert found["dZ3"].source == SourceLine(__file__, _line_of(backward_with_dz_sigmoid_bug, text), text,
                                             "backward_with_dz_sigmoid_bug", "")
    assert all(found[k].follows_from == ("dZ3",) for k in ORDER[1:])
    assert str(found).splitlines()[0] == (
        f"the error enters at `dZ3`, tests/test_taps_l_layer.py:{found['dZ3'].source.line} "
        f"(`backward_with_dz_sigmoid_bug`): `{text}`")


@pytest.mark.filterwarnings("ignore:In the future `np.str`:FutureWarning")
def test_a_bug_in_one_hidden_layers_dz_enters_there_on_that_pass():
    found = _locate(tapped_loss, backward_with_dz_layer1_bug)
    assert found.convention == 3.0
    assert found.entry_points == ("dZ1",)
    text = "dZ = parameters['W' + str(l + 1)].T @ dZ * mask"
    assert found["dZ1"].source == SourceLine(__file__, _line_of(backward_with_dz_layer1_bug, text), text,
                                             "backward_with_dz_layer1_bug", "l = 1")
    assert found["dZ1"].inputs == ("dZ2",)
    for key in ORDER[:6]:
        assert found[key].verdict == "right", key
    assert found["dW1"].follows_from == ("dZ1",) and found["db1"].follows_from == ("dZ1",)
    assert str(found).splitlines()[1:] == [
        f"the error enters at `dZ1`, tests/test_taps_l_layer.py:{found['dZ1'].source.line} "
        f"(`backward_with_dz_layer1_bug`, l = 1): `{text}`",
        "`dW1` follows from `dZ1`", "`db1` follows from `dZ1`"]


def test_the_trace_restores_the_tracer_that_was_set():
    """A debugger's or coverage's tracer is back in place after the traced run."""
    import sys

    from crosscheck._backward_lines import traced

    previous = sys.gettrace()

    def tracer(frame, event, arg):
        return None

    sys.settrace(tracer)
    try:
        out, lines = traced(lambda: _grad(backward_with_dz)(seed.parameters, seed.X, seed.Y))
        assert sys.gettrace() is tracer
    finally:
        sys.settrace(previous)
    assert tuple(lines) == ORDER
    assert lines["dW1"][1] == {"dZ1"}


# -- the same through check(): its report carries the loop's lines and the note


def test_check_localises_a_bug_inside_the_loop_with_the_pass_it_entered_at():
    import crosscheck

    report = crosscheck.check(tapped_loss, _grad(backward_with_dz_layer1_bug), seed.parameters,
                              seed.X, seed.Y, oracles=("fd", "torch"))
    assert report.entry_points == ("dZ1",)
    entry = next(q for q in report.intermediates if q.key == "dZ1")
    assert entry.source.during == "l = 1"
    assert entry.source.line == _line_of(backward_with_dz_layer1_bug, entry.source.text)
    assert {q.key for q in report.intermediates if q.follows_from} == {"dW1", "db1"}
    assert set(report.flagged) == {"W1", "b1"}


def test_check_without_taps_says_which_forward_names_a_loop_reassigns():
    import crosscheck

    report = crosscheck.check(seed.loss, _grad(backward_with_dz), seed.parameters, seed.X,
                              seed.Y, oracles=("fd", "torch"))
    assert report.flagged == [] and report.entry_points == ()
    assert NO_TAP in report.notes
