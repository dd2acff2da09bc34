"""Seed 002's L-layer network in plain numpy, verbatim, called through its module.

The same model as ``deep_net``, as the seed wrote it: ``relu``/``sigmoid`` with
``np.maximum``/``np.exp``, ``forward_propagate(parameters, X)`` looping over
``len(parameters) // 2`` layers with ``@``, ``compute_cost(AL, Y)`` with ``-np.nanmean``,
and ``Y = [1, 1, 0]`` of shape ``(3,)`` (integer) from ``gradient_check_n_test_case()``
(``np.random.seed(2)``). The seed defines the wrong backward under the same name as the
right one (cell 11 redefines ``backward_propagate``); here it is
``backward_propagate_buggy``, its body unchanged: the hidden layers' ``dW`` lacks
``/ dZ.shape[1]``, so W1 and W2 come out m = 3 times too large.

The cases' loss reaches the model *through a module attribute*, the way a training script
that did ``import model`` calls ``model.forward_propagate(...)``: ``model`` below is this
module object itself (``sys.modules[__name__]``, the very module that holds these
functions, whichever name it was loaded under), and ``loss`` looks ``forward_propagate`` and
``compute_cost`` up on it at call time. Under the jax and torch oracles crosscheck's
rebinding sees a user module there and reads its attributes through a translating view; the
module itself is never modified.
"""

import sys

import numpy as np

from crosscheck import Case


# sigmoid激活函数
def sigmoid(Z):
    return 1 / (1 + np.exp(-Z))


# ReLU激活函数
def relu(Z):
    return np.maximum(0, Z)


# 计算正向传播 ReLU->ReLU->...->Sigmoid
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


# 计算损失函数
def compute_cost(AL, Y):
    logprobs = Y * np.log(AL) + (1 - Y) * np.log(1 - AL)
    cost = -np.nanmean(logprobs)
    return cost


# 计算反向传播 Sigmoid->ReLU->...->ReLU
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


# 计算错误的反向传播 (seed 002, cell 11: the notebook names it `backward_propagate` too)
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


# ----------------------------------------------------------------------------- the cases
model = sys.modules[__name__]   # this module, reached as an object: `model.forward_propagate`


def loss(p, X, Y):
    """The seed's cost of the seed's forward, both looked up on the module at call time."""
    return model.compute_cost(model.forward_propagate(p, X)[0], Y)


def _grad(backward):
    def grad(p, X, Y):
        AL, caches = model.forward_propagate(p, X)
        return backward(p, Y, caches)
    return grad


X, Y, parameters = gradient_check_n_test_case()

correct = Case("correct", loss, _grad(backward_propagate),
               {k: v.copy() for k, v in parameters.items()}, (X, Y))
buggy = Case("buggy", loss, _grad(backward_propagate_buggy),
             {k: v.copy() for k, v in parameters.items()}, (X, Y))

cases = [correct, buggy]

EXPECTED = {
    "correct": {"flagged": [], "kinds": {}},
    "buggy": {
        "flagged": ["W1", "W2"],
        "kinds": {"W1": ("scale", 3.0), "W2": ("scale", 3.0)},
    },
}
