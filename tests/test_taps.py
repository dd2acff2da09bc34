"""Taps and localisation: where the error enters the seeds' backward, and at which line."""

import inspect
import timeit

import numpy as np
import pytest

import crosscheck
from crosscheck import locate, tap
from reference import seed_numpy as seed
from seed_planted import backward_da1_bug, backward_dz3_bug

SEED_FILE = inspect.getsourcefile(seed)


def _line_of(fn, text):
    """The line number of ``text`` inside ``fn``'s source (exactly one such line)."""
    lines, first = inspect.getsourcelines(fn)
    hits = [first + i for i, line in enumerate(lines) if line.strip() == text]
    assert len(hits) == 1, (text, hits)
    return hits[0]


def _grad(backward):
    return lambda p, X, Y: backward(X, Y, seed.forward_propagation_n(X, Y, p)[1])


def _run(backward, references=("fd", "jax", "torch")):
    return locate(seed.loss, _grad(backward), seed.parameters, seed.X, seed.Y, references=references)


ORDER = ("dZ3", "dW3", "db3", "dA2", "dZ2", "dW2", "db2", "dA1", "dZ1", "dW1", "db1")


# ------------------------------------------------------------------ tap itself
def test_tap_in_a_plain_run_returns_the_very_object():
    a = np.arange(6.0).reshape(2, 3)
    assert tap("A1", a) is a
    assert crosscheck.tap is tap


def test_tap_in_a_plain_run_costs_a_context_variable_lookup():
    a = np.ones((5, 3))
    calls = 200_000
    with_tap = min(timeit.repeat(lambda: tap("A1", a), number=calls, repeat=5)) / calls
    without = min(timeit.repeat(lambda: a, number=calls, repeat=5)) / calls
    assert with_tap - without < 1e-6   # well under a microsecond per tap: nothing next to any forward


def test_a_name_tapped_twice_in_one_pass_is_refused():
    from crosscheck._taps import Session, session

    with session(Session()), pytest.raises(crosscheck.CheckError, match=r"ran twice .* compute the name"):
        tap("A", np.ones(2))
        tap("A", np.ones(2))


# ------------------------------------------------------------------ the seeds' buggy backward
@pytest.mark.parametrize("references", [("fd",), ("fd", "jax", "torch")])
def test_seed_buggy_backward_enters_at_dw2_and_db1(references):
    if "jax" in references:
        pytest.importorskip("jax")
        pytest.importorskip("torch")
    found = _run(seed.backward_propagation_n_buggy, references)
    assert found.convention == 3.0
    assert str(found).splitlines()[0] == \
        "intermediates are 3 × ∂J/∂Z (m = 3, the batch size: the seeds' convention)"
    assert tuple(q.key for q in found.quantities) == ORDER
    assert found.entry_points == ("dW2", "db1")
    for key in ("dZ3", "dA2", "dZ2", "dA1", "dZ1"):
        assert found[key].verdict == "right" and found[key].factor == 3.0 and found[key].kind == "intermediate"
    assert {q.key for q in found.quantities if q.verdict == "wrong"} == {"dW2", "db1"}
    assert found["dW2"].factor == 2.0 and found["db1"].factor == 4.0
    assert found["dW2"].source.text == "dW2 = 1. / m * np.dot(dZ2, A1.T) * 2"
    assert found["dW2"].source.line == 114
    assert found["db1"].source.text == "db1 = 4. / m * np.sum(dZ1, axis=1, keepdims=True)"
    assert found["db1"].source.line == 120
    assert found["dW2"].source.file == SEED_FILE
    assert found["dW2"].source.function == "backward_propagation_n_buggy"
    assert found["dW2"].inputs == ("dZ2",) and found["db1"].inputs == ("dZ1",)
    assert all(not q.follows_from for q in found.quantities)
    assert found.references == tuple(r for r in ("jax", "torch", "fd") if r in references)


def test_seed_correct_backward_has_no_entry_point_and_reports_the_convention():
    found = _run(seed.backward_propagation_n, ("fd",))
    assert found.entry_points == ()
    assert all(q.verdict == "right" for q in found.quantities)
    assert found.convention == 3.0
    assert "error enters" not in str(found)


# ------------------------------------------------------------------ planted bugs
def test_a_wrong_dz3_is_the_one_entry_point_and_everything_below_follows():
    found = _run(backward_dz3_bug, ("fd",))
    assert found.entry_points == ("dZ3",)
    dz3 = found["dZ3"]
    assert dz3.verdict == "wrong" and dz3.factor is None
    assert dz3.source.text == "dZ3 = (A3 - Y) * A3 * (1 - A3)"
    assert dz3.source.line == _line_of(backward_dz3_bug, "dZ3 = (A3 - Y) * A3 * (1 - A3)")
    assert dz3.source.function == "backward_dz3_bug"
    for key in ORDER[1:]:
        assert found[key].verdict == "wrong"
        assert found[key].follows_from == ("dZ3",), key
    assert "`dW1` follows from `dZ3`" in str(found)


def test_a_wrong_da1_enters_at_da1_with_the_quantities_above_it_right():
    found = _run(backward_da1_bug, ("fd",))
    assert found.convention == 3.0
    assert found.entry_points == ("dA1",)
    assert found["dA1"].factor == 6.0
    assert found["dA1"].source.text == "dA1 = np.dot(W2.T, dZ2) * 2"
    assert found["dA1"].source.line == _line_of(backward_da1_bug, "dA1 = np.dot(W2.T, dZ2) * 2")
    for key in ("dZ3", "dW3", "db3", "dA2", "dZ2", "dW2", "db2"):
        assert found[key].verdict == "right", key
    for key in ("dZ1", "dW1", "db1"):
        assert found[key].verdict == "wrong" and found[key].follows_from == ("dA1",), key


# ------------------------------------------------------------------ explicit taps in a loop
def forward_loop(params, X):
    A = X
    for l in (1, 2):
        Z = tap(f"Z{l}", params[f"W{l}"] @ A)
        A = np.tanh(Z)
    return np.sum(A ** 2)


def backward_loop(params, X):
    Z1 = params["W1"] @ X
    A1 = np.tanh(Z1)
    Z2 = params["W2"] @ A1
    A2 = np.tanh(Z2)
    dZ2 = 2 * A2 * (1 - A2 ** 2)
    dW2 = dZ2 @ A1.T
    dA1 = params["W2"].T @ dZ2
    dZ1 = dA1 * (1 - A1 ** 2) * 3
    dW1 = dZ1 @ X.T
    return {"dZ2": dZ2, "dW2": dW2, "dA1": dA1, "dZ1": dZ1, "dW1": dW1}


def test_explicit_taps_in_a_loop_localise_and_ambiguous_names_are_named():
    rng = np.random.default_rng(0)
    params = {"W1": rng.standard_normal((4, 3)), "W2": rng.standard_normal((2, 4))}
    X = rng.standard_normal((3, 5))
    found = locate(forward_loop, backward_loop, params, X, references=("fd",))
    assert found.convention == 1.0
    assert tuple(q.key for q in found.quantities) == ("dZ2", "dW2", "dZ1", "dW1")
    assert found.entry_points == ("dZ1",)
    assert found["dZ1"].source.text == "dZ1 = dA1 * (1 - A1 ** 2) * 3"
    assert found["dW1"].follows_from == ("dZ1",)
    assert found.notes == ("not checked, their intermediate has no tap: `dA1`; tap it in the forward, "
                           "e.g. `crosscheck.tap(\"A1\", A1)`.",)


def forward_reassigning(params, X):
    A = np.tanh(params["W1"] @ X)
    A = np.tanh(params["W2"] @ A)
    return np.sum(A)


def test_a_name_assigned_several_times_is_skipped_with_a_note():
    from crosscheck._taps import tappable

    single, notes = tappable(forward_reassigning, ["A", "B"])
    first = _line_of(forward_reassigning, 'A = np.tanh(params["W1"] @ X)')
    assert single == {}
    assert notes == [f"`A` is assigned 2 time(s) in `forward_reassigning` (line(s) {first}, {first + 1}), "
                     "not once by a plain assignment: add `crosscheck.tap(\"A\", A)` after the assignment meant."]


def test_bad_references_are_refused():
    with pytest.raises(ValueError, match=r"`references` must be a non-empty subset of \('fd', 'jax', 'torch'\)"):
        _run(seed.backward_propagation_n, ("finite",))


def test_a_backward_reached_as_a_module_attribute_is_found():
    """``lambda …: seed.backward(…)`` as users write it: the entry points keep their lines."""
    def grad(p, X, Y):
        return seed.backward_propagation_n_buggy(X, Y, seed.forward_propagation_n(X, Y, p)[1])

    found = locate(seed.loss, grad, seed.parameters, seed.X, seed.Y, references=("fd",))
    assert found.entry_points == ("dW2", "db1")
    assert found["dW2"].source.text == "dW2 = 1. / m * np.dot(dZ2, A1.T) * 2"
    assert found["dW2"].source.line == _line_of(seed.backward_propagation_n_buggy,
                                                "dW2 = 1. / m * np.dot(dZ2, A1.T) * 2")


# -- locate's door: every bad input a CheckError naming it, never a raw traceback


def _ok_grad(p, X, Y):
    return seed.backward_propagation_n(X, Y, seed.forward_propagation_n(X, Y, p)[1])


@pytest.mark.parametrize("params, match", [
    ([1, 2], r"^`params` must be a non-empty dict of named parameter blocks, got list"),
    (None, r"^`params` must be a non-empty dict of named parameter blocks, got NoneType"),
    ({"a": "abc"}, r"block `a`"),
])
def test_locate_refuses_bad_params_by_name(params, match):
    with pytest.raises(crosscheck.CheckError, match=match):
        locate(seed.loss, _ok_grad, params, seed.X, seed.Y)


@pytest.mark.parametrize("references", [None, ("tf",), (), 3])
def test_locate_refuses_bad_references_by_name(references):
    with pytest.raises(crosscheck.CheckError,
                       match=r"^`references` must be a non-empty subset of \('fd', 'jax', 'torch'\)"):
        locate(seed.loss, _ok_grad, seed.parameters, seed.X, seed.Y, references=references)


def test_locate_names_a_grad_that_raises_or_returns_no_dict():
    def raising(p, X, Y):
        return 1 / 0
    with pytest.raises(crosscheck.CheckError, match=r"^`grad` raised ZeroDivisionError: division by zero"):
        locate(seed.loss, raising, seed.parameters, seed.X, seed.Y, references=("fd",))
    with pytest.raises(crosscheck.CheckError, match=r"^`grad` returned list; `locate` needs a dict"):
        locate(seed.loss, lambda p, X, Y: [1], seed.parameters, seed.X, seed.Y, references=("fd",))


def test_locate_reads_a_grad_returning_loss_and_gradients_as_check_does():
    def both(p, X, Y):
        return seed.loss(p, X, Y), _ok_grad(p, X, Y)
    found = locate(seed.loss, both, seed.parameters, seed.X, seed.Y, references=("fd",))
    assert found.entry_points == () and found.convention == 3.0
