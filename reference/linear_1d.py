"""The seeds' 1-D warm-up: J(theta) = theta * x with x = 2, theta = 4.

``forward_propagation(x, theta)`` returns J and ``backward_propagation(x, theta)``
returns dJ/dtheta = x (the seeds' names).  ``theta`` is a 0-d float64 array.

Planted bug (``buggy``): the derivative is returned as ``2 * x`` -- a stray
power-rule factor (differentiating as if J were quadratic in theta), the same
kind of stray constant as the seeds' ``dW2 * 2``.  The hand gradient is exactly
twice the true one, so the checker should report theta as ("scale", 2.0).
"""

import numpy as np

from crosscheck import Case


def forward_propagation(x, theta):
    """J(theta) = theta * x (array API: works for numpy, jax and torch)."""
    return theta * x


def backward_propagation(x, theta):
    """dJ/dtheta = x."""
    return np.asarray(x, dtype=np.float64) * np.ones_like(np.asarray(theta, dtype=np.float64))


def backward_propagation_buggy(x, theta):
    """BUG: dJ/dtheta returned as 2x."""
    return 2 * np.asarray(x, dtype=np.float64) * np.ones_like(np.asarray(theta, dtype=np.float64))


def loss(params, x):
    return forward_propagation(x, params["theta"])


def grad(params, x):
    return {"theta": backward_propagation(x, params["theta"])}


def grad_buggy(params, x):
    return {"theta": backward_propagation_buggy(x, params["theta"])}


x = np.array(2.0)
theta = np.array(4.0)

correct = Case("correct", loss, grad, {"theta": theta.copy()}, (x,))
buggy = Case("buggy", loss, grad_buggy, {"theta": theta.copy()}, (x,))

cases = [correct, buggy]

EXPECTED = {
    "correct": {"flagged": [], "kinds": {}},
    "buggy": {"flagged": ["theta"], "kinds": {"theta": ("scale", 2.0)}},
}
