"""What localisation says when it cannot tap what ``grad`` returned, in ``locate="auto"``."""

import numpy as np
import pytest

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


REASSIGNED = ("`s` is assigned 2 time(s) in `loss` (line(s) 15, 16), not once by a plain "
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


# -- a model written as a class: its methods are followed, explicit taps work too


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


@pytest.mark.parametrize("oracles", [("fd", "torch"), ("fd", "jax"), ("fd",)])
def test_a_forward_called_as_a_method_is_tapped_automatically(oracles):
    """``net.loss`` calls ``self.forward``: the method is found and tapped in a copy of the
    object under a subclass; the user's object and class stay as they were."""
    if "jax" in oracles:
        pytest.importorskip("jax")
    net = TanhNet(tapped=False)
    net.state = np.arange(3.0)
    report = crosscheck.check(net.loss, net.grad, NET_P, NET_X, NET_Y, oracles=oracles)
    assert report.flagged == ["W1"] and report.entry_points == ("dZ1",)
    entry = next(q for q in report.intermediates if q.key == "dZ1")
    assert entry.source.text == "dZ1 = dA1 * (1 - A1 ** 2) * 2"
    assert {q.key: q.verdict for q in report.intermediates if q.kind == "intermediate"} == \
        {"dZ2": "right", "dA1": "right", "dZ1": "wrong"}
    assert type(net) is TanhNet and set(vars(net)) == {"tapped", "state"}
    assert np.array_equal(net.state, np.arange(3.0))


def test_explicit_taps_in_a_method_localise():
    net = TanhNet(tapped=True)
    report = crosscheck.check(net.loss, net.grad, NET_P, NET_X, NET_Y, oracles=("fd", "torch"))
    assert report.flagged == ["W1"] and report.entry_points == ("dZ1",)
    entry = next(q for q in report.intermediates if q.key == "dZ1")
    assert entry.source.text == "dZ1 = dA1 * (1 - A1 ** 2) * 2"
    assert entry.source.function == "TanhNet.grad"


def _forward_tapped_by_hand(p, X):
    Z1 = crosscheck.tap("Z1", p["W1"] @ X)      # a plain assignment, tapped by hand
    A1 = np.tanh(Z1)
    return p["W2"] @ A1, Z1, A1


def _loss_twice(p, X, Y):
    """Calls the forward twice per evaluation: its automatic taps would meet each name twice."""
    Z2 = _forward_tapped_by_hand(p, X)[0]
    again = _forward_tapped_by_hand(p, X)[0]
    return 0.25 * np.mean((Z2 - Y) ** 2) + 0.25 * np.mean((again - Y) ** 2)


def _grad_net(p, X, Y):
    Z2, Z1, A1 = _forward_tapped_by_hand(p, X)
    m = X.shape[1]
    dZ2 = Z2 - Y
    dA1 = p["W2"].T @ dZ2
    dZ1 = dA1 * (1 - A1 ** 2)
    return {"dW1": dZ1 @ X.T / m, "dW2": dZ2 @ A1.T / m, "dZ1": dZ1, "dA1": dA1}


def test_a_name_tapped_by_hand_on_a_plain_assignment_is_not_tapped_twice():
    def loss(p, X, Y):
        return 0.5 * np.mean((_forward_tapped_by_hand(p, X)[0] - Y) ** 2)
    report = crosscheck.check(loss, _grad_net, NET_P, NET_X, NET_Y, oracles=("fd", "torch"))
    assert report.flagged == [] and report.entry_points == () and report.convention == 5.0
    assert {q.key for q in report.intermediates if q.kind == "intermediate"} == {"dZ1", "dA1"}


def test_a_forward_run_twice_per_loss_is_not_located_and_says_why():
    report = crosscheck.check(_loss_twice, _grad_net, NET_P, NET_X, NET_Y,
                              oracles=("fd", "torch"))
    assert report.flagged == [] and report.localisation is None
    assert [n for n in report.notes if n.startswith("could not locate: `tap(")] == [
        "could not locate: `tap('Z1', ...)` ran twice in one evaluation of the loss; a tap's "
        "name must be unique per forward pass. In a loop, compute the name: "
        "`tap(f\"Z1{l}\", ...)`."]


GLOBAL_NET = TanhNet(tapped=False)


def _loss_through_a_global_object(p, X, Y):
    return 0.5 * np.mean((GLOBAL_NET.forward(p, X)[2] - Y) ** 2)


def test_a_method_of_another_object_is_not_followed_and_the_note_says_so():
    report = crosscheck.check(_loss_through_a_global_object, GLOBAL_NET.grad, NET_P, NET_X,
                              NET_Y, oracles=("fd", "torch"), locate=True)
    assert report.flagged == ["W1"] and report.entry_points == ()
    assert report.notes == [
        "could not locate: `grad` returned `dZ1`, `dA1`, `dZ2` besides the parameters' "
        "gradients, but no function the loss reaches (through globals, closures and the "
        "methods of a bound-method loss's own object) assigns `Z1`, `A1`, `Z2`: add "
        "`crosscheck.tap(\"Z1\", Z1)` in the forward."]
