"""cs231n assignment 2 ReLU with masked in-place writes (`out[x < 0] = 0`, `dx[x <= 0] = 0`), one student's solution.

Repository: 0Kelvins/cs231n-assignment
Path: assignment2/cs231n/layers.py
Commit: 92ca7c2fa485bb184bcb696eb702a31044047d92
License: none stated
Vendored verbatim: relu_forward, relu_backward, lines 80-132 of that file.
"""

from builtins import range

import numpy as np


# ---- VERBATIM 0Kelvins/cs231n-assignment assignment2/cs231n/layers.py@92ca7c2fa485bb184bcb696eb702a31044047d92 ----
def relu_forward(x):
    """
    Computes the forward pass for a layer of rectified linear units (ReLUs).

    Input:
    - x: Inputs, of any shape

    Returns a tuple of:
    - out: Output, of the same shape as x
    - cache: x
    """
    out = None
    ###########################################################################
    # TODO: Implement the ReLU forward pass.                                  #
    ###########################################################################
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

    out = x.copy()
    out[x < 0] = 0

    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    ###########################################################################
    #                             END OF YOUR CODE                            #
    ###########################################################################
    cache = x
    return out, cache


def relu_backward(dout, cache):
    """
    Computes the backward pass for a layer of rectified linear units (ReLUs).

    Input:
    - dout: Upstream derivatives, of any shape
    - cache: Input x, of same shape as dout

    Returns:
    - dx: Gradient with respect to x
    """
    dx, x = None, cache
    ###########################################################################
    # TODO: Implement the ReLU backward pass.                                 #
    ###########################################################################
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

    dx = dout.copy()
    dx[x <= 0] = 0

    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    ###########################################################################
    #                             END OF YOUR CODE                            #
    ###########################################################################
    return dx
# ---- END VERBATIM ----


KIND = "layer"
EXPECTED_WRONG = []


def make():
    # No element within 0.05 of the kink at 0, so centered differences never straddle it.
    rng = np.random.default_rng(20238)
    x = rng.standard_normal((4, 6))
    x = np.where(np.abs(x) < 0.05, x + np.sign(x + 1e-12) * 0.1, x)
    dout = rng.standard_normal((4, 6))
    return dict(forward=relu_forward, backward=relu_backward, inputs=dict(x=x), dout=dout)


def truth(made):
    import torch
    x = torch.tensor(made["inputs"]["x"], dtype=torch.float64, requires_grad=True)
    out = torch.relu(x)
    loss = (out * torch.tensor(made["dout"], dtype=torch.float64)).sum()
    (gx,) = torch.autograd.grad(loss, (x,))
    return {"x": gx.numpy()}
