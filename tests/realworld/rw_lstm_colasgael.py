"""cs231n assignment 3 LSTM over T steps (masked-write sigmoid, gate slices written in place, `h[:,t+1,:] = h_t`), one student's solution.

Repository: ColasGael/cs231n-assignments-spring19
Path: assignment3/cs231n/rnn_layers.py
Commit: fdacdc395993f6e8f16459ffc9564d90d0e62e5c
License: none stated
Vendored verbatim: sigmoid, lstm_step_forward, lstm_step_backward, lstm_forward, lstm_backward, lines 285-517 of that file.
"""

from builtins import range

import numpy as np


# ---- VERBATIM ColasGael/cs231n-assignments-spring19 assignment3/cs231n/rnn_layers.py@fdacdc395993f6e8f16459ffc9564d90d0e62e5c ----
def sigmoid(x):
    """
    A numerically stable version of the logistic sigmoid function.
    """
    pos_mask = (x >= 0)
    neg_mask = (x < 0)
    z = np.zeros_like(x)
    z[pos_mask] = np.exp(-x[pos_mask])
    z[neg_mask] = np.exp(x[neg_mask])
    top = np.ones_like(x)
    top[neg_mask] = z[neg_mask]
    return top / (1 + z)


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """
    Forward pass for a single timestep of an LSTM.

    The input data has dimension D, the hidden state has dimension H, and we use
    a minibatch size of N.

    Note that a sigmoid() function has already been provided for you in this file.

    Inputs:
    - x: Input data, of shape (N, D)
    - prev_h: Previous hidden state, of shape (N, H)
    - prev_c: previous cell state, of shape (N, H)
    - Wx: Input-to-hidden weights, of shape (D, 4H)
    - Wh: Hidden-to-hidden weights, of shape (H, 4H)
    - b: Biases, of shape (4H,)

    Returns a tuple of:
    - next_h: Next hidden state, of shape (N, H)
    - next_c: Next cell state, of shape (N, H)
    - cache: Tuple of values needed for backward pass.
    """
    next_h, next_c, cache = None, None, None
    #############################################################################
    # TODO: Implement the forward pass for a single timestep of an LSTM.        #
    # You may want to use the numerically stable sigmoid implementation above.  #
    #############################################################################
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    
    # hidden dimension
    H = Wh.shape[0]
    
    # forward pass
    a = np.dot(x, Wx) + np.dot(prev_h, Wh) + b
    # (input, forget, output) gates
    gates = sigmoid(a[:, :3*H]) 
    # update cell state
    g = np.tanh(a[:, 3*H:4*H]) 
    next_c = gates[:, :H] * g + gates[:, H:2*H] * prev_c
    # update hidden state
    next_h = np.tanh(next_c) * gates[:, 2*H:3*H]
        
    # cache values useful for the backward pass
    cache = (x, prev_h, prev_c, Wx, Wh, gates, g, next_c, next_h)

    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    ##############################################################################
    #                               END OF YOUR CODE                             #
    ##############################################################################

    return next_h, next_c, cache


def lstm_step_backward(dnext_h, dnext_c, cache):
    """
    Backward pass for a single timestep of an LSTM.

    Inputs:
    - dnext_h: Gradients of next hidden state, of shape (N, H)
    - dnext_c: Gradients of next cell state, of shape (N, H)
    - cache: Values from the forward pass

    Returns a tuple of:
    - dx: Gradient of input data, of shape (N, D)
    - dprev_h: Gradient of previous hidden state, of shape (N, H)
    - dprev_c: Gradient of previous cell state, of shape (N, H)
    - dWx: Gradient of input-to-hidden weights, of shape (D, 4H)
    - dWh: Gradient of hidden-to-hidden weights, of shape (H, 4H)
    - db: Gradient of biases, of shape (4H,)
    """
    dx, dprev_h, dprev_c, dWx, dWh, db = None, None, None, None, None, None
    #############################################################################
    # TODO: Implement the backward pass for a single timestep of an LSTM.       #
    #                                                                           #
    # HINT: For sigmoid and tanh you can compute local derivatives in terms of  #
    # the output value from the nonlinearity.                                   #
    #############################################################################
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

    # uncache useful values for the backward pass
    x, prev_h, prev_c, Wx, Wh, gates, g, next_c, next_h = cache
    
    # initialization
    N, H = prev_h.shape
    da = np.zeros((N, 4*H))
    dgates = np.zeros(gates.shape)
    
    # backward pass
    dnext_c += gates[:, 2*H:3*H] * (1 - np.tanh(next_c)**2) * dnext_h 
    dgates[:, 2*H:3*H] = np.tanh(next_c) * dnext_h
    dgates[:, :H] = g * dnext_c
    dgates[:, H:2*H] = prev_c * dnext_c
    dg = gates[:, :H] * dnext_c
    dprev_c = gates[:, H:2*H] * dnext_c
    da[:, 3*H:4*H] = (1 - g**2) * dg
    da[:, :3*H] = gates * (1 - gates) * dgates
    dx = np.dot(da, Wx.T)
    dprev_h = np.dot(da, Wh.T)
    dWx = np.dot(x.T, da)
    dWh = np.dot(prev_h.T, da)
    db = np.sum(da, axis=0)

    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    ##############################################################################
    #                               END OF YOUR CODE                             #
    ##############################################################################

    return dx, dprev_h, dprev_c, dWx, dWh, db


def lstm_forward(x, h0, Wx, Wh, b):
    """
    Forward pass for an LSTM over an entire sequence of data. We assume an input
    sequence composed of T vectors, each of dimension D. The LSTM uses a hidden
    size of H, and we work over a minibatch containing N sequences. After running
    the LSTM forward, we return the hidden states for all timesteps.

    Note that the initial cell state is passed as input, but the initial cell
    state is set to zero. Also note that the cell state is not returned; it is
    an internal variable to the LSTM and is not accessed from outside.

    Inputs:
    - x: Input data of shape (N, T, D)
    - h0: Initial hidden state of shape (N, H)
    - Wx: Weights for input-to-hidden connections, of shape (D, 4H)
    - Wh: Weights for hidden-to-hidden connections, of shape (H, 4H)
    - b: Biases of shape (4H,)

    Returns a tuple of:
    - h: Hidden states for all timesteps of all sequences, of shape (N, T, H)
    - cache: Values needed for the backward pass.
    """
    h, cache = None, None
    #############################################################################
    # TODO: Implement the forward pass for an LSTM over an entire timeseries.   #
    # You should use the lstm_step_forward function that you just defined.      #
    #############################################################################
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

    # dimensions
    N, T, _ = x.shape
    H = h0.shape[-1]
    
    # initialization
    h = np.zeros((N, T+1, H))
    h[:,0,:] = h0
    c = np.zeros((N, H))
    cache = []
    
    # forward pass
    for t in range(T):
        # forward step
        h_t, c, cache_t = lstm_step_forward(x[:,t,:], h[:,t,:], c, Wx, Wh, b)
        h[:,t+1,:] = h_t
        cache.append(cache_t)

    # remove the initial hidden state
    h = h[:,1:,:]
    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    ##############################################################################
    #                               END OF YOUR CODE                             #
    ##############################################################################

    return h, cache


def lstm_backward(dh, cache):
    """
    Backward pass for an LSTM over an entire sequence of data.]

    Inputs:
    - dh: Upstream gradients of hidden states, of shape (N, T, H)
    - cache: Values from the forward pass

    Returns a tuple of:
    - dx: Gradient of input data of shape (N, T, D)
    - dh0: Gradient of initial hidden state of shape (N, H)
    - dWx: Gradient of input-to-hidden weight matrix of shape (D, 4H)
    - dWh: Gradient of hidden-to-hidden weight matrix of shape (H, 4H)
    - db: Gradient of biases, of shape (4H,)
    """
    dx, dh0, dWx, dWh, db = None, None, None, None, None
    #############################################################################
    # TODO: Implement the backward pass for an LSTM over an entire timeseries.  #
    # You should use the lstm_step_backward function that you just defined.     #
    #############################################################################
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    
    # dimensions
    x = cache[0][0]
    _, D = x.shape
    N, T, H = dh.shape
    
    # initialization
    dx = np.zeros((N, T, D))
    dprev_h = np.zeros((N, H))
    dprev_c = np.zeros((N, H))
    dWx = np.zeros((D, 4*H))
    dWh = np.zeros((H, 4*H))
    db = np.zeros((4*H,))

    # backward pass
    for t in range(T-1, -1, -1):
        # backward step
        dx_t, dprev_h, dprev_c, dWx_t, dWh_t, db_t = lstm_step_backward(dh[:,t,:]+dprev_h, dprev_c, cache[t])
        
        # update the gradients
        dx[:,t,:] = dx_t
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    dh0 = dprev_h

    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    ##############################################################################
    #                               END OF YOUR CODE                             #
    ##############################################################################

    return dx, dh0, dWx, dWh, db
# ---- END VERBATIM ----


KIND = "layer"
EXPECTED_WRONG = []


def make():
    rng = np.random.default_rng(4)
    N, T, D, H = 3, 3, 5, 4
    x = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((N, H))
    Wx = 0.5 * rng.standard_normal((D, 4 * H))
    Wh = 0.5 * rng.standard_normal((H, 4 * H))
    b = 0.5 * rng.standard_normal(4 * H)
    dout = rng.standard_normal((N, T, H))
    return dict(forward=lstm_forward, backward=lstm_backward,
                inputs=dict(x=x, h0=h0, Wx=Wx, Wh=Wh, b=b), dout=dout)


def truth(made):
    import torch
    names = ["x", "h0", "Wx", "Wh", "b"]
    t = {k: torch.tensor(made["inputs"][k], dtype=torch.float64, requires_grad=True) for k in names}
    H = t["h0"].shape[1]
    h, c, hs = t["h0"], torch.zeros_like(t["h0"]), []
    for step in range(t["x"].shape[1]):
        a = t["x"][:, step, :] @ t["Wx"] + h @ t["Wh"] + t["b"]
        i, f, o = torch.sigmoid(a[:, :H]), torch.sigmoid(a[:, H:2 * H]), torch.sigmoid(a[:, 2 * H:3 * H])
        g = torch.tanh(a[:, 3 * H:])
        c = f * c + i * g
        h = o * torch.tanh(c)
        hs.append(h)
    out = torch.stack(hs, dim=1)
    loss = (out * torch.tensor(made["dout"], dtype=torch.float64)).sum()
    grads = torch.autograd.grad(loss, [t[k] for k in names])
    return {k: g.numpy() for k, g in zip(names, grads)}
