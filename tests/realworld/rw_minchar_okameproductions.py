"""Karpathy's min-char-rnn `lossFun` (dict-per-timestep forward, `xs[t][inputs[t]] = 1`, BPTT with gradient clipping), a Python 3 copy of the gist.

Repository: OkameProductions/min-char-rnn
Path: min-char-rnn.py
Commit: ee07b1cf7e7d5c8ac538f651f187280aff6696be
License: none stated in the repository; the file's header says "BSD License" (Andrej Karpathy's gist)
Vendored verbatim: lossFun, lines 43-77 of that file.
"""

import numpy as np


# ---- VERBATIM OkameProductions/min-char-rnn min-char-rnn.py@ee07b1cf7e7d5c8ac538f651f187280aff6696be ----
def lossFun(inputs, targets, hprev):
  """
  inputs,targets are both list of integers.
  hprev is Hx1 array of initial hidden state
  returns the loss, gradients on model parameters, and last hidden state
  """
  xs, hs, ys, ps = {}, {}, {}, {}
  hs[-1] = np.copy(hprev)
  loss = 0
  # forward pass
  for t in range(len(inputs)):
    xs[t] = np.zeros((vocab_size,1)) # encode in 1-of-k representation
    xs[t][inputs[t]] = 1
    hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t-1]) + bh) # hidden state
    ys[t] = np.dot(Why, hs[t]) + by # unnormalized log probabilities for next chars
    ps[t] = np.exp(ys[t]) / np.sum(np.exp(ys[t])) # probabilities for next chars
    loss += -np.log(ps[t][targets[t],0]) # softmax (cross-entropy loss)
  # backward pass: compute gradients going backwards
  dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
  dbh, dby = np.zeros_like(bh), np.zeros_like(by)
  dhnext = np.zeros_like(hs[0])
  for t in reversed(range(len(inputs))):
    dy = np.copy(ps[t])
    dy[targets[t]] -= 1 # backprop into y. see http://cs231n.github.io/neural-networks-case-study/#grad if confused here
    dWhy += np.dot(dy, hs[t].T)
    dby += dy
    dh = np.dot(Why.T, dy) + dhnext # backprop into h
    dhraw = (1 - hs[t] * hs[t]) * dh # backprop through tanh nonlinearity
    dbh += dhraw
    dWxh += np.dot(dhraw, xs[t].T)
    dWhh += np.dot(dhraw, hs[t-1].T)
    dhnext = np.dot(Whh.T, dhraw)
  for dparam in [dWxh, dWhh, dWhy, dbh, dby]:
    np.clip(dparam, -5, 5, out=dparam) # clip to mitigate exploding gradients
  return loss, dWxh, dWhh, dWhy, dbh, dby, hs[len(inputs)-1]
# ---- END VERBATIM ----


KIND = "check"
EXPECTED_WRONG = []

# lossFun reads the model from module globals, as in the script: vocab_size and the
# parameters Wxh, Whh, Why, bh, by. The harness binds them before each call.
vocab_size = 5
Wxh = Whh = Why = bh = by = None


def _bind(params):
    global Wxh, Whh, Why, bh, by
    Wxh, Whh, Why, bh, by = params["Wxh"], params["Whh"], params["Why"], params["bh"], params["by"]


def _loss(params, inputs, targets, hprev):
    _bind(params)
    return lossFun(inputs, targets, hprev)[0]


def _grad(params, inputs, targets, hprev):
    _bind(params)
    loss, dWxh, dWhh, dWhy, dbh, dby, h = lossFun(inputs, targets, hprev)
    return {"Wxh": dWxh, "Whh": dWhh, "Why": dWhy, "bh": dbh, "by": dby}


def make():
    # Weights at 0.5 scale (not the script's 0.01) so that every block has a sizeable
    # gradient; all gradient entries stay well inside the script's clip range [-5, 5].
    rng = np.random.default_rng(7)
    H, T = 4, 4
    params = {"Wxh": 0.5 * rng.standard_normal((H, vocab_size)),
              "Whh": 0.5 * rng.standard_normal((H, H)),
              "Why": 0.5 * rng.standard_normal((vocab_size, H)),
              "bh": 0.5 * rng.standard_normal((H, 1)),
              "by": 0.5 * rng.standard_normal((vocab_size, 1))}
    chars = [int(i) for i in rng.integers(0, vocab_size, size=T + 1)]
    inputs, targets = chars[:-1], chars[1:]          # lists of ints, as the script builds them
    hprev = 0.5 * rng.standard_normal((H, 1))
    return dict(loss=_loss, grad=_grad, params=params, args=(inputs, targets, hprev))


def truth(made):
    import torch
    inputs, targets, hprev = made["args"]
    names = ["Wxh", "Whh", "Why", "bh", "by"]
    p = {k: torch.tensor(made["params"][k], dtype=torch.float64, requires_grad=True) for k in names}
    V = p["Wxh"].shape[1]
    h = torch.tensor(hprev, dtype=torch.float64)
    loss = torch.zeros((), dtype=torch.float64)
    for i, tgt in zip(inputs, targets):
        onehot = torch.zeros((V, 1), dtype=torch.float64)
        onehot[i, 0] = 1.0
        h = torch.tanh(p["Wxh"] @ onehot + p["Whh"] @ h + p["bh"])
        logits = (p["Why"] @ h + p["by"])[:, 0]
        loss = loss - torch.log_softmax(logits, dim=0)[tgt]
    grads = torch.autograd.grad(loss, [p[k] for k in names])
    return {k: g.numpy() for k, g in zip(names, grads)}
