"""cs231n assignment 3 temporal softmax loss with a mask (`dx_flat[np.arange(N * T), y_flat] -= 1`), as shipped with the assignment.

Repository: AKSoo/CS231n-2017
Path: assignment3/cs231n/rnn_layers.py
Commit: 07e1861c98100010f9441c3ed4d1116408d7743c
License: none stated
Vendored verbatim: temporal_softmax_loss, lines 394-439 of that file.
"""

from builtins import range

import numpy as np


# ---- VERBATIM AKSoo/CS231n-2017 assignment3/cs231n/rnn_layers.py@07e1861c98100010f9441c3ed4d1116408d7743c ----
def temporal_softmax_loss(x, y, mask, verbose=False):
    """
    A temporal version of softmax loss for use in RNNs. We assume that we are
    making predictions over a vocabulary of size V for each timestep of a
    timeseries of length T, over a minibatch of size N. The input x gives scores
    for all vocabulary elements at all timesteps, and y gives the indices of the
    ground-truth element at each timestep. We use a cross-entropy loss at each
    timestep, summing the loss over all timesteps and averaging across the
    minibatch.

    As an additional complication, we may want to ignore the model output at some
    timesteps, since sequences of different length may have been combined into a
    minibatch and padded with NULL tokens. The optional mask argument tells us
    which elements should contribute to the loss.

    Inputs:
    - x: Input scores, of shape (N, T, V)
    - y: Ground-truth indices, of shape (N, T) where each element is in the range
         0 <= y[i, t] < V
    - mask: Boolean array of shape (N, T) where mask[i, t] tells whether or not
      the scores at x[i, t] should contribute to the loss.

    Returns a tuple of:
    - loss: Scalar giving loss
    - dx: Gradient of loss with respect to scores x.
    """

    N, T, V = x.shape

    x_flat = x.reshape(N * T, V)
    y_flat = y.reshape(N * T)
    mask_flat = mask.reshape(N * T)

    probs = np.exp(x_flat - np.max(x_flat, axis=1, keepdims=True))
    probs /= np.sum(probs, axis=1, keepdims=True)
    loss = -np.sum(mask_flat * np.log(probs[np.arange(N * T), y_flat])) / N
    dx_flat = probs.copy()
    dx_flat[np.arange(N * T), y_flat] -= 1
    dx_flat /= N
    dx_flat *= mask_flat[:, None]

    if verbose: print('dx_flat: ', dx_flat.shape)

    dx = dx_flat.reshape(N, T, V)

    return loss, dx
# ---- END VERBATIM ----


KIND = "check"
EXPECTED_WRONG = []


def _loss(params, y, mask):
    return temporal_softmax_loss(params["x"], y, mask)[0]


def _grad(params, y, mask):
    return {"x": temporal_softmax_loss(params["x"], y, mask)[1]}


def make():
    rng = np.random.default_rng(5)
    N, T, V = 3, 4, 6
    x = rng.standard_normal((N, T, V))
    y = rng.integers(0, V, size=(N, T))
    mask = rng.random((N, T)) > 0.3     # boolean, as the captioning model builds it
    mask[0, -1] = False                 # at least one padded step
    return dict(loss=_loss, grad=_grad, params={"x": x}, args=(y, mask))


def truth(made):
    import torch
    y, mask = made["args"]
    x = torch.tensor(made["params"]["x"], dtype=torch.float64, requires_grad=True)
    N = x.shape[0]
    logp = torch.log_softmax(x, dim=2)
    picked = logp.gather(2, torch.as_tensor(y, dtype=torch.long)[..., None]).squeeze(2)
    loss = -(picked * torch.as_tensor(mask, dtype=torch.float64)).sum() / N
    (gx,) = torch.autograd.grad(loss, (x,))
    return {"x": gx.numpy()}
