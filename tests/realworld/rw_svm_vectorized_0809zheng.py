"""cs231n assignment 1 multiclass SVM loss, vectorized (`margins[np.arange(N), y] = 0`-style fancy-index writes), one student's solution whose dW adds a regularization term the loss never adds.

Repository: 0809zheng/CS231n-assignment2019
Path: assignment1/cs231n/classifiers/linear_svm.py
Commit: 3f5c853986637e2eba33f70c982fac7c618ff0f3
License: none stated
Vendored verbatim: svm_loss_vectorized, lines 74-121 of that file.
"""

from builtins import range

import numpy as np


# ---- VERBATIM 0809zheng/CS231n-assignment2019 assignment1/cs231n/classifiers/linear_svm.py@3f5c853986637e2eba33f70c982fac7c618ff0f3 ----
def svm_loss_vectorized(W, X, y, reg):
    """
    Structured SVM loss function, vectorized implementation.

    Inputs and outputs are the same as svm_loss_naive.
    """
    loss = 0.0
    dW = np.zeros(W.shape) # initialize the gradient as zero

    #############################################################################
    # TODO:                                                                     #
    # Implement a vectorized version of the structured SVM loss, storing the    #
    # result in loss.                                                           #
    #############################################################################
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

    num_train = X.shape[0]
    scores = X.dot(W)
    rightscore = scores[np.arange(num_train), y]
    scores = scores - rightscore.reshape(-1, 1) + 1.
    scores[scores <= 0] = 0
    scores[np.arange(num_train), y] = 0
    loss = np.sum(scores)/num_train

    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

    #############################################################################
    # TODO:                                                                     #
    # Implement a vectorized version of the gradient for the structured SVM     #
    # loss, storing the result in dW.                                           #
    #                                                                           #
    # Hint: Instead of computing the gradient from scratch, it may be easier    #
    # to reuse some of the intermediate values that you used to compute the     #
    # loss.                                                                     #
    #############################################################################
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

    C = W.shape[1]
    mask = np.zeros((num_train, C))
    scores[scores > 0] = 1
    mask += scores
    mask[np.arange(num_train), y] = -np.sum(scores,axis = 1)
    dW = X.T.dot(mask)/num_train
    dW += 2*reg*W

    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

    return loss, dW
# ---- END VERBATIM ----


KIND = "check"
# The loss it returns has no regularization term (it was never added), but dW gets
# `+= 2*reg*W`: with reg != 0 the gradient of the returned loss is wrong in W.
EXPECTED_WRONG = ["W"]


def _loss(params, X, y, reg):
    return svm_loss_vectorized(params["W"], X, y, reg)[0]


def _grad(params, X, y, reg):
    return {"W": svm_loss_vectorized(params["W"], X, y, reg)[1]}


def make():
    # Seeded so that every hinge margin s_j - s_y + 1 (j != y) is at least 0.05 away from
    # its kink at 0: centered differences never straddle a kink.
    rng = np.random.default_rng(0)
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
    N, C = X.shape[0], W.shape[1]
    scores = torch.tensor(X, dtype=torch.float64) @ W
    yt = torch.as_tensor(y, dtype=torch.long)
    correct = scores.gather(1, yt[:, None])
    not_y = 1.0 - torch.nn.functional.one_hot(yt, C).to(torch.float64)
    margins = torch.clamp(scores - correct + 1.0, min=0.0) * not_y
    loss = margins.sum() / N          # the vendored loss adds no regularization
    (gW,) = torch.autograd.grad(loss, (W,))
    return {"W": gW.numpy()}
