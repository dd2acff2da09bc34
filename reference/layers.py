"""Layers in the cs231n convention, plain numpy: ``forward -> (out, cache)``, ``backward(dout, cache)``.

Three layers as a course assignment writes them -- affine, ReLU, batch normalisation in
training mode -- each with its correct backward and a backward with one planted bug in
``dx`` alone (the other gradients are right), for :func:`crosscheck.check_layer`:

* ``affine_backward_buggy``: ``dx`` divided by the batch size N, a ``1/N`` carried over from
  the loss (scale 1/N);
* ``relu_backward_buggy``: ``dx`` is the ReLU mask without the upstream gradient
  (``np.where(x > 0, 1, 0)`` instead of ``np.where(x > 0, dout, 0)``);
* ``batchnorm_backward_buggy``: ``dx = dx_hat / std``, treating the batch mean and variance
  as constants (the classic batch-norm slip: they depend on ``x`` too).

Each is a :class:`crosscheck.Case` made by ``Case.layer`` (the same check as
:func:`crosscheck.check_layer`), so the command line, suites and ``scripts/compare.py`` run
them as they run every other case::

    crosscheck check reference/layers.py:cases            # all six (or :layer_cases)
    crosscheck check reference/layers.py:affine/buggy     # one, by its name in `cases`

``EXPECTED`` says which inputs each backward gets wrong; :func:`layer_inputs` gives each
case's forward, backward and inputs for calling ``check_layer`` directly, and
``case.check(**options)`` checks one from Python.

Written for the rebinding: every numpy call goes through ``np``. Two places differ from
cs231n's text for that reason: ``affine_forward`` uses ``np.dot(x.reshape(...), w)`` rather
than the method ``x.reshape(...).dot(w)`` (under torch ``Tensor.dot`` is 1-D only: methods of
the arrays are the framework's, not numpy's), and ``batchnorm_forward`` keeps the running
averages (``bn_param["running_mean"]``/``["running_var"]``) it writes into ``bn_param``, as
cs231n does -- check_layer gives each forward call its own copy of ``bn_param``, so the
user's dict never receives a jax tracer or a torch tensor.
"""

from __future__ import annotations

import numpy as np

from crosscheck import Case


# ----------------------------------------------------------------------------- affine
def affine_forward(x, w, b):
    """out = x reshaped to (N, D) times w, plus b; x has shape (N, d_1, ..., d_k)."""
    N = x.shape[0]
    out = np.dot(x.reshape(N, -1), w) + b
    cache = (x, w, b)
    return out, cache


def affine_backward(dout, cache):
    x, w, b = cache
    N = x.shape[0]
    dx = dout.dot(w.T).reshape(x.shape)
    dw = x.reshape(N, -1).T.dot(dout)
    db = np.sum(dout, axis=0)
    return dx, dw, db


def affine_backward_buggy(dout, cache):
    x, w, b = cache
    N = x.shape[0]
    dx = dout.dot(w.T).reshape(x.shape) / N  # BUG: a stray 1/N
    dw = x.reshape(N, -1).T.dot(dout)
    db = np.sum(dout, axis=0)
    return dx, dw, db


# ----------------------------------------------------------------------------- ReLU
def relu_forward(x):
    out = np.maximum(0, x)
    cache = x
    return out, cache


def relu_backward(dout, cache):
    x = cache
    dx = np.where(x > 0, dout, 0)
    return dx


def relu_backward_buggy(dout, cache):
    x = cache
    dx = np.where(x > 0, 1, 0)  # BUG: the mask alone, dout forgotten
    return dx


# ----------------------------------------------------------------------------- batch norm
def batchnorm_forward(x, gamma, beta, bn_param):
    """Batch normalisation of x (N, D); ``bn_param``: mode ("train"/"test"), eps, momentum."""
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)

    N, D = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(D, dtype=x.dtype))

    if mode == "train":
        sample_mean = np.mean(x, axis=0)
        sample_var = np.var(x, axis=0)
        std = np.sqrt(sample_var + eps)
        x_hat = (x - sample_mean) / std
        out = gamma * x_hat + beta
        cache = (x, x_hat, std, gamma)
        running_mean = momentum * running_mean + (1 - momentum) * sample_mean
        running_var = momentum * running_var + (1 - momentum) * sample_var
    elif mode == "test":
        x_hat = (x - running_mean) / np.sqrt(running_var + eps)
        out = gamma * x_hat + beta
        cache = (x, x_hat, np.sqrt(running_var + eps), gamma)
    else:
        raise ValueError('Invalid forward batchnorm mode "%s"' % mode)

    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache


def batchnorm_backward(dout, cache):
    x, x_hat, std, gamma = cache
    N = x.shape[0]
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * x_hat, axis=0)
    dx_hat = dout * gamma
    dx = (N * dx_hat - np.sum(dx_hat, axis=0)
          - x_hat * np.sum(dx_hat * x_hat, axis=0)) / (N * std)
    return dx, dgamma, dbeta


def batchnorm_backward_buggy(dout, cache):
    x, x_hat, std, gamma = cache
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * x_hat, axis=0)
    dx_hat = dout * gamma
    dx = dx_hat / std  # BUG: the batch mean and variance depend on x too
    return dx, dgamma, dbeta


# ----------------------------------------------------------------------------- the cases
class LayerCase(Case):
    """A layer's :class:`crosscheck.Case` that also checks itself from Python.

    ``check()`` is ``crosscheck.check`` on the Case's own fields, the report named
    ``layers/<name>`` as the command line names it.
    """

    def check(self, **options):
        import crosscheck

        options = {**self.options, "case": f"layers/{self.name}", **options}
        return crosscheck.check(self.loss, self.grad, self.params, *self.args, **options)


def layer_inputs() -> list:
    """``(name, forward, backward, inputs)`` for every layer with its correct and its buggy
    backward, on fresh seeded inputs (``check_layer(forward, backward, **inputs)``)."""
    rng = np.random.default_rng(231)
    x_affine = rng.standard_normal((4, 3, 2))
    w = rng.standard_normal((6, 5))
    b = rng.standard_normal(5)
    x_relu = rng.standard_normal((4, 5))
    x_bn = 2.0 * rng.standard_normal((8, 3)) + 1.0
    gamma = rng.standard_normal(3)
    beta = rng.standard_normal(3)
    affine = {"x": x_affine, "w": w, "b": b}
    bn = {"x": x_bn, "gamma": gamma, "beta": beta, "bn_param": {"mode": "train", "eps": 1e-5}}
    return [
        ("affine/correct", affine_forward, affine_backward, dict(affine)),
        ("affine/buggy", affine_forward, affine_backward_buggy, dict(affine)),
        ("relu/correct", relu_forward, relu_backward, {"x": x_relu}),
        ("relu/buggy", relu_forward, relu_backward_buggy, {"x": x_relu}),
        ("batchnorm/correct", batchnorm_forward, batchnorm_backward, dict(bn)),
        ("batchnorm/buggy", batchnorm_forward, batchnorm_backward_buggy,
         {**bn, "bn_param": {"mode": "train", "eps": 1e-5}}),
    ]


def layer_cases() -> list:
    """Every layer with its correct and its buggy backward, as Cases on fresh seeded inputs."""
    return [LayerCase.layer(name, forward, backward, **inputs)
            for name, forward, backward, inputs in layer_inputs()]


cases = layer_cases()

EXPECTED = {
    "affine/correct": {"flagged": []},
    "affine/buggy": {"flagged": ["x"]},
    "relu/correct": {"flagged": []},
    "relu/buggy": {"flagged": ["x"]},
    "batchnorm/correct": {"flagged": []},
    "batchnorm/buggy": {"flagged": ["x"]},
}
