"""``crosscheck._verdict.judge``: who is wrong, per block, from the pairwise comparisons."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from crosscheck._difference import compare
from crosscheck._verdict import judge

TRUE = np.array([1.0, -2.0, 0.5])
TOL = 1e-9


def _judge(hand, refs, deciding=None, nonfinite=0):
    hand = np.asarray(hand, float)
    tol = np.full(hand.shape, TOL)
    vs = {n: compare(hand, np.asarray(r, float), tol) for n, r in refs.items()}
    between = {(p, q): compare(np.asarray(refs[p], float), np.asarray(refs[q], float), 2 * tol)
               for p, q in itertools.combinations(refs, 2)}
    deciding = list(refs) if deciding is None else deciding
    order = [n for n in ("jax", "torch", "fd") if n in deciding]
    return judge(vs, between, order, nonfinite)


def test_all_agree_is_ok():
    j = _judge(TRUE, {"fd": TRUE, "jax": TRUE, "torch": TRUE})
    assert j.verdict == "ok"
    assert j.agree == ["jax", "torch", "fd"] and j.disagree == []
    assert j.consensus == "jax"
    assert "agrees with jax, torch and fd" in j.reason


def test_hand_against_agreeing_references_is_wrong():
    j = _judge(2 * TRUE, {"fd": TRUE, "jax": TRUE, "torch": TRUE})
    assert j.verdict == "wrong"
    assert j.consensus == "jax"
    assert set(j.disagree) == {"jax", "torch", "fd"}
    assert "3 of 3 references agree" in j.reason


def test_autodiff_disagreeing_with_each_other_is_inconclusive():
    j = _judge(TRUE, {"fd": TRUE, "jax": TRUE, "torch": TRUE + [0, 0.5, 0]})
    assert j.verdict == "inconclusive"
    assert "jax and torch disagree with each other" in j.reason


def test_only_fd_disagreeing_is_ok_with_the_odd_one_named():
    j = _judge(TRUE, {"fd": TRUE + [1e-3, 0, 0], "jax": TRUE, "torch": TRUE})
    assert j.verdict == "ok"
    assert j.odd["oracle"] == "fd" and j.odd["elements"] == 1
    assert j.disagree == ["fd"]


def test_hand_within_one_autodiff_but_not_the_other_is_inconclusive():
    refs = {"jax": TRUE, "torch": TRUE + [2e-9, 0, 0]}   # agree with each other (2 tol)
    j = _judge(TRUE - [0.5e-9, 0, 0], refs)
    assert j.verdict == "inconclusive"
    assert "edge of the tolerance" in j.reason


def test_fd_siding_with_hand_against_one_autodiff_is_inconclusive():
    j = _judge(TRUE, {"fd": TRUE, "jax": 3 * TRUE})
    assert j.verdict == "inconclusive"
    assert "one reference against the other" in j.reason


def test_fd_siding_with_hand_against_two_agreeing_autodiffs_is_wrong():
    j = _judge(TRUE, {"fd": TRUE, "jax": 3 * TRUE, "torch": 3 * TRUE})
    assert j.verdict == "wrong"
    assert j.consensus == "jax"
    assert j.odd["oracle"] == "fd"


def test_fd_only():
    assert _judge(TRUE, {"fd": TRUE}).verdict == "ok"
    j = _judge(2 * TRUE, {"fd": TRUE})
    assert j.verdict == "wrong" and j.consensus == "fd"
    assert "the only reference" in j.reason


def test_no_deciding_reference_is_inconclusive():
    j = _judge(TRUE, {"fd": TRUE}, deciding=[])
    assert j.verdict == "inconclusive"
    assert "no reference could decide" in j.reason


def test_non_deciding_reference_is_ignored():
    # torch failed forward parity: only jax and fd decide, and they agree with the hand
    j = _judge(TRUE, {"fd": TRUE, "jax": TRUE, "torch": 1.5 * TRUE}, deciding=["fd", "jax"])
    assert j.verdict == "ok"
    assert "torch" not in j.agree + j.disagree


def test_nonfinite_hand_is_wrong():
    hand = TRUE.copy()
    hand[1] = np.nan
    j = _judge(hand, {"fd": TRUE, "jax": TRUE, "torch": TRUE}, nonfinite=1)
    assert j.verdict == "wrong"
    assert j.consensus == "jax"
    assert "NaN/Inf at 1 element(s)" in j.reason


@pytest.mark.parametrize("refs", [{"jax": TRUE}, {"torch": TRUE}, {"jax": TRUE, "fd": TRUE}])
def test_single_autodiff_decides(refs):
    assert _judge(TRUE, refs).verdict == "ok"
    j = _judge(-TRUE, refs)
    assert j.verdict == "wrong"
    assert j.consensus in ("jax", "torch")
