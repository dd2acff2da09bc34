"""cs231n assignment 2 naive convolution (np.pad, im2row list comprehension with @), one student's solution.

Repository: RemonComputer/CS231n---Assignment-2
Path: cs231n/layers.py
Commit: 991afa573085c05b1bfcd3823aa17bb0941015bf
License: none stated
Vendored verbatim: conv_forward_naive, conv_backward_naive, lines 602-722 of that file.
"""

from builtins import range

import numpy as np


# ---- VERBATIM RemonComputer/CS231n---Assignment-2 cs231n/layers.py@991afa573085c05b1bfcd3823aa17bb0941015bf ----
def conv_forward_naive(x, w, b, conv_param):
    """
    A naive implementation of the forward pass for a convolutional layer.

    The input consists of N data points, each with C channels, height H and
    width W. We convolve each input with F different filters, where each filter
    spans all C channels and has height HH and width WW.

    Input:
    - x: Input data of shape (N, C, H, W)
    - w: Filter weights of shape (F, C, HH, WW)
    - b: Biases, of shape (F,)
    - conv_param: A dictionary with the following keys:
      - 'stride': The number of pixels between adjacent receptive fields in the
        horizontal and vertical directions.
      - 'pad': The number of pixels that will be used to zero-pad the input. 
        

    During padding, 'pad' zeros should be placed symmetrically (i.e equally on both sides)
    along the height and width axes of the input. Be careful not to modfiy the original
    input x directly.

    Returns a tuple of:
    - out: Output data, of shape (N, F, H', W') where H' and W' are given by
      H' = 1 + (H + 2 * pad - HH) / stride
      W' = 1 + (W + 2 * pad - WW) / stride
    - cache: (x, w, b, conv_param)
    """
    N, C, H, W = x.shape
    F, C, HH, WW = w.shape
    p = conv_param['pad']
    s = conv_param['stride']
    Hnew = int(1 + (H + 2 * p - HH) / s)
    Wnew = int(1 + (W + 2 * p - WW) / s)
    # out = np.zeros((N, F, Hnew, Wnew))
    ###########################################################################
    # TODO: Implement the convolutional forward pass.                         #
    # Hint: you can use the function np.pad for padding.                      #
    ###########################################################################
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    
    padded_x = np.pad(x, ((0,0), (0,0), (p, p), (p, p)))
    w = w.reshape(F, -1).T
    b = b.reshape(1,F)
    h = 1 + H + 2 * p - HH
    wi = 1 + W + 2 * p - WW
    xp = lambda i, j: padded_x[:,:, i:i + HH, j:j+WW].reshape(N, -1)

    out = np.array([ xp(i, j) @ w + b for i in range(0, h, s) for j in range(0, wi, s)])
    out = out.swapaxes(0,1).swapaxes(1,2).reshape((N, F, Hnew, Wnew))

    ## another solution
    # si = 0
    # for i  in range (Hnew):
    #   sj = 0
    #   for j in range (Wnew):
    #     xp = padded_x[:,:, si:  si + HH, sj: sj + WW].reshape(N, -1)
    #     out[:,:,i,j] = xp @ w.reshape(F, -1).T + b.reshape(1,F)
    #     sj +=s
    #   si +=s
    

    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    ###########################################################################
    #                             END OF YOUR CODE                            #
    ###########################################################################
    cache = (x, w.reshape((F, C, HH, WW)), b, conv_param)
    return out, cache


def conv_backward_naive(dout, cache):
    """
    A naive implementation of the backward pass for a convolutional layer.

    Inputs:
    - dout: Upstream derivatives.
    - cache: A tuple of (x, w, b, conv_param) as in conv_forward_naive

    Returns a tuple of:
    - dx: Gradient with respect to x
    - dw: Gradient with respect to w
    - db: Gradient with respect to b
    """


    # padding input and the initilalized input derivative
    # padded_x   = np.pad(x, ((0 ,0), (p, p), (p, p), (0, 0)))
    # padded_dx = np.pad(dx, ((0 ,0), (p, p), (p, p), (0, 0)))
    ###########################################################################
    # TODO: Implement the convolutional backward pass.                        #
    ###########################################################################
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    x, w, b, conv_param = cache
    N, C, H, W = x.shape
    F, C, HH, WW = w.shape
    s = conv_param['stride']
    p = conv_param['pad']
    
    x_pad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    N, F, newH, newW = dout.shape

    dx_pad = np.zeros_like(x_pad)
    dx = np.zeros_like(x)
    dw = np.zeros_like(w)
    db = np.sum(dout, axis = (0, 2,3))

    for n in range(N):
        for f in range(F):
            for j in range(newH):
                for i in range(newW):
                    dw[f,:,:,:] += x_pad[n, :, j*s:j*s+ HH, i * s:i * s + WW] * dout[n, f, j, i]
                    dx_pad[n, :, j * s:j * s + HH, i * s:i * s + WW] += w[f,:,:,:]* dout[n, f, j, i]

    dx = dx_pad[:, :, p:-p, p:-p]


    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    ###########################################################################
    #                             END OF YOUR CODE                            #
    ###########################################################################
    return dx, dw, db
# ---- END VERBATIM ----


KIND = "layer"
# The forward rebinds `w = w.reshape(F, -1).T` and then caches `w.reshape((F, C, HH, WW))`:
# reshaping the transposed (C*HH*WW, F) matrix does not undo the transpose, so the backward
# gets scrambled filters and `dx` is wrong (`dw` and `db` do not use the cached `w`).
EXPECTED_WRONG = ["x"]


def make():
    rng = np.random.default_rng(20231)
    x = rng.standard_normal((2, 2, 5, 5))
    w = rng.standard_normal((3, 2, 3, 3))
    b = rng.standard_normal(3)
    conv_param = {"stride": 2, "pad": 1}
    dout = rng.standard_normal((2, 3, 3, 3))
    return dict(forward=conv_forward_naive, backward=conv_backward_naive,
                inputs=dict(x=x, w=w, b=b, conv_param=conv_param), dout=dout)


def truth(made):
    import torch
    import torch.nn.functional as F
    inp = made["inputs"]
    x, w, b = (torch.tensor(inp[k], dtype=torch.float64, requires_grad=True) for k in "xwb")
    p = inp["conv_param"]
    out = F.conv2d(x, w, b, stride=p["stride"], padding=p["pad"])
    loss = (out * torch.tensor(made["dout"], dtype=torch.float64)).sum()
    gx, gw, gb = torch.autograd.grad(loss, (x, w, b))
    return {"x": gx.numpy(), "w": gw.numpy(), "b": gb.numpy()}
