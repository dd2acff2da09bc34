"""scikit-learn's HuberRegressor objective: _huber_loss_and_gradient (coef, intercept and scale sigma).

Repository: scikit-learn/scikit-learn
Path: sklearn/linear_model/huber.py
Commit: a5743ed36fbd3fbc8e351bdab16561fbfca7dfa1
License: BSD-3-Clause
Vendored verbatim: _huber_loss_and_gradient, lines 16-121 of that file.

Also vendored verbatim from the same commit (the helpers it imports; scikit-learn is not
installed): safe_mask and axis0_safe_slice, lines 121-178 of sklearn/utils/__init__.py, and
safe_sparse_dot, lines 117-142 of sklearn/utils/extmath.py.  (At this commit, 0.22.dev0, the
module is still called huber.py; it became _huber.py in 0.22 with the same function.)  The
files were copied from a full-history mirror of scikit-learn
(srodif-old/swe-bench-verified-scikit-learn__scikit-learn-14087, whose HEAD is this upstream
commit, PR #14086) because the scikit-learn snapshot is over the fetch size limit here.
"""

import numpy as np
from scipy import sparse

# ---- VERBATIM scikit-learn/scikit-learn sklearn/utils/__init__.py@a5743ed36fbd3fbc8e351bdab16561fbfca7dfa1 ----
def safe_mask(X, mask):
    """Return a mask which is safe to use on X.

    Parameters
    ----------
    X : {array-like, sparse matrix}
        Data on which to apply mask.

    mask : array
        Mask to be used on X.

    Returns
    -------
        mask
    """
    mask = np.asarray(mask)
    if np.issubdtype(mask.dtype, np.signedinteger):
        return mask

    if hasattr(X, "toarray"):
        ind = np.arange(mask.shape[0])
        mask = ind[mask]
    return mask


def axis0_safe_slice(X, mask, len_mask):
    """
    This mask is safer than safe_mask since it returns an
    empty array, when a sparse matrix is sliced with a boolean mask
    with all False, instead of raising an unhelpful error in older
    versions of SciPy.

    See: https://github.com/scipy/scipy/issues/5361

    Also note that we can avoid doing the dot product by checking if
    the len_mask is not zero in _huber_loss_and_gradient but this
    is not going to be the bottleneck, since the number of outliers
    and non_outliers are typically non-zero and it makes the code
    tougher to follow.

    Parameters
    ----------
    X : {array-like, sparse matrix}
        Data on which to apply mask.

    mask : array
        Mask to be used on X.

    len_mask : int
        The length of the mask.

    Returns
    -------
        mask
    """
    if len_mask != 0:
        return X[safe_mask(X, mask), :]
    return np.zeros(shape=(0, X.shape[1]))
# ---- END VERBATIM ----


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


# ---- VERBATIM scikit-learn/scikit-learn sklearn/linear_model/huber.py@a5743ed36fbd3fbc8e351bdab16561fbfca7dfa1 ----
def _huber_loss_and_gradient(w, X, y, epsilon, alpha, sample_weight=None):
    """Returns the Huber loss and the gradient.

    Parameters
    ----------
    w : ndarray, shape (n_features + 1,) or (n_features + 2,)
        Feature vector.
        w[:n_features] gives the coefficients
        w[-1] gives the scale factor and if the intercept is fit w[-2]
        gives the intercept factor.

    X : ndarray, shape (n_samples, n_features)
        Input data.

    y : ndarray, shape (n_samples,)
        Target vector.

    epsilon : float
        Robustness of the Huber estimator.

    alpha : float
        Regularization parameter.

    sample_weight : ndarray, shape (n_samples,), optional
        Weight assigned to each sample.

    Returns
    -------
    loss : float
        Huber loss.

    gradient : ndarray, shape (len(w))
        Returns the derivative of the Huber loss with respect to each
        coefficient, intercept and the scale as a vector.
    """
    _, n_features = X.shape
    fit_intercept = (n_features + 2 == w.shape[0])
    if fit_intercept:
        intercept = w[-2]
    sigma = w[-1]
    w = w[:n_features]
    n_samples = np.sum(sample_weight)

    # Calculate the values where |y - X'w -c / sigma| > epsilon
    # The values above this threshold are outliers.
    linear_loss = y - safe_sparse_dot(X, w)
    if fit_intercept:
        linear_loss -= intercept
    abs_linear_loss = np.abs(linear_loss)
    outliers_mask = abs_linear_loss > epsilon * sigma

    # Calculate the linear loss due to the outliers.
    # This is equal to (2 * M * |y - X'w -c / sigma| - M**2) * sigma
    outliers = abs_linear_loss[outliers_mask]
    num_outliers = np.count_nonzero(outliers_mask)
    n_non_outliers = X.shape[0] - num_outliers

    # n_sq_outliers includes the weight give to the outliers while
    # num_outliers is just the number of outliers.
    outliers_sw = sample_weight[outliers_mask]
    n_sw_outliers = np.sum(outliers_sw)
    outlier_loss = (2. * epsilon * np.sum(outliers_sw * outliers) -
                    sigma * n_sw_outliers * epsilon ** 2)

    # Calculate the quadratic loss due to the non-outliers.-
    # This is equal to |(y - X'w - c)**2 / sigma**2| * sigma
    non_outliers = linear_loss[~outliers_mask]
    weighted_non_outliers = sample_weight[~outliers_mask] * non_outliers
    weighted_loss = np.dot(weighted_non_outliers.T, non_outliers)
    squared_loss = weighted_loss / sigma

    if fit_intercept:
        grad = np.zeros(n_features + 2)
    else:
        grad = np.zeros(n_features + 1)

    # Gradient due to the squared loss.
    X_non_outliers = -axis0_safe_slice(X, ~outliers_mask, n_non_outliers)
    grad[:n_features] = (
        2. / sigma * safe_sparse_dot(weighted_non_outliers, X_non_outliers))

    # Gradient due to the linear loss.
    signed_outliers = np.ones_like(outliers)
    signed_outliers_mask = linear_loss[outliers_mask] < 0
    signed_outliers[signed_outliers_mask] = -1.0
    X_outliers = axis0_safe_slice(X, outliers_mask, num_outliers)
    sw_outliers = sample_weight[outliers_mask] * signed_outliers
    grad[:n_features] -= 2. * epsilon * (
        safe_sparse_dot(sw_outliers, X_outliers))

    # Gradient due to the penalty.
    grad[:n_features] += alpha * 2. * w

    # Gradient due to sigma.
    grad[-1] = n_samples
    grad[-1] -= n_sw_outliers * epsilon ** 2
    grad[-1] -= squared_loss / sigma

    # Gradient due to the intercept.
    if fit_intercept:
        grad[-2] = -2. * np.sum(weighted_non_outliers) / sigma
        grad[-2] -= 2. * epsilon * np.sum(sw_outliers)

    loss = n_samples * sigma + squared_loss + outlier_loss
    loss += alpha * np.dot(w, w)
    return loss, grad
# ---- END VERBATIM ----


KIND = "check"
EXPECTED_WRONG = []


def _loss(params, X, y, epsilon, alpha, sample_weight):
    return _huber_loss_and_gradient(params["w"], X, y, epsilon, alpha, sample_weight)[0]


def _grad(params, X, y, epsilon, alpha, sample_weight):
    return {"w": _huber_loss_and_gradient(params["w"], X, y, epsilon, alpha, sample_weight)[1]}


def make():
    # w packs (coef[0..d-1], intercept, sigma) exactly as HuberRegressor.fit passes it to
    # L-BFGS; sample_weight is always an array there (_check_sample_weight), never None.
    rng = np.random.RandomState(0)
    n, d = 12, 3
    X = rng.randn(n, d)
    coef = np.array([1.5, -2.0, 0.7])
    y = X @ coef + 0.5 + 0.3 * rng.randn(n)
    y[:3] += np.array([4.0, -5.0, 6.0])          # three gross outliers
    sample_weight = rng.uniform(0.5, 2.0, n)
    w = np.concatenate([coef + 0.2 * rng.randn(d), [0.3, 0.9]])
    epsilon, alpha = 1.35, 0.01
    return dict(loss=_loss, grad=_grad, params={"w": w},
                args=(X, y, epsilon, alpha, sample_weight))


def truth(made):
    import torch

    X, y, epsilon, alpha, sample_weight = made["args"]
    d = X.shape[1]
    w = torch.tensor(made["params"]["w"], dtype=torch.float64, requires_grad=True)
    Xt = torch.tensor(X, dtype=torch.float64)
    yt = torch.tensor(y, dtype=torch.float64)
    sw = torch.tensor(sample_weight, dtype=torch.float64)
    coef, intercept, sigma = w[:d], w[d], w[d + 1]
    r = yt - Xt @ coef - intercept
    outlier = r.abs() > epsilon * sigma
    # Huber's concomitant-scale objective (Owen 2006): sigma * H_eps(r / sigma) per sample.
    per_sample = torch.where(outlier,
                             2.0 * epsilon * r.abs() - sigma * epsilon ** 2,
                             r ** 2 / sigma)
    obj = torch.sum(sw * (sigma + per_sample)) + alpha * torch.sum(coef ** 2)
    (g,) = torch.autograd.grad(obj, w)
    return {"w": g.detach().numpy()}
