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


# -- a model written as a class: methods are not followed, explicit taps are


class TanhNet:
    """A model as a class, ``self.forward`` called from ``loss`` and ``grad``; ``tapped``
    taps its intermediates by hand."""

    def __init__(self, tapped: bool):
        self.tapped = tapped

    def forward(self, p, X):
        mark = crosscheck.tap if self.tapped else (lambda name, value: value)
        Z1 = mark("Z1", p["W1"] @ X)
        A1 = mark("A1", np.tanh(Z1))
        Z2 = mark("Z2", p["W2"] @ A1)
        return Z1, A1, Z2

    def loss(self, p, X, Y):
        Z2 = self.forward(p, X)[2]
        return 0.5 * np.mean((Z2 - Y) ** 2)

    def grad(self, p, X, Y):
        Z1, A1, Z2 = self.forward(p, X)
        m = X.shape[1]
        dZ2 = Z2 - Y
        dW2 = dZ2 @ A1.T / m
        dA1 = p["W2"].T @ dZ2
        dZ1 = dA1 * (1 - A1 ** 2) * 2
        dW1 = dZ1 @ X.T / m
        return {"dW1": dW1, "dW2": dW2, "dZ1": dZ1, "dA1": dA1, "dZ2": dZ2}


NET_X = RNG.standard_normal((3, 5))
NET_Y = RNG.standard_normal((1, 5))
NET_P = {"W1": RNG.standard_normal((4, 3)), "W2": RNG.standard_normal((1, 4))}


def test_a_forward_called_as_a_method_is_not_followed_and_the_note_says_so():
    net = TanhNet(tapped=False)
    report = crosscheck.check(net.loss, net.grad, NET_P, NET_X, NET_Y, oracles=("fd", "torch"),
                              locate=True)
    assert report.flagged == ["W1"] and report.entry_points == ()
    assert report.notes == [
        "could not locate: `grad` returned `dZ1`, `dA1`, `dZ2` besides the parameters' "
        "gradients, but no function the loss reaches through globals and closures assigns "
        "`Z1`, `A1`, `Z2` (a method called on an object, `self.forward(...)`, is not "
        "followed): add `crosscheck.tap(\"Z1\", Z1)` in the forward."]


def test_explicit_taps_in_a_method_localise():
    net = TanhNet(tapped=True)
    report = crosscheck.check(net.loss, net.grad, NET_P, NET_X, NET_Y, oracles=("fd", "torch"))
    assert report.flagged == ["W1"] and report.entry_points == ("dZ1",)
    entry = next(q for q in report.intermediates if q.key == "dZ1")
    assert entry.source.text == "dZ1 = dA1 * (1 - A1 ** 2) * 2"
    assert entry.source.function == "TanhNet.grad"
