"""cs231n assignment 2 naive convolution (np.pad, four loops writing out[n,f,i,j]), one student's solution.

Repository: AKSoo/CS231n-2017
Path: assignment2/cs231n/layers.py
Commit: 1cf6afb9ce19229e2a57b9e7ae3f8faba558fd78
License: none stated
Vendored verbatim: conv_forward_naive, conv_backward_naive, lines 292-366 of that file.
"""

from builtins import range

import numpy as np


# ---- VERBATIM AKSoo/CS231n-2017 assignment2/cs231n/layers.py@1cf6afb9ce19229e2a57b9e7ae3f8faba558fd78 ----
def conv_forward_naive(x, w, b, conv_param):
    """
    A naive implementation of the forward pass for a convolutional layer.

    The input consists of N data points, each with C channels, height H and
    width W. We convolve each input with F different filters, where each filter
    spans all C channels and has height HH and width HH.

    Input:
    - x: Input data of shape (N, C, H, W)
    - w: Filter weights of shape (F, C, HH, WW)
    - b: Biases, of shape (F,)
    - conv_param: A dictionary with the following keys:
      - 'stride': The number of pixels between adjacent receptive fields in the
        horizontal and vertical directions.
      - 'pad': The number of pixels that will be used to zero-pad the input.

    Returns a tuple of:
    - out: Output data, of shape (N, F, H', W') where H' and W' are given by
      H' = 1 + (H + 2 * pad - HH) / stride
      W' = 1 + (W + 2 * pad - WW) / stride
    - cache: (x, w, b, conv_param)
    """
    N, C, H, W = x.shape
    F, C, HH, WW = w.shape
    S, pad = conv_param['stride'], conv_param['pad']
    Hc = int(1 + (H + 2 * pad - HH) / S)
    Wc = int(1 + (W + 2 * pad - WW) / S)

    x_pad = np.pad(x, ((0,), (0,), (pad,), (pad,)), 'constant')
    out = np.zeros((N, F, Hc, Wc))

    for n in range(N):
        for f in range(F):
            for i in range(Hc):
                for j in range(Wc):
                    out[n,f,i,j] = np.sum(x_pad[n, :, i*S : i*S + HH, j*S : j*S + WW]
                            * w[f]) + b[f]

    cache = (x, w, b, conv_param)
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
    x, w, b, conv_param = cache
    N, F, Hc, Wc = dout.shape
    _, _, HH, WW = w.shape
    S, pad = conv_param['stride'], conv_param['pad']
    x_pad = np.pad(x, ((0,), (0,), (pad,), (pad,)), 'constant')

    dx, dw, db = np.zeros(x.shape), np.zeros(w.shape), np.zeros(b.shape)
    dx_pad = np.zeros(x_pad.shape)

    for n in range(N):
        for f in range(F):
            for i in range(Hc):
                for j in range(Wc):
                    db[f] += dout[n,f,i,j]
                    dw[f] += dout[n,f,i,j] * x_pad[n, :, i*S : i*S + HH, j*S : j*S + WW]
                    dx_pad[n, :, i*S : i*S + HH, j*S : j*S + WW] += dout[n,f,i,j] * w[f]
    dx = dx_pad[:, :, pad : -pad, pad : -pad]

    return dx, dw, db
# ---- END VERBATIM ----


KIND = "layer"
EXPECTED_WRONG = []


def make():
    rng = np.random.default_rng(20232)
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
