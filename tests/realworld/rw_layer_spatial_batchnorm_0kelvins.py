"""cs231n assignment 2 spatial batch normalization, training mode (axis=(0, 2, 3) statistics), one student's solution.

Repository: 0Kelvins/cs231n-assignment
Path: assignment2/cs231n/layers.py
Commit: 92ca7c2fa485bb184bcb696eb702a31044047d92
License: none stated
Vendored verbatim: spatial_batchnorm_forward, spatial_batchnorm_backward, lines 748-858 of that file.
"""

from builtins import range

import numpy as np


# ---- VERBATIM 0Kelvins/cs231n-assignment assignment2/cs231n/layers.py@92ca7c2fa485bb184bcb696eb702a31044047d92 ----
def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    """
    Computes the forward pass for spatial batch normalization.

    Inputs:
    - x: Input data of shape (N, C, H, W)
    - gamma: Scale parameter, of shape (C,)
    - beta: Shift parameter, of shape (C,)
    - bn_param: Dictionary with the following keys:
      - mode: 'train' or 'test'; required
      - eps: Constant for numeric stability
      - momentum: Constant for running mean / variance. momentum=0 means that
        old information is discarded completely at every time step, while
        momentum=1 means that new information is never incorporated. The
        default of momentum=0.9 should work well in most situations.
      - running_mean: Array of shape (D,) giving running mean of features
      - running_var Array of shape (D,) giving running variance of features

    Returns a tuple of:
    - out: Output data, of shape (N, C, H, W)
    - cache: Values needed for the backward pass
    """
    out, cache = None, None

    ###########################################################################
    # TODO: Implement the forward pass for spatial batch normalization.       #
    #                                                                         #
    # HINT: You can implement spatial batch normalization by calling the      #
    # vanilla version of batch normalization you implemented above.           #
    # Your implementation should be very short; ours is less than five lines. #
    ###########################################################################
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)

    N, C, H, W = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(C, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(C, dtype=x.dtype))

    if mode == "train":
        sample_mean = np.mean(x, axis=(0, 2, 3))
        sample_var  = np.var(x, axis=(0, 2, 3))
        mean = (x - sample_mean.reshape((1, C, 1, 1)))
        norm = 1/np.sqrt(sample_var.reshape((1, C, 1, 1)) + eps)
        x_hat = mean * norm

        running_mean = momentum * running_mean + (1 - momentum) * sample_mean
        running_var = momentum * running_var + (1 - momentum) * sample_var
        out = gamma.reshape((1, C, 1, 1)) * x_hat + beta.reshape((1, C, 1, 1))

        cache = (x, x_hat, gamma, norm, mean, sample_var, eps)
    elif mode == "test":
        x_hat = (x - running_mean.reshape((1, C, 1, 1))) / np.sqrt(running_var.reshape((1, C, 1, 1)) + eps)
        out = gamma.reshape((1, C, 1, 1)) * x_hat + beta.reshape((1, C, 1, 1))
    else:
        raise ValueError('Invalid forward batchnorm mode "%s"' % mode)

    # Store the updated running means back into bn_param
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var

    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    ###########################################################################
    #                             END OF YOUR CODE                            #
    ###########################################################################

    return out, cache


def spatial_batchnorm_backward(dout, cache):
    """
    Computes the backward pass for spatial batch normalization.

    Inputs:
    - dout: Upstream derivatives, of shape (N, C, H, W)
    - cache: Values from the forward pass

    Returns a tuple of:
    - dx: Gradient with respect to inputs, of shape (N, C, H, W)
    - dgamma: Gradient with respect to scale parameter, of shape (C,)
    - dbeta: Gradient with respect to shift parameter, of shape (C,)
    """
    dx, dgamma, dbeta = None, None, None

    ###########################################################################
    # TODO: Implement the backward pass for spatial batch normalization.      #
    #                                                                         #
    # HINT: You can implement spatial batch normalization by calling the      #
    # vanilla version of batch normalization you implemented above.           #
    # Your implementation should be very short; ours is less than five lines. #
    ###########################################################################
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

    N, C, H, W = dout.shape
    x, x_hat, gamma, norm, mean, sample_var, eps = cache

    dbeta  = np.sum(dout, axis=(0, 2, 3))
    dgamma = np.sum(dout * x_hat, axis=(0, 2, 3))
    dx_hat = dout * gamma.reshape((1, C, 1, 1))
    dsample_mean = np.sum(dx_hat * (-norm.reshape((1, C, 1, 1))), axis=(0, 2, 3))
    dsample_var  = np.sum((dx_hat * mean * (-1/2) * (sample_var.reshape((1, C, 1, 1)) + eps)**(-3/2)), axis=(0, 2, 3))
    dx = dx_hat * norm + dsample_mean.reshape((1, C, 1, 1)) * (1.0/N) + dsample_var.reshape((1, C, 1, 1)) * ((2.0/N )* (mean))

    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    ###########################################################################
    #                             END OF YOUR CODE                            #
    ###########################################################################

    return dx, dgamma, dbeta
# ---- END VERBATIM ----


KIND = "layer"
# The statistics are taken over N*H*W values per channel, but the backward divides the
# mean and variance terms by N alone (`* (1.0/N)`, `(2.0/N)`): `dx` is wrong whenever
# H*W > 1. dgamma and dbeta are right.
EXPECTED_WRONG = ["x"]


def make():
    rng = np.random.default_rng(20236)
    x = 1.5 * rng.standard_normal((2, 3, 3, 3)) - 0.5
    gamma = rng.standard_normal(3)
    beta = rng.standard_normal(3)
    bn_param = {"mode": "train"}
    dout = rng.standard_normal((2, 3, 3, 3))
    return dict(forward=spatial_batchnorm_forward, backward=spatial_batchnorm_backward,
                inputs=dict(x=x, gamma=gamma, beta=beta, bn_param=bn_param), dout=dout)


def truth(made):
    # torch's 4-D batch norm in training mode: per-channel statistics over (N, H, W),
    # biased variance.
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
