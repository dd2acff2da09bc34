"""The seeds' 3-layer network in plain numpy, verbatim (seeds 000 / 003).

The same model as ``seed_net``, but not rewritten against the array API: the code is the
course's own, copied unchanged -- ``np.dot``, ``np.multiply``, ``np.int64(A2 > 0)``,
``np.log``, ``np.sum`` -- with ``relu`` and ``sigmoid`` imported from a separate module,
``gc_utils`` (``reference/gc_utils.py``), as the notebook does. crosscheck runs the forward
under ``jax.grad`` and ``torch.autograd`` by rebinding ``np`` inside these functions and the
helpers they reach (``crosscheck._rebind``), without modifying this module or ``gc_utils``.

Sources: ``forward_propagation_n`` and ``backward_propagation_n`` are seed 000's cells 7 and
11 (the copy without comments); ``backward_propagation_n_buggy`` is seed 000's backward with
seed 003's two planted-bug lines (``dW2 = ... * 2`` and ``db1 = 4. / m * ...``), and
``gradient_check_n_test_case`` is seed 003's (``np.random.seed(1)``, ``Y = [1, 1, 0]`` of
shape ``(3,)``, integer). Only the buggy backward is renamed (the notebook redefines
``backward_propagation_n``).

How ``gc_utils`` is found: when this file is loaded by path (the command line,
``crosscheck check reference/seed_numpy.py:buggy``, puts the file's folder on ``sys.path``)
or run as a script, ``__package__`` is empty and the seed's own line
``from gc_utils import ...`` runs, finding ``reference/gc_utils.py`` beside it. When it is
imported as part of the package (``import reference.seed_numpy``), ``__package__`` is
``"reference"`` and the same names come from the sibling module ``reference.gc_utils``. The
choice depends only on how the file was loaded: nothing is added to ``sys.path``, and an
unrelated ``gc_utils`` elsewhere on the path is never picked up by the package import.
"""

import numpy as np

if __package__:
    from .gc_utils import sigmoid, relu, dictionary_to_vector, vector_to_dictionary, gradients_to_vector
else:
    from gc_utils import sigmoid, relu, dictionary_to_vector, vector_to_dictionary, gradients_to_vector

from crosscheck import Case


def gradient_check_n_test_case(): 
    np.random.seed(1)
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


def forward_propagation_n(X, Y, parameters):
    m = X.shape[1]
    W1 = parameters["W1"]
    b1 = parameters["b1"]
    W2 = parameters["W2"]
    b2 = parameters["b2"]
    W3 = parameters["W3"]
    b3 = parameters["b3"]

    # LINEAR -> RELU -> LINEAR -> RELU -> LINEAR -> SIGMOID
    Z1 = np.dot(W1, X) + b1
    A1 = relu(Z1)
    Z2 = np.dot(W2, A1) + b2
    A2 = relu(Z2)
    Z3 = np.dot(W3, A2) + b3
    A3 = sigmoid(Z3)

    logprobs = np.multiply(-np.log(A3), Y) + np.multiply(-np.log(1 - A3), 1 - Y)
    cost = 1. / m * np.sum(logprobs)

    cache = (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)

    return cost, cache


def backward_propagation_n(X, Y, cache):
    m = X.shape[1]
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache

    dZ3 = A3 - Y
    dW3 = 1. / m * np.dot(dZ3, A2.T)
    db3 = 1. / m * np.sum(dZ3, axis=1, keepdims=True)

    dA2 = np.dot(W3.T, dZ3)
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dW2 = 1. / m * np.dot(dZ2, A1.T)
    db2 = 1. / m * np.sum(dZ2, axis=1, keepdims=True)

    dA1 = np.dot(W2.T, dZ2)
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1. / m * np.dot(dZ1, X.T)
    db1 = 1. / m * np.sum(dZ1, axis=1, keepdims=True)

    return {"dZ3": dZ3, "dW3": dW3, "db3": db3,
            "dA2": dA2, "dZ2": dZ2, "dW2": dW2, "db2": db2,
            "dA1": dA1, "dZ1": dZ1, "dW1": dW1, "db1": db1}


def backward_propagation_n_buggy(X, Y, cache):
    m = X.shape[1]
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache

    dZ3 = A3 - Y
    dW3 = 1. / m * np.dot(dZ3, A2.T)
    db3 = 1. / m * np.sum(dZ3, axis=1, keepdims=True)

    dA2 = np.dot(W3.T, dZ3)
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dW2 = 1. / m * np.dot(dZ2, A1.T) * 2
    db2 = 1. / m * np.sum(dZ2, axis=1, keepdims=True)

    dA1 = np.dot(W2.T, dZ2)
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1. / m * np.dot(dZ1, X.T)
    db1 = 4. / m * np.sum(dZ1, axis=1, keepdims=True)

    return {"dZ3": dZ3, "dW3": dW3, "db3": db3,
            "dA2": dA2, "dZ2": dZ2, "dW2": dW2, "db2": db2,
            "dA1": dA1, "dZ1": dZ1, "dW1": dW1, "db1": db1}


# ----------------------------------------------------------------------------- the cases
# The loss is the seed's forward as it is; the gradient is the seed's backward fed with the
# cache of the same forward (run on the numpy arrays crosscheck passes to `grad`).
loss = lambda p, X, Y: forward_propagation_n(X, Y, p)[0]  # noqa: E731
grad = lambda p, X, Y: backward_propagation_n(X, Y, forward_propagation_n(X, Y, p)[1])  # noqa: E731
grad_buggy = lambda p, X, Y: backward_propagation_n_buggy(X, Y, forward_propagation_n(X, Y, p)[1])  # noqa: E731

X, Y, parameters = gradient_check_n_test_case()

correct = Case("correct", loss, grad, {k: v.copy() for k, v in parameters.items()}, (X, Y))
buggy = Case("buggy", loss, grad_buggy, {k: v.copy() for k, v in parameters.items()}, (X, Y))

cases = [correct, buggy]

EXPECTED = {
    "correct": {"flagged": [], "kinds": {}},
    "buggy": {
        "flagged": ["b1", "W2"],
        "kinds": {"b1": ("scale", 4.0), "W2": ("scale", 2.0)},
    },
}
