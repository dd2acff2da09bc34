"""What localisation says when it cannot tap what ``grad`` returned, in ``locate="auto"``."""

import numpy as np

import crosscheck

RNG = np.random.default_rng(0)
X = RNG.standard_normal((4, 3))
Y = np.array([0, 2, 1, 0])
PARAMS = {"W": RNG.standard_normal((3, 3)), "b": RNG.standard_normal(3)}


def loss(p, X, y):
    s = X @ p["W"] + p["b"]
    s = s - s.max(axis=1, keepdims=True)
    P = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
    return -np.mean(np.log(P[np.arange(len(y)), y]))


def grad(p, X, y, extra=("dX", "ds")):
    s = X @ p["W"] + p["b"]
    s = s - s.max(axis=1, keepdims=True)
    P = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
    P[np.arange(len(y)), y] -= 1
    ds = P / len(y)
    out = {"dW": X.T @ ds, "db": ds.sum(0), "dX": ds @ p["W"].T, "ds": ds}
    return {k: v for k, v in out.items() if k in ("dW", "db", *extra)}


REASSIGNED = ("`s` is assigned 2 time(s) in `loss` (line(s) 14, 15), not once by a plain "
              "assignment: add `crosscheck.tap(\"s\", s)` after the assignment meant.")


def test_a_name_the_forward_assigns_twice_gets_a_note_suggesting_a_tap():
    report = crosscheck.check(loss, grad, PARAMS, X, Y, oracles=("fd", "torch"))
    assert report.flagged == [] and report.entry_points == ()
    assert report.notes == [REASSIGNED]


def test_an_inputs_gradient_alone_is_not_an_intermediate_and_says_nothing():
    report = crosscheck.check(loss, lambda *a: grad(*a, extra=("dX",)), PARAMS, X, Y,
                              oracles=("fd", "torch"))
    assert report.notes == [] and report.entry_points == ()


def test_locate_false_says_nothing():
    report = crosscheck.check(loss, grad, PARAMS, X, Y, oracles=("fd", "torch"), locate=False)
    assert report.notes == []


def test_the_line_trace_stops_at_its_budget(monkeypatch):
    """A backward of long Python loops is traced only up to ``trace_lines`` line events; what
    it computes after that is read from the source (here: nothing traced for ``late``)."""
    from crosscheck._backward_lines import traced
    from crosscheck._tolerances import BUDGETS
    monkeypatch.setitem(BUDGETS, "trace_lines", 50)

    def backward():
        early = np.ones(2)
        total = 0.0
        for i in range(200):
            total += i
        late = np.full(2, total)
        return {"dearly": early, "dlate": late}

    out, lines = traced(backward)
    assert set(out) == {"dearly", "dlate"}
    assert set(lines) == {"dearly"}
    assert lines["dearly"][0].text == "early = np.ones(2)"
