"""cs231n assignment 2 layer normalization (one-line closed-form backward), one student's solution.

Repository: 1204al/cs231n_2019
Path: assignment2/cs231n/layers.py
Commit: cbab51080f98f23693eb1f5f029284efb8c4a29c
License: none stated
Vendored verbatim: layernorm_forward, layernorm_backward, lines 325-410 of that file.
"""

from builtins import range

import numpy as np


# ---- VERBATIM 1204al/cs231n_2019 assignment2/cs231n/layers.py@cbab51080f98f23693eb1f5f029284efb8c4a29c ----
def layernorm_forward(x, gamma, beta, ln_param):
    """
    Forward pass for layer normalization.

    During both training and test-time, the incoming data is normalized per data-point,
    before being scaled by gamma and beta parameters identical to that of batch normalization.
    
    Note that in contrast to batch normalization, the behavior during train and test-time for
    layer normalization are identical, and we do not need to keep track of running averages
    of any sort.

    Input:
    - x: Data of shape (N, D)
    - gamma: Scale parameter of shape (D,)
    - beta: Shift paremeter of shape (D,)
    - ln_param: Dictionary with the following keys:
        - eps: Constant for numeric stability

    Returns a tuple of:
    - out: of shape (N, D)
    - cache: A tuple of values needed in the backward pass
    """
    out, cache = None, None
    eps = ln_param.get('eps', 1e-5)
    ###########################################################################
    # TODO: Implement the training-time forward pass for layer norm.          #
    # Normalize the incoming data, and scale and  shift the normalized data   #
    #  using gamma and beta.                                                  #
    # HINT: this can be done by slightly modifying your training-time         #
    # implementation of  batch normalization, and inserting a line or two of  #
    # well-placed code. In particular, can you think of any matrix            #
    # transformations you could perform, that would enable you to copy over   #
    # the batch norm code and leave it almost unchanged?                      #
    ###########################################################################
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    x_mean=np.mean(x,axis=1,keepdims=True)
    x_var=np.var(x,axis=1,keepdims=True)
    x_normalize=(x-x_mean)/np.sqrt(x_var+eps)
    out=gamma*x_normalize+beta
    cache=(x,x_mean,x_var,x_normalize,gamma,beta,eps)
    

    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    ###########################################################################
    #                             END OF YOUR CODE                            #
    ###########################################################################
    return out, cache


def layernorm_backward(dout, cache):
    """
    Backward pass for layer normalization.

    For this implementation, you can heavily rely on the work you've done already
    for batch normalization.

    Inputs:
    - dout: Upstream derivatives, of shape (N, D)
    - cache: Variable of intermediates from layernorm_forward.

    Returns a tuple of:
    - dx: Gradient with respect to inputs x, of shape (N, D)
    - dgamma: Gradient with respect to scale parameter gamma, of shape (D,)
    - dbeta: Gradient with respect to shift parameter beta, of shape (D,)
    """
    dx, dgamma, dbeta = None, None, None
    ###########################################################################
    # TODO: Implement the backward pass for layer norm.                       #
    #                                                                         #
    # HINT: this can be done by slightly modifying your training-time         #
    # implementation of batch normalization. The hints to the forward pass    #
    # still apply!                                                            #
    ###########################################################################
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    
    x,x_mean,x_var,x_normalize,gamma,beta,eps=cache
    N,D=x.shape
    dbeta=np.sum(dout,axis=0)
    dgamma=np.sum(dout*x_normalize,axis=0)
    dx=1/D*gamma*1/np.sqrt(x_var+eps)*(D*dout-np.sum(dout,axis=0)-(x-x_mean)/(x_var+eps)*np.sum(dout*(x-x_mean),axis=1,keepdims=True))

    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    ###########################################################################
    #                             END OF YOUR CODE                            #
    ###########################################################################
    return dx, dgamma, dbeta
# ---- END VERBATIM ----


KIND = "layer"
# The batch-norm closed form carried over to rows: gamma is factored out of the bracket
# although it varies along the normalized axis (it must multiply dout inside the sums), and
# the middle sum is `np.sum(dout, axis=0)` (over the batch, broadcast along the features)
# instead of a per-row sum. `dx` is wrong; dgamma and dbeta are right.
EXPECTED_WRONG = ["x"]


def make():
    rng = np.random.default_rng(20237)
    x = 1.5 * rng.standard_normal((4, 5)) + 0.3
    gamma = rng.standard_normal(5)
    beta = rng.standard_normal(5)
    ln_param = {}
    dout = rng.standard_normal((4, 5))
    return dict(forward=layernorm_forward, backward=layernorm_backward,
                inputs=dict(x=x, gamma=gamma, beta=beta, ln_param=ln_param), dout=dout)


def truth(made):
    import torch
    import torch.nn.functional as F
    inp = made["inputs"]
    eps = inp["ln_param"].get("eps", 1e-5)
    x, g, b = (torch.tensor(inp[k], dtype=torch.float64, requires_grad=True)
               for k in ("x", "gamma", "beta"))
    out = F.layer_norm(x, (x.shape[1],), weight=g, bias=b, eps=eps)
    loss = (out * torch.tensor(made["dout"], dtype=torch.float64)).sum()
    gx, gg, gb = torch.autograd.grad(loss, (x, g, b))
    return {"x": gx.numpy(), "gamma": gg.numpy(), "beta": gb.numpy()}
