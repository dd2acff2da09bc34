"""scikit-learn's binary logistic regression objective (pre-1.1): _logistic_loss_and_grad with intercept.

Repository: scikit-learn/scikit-learn
Path: sklearn/linear_model/logistic.py
Commit: a5743ed36fbd3fbc8e351bdab16561fbfca7dfa1
License: BSD-3-Clause
Vendored verbatim: _intercept_dot and _logistic_loss_and_grad, lines 43-129 of that file.

Also vendored verbatim from the same commit: safe_sparse_dot, lines 117-142 of
sklearn/utils/extmath.py.  Not vendored: sklearn.utils.extmath.log_logistic, whose kernel is
Cython (_log_logistic_sigmoid); it is bound above the block to scipy.special.log_expit, which
computes the same log(1 / (1 + exp(-x))) elementwise, stably, for the 1-D input used here.
expit is imported from scipy.special exactly as the file does.  The files were copied from a
full-history mirror of scikit-learn
(srodif-old/swe-bench-verified-scikit-learn__scikit-learn-14087, whose HEAD is this upstream
commit, PR #14086) because the scikit-learn snapshot is over the fetch size limit here.
"""

import numpy as np
from scipy import sparse
from scipy.special import expit
from scipy.special import log_expit as log_logistic  # stands in for sklearn.utils.extmath.log_logistic

# ---- VERBATIM scikit-learn/scikit-learn sklearn/utils/extmath.py@a5743ed36fbd3fbc8e351bdab16561fbfca7dfa1 ----
def safe_sparse_dot(a, b, dense_output=False):
    """Dot product that handle the sparse matrix case correctly

    Uses BLAS GEMM as replacement for numpy.dot where possible
    to avoid unnecessary copies.

    Parameters
    ----------
    a : array or sparse matrix
    b : array or sparse matrix
    dense_output : boolean, default False
        When False, either ``a`` or ``b`` being sparse will yield sparse
        output. When True, output will always be an array.

    Returns
    -------
    dot_product : array or sparse matrix
        sparse if ``a`` or ``b`` is sparse and ``dense_output=False``.
    """
    if sparse.issparse(a) or sparse.issparse(b):
        ret = a * b
        if dense_output and hasattr(ret, "toarray"):
            ret = ret.toarray()
        return ret
    else:
        return np.dot(a, b)
# ---- END VERBATIM ----


# ---- VERBATIM scikit-learn/scikit-learn sklearn/linear_model/logistic.py@a5743ed36fbd3fbc8e351bdab16561fbfca7dfa1 ----
def _intercept_dot(w, X, y):
    """Computes y * np.dot(X, w).

    It takes into consideration if the intercept should be fit or not.

    Parameters
    ----------
    w : ndarray, shape (n_features,) or (n_features + 1,)
        Coefficient vector.

    X : {array-like, sparse matrix}, shape (n_samples, n_features)
        Training data.

    y : ndarray, shape (n_samples,)
        Array of labels.

    Returns
    -------
    w : ndarray, shape (n_features,)
        Coefficient vector without the intercept weight (w[-1]) if the
        intercept should be fit. Unchanged otherwise.

    c : float
        The intercept.

    yz : float
        y * np.dot(X, w).
    """
    c = 0.
    if w.size == X.shape[1] + 1:
        c = w[-1]
        w = w[:-1]

    z = safe_sparse_dot(X, w) + c
    yz = y * z
    return w, c, yz


def _logistic_loss_and_grad(w, X, y, alpha, sample_weight=None):
    """Computes the logistic loss and gradient.

    Parameters
    ----------
    w : ndarray, shape (n_features,) or (n_features + 1,)
        Coefficient vector.

    X : {array-like, sparse matrix}, shape (n_samples, n_features)
        Training data.

    y : ndarray, shape (n_samples,)
        Array of labels.

    alpha : float
        Regularization parameter. alpha is equal to 1 / C.

    sample_weight : array-like, shape (n_samples,) optional
        Array of weights that are assigned to individual samples.
        If not provided, then each sample is given unit weight.

    Returns
    -------
    out : float
        Logistic loss.

    grad : ndarray, shape (n_features,) or (n_features + 1,)
        Logistic gradient.
    """
    n_samples, n_features = X.shape
    grad = np.empty_like(w)

    w, c, yz = _intercept_dot(w, X, y)

    if sample_weight is None:
        sample_weight = np.ones(n_samples)

    # Logistic loss is the negative of the log of the logistic function.
    out = -np.sum(sample_weight * log_logistic(yz)) + .5 * alpha * np.dot(w, w)

    z = expit(yz)
    z0 = sample_weight * (z - 1) * y

    grad[:n_features] = safe_sparse_dot(X.T, z0) + alpha * w

    # Case where we fit the intercept.
    if grad.shape[0] > n_features:
        grad[-1] = z0.sum()
    return out, grad
# ---- END VERBATIM ----


KIND = "check"
EXPECTED_WRONG = []


def _loss(params, X, y, alpha, sample_weight):
    return _logistic_loss_and_grad(params["w"], X, y, alpha, sample_weight)[0]


def _grad(params, X, y, alpha, sample_weight):
    return {"w": _logistic_loss_and_grad(params["w"], X, y, alpha, sample_weight)[1]}


def make():
    # As logistic_regression_path calls it for the lbfgs solver in this version: y in {-1, +1},
    # w = (coef, intercept), alpha = 1 / C, per-sample weights.
    rng = np.random.RandomState(1)
    n, d = 15, 4
    X = rng.randn(n, d)
    y = np.where(X @ np.array([1.0, -1.0, 0.5, 0.0]) + 0.3 * rng.randn(n) > 0, 1.0, -1.0)
    w = np.concatenate([0.5 * rng.randn(d), [0.2]])
    sample_weight = rng.uniform(0.5, 2.0, n)
    alpha = 1.0 / 3.0
    return dict(loss=_loss, grad=_grad, params={"w": w}, args=(X, y, alpha, sample_weight))


def truth(made):
    import torch

    X, y, alpha, sample_weight = made["args"]
    d = X.shape[1]
    w = torch.tensor(made["params"]["w"], dtype=torch.float64, requires_grad=True)
    Xt = torch.tensor(X, dtype=torch.float64)
    yt = torch.tensor(y, dtype=torch.float64)
    sw = torch.tensor(sample_weight, dtype=torch.float64)
    margin = yt * (Xt @ w[:d] + w[d])
    # -log sigmoid(m) = softplus(-m); the intercept is not penalised.
    obj = torch.sum(sw * torch.nn.functional.softplus(-margin)) + 0.5 * alpha * torch.dot(w[:d], w[:d])
    (g,) = torch.autograd.grad(obj, w)
    return {"w": g.detach().numpy()}
