"""Seed 002's L-layer network (ReLU → … → ReLU → sigmoid), its forward and backward verbatim.

Source: the course document ``/work/shared/seeds/002_89eabcf3850572b7.txt`` (cells 3–7, 9
and 11): ``sigmoid``, ``relu``, ``forward_propagate`` (a loop over the layers, reassigning
``Z`` and ``A``), ``compute_cost`` (``-np.nanmean`` of the log-likelihood, so J is a mean
over the m = 3 examples), ``backward_propagate`` (a loop filling ``grads['dW' + str(l)]``
and ``grads['db' + str(l)]`` from one local ``dZ``) and ``gradient_check_n_test_case``.
The document redefines ``backward_propagate`` with a planted bug (``/ dZ.shape[1]`` dropped
from the hidden layers' ``dW``); that copy is kept as ``backward_propagate_buggy``, its body
unchanged. Trailing spaces are stripped; nothing else is.

Its backward returns parameters' gradients only: ``dZ`` is m × ∂J/∂Z (``dZ = AL - Y`` for a
mean cost; the 1/m enters through ``/ dZ.shape[1]`` and ``np.mean``). Kept out of the
reference set (no ``cases``): ``tests/test_taps_l_layer.py`` uses it to check localisation
on a backward written as a loop.
"""

import numpy as np


def sigmoid(Z):
    return 1 / (1 + np.exp(-Z))


def relu(Z):
    return np.maximum(0, Z)


def forward_propagate(parameters, X):
    L = len(parameters) // 2

    caches = {}

    A = X
    caches['A0'] = A
    for l in range(1, L):
        Z = parameters['W' + str(l)] @ A + parameters['b' + str(l)]
        A = relu(Z)
        caches['A' + str(l)] = A

    Z = parameters['W' + str(L)] @ A + parameters['b' + str(L)]
    A = sigmoid(Z)
    caches['A' + str(L)] = A

    return A, caches


def compute_cost(AL, Y):
    logprobs = Y * np.log(AL) + (1 - Y) * np.log(1 - AL)
    cost = -np.nanmean(logprobs)
    return cost


def backward_propagate(parameters, Y, caches):
    L = len(parameters) // 2

    grads = {}

    dZ = caches['A' + str(L)] - Y # cross-entropy cost对AL的偏导数 * sigmoid的导数
    grads['dW' + str(L)] = dZ @ caches['A' + str(L - 1)].T / dZ.shape[1]
    grads['db' + str(L)] = np.mean(dZ, axis=1, keepdims=True)

    for l in reversed(range(1, L)):
        dZ =  parameters['W' + str(l + 1)].T @ dZ * (caches['A' + str(l)] > 0) # ReLU的导数
        grads['dW' + str(l)] = dZ @ caches['A' + str(l - 1)].T / dZ.shape[1]
        grads['db' + str(l)] = np.mean(dZ, axis=1, keepdims=True)

    return grads


def backward_propagate_buggy(parameters, Y, caches):
    L = len(parameters) // 2

    grads = {}

    dZ = caches['A' + str(L)] - Y # cross-entropy cost对AL的偏导数 * sigmoid的导数
    grads['dW' + str(L)] = dZ @ caches['A' + str(L - 1)].T / dZ.shape[1]
    grads['db' + str(L)] = np.mean(dZ, axis=1, keepdims=True)

    for l in reversed(range(1, L)):
        dZ =  parameters['W' + str(l + 1)].T @ dZ * (caches['A' + str(l)] > 0) # ReLU的导数
        grads['dW' + str(l)] = dZ @ caches['A' + str(l - 1)].T
        grads['db' + str(l)] = np.mean(dZ, axis=1, keepdims=True)

    return grads


def gradient_check_n_test_case():
    np.random.seed(2)
    x = np.random.randn(4,3)
    y = np.array([1, 1, 0])
    W1 = np.random.randn(5,4)
    b1 = np.random.randn(5,1)
    W2 = np.random.randn(3,5)
    b2 = np.random.randn(3,1)
    W3 = np.random.randn(1,3)
    b3 = np.random.randn(1,1)
    parameters = {"W1": W1,
                  "b1": b1,
                  "W2": W2,
                  "b2": b2,
                  "W3": W3,
                  "b3": b3}
    return x, y, parameters


X, Y, parameters = gradient_check_n_test_case()


def loss(p, X, Y):
    """The notebook's check in one call: the cost of the forward at ``p``."""
    AL, _ = forward_propagate(p, X)
    return compute_cost(AL, Y)


def grad(p, X, Y):
    return backward_propagate(p, Y, forward_propagate(p, X)[1])


def grad_buggy(p, X, Y):
    return backward_propagate_buggy(p, Y, forward_propagate(p, X)[1])
