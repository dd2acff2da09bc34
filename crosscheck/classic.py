"""The course assignment's gradient checks, kept for comparison and teaching.

These functions reproduce, number for number, the scalar checks of the classic
deep-learning course notebook ("Gradient Checking"): a 1-D check of
``J(theta) = theta * x`` and an N-D check that unrolls every parameter block into
one column, nudges one element at a time by ``+/-epsilon`` and compares the
central-difference estimate with the hand-written gradient through a single
relative difference ``||grad - approx|| / (||grad|| + ||approx||)``.

They are the baseline the rest of crosscheck is measured against, not the tool to
use. What is wrong with them:

* **One fixed step.** ``epsilon = 1e-7`` is the same for every parameter and every
  scale. Rounding in the cost (about ``1e-16 * |J| / epsilon`` per element) then
  leaves a *correct* float64 network at a difference of 1.19e-7 -- above the
  1e-7 threshold that some copies of the notebook use to declare success -- and
  that figure is rounding noise: the BLAS's summation order in ``np.dot`` moves
  it between 1.18856e-7 and 1.18909e-7 from one machine to the next.
* **One number for the whole model.** The difference is a single norm over all
  blocks: it never says *which* block is wrong, and a bug in a small block (a
  bias) is diluted by the large, correct ones.
* **Quadratic bookkeeping.** For each of the ``n`` elements it copies the whole
  vector and rebuilds the parameter dict, twice: ``2n`` forward passes and
  ``O(n**2)`` copying. Fine for the notebook's 47 parameters, hopeless beyond.

Unlike the notebook's, these work for any block names and shapes, accept gradients
keyed ``dW1`` or ``W1``, never mutate the caller's arrays, print only when asked and
raise :class:`~crosscheck._errors.CheckError` naming the block at fault.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from crosscheck._errors import CheckError

__all__ = ["gradient_check", "gradient_check_n", "dictionary_to_vector", "vector_to_dictionary", "gradients_to_vector"]

_GOOD = "Your backward propagation works perfectly fine! difference = "
_BAD = "There is a mistake in the backward propagation! difference = "
_GRAD_KEY = re.compile(r"^(d?)([A-Za-z_]+?)(\d+)$")


def _check_epsilon(epsilon: Any) -> None:
    ok = isinstance(epsilon, (int, float, np.floating)) and not isinstance(epsilon, bool)
    if not (ok and math.isfinite(epsilon) and epsilon > 0):
        raise CheckError(f"epsilon must be a positive finite number, got {epsilon!r}; pass e.g. epsilon=1e-7.")


def _relative_difference(grad: Any, gradapprox: Any) -> float:
    numerator = np.linalg.norm(grad - gradapprox)
    denominator = np.linalg.norm(grad) + np.linalg.norm(gradapprox)
    if denominator == 0:
        raise CheckError("Both the gradient and its finite-difference estimate are zero, so the relative "
                         "difference is 0/0; check at a point where the gradient is not zero.")
    return float(numerator / denominator)


def gradient_check(forward: Callable, backward: Callable, x: Any, theta: Any, epsilon: float = 1e-7, *,
                   verbose: bool = False) -> float:
    """The notebook's 1-D check of ``backward(x, theta)`` against ``forward(x, theta)``.

    Args:
        forward: ``forward(x, theta) -> J``, the cost.
        backward: ``backward(x, theta) -> dJ/dtheta``.
        x: the input, passed through unchanged.
        theta: the single scalar parameter.
        epsilon: the central-difference step.
        verbose: print the notebook's verdict (threshold 1e-7).

    Returns:
        ``|grad - gradapprox| / (|grad| + |gradapprox|)``.

    Raises:
        CheckError: theta or the gradient is not a scalar, a cost is not finite, or both are zero.

    Example:
        >>> gradient_check(lambda x, t: np.dot(t, x), lambda x, t: x, 2, 4)
        2.919335883291695e-10
    """
    _check_epsilon(epsilon)
    if np.size(theta) != 1:
        raise CheckError(f"gradient_check takes one scalar theta, got shape {np.shape(theta)}; "
                         "use gradient_check_n for a dict of parameter blocks.")
    J_plus = forward(x, theta + epsilon)
    J_minus = forward(x, theta - epsilon)
    if not (np.all(np.isfinite(J_plus)) and np.all(np.isfinite(J_minus))):
        raise CheckError(f"forward returned a non-finite cost ({J_plus}, {J_minus}) at theta +/- epsilon; check forward.")
    gradapprox = (J_plus - J_minus) / (2 * epsilon)
    grad = backward(x, theta)
    if np.size(grad) != 1:
        raise CheckError(f"backward returned {np.size(grad)} values for a scalar theta; it must return dJ/dtheta.")
    difference = _relative_difference(grad, gradapprox)
    if verbose:
        print((_GOOD if difference < 1e-7 else _BAD) + str(difference))
    return difference


def dictionary_to_vector(parameters: Mapping[str, Any]) -> tuple[np.ndarray, list[str]]:
    """Unroll a dict of parameter blocks into one float64 ``(n, 1)`` column.

    Blocks are taken in the dict's order and flattened in C order; the caller's
    arrays are copied, never viewed. Any names and shapes (the notebook's
    version knows only ``W1, b1, ..., b3``).

    Args:
        parameters: ``{name: array}``, any names, any shapes.

    Returns:
        ``(theta, keys)``: the column and, per element, its block name.

    Raises:
        CheckError: the dict is empty or a block is not real-valued.

    Example:
        >>> theta, keys = dictionary_to_vector({"W": np.eye(2), "c": np.array([7.0])})
        >>> theta.ravel().tolist(), keys
        ([1.0, 0.0, 0.0, 1.0, 7.0], ['W', 'W', 'W', 'W', 'c'])
    """
    if not isinstance(parameters, Mapping) or not parameters:
        raise CheckError("parameters must be a non-empty dict of arrays, e.g. {'W1': W1, 'b1': b1}.")
    columns, keys = [], []
    for name, block in parameters.items():
        arr = np.asarray(block)
        if arr.dtype.kind not in "biuf":
            raise CheckError(f"Parameter block {name!r} has dtype {arr.dtype}; pass a real-valued numpy array.")
        columns.append(arr.astype(np.float64).reshape(-1, 1))
        keys += [name] * arr.size
    return np.concatenate(columns, axis=0), keys


def _shapes(like: Any) -> list[tuple[str, tuple[int, ...]]]:
    if isinstance(like, Mapping):
        return [(name, tuple(v) if isinstance(v, tuple) else np.shape(v)) for name, v in like.items()]
    if isinstance(like, (list, tuple)) and all(isinstance(s, (tuple, list)) for s in like):
        # Seed 002's ``shape_caches``: shapes of W1, b1, W2, b2, ... in that order.
        return [(f"{'Wb'[j % 2]}{j // 2 + 1}", tuple(s)) for j, s in enumerate(like)]
    raise CheckError(f"like must be a dict of arrays or shapes (e.g. {{'W1': (5, 4)}}) or a list of "
                     f"W1, b1, W2, ... shapes; got {type(like).__name__}.")


def vector_to_dictionary(theta: Any, like: Any) -> dict[str, np.ndarray]:
    """Roll a column back into named blocks: the inverse of :func:`dictionary_to_vector`.

    Args:
        theta: ``(n, 1)`` or ``(n,)`` values.
        like: ``{name: array or shape tuple}`` giving names and shapes in order
            (the parameter dict itself will do), or seed 002's ``shape_caches``,
            the list of shapes of ``W1, b1, W2, b2, ...``.

    Returns:
        ``{name: float64 array of that shape}``, each a fresh copy.

    Raises:
        CheckError: ``like`` is not understood or the sizes do not add up.

    Example:
        >>> vector_to_dictionary(np.arange(3.0).reshape(3, 1), {"W": (1, 2), "b": (1, 1)})["W"]
        array([[0., 1.]])
    """
    shapes = _shapes(like)
    flat = np.asarray(theta, dtype=np.float64).reshape(-1)
    need = sum(math.prod(shape) for _, shape in shapes)
    if flat.size != need:
        layout = ", ".join(f"{name} {shape}" for name, shape in shapes)
        raise CheckError(f"theta has {flat.size} elements but the blocks {layout} need {need}; pass a matching like.")
    ends = np.cumsum([0] + [math.prod(shape) for _, shape in shapes])
    return {name: flat[ends[j] : ends[j + 1]].reshape(shape).copy() for j, (name, shape) in enumerate(shapes)}


def _default_names(gradients: Mapping[str, Any]) -> list[str]:
    found = {}
    for key in gradients:
        m = _GRAD_KEY.match(key) if isinstance(key, str) else None
        if m and m.group(2) not in ("Z", "A"):
            found.setdefault(bool(m.group(1)), []).append((int(m.group(3)), "Wb".find(m.group(2)) % 3, key))
    prefixed = True in found  # dW1-style keys win; W1-style keys only if there are none
    picked = found.get(prefixed)
    if not picked:
        raise CheckError(f"No parameter gradients (dW1, db1, ...) among the keys {sorted(gradients)}; "
                         "pass names=[...] with the parameter names in order.")
    return [key[1:] if prefixed else key for *_, key in sorted(picked)]


def _lookup(gradients: Mapping[str, Any], name: str) -> np.ndarray:
    for key in ("d" + name, name):
        if key in gradients:
            arr = np.asarray(gradients[key])
            if arr.dtype.kind not in "biuf":
                raise CheckError(f"Gradient block {key!r} has dtype {arr.dtype}; pass a real-valued numpy array.")
            return arr
    raise CheckError(f"The gradient of block {name!r} is missing: gradients has neither 'd{name}' nor "
                     f"{name!r}; add it, keyed 'd{name}' or {name!r}.")


def gradients_to_vector(gradients: Mapping[str, Any], names: Sequence[str] | None = None) -> np.ndarray:
    """Unroll gradient blocks into one float64 ``(n, 1)`` column.

    Args:
        gradients: ``{"dW1": ..., "db1": ..., "dZ1": ...}`` or ``{"W1": ...}``.
        names: parameter names in order; each is looked up as ``"d" + name``
            first, then ``name``. If None, the ``dW1``-like keys are used (the
            ``W1``-like keys if there are none) in the notebook's order
            ``W1, b1, W2, b2, ...``; ``dZ*`` and ``dA*`` are ignored.

    Returns:
        The concatenated column.

    Raises:
        CheckError: a named block is missing or none can be found.

    Example:
        >>> g = {"db1": np.array([[3.0]]), "dZ1": np.ones(4), "dW1": np.array([[1.0, 2.0]])}
        >>> gradients_to_vector(g).ravel().tolist()
        [1.0, 2.0, 3.0]
    """
    if not isinstance(gradients, Mapping):
        raise CheckError(f"gradients must be a dict of arrays keyed 'dW1' or 'W1', got {type(gradients).__name__}.")
    names = _default_names(gradients) if names is None else list(names)
    blocks = [_lookup(gradients, name).astype(np.float64).reshape(-1, 1) for name in names]
    return np.concatenate(blocks, axis=0) if blocks else np.zeros((0, 1))


def _cost(out: Any, where: str) -> float:
    cost = out[0] if isinstance(out, tuple) and len(out) == 2 else out
    if np.size(cost) != 1:
        raise CheckError(f"forward returned {np.size(cost)} values {where}; it must return the scalar cost "
                         "or a (cost, cache) pair.")
    cost = float(np.asarray(cost).reshape(()))
    if not math.isfinite(cost):
        raise CheckError(f"forward returned a non-finite cost ({cost}) {where}; fix the cost or use a smaller epsilon.")
    return cost


def gradient_check_n(forward: Callable, parameters: Mapping[str, Any], gradients: Mapping[str, Any], X: Any,
                     Y: Any, epsilon: float = 1e-7, *, verbose: bool = False) -> float:
    """The notebook's N-D check: one relative difference for the whole model.

    Element by element, as the notebook does: copy the unrolled vector, nudge
    element ``i`` by ``+epsilon`` (then ``-epsilon``), rebuild the dict and
    evaluate ``forward``; ``gradapprox[i] = (J_plus - J_minus) / (2 * epsilon)``.

    Args:
        forward: ``forward(X, Y, parameters)`` returning the cost or ``(cost, cache)``.
        parameters: ``{name: array}``, any names and shapes; never modified.
        gradients: the hand-written gradients keyed ``dW1`` or ``W1`` (extra keys such as
            ``dZ1``, ``dA2`` are ignored); flattened in C order, only sizes are checked.
        X, Y: passed to ``forward`` unchanged.
        epsilon: the central-difference step.
        verbose: print the notebook's verdict (threshold 2e-7).

    Returns:
        ``||grad - gradapprox||_2 / (||grad||_2 + ||gradapprox||_2)``.

    Raises:
        CheckError: a gradient block is missing or has the wrong number of elements,
            ``forward`` returns a non-scalar or non-finite cost, or both gradients are zero.
    """
    _check_epsilon(epsilon)
    parameters_values, keys = dictionary_to_vector(parameters)
    like = {name: np.shape(block) for name, block in parameters.items()}
    for name, shape in like.items():
        got = _lookup(gradients, name).size
        if got != math.prod(shape):
            raise CheckError(f"The gradient of block {name!r} has {got} elements but the parameter has "
                             f"{math.prod(shape)} (shape {shape}); return a gradient of the parameter's shape.")
    grad = gradients_to_vector(gradients, names=list(like))
    num_parameters = parameters_values.shape[0]
    J_plus, J_minus, gradapprox = (np.zeros((num_parameters, 1)) for _ in range(3))
    start = {}
    for i in range(num_parameters):
        where = f"with element {i - start.setdefault(keys[i], i)} of block {keys[i]!r} moved by"
        thetaplus = np.copy(parameters_values)
        thetaplus[i][0] = thetaplus[i][0] + epsilon
        J_plus[i] = _cost(forward(X, Y, vector_to_dictionary(thetaplus, like)), f"{where} +{epsilon}")
        thetaminus = np.copy(parameters_values)
        thetaminus[i][0] = thetaminus[i][0] - epsilon
        J_minus[i] = _cost(forward(X, Y, vector_to_dictionary(thetaminus, like)), f"{where} -{epsilon}")
        gradapprox[i] = (J_plus[i] - J_minus[i]) / (2 * epsilon)
    difference = _relative_difference(grad, gradapprox)
    if verbose:
        print((_BAD if difference > 2e-7 else _GOOD) + str(difference))
    return difference
