"""A CS224n (Winter 2019, assignment 2) student solution: word2vec naive-softmax and negative-sampling losses.

Repository: Clement25/Stanford-cs224n-2019winter-solution
Path: a2/word2vec.py
Commit: 0fc8d1d61586af17fe18e614363a0a3da80aad2e
License: none stated
Vendored verbatim: sigmoid, naiveSoftmaxLossAndGradient, getNegativeSamples and
negSamplingLossAndGradient, lines 10-135 of that file.

Also vendored verbatim from the same commit: the course-provided softmax, lines 15-43 of
a2/utils/utils.py (the file has no newline after line 43; one is added before the end
marker).  Negative samples are passed in, not drawn: negSamplingLossAndGradient calls
getNegativeSamples(outsideWordIdx, dataset, K), which asks dataset.sampleTokenIdx() K times,
so the harness passes a stand-in dataset (written here) that returns the given indices in
order, fresh for every call.  The indices repeat (as real draws from a small vocabulary do),
which the assignment says must be double counted.  The checked scalar is the sum of both
losses at one (center word, outside word) pair, so one check covers both hand-written
gradients.
"""

import random

import numpy as np

# ---- VERBATIM Clement25/Stanford-cs224n-2019winter-solution a2/utils/utils.py@0fc8d1d61586af17fe18e614363a0a3da80aad2e ----
def softmax(x):
    """Compute the softmax function for each row of the input x.
    It is crucial that this function is optimized for speed because
    it will be used frequently in later code. 

    Arguments:
    x -- A D dimensional vector or N x D dimensional numpy matrix.
    Return:
    x -- You are allowed to modify x in-place
    """
    orig_shape = x.shape

    if len(x.shape) > 1:
        # Matrix
        tmp = np.max(x, axis=1)
        x -= tmp.reshape((x.shape[0], 1))
        x = np.exp(x)
        tmp = np.sum(x, axis=1)
        x /= tmp.reshape((x.shape[0], 1))
    else:
        # Vector
        tmp = np.max(x)
        x -= tmp
        x = np.exp(x)
        tmp = np.sum(x)
        x /= tmp

    assert x.shape == orig_shape
    return x
# ---- END VERBATIM ----


# ---- VERBATIM Clement25/Stanford-cs224n-2019winter-solution a2/word2vec.py@0fc8d1d61586af17fe18e614363a0a3da80aad2e ----
def sigmoid(x):
    """
    Compute the sigmoid function for the input here.
    Arguments:
    x -- A scalar or numpy array.
    Return:
    s -- sigmoid(x)
    """
    ### YOUR CODE HERE
    s = 1/(1 + np.exp(-x))
    ### END YOUR CODE
    return s

def naiveSoftmaxLossAndGradient(
    centerWordVec,
    outsideWordIdx,
    outsideVectors,
    dataset
):
    """ Naive Softmax loss & gradient function for word2vec models

    Implement the naive softmax loss and gradients between a center word's 
    embedding and an outside word's embedding. This will be the building block
    for our word2vec models.

    Arguments:
    centerWordVec -- numpy ndarray, center word's embedding
                    (v_c in the pdf handout)
    outsideWordIdx -- integer, the index of the outside word
                    (o of u_o in the pdf handout)
    outsideVectors -- outside vectors (rows of matrix) for all words in vocab
                      (U in the pdf handout)
    dataset -- needed for negative sampling, unused here.

    Return:
    loss -- naive softmax loss
    gradCenterVec -- the gradient with respect to the center word vector
                     (dJ / dv_c in the pdf handout)
    gradOutsideVecs -- the gradient with respect to all the outside word vectors
                    (dJ / dU)
    """

    ### YOUR CODE HERE

    ### Please use the provided softmax function (imported earlier in this file)
    ### This numerically stable implementation helps you avoid issues pertaining
    ### to integer overflow. 

    y_o = softmax(np.matmul(outsideVectors,centerWordVec))
    loss = -np.log(y_o)[outsideWordIdx]
    
    y_pred = softmax(np.matmul(outsideVectors,centerWordVec))
    y_real = np.eye(outsideVectors.shape[0])[outsideWordIdx,:]
    gradCenterVec = np.matmul(np.transpose(outsideVectors),y_pred-y_real)

    y_mat = np.expand_dims(y_pred-y_real,-1)
    v_c = np.expand_dims(centerWordVec, 0)
    gradOutsideVecs = np.matmul(y_mat,v_c)

    """     y_hat = softmax(np.dot(centerWordVec, outsideVectors.T))
    delta = y_hat.copy()
    delta[outsideWordIdx] -= 1

    loss = -np.log(y_hat)[outsideWordIdx]
    gradCenterVec = np.dot(delta, outsideVectors)
    gradOutsideVecs = np.dot(delta[:, np.newaxis], centerWordVec[np.newaxis, :]) """
    ### END YOUR CODE

    return loss, gradCenterVec, gradOutsideVecs

def getNegativeSamples(outsideWordIdx, dataset, K):
    """ Samples K indexes which are not the outsideWordIdx """

    negSampleWordIndices = [None] * K
    for k in range(K):
        newidx = dataset.sampleTokenIdx()
        while newidx == outsideWordIdx:
            newidx = dataset.sampleTokenIdx()
        negSampleWordIndices[k] = newidx
    return negSampleWordIndices


def negSamplingLossAndGradient(
    centerWordVec,
    outsideWordIdx,
    outsideVectors,
    dataset,
    K=10
):
    """ Negative sampling loss function for word2vec models

    Implement the negative sampling loss and gradients for a centerWordVec
    and a outsideWordIdx word vector as a building block for word2vec
    models. K is the number of negative samples to take.

    Note: The same word may be negatively sampled multiple times. For
    example if an outside word is sampled twice, you shall have to
    double count the gradient with respect to this word. Thrice if
    it was sampled three times, and so forth.

    Arguments/Return Specifications: same as naiveSoftmaxLossAndGradient
    """

    # Negative sampling of words is done for you. Do not modify this if you
    # wish to match the autograder and receive points!
    negSampleWordIndices = getNegativeSamples(outsideWordIdx, dataset, K)
    indices = [outsideWordIdx] + negSampleWordIndices

    ### YOUR CODE HERE
    u_o = outsideVectors[outsideWordIdx,:]
    u_k = outsideVectors[negSampleWordIndices,:]
    loss = -np.log(sigmoid(np.matmul(u_o,centerWordVec)))-   \
        np.sum(np.log(sigmoid(np.matmul(-u_k,centerWordVec))))
    ### Please use your implementation of sigmoid in here.

    gradCenterVec = u_o*(sigmoid(np.matmul(u_o,centerWordVec))-1) + np.dot(np.transpose(u_k),sigmoid(np.matmul(u_k,centerWordVec)))

    mul1 = sigmoid(np.matmul(u_o,centerWordVec))-1
    mul1 = np.expand_dims(mul1,-1)
    mul2 = np.expand_dims(centerWordVec,0)
    gradOutsideVecs = np.zeros(outsideVectors.shape)
    gradOutsideVecs[outsideWordIdx,:] = np.matmul(mul1,mul2)
    for i,ind in enumerate(negSampleWordIndices):
        gradOutsideVecs[ind,:] += (np.expand_dims(sigmoid(np.matmul(u_k,centerWordVec)),-1)*mul2)[i,:]
    ### END YOUR CODE
    return loss, gradCenterVec, gradOutsideVecs
# ---- END VERBATIM ----


KIND = "check"
EXPECTED_WRONG = []


class _GivenNegatives:
    """Stands in for the assignment's StanfordSentiment dataset: yields fixed sample indices."""

    def __init__(self, indices):
        self._indices = list(indices)
        self._next = 0

    def sampleTokenIdx(self):
        idx = self._indices[self._next]
        self._next += 1
        return idx


def _loss(params, outsideWordIdx, negIndices):
    v_c, U = params["centerWordVec"], params["outsideVectors"]
    loss_naive = naiveSoftmaxLossAndGradient(v_c, outsideWordIdx, U, None)[0]
    loss_neg = negSamplingLossAndGradient(v_c, outsideWordIdx, U, _GivenNegatives(negIndices),
                                          K=len(negIndices))[0]
    return loss_naive + loss_neg


def _grad(params, outsideWordIdx, negIndices):
    v_c, U = params["centerWordVec"], params["outsideVectors"]
    _, gc1, go1 = naiveSoftmaxLossAndGradient(v_c, outsideWordIdx, U, None)
    _, gc2, go2 = negSamplingLossAndGradient(v_c, outsideWordIdx, U, _GivenNegatives(negIndices),
                                             K=len(negIndices))
    return {"centerWordVec": gc1 + gc2, "outsideVectors": go1 + go2}


def make():
    rng = np.random.RandomState(6)
    vocab, dim, K = 7, 4, 10
    centerWordVec = rng.randn(dim)
    outsideVectors = rng.randn(vocab, dim)
    outsideWordIdx = 2
    # K draws from the other six words, with repeats (e.g. 4 appears three times)
    negIndices = (4, 0, 5, 4, 1, 6, 3, 4, 0, 5)   # Python ints, as dataset.sampleTokenIdx() gives
    assert len(negIndices) == K and outsideWordIdx not in negIndices
    return dict(loss=_loss, grad=_grad,
                params={"centerWordVec": centerWordVec, "outsideVectors": outsideVectors},
                args=(outsideWordIdx, negIndices))


def truth(made):
    import torch

    o, neg = made["args"]
    v = torch.tensor(made["params"]["centerWordVec"], dtype=torch.float64, requires_grad=True)
    U = torch.tensor(made["params"]["outsideVectors"], dtype=torch.float64, requires_grad=True)
    scores = U @ v
    naive = -torch.log_softmax(scores, dim=0)[o]
    neg_idx = torch.tensor([int(i) for i in neg], dtype=torch.long)
    # J_neg = -log sigma(u_o . v) - sum_k log sigma(-u_k . v), each sampled k counted every time
    negsamp = -torch.nn.functional.logsigmoid(U[o] @ v) \
        - torch.sum(torch.nn.functional.logsigmoid(-(U[neg_idx] @ v)))
    gv, gU = torch.autograd.grad(naive + negsamp, [v, U])
    return {"centerWordVec": gv.detach().numpy(), "outsideVectors": gU.detach().numpy()}
