"""deeplearning.ai "Building your Recurrent Neural Network - Step by Step" LSTM (lstm_cell_* in a loop, `a[:, :, t] = a_next`), one learner's solution split over three files.

Repository: ernestng11/rnn-from-scratch
Path: rnn_utils.py, lstm_forward.py, lstm_backward.py
Commit: bcb64cd02c4c99a96d91735bee392633294e3e6e
License: none stated
Vendored verbatim (one block per file, in this order): softmax, sigmoid, lines 4-10 of rnn_utils.py; lstm_cell_forward, lstm_forward, lines 4-81 of lstm_forward.py; lstm_cell_backward, lstm_backward, lines 1-134 of lstm_backward.py.
"""

import numpy as np


# ---- VERBATIM ernestng11/rnn-from-scratch rnn_utils.py@bcb64cd02c4c99a96d91735bee392633294e3e6e ----
def softmax(x):
    e_x = np.exp(x - np.max(x))
    return e_x / e_x.sum(axis=0)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))
# ---- END VERBATIM ----


# ---- VERBATIM ernestng11/rnn-from-scratch lstm_forward.py@bcb64cd02c4c99a96d91735bee392633294e3e6e ----
def lstm_cell_forward(xt, a_prev, c_prev, parameters):
    # Retrieve parameters from "parameters"
    Wf = parameters["Wf"]  # forget gate weight
    bf = parameters["bf"]
    Wi = parameters["Wi"]  # update gate weight (notice the variable name)
    bi = parameters["bi"]  # (notice the variable name)
    Wc = parameters["Wc"]  # candidate value weight
    bc = parameters["bc"]
    Wo = parameters["Wo"]  # output gate weight
    bo = parameters["bo"]
    Wy = parameters["Wy"]  # prediction weight
    by = parameters["by"]

    # Retrieve dimensions from shapes of xt and Wy
    n_x, m = xt.shape
    n_y, n_a = Wy.shape

    # Concatenate a_prev and xt
    concat = np.concatenate((a_prev, xt), axis=0)

    # Compute values for ft (forget gate), it (update gate),
    # cct (candidate value), c_next (cell state),
    # ot (output gate), a_next (hidden state)
    ft = sigmoid(np.dot(Wf, concat) + bf)        # forget gate
    it = sigmoid(np.dot(Wi, concat) + bi)        # update gate
    cct = np.tanh(np.dot(Wc, concat) + bc)       # candidate value
    c_next = ft * c_prev + it * cct    # cell state
    ot = sigmoid(np.dot(Wo, concat) + bo)        # output gate
    a_next = ot * np.tanh(c_next)    # hidden state

    # Compute prediction of the LSTM cell
    yt_pred = softmax(np.dot(Wy, a_next) + by)

    # store values needed for backward propagation in cache
    cache = (a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters)

    return a_next, c_next, yt_pred, cache


def lstm_forward(x, a0, parameters):
    # Initialize "caches", which will track the list of all the caches
    caches = []

    # saving parameters['Wy'] in a local variable
    Wy = parameters['Wy']
    # Retrieve dimensions from shapes of x and parameters['Wy']
    n_x, m, T_x = x.shape
    n_y, n_a = Wy.shape

    # initialize "a", "c" and "y" with zeros
    a = np.zeros((n_a, m, T_x))
    c = np.zeros((n_a, m, T_x))
    y = np.zeros((n_y, m, T_x))

    # Initialize a_next and c_next
    a_next = a0
    c_next = np.zeros((n_a, m))

    # loop over all time-steps
    for t in range(T_x):
        # Get the 2D slice 'xt' from the 3D input 'x' at time step 't'
        xt = x[:, :, t]
        # Update next hidden state, next memory state, compute the prediction, get the cache
        a_next, c_next, yt, cache = lstm_cell_forward(
            xt, a_next, c_next, parameters)
        # Save the value of the new "next" hidden state in a
        a[:, :, t] = a_next
        # Save the value of the next cell state
        c[:, :, t] = c_next
        # Save the value of the prediction in y
        y[:, :, t] = yt
        # Append the cache into caches
        caches.append(cache)

    # store values needed for backward propagation in cache
    caches = (caches, x)

    return a, y, c, caches
# ---- END VERBATIM ----


# ---- VERBATIM ernestng11/rnn-from-scratch lstm_backward.py@bcb64cd02c4c99a96d91735bee392633294e3e6e ----
def lstm_cell_backward(da_next, dc_next, cache):
    """
    Implement the backward pass for the LSTM-cell (single time-step).

    Arguments:
    da_next -- Gradients of next hidden state, of shape (n_a, m)
    dc_next -- Gradients of next cell state, of shape (n_a, m)
    cache -- cache storing information from the forward pass

    Returns:
    gradients -- python dictionary containing:
                        dxt -- Gradient of input data at time-step t, of shape (n_x, m)
                        da_prev -- Gradient w.r.t. the previous hidden state, numpy array of shape (n_a, m)
                        dc_prev -- Gradient w.r.t. the previous memory state, of shape (n_a, m, T_x)
                        dWf -- Gradient w.r.t. the weight matrix of the forget gate, numpy array of shape (n_a, n_a + n_x)
                        dWi -- Gradient w.r.t. the weight matrix of the update gate, numpy array of shape (n_a, n_a + n_x)
                        dWc -- Gradient w.r.t. the weight matrix of the memory gate, numpy array of shape (n_a, n_a + n_x)
                        dWo -- Gradient w.r.t. the weight matrix of the output gate, numpy array of shape (n_a, n_a + n_x)
                        dbf -- Gradient w.r.t. biases of the forget gate, of shape (n_a, 1)
                        dbi -- Gradient w.r.t. biases of the update gate, of shape (n_a, 1)
                        dbc -- Gradient w.r.t. biases of the memory gate, of shape (n_a, 1)
                        dbo -- Gradient w.r.t. biases of the output gate, of shape (n_a, 1)
    """

    # Retrieve information from "cache"
    (a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters) = cache

    # Retrieve dimensions from xt's and a_next's shape
    n_x, m = xt.shape
    n_a, m = a_next.shape

    dot = da_next * np.tanh(c_next) * ot * (1 - ot)
    dcct = (dc_next * it + ot * (1 - np.square(np.tanh(c_next)))
            * it * da_next) * (1 - np.square(cct))
    dit = (dc_next * cct + ot * (1 - np.square(np.tanh(c_next)))
           * cct * da_next) * it * (1 - it)
    dft = (dc_next * c_prev + ot * (1 - np.square(np.tanh(c_next)))
           * c_prev * da_next) * ft * (1 - ft)

    concat = np.concatenate((a_prev, xt), axis=0)

    dWf = np.dot(dft, concat.T)
    dWi = np.dot(dit, concat.T)
    dWc = np.dot(dcct, concat.T)
    dWo = np.dot(dot, concat.T)
    dbf = np.sum(dft, axis=1, keepdims=True)
    dbi = np.sum(dit, axis=1, keepdims=True)
    dbc = np.sum(dcct, axis=1,  keepdims=True)
    dbo = np.sum(dot, axis=1, keepdims=True)

    # Compute derivatives w.r.t previous hidden state, previous memory state and input.
    da_prev = np.dot(parameters['Wf'][:, :n_a].T, dft) + np.dot(parameters['Wi'][:, :n_a].T, dit) + \
        np.dot(parameters['Wc'][:, :n_a].T, dcct) + \
        np.dot(parameters['Wo'][:, :n_a].T, dot)
    dc_prev = dc_next * ft + ot * \
        (1 - np.square(np.tanh(c_next))) * ft * da_next
    dxt = np.dot(parameters['Wf'][:, n_a:].T, dft) + np.dot(parameters['Wi'][:, n_a:].T, dit) + \
        np.dot(parameters['Wc'][:, n_a:].T, dcct) + \
        np.dot(parameters['Wo'][:, n_a:].T, dot)

    # Save gradients in dictionary
    gradients = {"dxt": dxt, "da_prev": da_prev, "dc_prev": dc_prev, "dWf": dWf, "dbf": dbf, "dWi": dWi, "dbi": dbi,
                 "dWc": dWc, "dbc": dbc, "dWo": dWo, "dbo": dbo}

    return gradients


def lstm_backward(da, caches):
    """
    Implement the backward pass for the RNN with LSTM-cell (over a whole sequence).

    Arguments:
    da -- Gradients w.r.t the hidden states, numpy-array of shape (n_a, m, T_x)
    dc -- Gradients w.r.t the memory states, numpy-array of shape (n_a, m, T_x)
    caches -- cache storing information from the forward pass (lstm_forward)

    Returns:
    gradients -- python dictionary containing:
                        dx -- Gradient of inputs, of shape (n_x, m, T_x)
                        da0 -- Gradient w.r.t. the previous hidden state, numpy array of shape (n_a, m)
                        dWf -- Gradient w.r.t. the weight matrix of the forget gate, numpy array of shape (n_a, n_a + n_x)
                        dWi -- Gradient w.r.t. the weight matrix of the update gate, numpy array of shape (n_a, n_a + n_x)
                        dWc -- Gradient w.r.t. the weight matrix of the memory gate, numpy array of shape (n_a, n_a + n_x)
                        dWo -- Gradient w.r.t. the weight matrix of the save gate, numpy array of shape (n_a, n_a + n_x)
                        dbf -- Gradient w.r.t. biases of the forget gate, of shape (n_a, 1)
                        dbi -- Gradient w.r.t. biases of the update gate, of shape (n_a, 1)
                        dbc -- Gradient w.r.t. biases of the memory gate, of shape (n_a, 1)
                        dbo -- Gradient w.r.t. biases of the save gate, of shape (n_a, 1)
    """

    # Retrieve values from the first cache (t=1) of caches.
    (caches, x) = caches
    (a1, c1, a0, c0, f1, i1, cc1, o1, x1, parameters) = caches[0]

    # Retrieve dimensions from da's and x1's shapes
    n_a, m, T_x = da.shape
    n_x, m = x1.shape

    # initialize the gradients with the right sizes
    dx = np.zeros((n_x, m, T_x))
    da0 = np.zeros((n_a, m))
    da_prevt = np.zeros(da0.shape)
    dc_prevt = np.zeros(da0.shape)
    dWf = np.zeros((n_a, n_a + n_x))
    dWi = np.zeros(dWf.shape)
    dWc = np.zeros(dWf.shape)
    dWo = np.zeros(dWf.shape)
    dbf = np.zeros((n_a, 1))
    dbi = np.zeros(dbf.shape)
    dbc = np.zeros(dbf.shape)
    dbo = np.zeros(dbf.shape)

    # loop back over the whole sequence
    for t in reversed(range(T_x)):
        # Compute all gradients using lstm_cell_backward
        gradients = lstm_cell_backward(da[:, :, t], dc_prevt, caches[t])
        # Store or add the gradient to the parameters' previous step's gradient
        dx[:, :, t] = gradients["dxt"]
        dWf += gradients["dWf"]
        dWi += gradients["dWi"]
        dWc += gradients["dWc"]
        dWo += gradients["dWo"]
        dbf += gradients["dbf"]
        dbi += gradients["dbi"]
        dbc += gradients["dbc"]
        dbo += gradients["dbo"]
    # Set the first activation's gradient to the backpropagated gradient da_prev.
    da0 = gradients["da_prev"]

    # Store the gradients in a python dictionary
    gradients = {"dx": dx, "da0": da0, "dWf": dWf, "dbf": dbf, "dWi": dWi, "dbi": dbi,
                 "dWc": dWc, "dbc": dbc, "dWo": dWo, "dbo": dbo}

    return gradients
# ---- END VERBATIM ----


KIND = "layer"
# lstm_backward feeds `da[:, :, t]` alone to lstm_cell_backward and never updates
# `da_prevt` / `dc_prevt` (dc_prevt stays zero): the gradient through the recurrence is
# dropped, so every block except the last step's contributions is wrong.
EXPECTED_WRONG = ["x", "a0", "Wf", "bf", "Wi", "bi", "Wc", "bc", "Wo", "bo"]

_CHECKED = ["x", "a0", "Wf", "bf", "Wi", "bi", "Wc", "bc", "Wo", "bo"]


def _forward(x, a0, Wf, bf, Wi, bi, Wc, bc, Wo, bo, Wy, by):
    parameters = {"Wf": Wf, "bf": bf, "Wi": Wi, "bi": bi, "Wc": Wc, "bc": bc,
                  "Wo": Wo, "bo": bo, "Wy": Wy, "by": by}
    a, y, c, caches = lstm_forward(x, a0, parameters)
    return a, caches


def _backward(dout, cache):
    gradients = lstm_backward(dout, cache)
    return {"x": gradients["dx"], "a0": gradients["da0"],
            "Wf": gradients["dWf"], "bf": gradients["dbf"], "Wi": gradients["dWi"],
            "bi": gradients["dbi"], "Wc": gradients["dWc"], "bc": gradients["dbc"],
            "Wo": gradients["dWo"], "bo": gradients["dbo"]}


def make():
    # The layer's output is the hidden states a (n_a, m, T_x); the prediction head Wy, by
    # feeds only y_pred, so it is passed through unchecked (wrt).
    rng = np.random.default_rng(8)
    n_x, m, T_x, n_a, n_y = 3, 4, 3, 5, 2
    inputs = dict(x=rng.standard_normal((n_x, m, T_x)), a0=rng.standard_normal((n_a, m)))
    for gate in "fico":
        inputs["W" + gate] = 0.5 * rng.standard_normal((n_a, n_a + n_x))
        inputs["b" + gate] = 0.5 * rng.standard_normal((n_a, 1))
    inputs["Wy"] = rng.standard_normal((n_y, n_a))
    inputs["by"] = rng.standard_normal((n_y, 1))
    inputs["wrt"] = list(_CHECKED)
    dout = rng.standard_normal((n_a, m, T_x))
    return dict(forward=_forward, backward=_backward, inputs=inputs, dout=dout)


def truth(made):
    import torch
    t = {k: torch.tensor(made["inputs"][k], dtype=torch.float64, requires_grad=True) for k in _CHECKED}
    a, c = t["a0"], torch.zeros_like(t["a0"])
    outs = []
    for step in range(t["x"].shape[2]):
        concat = torch.cat([a, t["x"][:, :, step]], dim=0)
        f = torch.sigmoid(t["Wf"] @ concat + t["bf"])
        i = torch.sigmoid(t["Wi"] @ concat + t["bi"])
        cc = torch.tanh(t["Wc"] @ concat + t["bc"])
        c = f * c + i * cc
        o = torch.sigmoid(t["Wo"] @ concat + t["bo"])
        a = o * torch.tanh(c)
        outs.append(a)
    out = torch.stack(outs, dim=2)
    loss = (out * torch.tensor(made["dout"], dtype=torch.float64)).sum()
    grads = torch.autograd.grad(loss, [t[k] for k in _CHECKED])
    return {k: g.numpy() for k, g in zip(_CHECKED, grads)}
