"""cs231n assignment 3 word embedding (forward by a double loop of row writes, backward by `np.add.at`), one student's solution.

Repository: CalciferZh/cs231n
Path: assignment3/cs231n/rnn_layers.py
Commit: 4b08a480973a21fd59d3576a84c69bf3074399ef
License: none stated
Vendored verbatim: word_embedding_forward, word_embedding_backward, lines 170-234 of that file.
"""

from builtins import range

import numpy as np


# ---- VERBATIM CalciferZh/cs231n assignment3/cs231n/rnn_layers.py@4b08a480973a21fd59d3576a84c69bf3074399ef ----
def word_embedding_forward(x, W):
    """
    Forward pass for word embeddings. We operate on minibatches of size N where
    each sequence has length T. We assume a vocabulary of V words, assigning each
    to a vector of dimension D.

    Inputs:
    - x: Integer array of shape (N, T) giving indices of words. Each element idx
      of x must be in the range 0 <= idx < V.
    - W: Weight matrix of shape (V, D) giving word vectors for all words.

    Returns a tuple of:
    - out: Array of shape (N, T, D) giving word vectors for all input words.
    - cache: Values needed for the backward pass
    """
    out, cache = None, None
    ##############################################################################
    # TODO: Implement the forward pass for word embeddings.                      #
    #                                                                            #
    # HINT: This can be done in one line using NumPy's array indexing.           #
    ##############################################################################
    N, T = x.shape
    V, D = W.shape
    out = np.zeros((N, T, D))

    for i in range(N):
        for j in range(T):
            out[i,j] = W[x[i,j]]

    cache = (x, W.shape)
    ##############################################################################
    #                               END OF YOUR CODE                             #
    ##############################################################################
    return out, cache


def word_embedding_backward(dout, cache):
    """
    Backward pass for word embeddings. We cannot back-propagate into the words
    since they are integers, so we only return gradient for the word embedding
    matrix.

    HINT: Look up the function np.add.at

    Inputs:
    - dout: Upstream gradients of shape (N, T, D)
    - cache: Values from the forward pass

    Returns:
    - dW: Gradient of word embedding matrix, of shape (V, D).
    """
    dW = None
    ##############################################################################
    # TODO: Implement the backward pass for word embeddings.                     #
    #                                                                            #
    # Note that Words can appear more than once in a sequence.                   #
    # HINT: Look up the function np.add.at                                       #
    ##############################################################################
    x, W_shape = cache
    dW = np.zeros(W_shape)
    np.add.at(dW, x, dout)
    ##############################################################################
    #                               END OF YOUR CODE                             #
    ##############################################################################
    return dW
# ---- END VERBATIM ----


KIND = "layer"
EXPECTED_WRONG = []


def make():
    rng = np.random.default_rng(6)
    N, T, V, D = 3, 4, 5, 3
    x = rng.integers(0, V, size=(N, T))
    x[0, 0] = x[1, 2] = x[2, 3] = 2     # a word repeated across the batch (np.add.at accumulates)
    W = rng.standard_normal((V, D))
    dout = rng.standard_normal((N, T, D))
    return dict(forward=word_embedding_forward, backward=word_embedding_backward,
                inputs=dict(x=x, W=W), dout=dout)


def truth(made):
    import torch
    x = torch.as_tensor(made["inputs"]["x"], dtype=torch.long)
    W = torch.tensor(made["inputs"]["W"], dtype=torch.float64, requires_grad=True)
    out = torch.nn.functional.embedding(x, W)
    loss = (out * torch.tensor(made["dout"], dtype=torch.float64)).sum()
    (gW,) = torch.autograd.grad(loss, (W,))
    return {"W": gW.numpy()}
