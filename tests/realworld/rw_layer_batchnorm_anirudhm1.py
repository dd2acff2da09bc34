"""cs231n assignment 2 batch normalization, training mode (x.mean/x.var methods, staged backward), one student's solution.

Repository: AnirudhM1/CS231n-2022-Solutions
Path: assignment2/cs231n/layers.py
Commit: d2d76e34d86c3e3f3d113f90fd41a6493fa61ec5
License: none stated
Vendored verbatim: batchnorm_forward, batchnorm_backward, lines 165-321 of that file.
"""

from builtins import range

import numpy as np


# ---- VERBATIM AnirudhM1/CS231n-2022-Solutions assignment2/cs231n/layers.py@d2d76e34d86c3e3f3d113f90fd41a6493fa61ec5 ----
def batchnorm_forward(x, gamma, beta, bn_param):
    """Forward pass for batch normalization.

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
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)

    N, D = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(D, dtype=x.dtype))

    out, cache = None, None
    if mode == "train":
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
        # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

        mean = x.mean(axis=0)
        var = x.var(axis=0)

        x_norm = (x - mean) / (np.sqrt(var + eps))
        out = gamma * x_norm + beta

        cache = (x, x_norm, mean, var, gamma, eps)

        running_mean = momentum * running_mean + (1 - momentum) * mean
        running_var = momentum * running_var + (1 - momentum) * var

        # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
        #######################################################################
        #                           END OF YOUR CODE                          #
        #######################################################################
    elif mode == "test":
        #######################################################################
        # TODO: Implement the test-time forward pass for batch normalization. #
        # Use the running mean and variance to normalize the incoming data,   #
        # then scale and shift the normalized data using gamma and beta.      #
        # Store the result in the out variable.                               #
        #######################################################################
        # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

        x_norm = (x - running_mean) / (np.sqrt(running_var + eps))
        out = gamma * x_norm + beta

        # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
        #######################################################################
        #                          END OF YOUR CODE                           #
        #######################################################################
    else:
        raise ValueError('Invalid forward batchnorm mode "%s"' % mode)

    # Store the updated running means back into bn_param
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var

    return out, cache


def batchnorm_backward(dout, cache):
    """Backward pass for batch normalization.

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
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

    x, x_norm, mean, var, gamma, eps = cache
    N, D = x.shape
    
    dbeta = dout.sum(axis=0)

    dgamma = np.sum(dout * x_norm, axis=0)

    dxnorm = dout * gamma

    dvar = np.sum(dxnorm * (x - mean) * (-0.5) * (var + eps) ** (-1.5), axis=0)

    dmean = np.sum(dxnorm * (-1) / np.sqrt(var + eps), axis=0) + dvar * np.sum(-2 * (x - mean), axis=0) / N

    dx = dxnorm / np.sqrt(var + eps) + dvar * 2 * (x - mean) / N + dmean / N

    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    ###########################################################################
    #                             END OF YOUR CODE                            #
    ###########################################################################

    return dx, dgamma, dbeta
# ---- END VERBATIM ----


KIND = "layer"
EXPECTED_WRONG = []


def make():
    rng = np.random.default_rng(20234)
    x = 2.0 * rng.standard_normal((6, 4)) + 0.5
    gamma = rng.standard_normal(4)
    beta = rng.standard_normal(4)
    bn_param = {"mode": "train"}
    dout = rng.standard_normal((6, 4))
    return dict(forward=batchnorm_forward, backward=batchnorm_backward,
                inputs=dict(x=x, gamma=gamma, beta=beta, bn_param=bn_param), dout=dout)


def truth(made):
    # Training-mode batch norm normalizes with the biased (1/N) batch variance, as the
    # forward's `x.var(axis=0)` does.
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
