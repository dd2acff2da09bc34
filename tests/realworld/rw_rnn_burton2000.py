"""cs231n assignment 3 vanilla RNN over T steps (rnn_step_* in a loop, `h[:, t_step, :] = prev_h`), one student's solution.

Repository: Burton2000/CS231n-2017
Path: assignment3/cs231n/rnn_layers.py
Commit: 0a0bd0194d9d4606dc864272823c21dba7b0e0f9
License: none stated
Vendored verbatim: rnn_step_forward, rnn_step_backward, rnn_forward, rnn_backward, lines 12-193 of that file.
"""

from builtins import range

import numpy as np


# ---- VERBATIM Burton2000/CS231n-2017 assignment3/cs231n/rnn_layers.py@0a0bd0194d9d4606dc864272823c21dba7b0e0f9 ----
def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """
    Run the forward pass for a single timestep of a vanilla RNN that uses a tanh
    activation function.

    The input data has dimension D, the hidden state has dimension H, and we use
    a minibatch size of N.

    Inputs:
    - x: Input data for this timestep, of shape (N, D).
    - prev_h: Hidden state from previous timestep, of shape (N, H)
    - Wx: Weight matrix for input-to-hidden connections, of shape (D, H)
    - Wh: Weight matrix for hidden-to-hidden connections, of shape (H, H)
    - b: Biases of shape (H,)

    Returns a tuple of:
    - next_h: Next hidden state, of shape (N, H)
    - cache: Tuple of values needed for the backward pass.
    """
    next_h, cache = None, None
    ##############################################################################
    # TODO: Implement a single forward step for the vanilla RNN. Store the next  #
    # hidden state and any values you need for the backward pass in the next_h   #
    # and cache variables respectively.                                          #
    ##############################################################################

    x_Wx = np.dot(x, Wx)
    prev_h_Wh = np.dot(prev_h, Wh)

    # Calculate next hidden state = tanh(x*Wx + prev_H*Wh + b)
    next_h = np.tanh(x_Wx + prev_h_Wh + b)

    cache = (Wx, Wh, b, x, prev_h, next_h)
    ##############################################################################
    #                               END OF YOUR CODE                             #
    ##############################################################################
    return next_h, cache


def rnn_step_backward(dnext_h, cache):
    """
    Backward pass for a single timestep of a vanilla RNN.

    Inputs:
    - dnext_h: Gradient of loss with respect to next hidden state
    - cache: Cache object from the forward pass

    Returns a tuple of:
    - dx: Gradients of input data, of shape (N, D)
    - dprev_h: Gradients of previous hidden state, of shape (N, H)
    - dWx: Gradients of input-to-hidden weights, of shape (D, H)
    - dWh: Gradients of hidden-to-hidden weights, of shape (H, H)
    - db: Gradients of bias vector, of shape (H,)
    """
    dx, dprev_h, dWx, dWh, db = None, None, None, None, None
    ##############################################################################
    # TODO: Implement the backward pass for a single step of a vanilla RNN.      #
    #                                                                            #
    # HINT: For the tanh function, you can compute the local derivative in terms #
    # of the output value from tanh.                                             #
    ##############################################################################

    # Grab our cached variables needed for backprop.
    Wx, Wh, b, x, prev_h, next_h = cache

    # Backprop dnext_h through the tanh function first, derivative of tanh is 1-tanh^2.
    dtanh = (1 - np.square(next_h)) * dnext_h

    # Backprop dtanh to calculate the other derivates (no complicated derivatives here).
    db = np.sum(dtanh, axis=0)
    dWh = np.dot(prev_h.T, dtanh)
    dprev_h = np.dot(dtanh, Wh.T)
    dWx = np.dot(x.T, dtanh)
    dx = np.dot(dtanh, Wx.T)

    ##############################################################################
    #                               END OF YOUR CODE                             #
    ##############################################################################
    return dx, dprev_h, dWx, dWh, db


def rnn_forward(x, h0, Wx, Wh, b):
    """
    Run a vanilla RNN forward on an entire sequence of data. We assume an input
    sequence composed of T vectors, each of dimension D. The RNN uses a hidden
    size of H, and we work over a minibatch containing N sequences. After running
    the RNN forward, we return the hidden states for all timesteps.

    Inputs:
    - x: Input data for the entire timeseries, of shape (N, T, D).
    - h0: Initial hidden state, of shape (N, H)
    - Wx: Weight matrix for input-to-hidden connections, of shape (D, H)
    - Wh: Weight matrix for hidden-to-hidden connections, of shape (H, H)
    - b: Biases of shape (H,)

    Returns a tuple of:
    - h: Hidden states for the entire timeseries, of shape (N, T, H).
    - cache: Values needed in the backward pass
    """
    h, cache = None, None
    ##############################################################################
    # TODO: Implement forward pass for a vanilla RNN running on a sequence of    #
    # input data. You should use the rnn_step_forward function that you defined  #
    # above. You can use a for loop to help compute the forward pass.            #
    ##############################################################################

    N, T, D = x.shape
    N, H = h0.shape

    # Initialise h for holding our calculated hidden states.
    h = np.zeros([N, T, H])
    cache = []

    # Our initial hidden state
    prev_h = h0

    # RNN forward for T time steps.
    for t_step in range(T):
        cur_x = x[:, t_step, :]
        prev_h, cache_temp = rnn_step_forward(cur_x, prev_h, Wx, Wh, b)
        h[:, t_step, :] = prev_h
        cache.append(cache_temp)

    ##############################################################################
    #                               END OF YOUR CODE                             #
    ##############################################################################
    return h, cache


def rnn_backward(dh, cache):
    """
    Compute the backward pass for a vanilla RNN over an entire sequence of data.

    Inputs:
    - dh: Upstream gradients of all hidden states, of shape (N, T, H)

    Returns a tuple of:
    - dx: Gradient of inputs, of shape (N, T, D)
    - dh0: Gradient of initial hidden state, of shape (N, H)
    - dWx: Gradient of input-to-hidden weights, of shape (D, H)
    - dWh: Gradient of hidden-to-hidden weights, of shape (H, H)
    - db: Gradient of biases, of shape (H,)
    """
    dx, dh0, dWx, dWh, db = None, None, None, None, None
    ##############################################################################
    # TODO: Implement the backward pass for a vanilla RNN running an entire      #
    # sequence of data. You should use the rnn_step_backward function that you   #
    # defined above. You can use a for loop to help compute the backward pass.   #
    ##############################################################################

    Wx, Wh, b, x, prev_h, next_h = cache[0]
    N, T, H = dh.shape
    D, H = Wx.shape

    # Initialise gradients.
    dx = np.zeros([N, T, D])
    dWx = np.zeros_like(Wx)
    dWh = np.zeros_like(Wh)
    db = np.zeros_like(b)
    dprev_h = np.zeros_like(prev_h)

    # Backprop in time - start at last calculated time step and work back.
    for t_step in reversed(range(T)):

        # Add the current timestep upstream gradient to previous calculated dh
        cur_dh = dprev_h + dh[:,t_step,:]

        # Calculate gradients at this time step.
        dx[:, t_step, :], dprev_h, dWx_temp, dWh_temp, db_temp = rnn_step_backward(cur_dh, cache[t_step])

        # Add gradient contributions from each time step.
        dWx += dWx_temp
        dWh += dWh_temp
        db += db_temp

    # dh0 is the last hidden state gradient calculated.
    dh0 = dprev_h

    ##############################################################################
    #                               END OF YOUR CODE                             #
    ##############################################################################
    return dx, dh0, dWx, dWh, db
# ---- END VERBATIM ----


KIND = "layer"
EXPECTED_WRONG = []


def make():
    rng = np.random.default_rng(3)
    N, T, D, H = 3, 3, 5, 4
    x = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((N, H))
    Wx = 0.5 * rng.standard_normal((D, H))
    Wh = 0.5 * rng.standard_normal((H, H))
    b = 0.5 * rng.standard_normal(H)
    dout = rng.standard_normal((N, T, H))
    return dict(forward=rnn_forward, backward=rnn_backward,
                inputs=dict(x=x, h0=h0, Wx=Wx, Wh=Wh, b=b), dout=dout)


def truth(made):
    import torch
    names = ["x", "h0", "Wx", "Wh", "b"]
    t = {k: torch.tensor(made["inputs"][k], dtype=torch.float64, requires_grad=True) for k in names}
    h, hs = t["h0"], []
    for step in range(t["x"].shape[1]):
        h = torch.tanh(t["x"][:, step, :] @ t["Wx"] + h @ t["Wh"] + t["b"])
        hs.append(h)
    out = torch.stack(hs, dim=1)
    loss = (out * torch.tensor(made["dout"], dtype=torch.float64)).sum()
    grads = torch.autograd.grad(loss, [t[k] for k in names])
    return {k: g.numpy() for k, g in zip(names, grads)}
