"""cs231n assignment 2 batch normalization, training mode, with the simplified batchnorm_backward_alt, one student's solution.

Repository: AdvaitKoparkar/CS231n-Assignment2
Path: cs231n/layers.py
Commit: c74b9f32fb36e8c76ed553a85339773f63dd5f51
License: none stated
Vendored verbatim: batchnorm_forward, batchnorm_backward, batchnorm_backward_alt, lines 114-315 of that file.
"""

from builtins import range

import numpy as np


# ---- VERBATIM AdvaitKoparkar/CS231n-Assignment2 cs231n/layers.py@c74b9f32fb36e8c76ed553a85339773f63dd5f51 ----
def batchnorm_forward(x, gamma, beta, bn_param):
    """
    Forward pass for batch normalization.

    During training the sample mean and (uncorrected) sample variance are
    computed from minibatch statistics and used to normalize the incoming data.
    During training we also keep an exponentially decaying running mean of the
    mean and variance of each feature, and these averages are used to normalize
    data at test-time.

    At each timestep we update the running averages for mean and variance using
    an exponential decay based on the momentum parameter:

    running_mean = momentum * running_mean + (1 - momentum) * sample_mean
    running_var = momentum * running_var + (1 - momentum) * sample_var

    Note that the batch normalization paper suggests a different test-time
    behavior: they compute sample mean and variance for each feature using a
    large number of training images rather than using a running average. For
    this implementation we have chosen to use running averages instead since
    they do not require an additional estimation step; the torch7
    implementation of batch normalization also uses running averages.

    Input:
    - x: Data of shape (N, D)
    - gamma: Scale parameter of shape (D,)
    - beta: Shift paremeter of shape (D,)
    - bn_param: Dictionary with the following keys:
      - mode: 'train' or 'test'; required
      - eps: Constant for numeric stability
      - momentum: Constant for running mean / variance.
      - running_mean: Array of shape (D,) giving running mean of features
      - running_var Array of shape (D,) giving running variance of features

    Returns a tuple of:
    - out: of shape (N, D)
    - cache: A tuple of values needed in the backward pass
    """
    mode = bn_param['mode']
    eps = bn_param.get('eps', 1e-5)
    momentum = bn_param.get('momentum', 0.9)

    N, D = x.shape
    running_mean = bn_param.get('running_mean', np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get('running_var', np.zeros(D, dtype=x.dtype))

    out, cache = None, None
    if mode == 'train':
        #######################################################################
        # TODO: Implement the training-time forward pass for batch norm.      #
        # Use minibatch statistics to compute the mean and variance, use      #
        # these statistics to normalize the incoming data, and scale and      #
        # shift the normalized data using gamma and beta.                     #
        #                                                                     #
        # You should store the output in the variable out. Any intermediates  #
        # that you need for the backward pass should be stored in the cache   #
        # variable.                                                           #
        #                                                                     #
        # You should also use your computed sample mean and variance together #
        # with the momentum variable to update the running mean and running   #
        # variance, storing your result in the running_mean and running_var   #
        # variables.                                                          #
        #                                                                     #
        # Note that though you should be keeping track of the running         #
        # variance, you should normalize the data based on the standard       #
        # deviation (square root of variance) instead!                        #
        # Referencing the original paper (https://arxiv.org/abs/1502.03167)   #
        # might prove to be helpful.                                          #
        #######################################################################
        mu = (1.0 / N) * np.sum(x, axis=0)
        xmu = x - mu
        sq = (x - mu)**2
        var = (1/float(N)) * np.sum(sq, axis=0)
        sqrtvar = np.sqrt(var + eps)
        invsqrtvar = 1 / sqrtvar
        xhat = xmu * invsqrtvar
        gammax = gamma * xhat
        out = gammax + beta
        cache = (x, xhat, gamma, invsqrtvar, xmu, sqrtvar, mu)
        running_mean = momentum * running_mean + (1 - momentum) * mu
        running_var = momentum * running_var + (1 - momentum) * var
        #######################################################################
        #                           END OF YOUR CODE                          #
        #######################################################################
    elif mode == 'test':
        #######################################################################
        # TODO: Implement the test-time forward pass for batch normalization. #
        # Use the running mean and variance to normalize the incoming data,   #
        # then scale and shift the normalized data using gamma and beta.      #
        # Store the result in the out variable.                               #
        #######################################################################
        xmu = x - running_mean
        var = running_var
        ivar = 1/(running_var + eps)
        isqrtvar = np.sqrt(ivar)
        xhat = xmu * isqrtvar
        gammax = gamma * xhat
        out = gammax + beta
        #######################################################################
        #                          END OF YOUR CODE                           #
        #######################################################################
    else:
        raise ValueError('Invalid forward batchnorm mode "%s"' % mode)

    # Store the updated running means back into bn_param
    bn_param['running_mean'] = running_mean
    bn_param['running_var'] = running_var

    return out, cache


def batchnorm_backward(dout, cache):
    """
    Backward pass for batch normalization.

    For this implementation, you should write out a computation graph for
    batch normalization on paper and propagate gradients backward through
    intermediate nodes.

    Inputs:
    - dout: Upstream derivatives, of shape (N, D)
    - cache: Variable of intermediates from batchnorm_forward.

    Returns a tuple of:
    - dx: Gradient with respect to inputs x, of shape (N, D)
    - dgamma: Gradient with respect to scale parameter gamma, of shape (D,)
    - dbeta: Gradient with respect to shift parameter beta, of shape (D,)
    """
    dx, dgamma, dbeta = None, None, None
    ###########################################################################
    # TODO: Implement the backward pass for batch normalization. Store the    #
    # results in the dx, dgamma, and dbeta variables.                         #
    # Referencing the original paper (https://arxiv.org/abs/1502.03167)       #
    # might prove to be helpful.                                              #
    ###########################################################################
    # dout = np.ones((N, D))
    x, xhat, gamma, invsqrtvar, xmu, sqrtvar, mu = cache
    N, D = dout.shape
    dbeta = 1.0 * np.sum(dout, axis=0)
    dgammax = 1.0 * dout
    dgamma = np.sum(dgammax * xhat, axis=0)
    dxhat = dgammax * (gamma * np.ones((N, D)))
    dxmu = invsqrtvar * dxhat
    dinvsqrtvar = np.sum(dxhat * xmu, axis=0)
    dxmu1 = dxhat * (invsqrtvar * np.ones((N, D)))
    dsqrtvar = -1 * (1.0/sqrtvar**2) * dinvsqrtvar
    dvar = 0.5 * invsqrtvar * dsqrtvar
    dsq = dvar * (1.0 / float(N)) * np.ones((N, D))
    dxmu2 = 2.0 * xmu * dsq
    dxmu = dxmu1 + dxmu2
    dx1 = 1 * dxmu
    dmu = -1 * np.sum(dxmu, axis=0)
    dx2 = (1.0 / float(N)) * np.ones((N, D)) * dmu
    dx = dx1 + dx2

    # return dx, dgamma, dbeta
    ###########################################################################
    #                             END OF YOUR CODE                            #
    ###########################################################################

    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    """
    Alternative backward pass for batch normalization.

    For this implementation you should work out the derivatives for the batch
    normalizaton backward pass on paper and simplify as much as possible. You
    should be able to derive a simple expression for the backward pass.
    See the jupyter notebook for more hints.

    Note: This implementation should expect to receive the same cache variable
    as batchnorm_backward, but might not use all of the values in the cache.

    Inputs / outputs: Same as batchnorm_backward
    """
    dx, dgamma, dbeta = None, None, None
    ###########################################################################
    # TODO: Implement the backward pass for batch normalization. Store the    #
    # results in the dx, dgamma, and dbeta variables.                         #
    #                                                                         #
    # After computing the gradient with respect to the centered inputs, you   #
    # should be able to compute gradients with respect to the inputs in a     #
    # single statement; our implementation fits on a single 80-character line.#
    ###########################################################################
    x, xhat, gamma, invsqrtvar, xmu, sqrtvar, mu  = cache
    sigma = sqrtvar
    N, D = x.shape
    dmu_dx = (1.0 / float(N)) * np.ones((N, D))
    dsigma_dx = (1.0 / np.sqrt(N)) * (1.0 / sigma) * (2.0*x - mu)
    dxhat_dx = ((np.ones((N,D)) - dmu_dx) / sigma) - (((x - mu) / (sigma**2.0)) * dsigma_dx)
    dy_dx = gamma * dxhat_dx

    dx = (dy_dx * dout)
    dgamma = np.sum(xhat * dout, axis=0)
    dbeta = np.sum(dout, axis=0)
    ###########################################################################
    #                             END OF YOUR CODE                            #
    ###########################################################################

    return dx, dgamma, dbeta
# ---- END VERBATIM ----


KIND = "layer"
# batchnorm_backward_alt keeps only an elementwise d(out_ij)/d(x_ij) (and with a wrong
# d(sigma)/dx): the cross terms through the batch mean and variance, which couple every row
# of a column, are missing, so `dx` is wrong. dgamma and dbeta are right. (The same file's
# staged batchnorm_backward is correct; the case checks the _alt one.)
EXPECTED_WRONG = ["x"]


def make():
    rng = np.random.default_rng(20235)
    x = 2.0 * rng.standard_normal((6, 4)) + 0.5
    gamma = rng.standard_normal(4)
    beta = rng.standard_normal(4)
    bn_param = {"mode": "train"}
    dout = rng.standard_normal((6, 4))
    return dict(forward=batchnorm_forward, backward=batchnorm_backward_alt,
                inputs=dict(x=x, gamma=gamma, beta=beta, bn_param=bn_param), dout=dout)


def truth(made):
    import torch
    import torch.nn.functional as F
    inp = made["inputs"]
    eps = inp["bn_param"].get("eps", 1e-5)
    x, g, b = (torch.tensor(inp[k], dtype=torch.float64, requires_grad=True)
               for k in ("x", "gamma", "beta"))
    out = F.batch_norm(x, None, None, weight=g, bias=b, training=True, eps=eps)
    loss = (out * torch.tensor(made["dout"], dtype=torch.float64)).sum()
    gx, gg, gb = torch.autograd.grad(loss, (x, g, b))
    return {"x": gx.numpy(), "gamma": gg.numpy(), "beta": gb.numpy()}
