"""The oracle protocol: the built-in references implement it, and a fourth one registered from
outside the package takes part in a check like any other."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import crosscheck
from crosscheck import oracles
from crosscheck.oracles import Oracle, OracleResult, Refines, Request


def test_the_builtin_oracles_implement_the_protocol():
    for name in ("fd", "jax", "torch"):
        assert isinstance(oracles.get(name), Oracle), name
    assert isinstance(oracles.get("fd"), Refines)
    assert not isinstance(oracles.get("jax"), Refines)
    assert oracles.AUTODIFF == ("jax", "torch") and oracles.PRIORITY == ("jax", "torch", "fd")


def test_results_are_frozen():
    result = OracleResult("x", grads={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.seconds = 1.0   # type: ignore[misc]


class Analytic:
    """A toy exact reference: the gradient of ``Σ (W x)²`` written out, from outside the package."""

    NAME = "analytic"
    REQUIRES = None
    KIND = "autodiff"
    RANK = -1            # more precise than anything: it decides

    def __init__(self):
        self.calls = []

    def version(self) -> str:
        return "analytic 1.0"

    def run(self, problem, request=Request()):
        self.calls.append(request)
        W = problem.blocks.views["W"]
        X = problem.args[0]
        grads = {"W": 2 * (W @ X) @ X.T}
        return OracleResult(self.NAME, grads=grads, forward=float(np.sum((W @ X) ** 2)),
                            covered={"W": np.ones(W.shape, bool)})

    def explain(self, exc, problem) -> str:
        return f"analytic: {exc}"


@pytest.fixture
def analytic():
    oracle = Analytic()
    oracles.register(oracle)
    yield oracle
    oracles.unregister("analytic")


def _model():
    rng = np.random.default_rng(4)
    return {"W": rng.standard_normal((2, 3))}, rng.standard_normal((3, 5))


def loss(p, X):
    return np.sum(np.dot(p["W"], X) ** 2)


def test_a_fourth_oracle_registered_from_outside_decides_and_explains(analytic):
    params, X = _model()
    assert oracles.priority()[0] == "analytic" and "analytic" in oracles.autodiff()
    good = crosscheck.check(loss, lambda p, X: {"W": 2 * (p["W"] @ X) @ X.T}, params, X,
                            oracles=("fd", "analytic"))
    assert good.ok and good.references == ["fd", "analytic"]
    assert sorted(good.blocks["W"].agree) == ["analytic", "fd"]
    assert good.oracles["analytic"].version == "analytic 1.0" and good.oracles["analytic"].parity
    bad = crosscheck.check(loss, lambda p, X: {"W": 3 * (p["W"] @ X) @ X.T}, params, X,
                           oracles=("fd", "analytic"))
    assert bad.flagged == ["W"]
    assert bad.blocks["W"].diagnosis.reference == "analytic"
    assert bad.blocks["W"].diagnosis.factor == pytest.approx(1.5)
    assert all(isinstance(r, Request) for r in analytic.calls)


def test_registering_something_that_is_not_an_oracle_is_refused(analytic):
    with pytest.raises(ValueError, match=r"does not implement crosscheck's oracle protocol"):
        oracles.register(object())
    with pytest.raises(ValueError, match=r"an oracle named 'analytic' is already registered"):
        oracles.register(Analytic())


def test_an_unknown_oracle_name_lists_the_registered_ones(analytic):
    params, X = _model()
    with pytest.raises(crosscheck.CheckError, match=r"unknown oracle\(s\) \['autograd'\]; choose "
                                                    r"from fd, jax, torch, analytic\."):
        crosscheck.check(loss, lambda p, X: {"W": p["W"]}, params, X, oracles=("fd", "autograd"))
