"""cs231n assignment 1 softmax loss, naive (loops over examples and classes), one student's solution with `np.log10` in the loss.

Repository: AndyTsangChun/CS231n
Path: assignment1/cs231n/classifiers/softmax.py
Commit: a7b1b013c3e85f8460b5618d658399391582ca58
License: none stated
Vendored verbatim: softmax_loss_naive, lines 4-54 of that file.
"""

import numpy as np
from builtins import range as xrange  # the file is Python 2 (`xrange`)


# ---- VERBATIM AndyTsangChun/CS231n assignment1/cs231n/classifiers/softmax.py@a7b1b013c3e85f8460b5618d658399391582ca58 ----
def softmax_loss_naive(W, X, y, reg):
  """
  Softmax loss function, naive implementation (with loops)

  Inputs have dimension D, there are C classes, and we operate on minibatches
  of N examples.

  Inputs:
  - W: A numpy array of shape (D, C) containing weights.
  - X: A numpy array of shape (N, D) containing a minibatch of data.
  - y: A numpy array of shape (N,) containing training labels; y[i] = c means
    that X[i] has label c, where 0 <= c < C.
  - reg: (float) regularization strength

  Returns a tuple of:
  - loss as single float
  - gradient with respect to weights W; an array of same shape as W
  """
  # Initialize the loss and gradient to zero.
  loss = 0.0
  dW = np.zeros_like(W)
  num_classes = W.shape[1]
  num_train = X.shape[0] #500
  #############################################################################
  # TODO: Compute the softmax loss and its gradient using explicit loops.     #
  # Store the loss in loss and the gradient in dW. If you are not careful     #
  # here, it is easy to run into numeric instability. Don't forget the        #
  # regularization!                                                           #
  #############################################################################
  for i in xrange(num_train):
    f = X[i].dot(W) #score of each class (C,)
    f -= np.max(f) #From cs231n notes, shift the whole f b4 exp, prevent blowup
    exp_f = np.exp(f) #exp all of them
    correct_class_f = exp_f[y[i]] #y[i] = label of ith example, return f of the correct class
    prob = correct_class_f / np.sum(exp_f) #normalise all class
    loss += -np.log10(prob) #Loss function of Softmax
    #Calcuat dW
    for c in range(num_classes):
        prob_i = exp_f[c] / np.sum(exp_f)
        dW[:,c] += (prob_i - (c==y[i])) * X[i]
    
  loss /= num_train
  dW /= num_train
  # Add regularization to the loss.
  loss += 0.5 * reg * np.sum(W * W)
  dW += reg*W
  #############################################################################
  #                          END OF YOUR CODE                                 #
  #############################################################################

  return loss, dW
# ---- END VERBATIM ----


KIND = "check"
# The loss uses np.log10 for the cross-entropy, the gradient is the natural-log one
# (p - 1[y]) * x: the data term of dW is ln(10) times too large.
EXPECTED_WRONG = ["W"]


def _loss(params, X, y, reg):
    return softmax_loss_naive(params["W"], X, y, reg)[0]


def _grad(params, X, y, reg):
    return {"W": softmax_loss_naive(params["W"], X, y, reg)[1]}


def make():
    rng = np.random.default_rng(231)
    N, D, C = 5, 4, 3
    W = rng.standard_normal((D, C))
    X = rng.standard_normal((N, D))
    y = rng.integers(0, C, size=N)
    reg = 0.1
    return dict(loss=_loss, grad=_grad, params={"W": W}, args=(X, y, reg))


def truth(made):
    import torch
    X, y, reg = made["args"]
    W = torch.tensor(made["params"]["W"], dtype=torch.float64, requires_grad=True)
    scores = torch.tensor(X, dtype=torch.float64) @ W
    logp = torch.log_softmax(scores, dim=1)
    yt = torch.as_tensor(y, dtype=torch.long)
    nll10 = -logp.gather(1, yt[:, None]).squeeze(1) / torch.log(torch.tensor(10.0, dtype=torch.float64))
    loss = nll10.mean() + 0.5 * reg * (W * W).sum()
    (gW,) = torch.autograd.grad(loss, (W,))
    return {"W": gW.numpy()}
