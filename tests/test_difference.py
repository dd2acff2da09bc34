"""``crosscheck._difference``: the seeds' relative difference and the element-wise comparison."""

from __future__ import annotations

import numpy as np
import pytest

from crosscheck._difference import compare, relative_difference


def test_relative_difference_is_the_seeds_formula():
    a = np.array([3.0, 4.0])
    b = np.array([0.0, 0.0])
    assert relative_difference(a, b) == 1.0
    assert relative_difference(a, 2 * a) == pytest.approx(1 / 3)
    assert relative_difference(a, -a) == 1.0
    assert relative_difference(a, a) == 0.0
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    y = x + 1e-6
    expected = np.linalg.norm(x - y) / (np.linalg.norm(x) + np.linalg.norm(y))
    assert relative_difference(x, y) == pytest.approx(expected, rel=1e-12)


def test_relative_difference_zero_over_zero_is_agreement():
    assert relative_difference(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_difference(np.zeros((0,)), np.zeros((0,))) == 0.0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_relative_difference_non_finite_is_none(bad):
    assert relative_difference(np.array([1.0, bad]), np.array([1.0, 2.0])) is None
    assert relative_difference(np.array([1.0, 2.0]), np.array([bad, 2.0])) is None


def test_relative_difference_is_symmetric_and_scale_invariant():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(7), rng.standard_normal(7)
    assert relative_difference(a, b) == pytest.approx(relative_difference(b, a), rel=1e-15)
    assert relative_difference(1e8 * a, 1e8 * b) == pytest.approx(relative_difference(a, b),
                                                                  rel=1e-12)


def test_compare_agreement_within_tolerance():
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    c = compare(a, a + 1e-10, np.full(a.shape, 1e-9))
    assert c.agree
    assert c.compared == 4
    assert c.max_ratio == pytest.approx(0.1, rel=1e-4)
    assert c.max_abs == pytest.approx(1e-10, rel=1e-4)
    assert not c.mismatch.any()


def test_compare_locates_the_worst_element():
    a = np.zeros((3, 4))
    b = a.copy()
    b[2, 1] = 0.5
    b[0, 3] = -0.1
    c = compare(a, b, np.full(a.shape, 1e-3))
    assert not c.agree
    assert c.worst == (2, 1)
    assert c.max_abs == 0.5
    assert int(c.mismatch.sum()) == 2
    assert c.ratio[2, 1] == pytest.approx(500.0)
    assert c.difference == pytest.approx(relative_difference(a, b))


def test_compare_mask_excludes_elements():
    a = np.array([1.0, 2.0, 3.0])
    b = np.array([1.0, 9.0, 3.0])
    mask = np.array([True, False, True])
    c = compare(a, b, np.full(3, 1e-9), mask)
    assert c.agree and c.compared == 2
    assert c.difference == 0.0
    assert np.isnan(c.ratio[1])
    assert compare(a, b, np.full(3, 1e-9), np.zeros(3, bool)).difference is None


def test_compare_zero_tolerance():
    a = np.array([1.0, 2.0])
    c = compare(a, a.copy(), np.zeros(2))
    assert c.agree and c.max_ratio == 0.0
    c = compare(np.zeros(2), np.array([0.0, 1e-300]), np.zeros(2))
    assert not c.agree and c.max_ratio == float("inf")


def test_compare_non_finite_is_a_mismatch():
    a = np.array([1.0, np.nan, 3.0])
    b = np.array([1.0, 2.0, 3.0])
    c = compare(a, b, np.full(3, 1.0))
    assert not c.agree
    assert c.mismatch.tolist() == [False, True, False]
    assert c.difference is None
    assert c.max_ratio == float("inf")


def test_compare_scalar_blocks():
    c = compare(np.array(2.0), np.array(1.0), np.array(1e-9))
    assert c.worst == ()
    assert c.difference == pytest.approx(1 / 3)
