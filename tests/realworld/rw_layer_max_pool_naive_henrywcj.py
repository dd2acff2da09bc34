"""cs231n assignment 2 naive max pooling (np.max per window, `x_pooling == maxi` mask, +=), one student's solution.

Repository: Henrywcj/Stanford_CS231n_Assignment2
Path: cs231n/layers.py
Commit: 6ad528b2850c00e2ab3995ed1f58cc09f699ae6e
License: none stated
Vendored verbatim: max_pool_forward_naive, max_pool_backward_naive, lines 488-563 of that file.
"""

from builtins import range

import numpy as np


# ---- VERBATIM Henrywcj/Stanford_CS231n_Assignment2 cs231n/layers.py@6ad528b2850c00e2ab3995ed1f58cc09f699ae6e ----
def max_pool_forward_naive(x, pool_param):
    """
    A naive implementation of the forward pass for a max pooling layer.

    Inputs:
    - x: Input data, of shape (N, C, H, W)
    - pool_param: dictionary with the following keys:
      - 'pool_height': The height of each pooling region
      - 'pool_width': The width of each pooling region
      - 'stride': The distance between adjacent pooling regions

    Returns a tuple of:
    - out: Output data
    - cache: (x, pool_param)
    """
    out = None
    ###########################################################################
    # TODO: Implement the max pooling forward pass                            #
    ###########################################################################
    N, C, H, W = x.shape
    pool_height = pool_param['pool_height']
    pool_width = pool_param['pool_width']
    S = pool_param['stride']
    H1 = (H - pool_height) // S + 1
    W1 = (W - pool_width) // S + 1
    out = np.zeros((N, C, H1, W1))
    for n in range(N):
        for c in range(C):
            for h in range(H1):
                for w in range(W1):
                    out[n, c, h, w] = np.max(x[n, c, h * S:h * S + pool_height, w * S:w * S + pool_width])
    ###########################################################################
    #                             END OF YOUR CODE                            #
    ###########################################################################
    cache = (x, pool_param)
    return out, cache


def max_pool_backward_naive(dout, cache):
    """
    A naive implementation of the backward pass for a max pooling layer.

    Inputs:
    - dout: Upstream derivatives
    - cache: A tuple of (x, pool_param) as in the forward pass.

    Returns:
    - dx: Gradient with respect to x
    """
    dx = None
    ###########################################################################
    # TODO: Implement the max pooling backward pass                           #
    ###########################################################################
    x, pool_param = cache
    N, C, H, W = x.shape 
    N, C, H1, W1 = dout.shape 
    pool_height = pool_param['pool_height']
    pool_width = pool_param['pool_width']
    S = pool_param['stride']
    
    dx = np.zeros((N, C, H, W))

    for nprime in range(N):
        for cprime in range(C):
            for k in range(H1):
                for l in range(W1):
                    x_pooling = x[nprime, cprime, k *
                                  S:k * S + pool_height, l * S:l * S + pool_width]
                    maxi = np.max(x_pooling)
                    x_mask = x_pooling == maxi # find which to pool out
                    dx[nprime, cprime, k * S:k * S + pool_height, l * S:l *
                        S + pool_width] += dout[nprime, cprime, k, l] * x_mask
    ###########################################################################
    #                             END OF YOUR CODE                            #
    ###########################################################################
    return dx
# ---- END VERBATIM ----


KIND = "layer"
EXPECTED_WRONG = []


def make():
    # Overlapping 3x3 windows at stride 2: an element that is the maximum of two windows
    # receives both upstream gradients (the backward's `+=` does that).
    rng = np.random.default_rng(20233)
    x = rng.standard_normal((2, 3, 5, 5))
    pool_param = {"pool_height": 3, "pool_width": 3, "stride": 2}
    dout = rng.standard_normal((2, 3, 2, 2))
    return dict(forward=max_pool_forward_naive, backward=max_pool_backward_naive,
                inputs=dict(x=x, pool_param=pool_param), dout=dout)


def truth(made):
    import torch
    import torch.nn.functional as F
    inp = made["inputs"]
    p = inp["pool_param"]
    x = torch.tensor(inp["x"], dtype=torch.float64, requires_grad=True)
    out = F.max_pool2d(x, kernel_size=(p["pool_height"], p["pool_width"]), stride=p["stride"])
    loss = (out * torch.tensor(made["dout"], dtype=torch.float64)).sum()
    (gx,) = torch.autograd.grad(loss, (x,))
    return {"x": gx.numpy()}
