"""scikit-learn's exact t-SNE objective: _kl_divergence and its gradient w.r.t. the embedding.

Repository: scikit-learn/scikit-learn
Path: sklearn/manifold/t_sne.py
Commit: a5743ed36fbd3fbc8e351bdab16561fbfca7dfa1
License: BSD-3-Clause
Vendored verbatim: MACHINE_EPSILON (line 28) and _kl_divergence, lines 119-188 of that file.

The pdist/squareform imports are the file's own (scipy.spatial.distance).  At this commit
(0.22.dev0) the module is still called t_sne.py; it became _t_sne.py in 0.22 with the same
function.  The case uses n_components=3, so degrees_of_freedom = max(n_components - 1, 1) = 2,
exactly as TSNE._fit computes it.  The file was copied from a full-history mirror of
scikit-learn (srodif-old/swe-bench-verified-scikit-learn__scikit-learn-14087, whose HEAD is this
upstream commit, PR #14086) because the scikit-learn snapshot is over the fetch size limit here.
"""

import numpy as np
from scipy.spatial.distance import pdist
from scipy.spatial.distance import squareform

# ---- VERBATIM scikit-learn/scikit-learn sklearn/manifold/t_sne.py@a5743ed36fbd3fbc8e351bdab16561fbfca7dfa1 ----
MACHINE_EPSILON = np.finfo(np.double).eps
# ---- END VERBATIM ----


# ---- VERBATIM scikit-learn/scikit-learn sklearn/manifold/t_sne.py@a5743ed36fbd3fbc8e351bdab16561fbfca7dfa1 ----
def _kl_divergence(params, P, degrees_of_freedom, n_samples, n_components,
                   skip_num_points=0, compute_error=True):
    """t-SNE objective function: gradient of the KL divergence
    of p_ijs and q_ijs and the absolute error.

    Parameters
    ----------
    params : array, shape (n_params,)
        Unraveled embedding.

    P : array, shape (n_samples * (n_samples-1) / 2,)
        Condensed joint probability matrix.

    degrees_of_freedom : int
        Degrees of freedom of the Student's-t distribution.

    n_samples : int
        Number of samples.

    n_components : int
        Dimension of the embedded space.

    skip_num_points : int (optional, default:0)
        This does not compute the gradient for points with indices below
        `skip_num_points`. This is useful when computing transforms of new
        data where you'd like to keep the old data fixed.

    compute_error: bool (optional, default:True)
        If False, the kl_divergence is not computed and returns NaN.

    Returns
    -------
    kl_divergence : float
        Kullback-Leibler divergence of p_ij and q_ij.

    grad : array, shape (n_params,)
        Unraveled gradient of the Kullback-Leibler divergence with respect to
        the embedding.
    """
    X_embedded = params.reshape(n_samples, n_components)

    # Q is a heavy-tailed distribution: Student's t-distribution
    dist = pdist(X_embedded, "sqeuclidean")
    dist /= degrees_of_freedom
    dist += 1.
    dist **= (degrees_of_freedom + 1.0) / -2.0
    Q = np.maximum(dist / (2.0 * np.sum(dist)), MACHINE_EPSILON)

    # Optimization trick below: np.dot(x, y) is faster than
    # np.sum(x * y) because it calls BLAS

    # Objective: C (Kullback-Leibler divergence of P and Q)
    if compute_error:
        kl_divergence = 2.0 * np.dot(
            P, np.log(np.maximum(P, MACHINE_EPSILON) / Q))
    else:
        kl_divergence = np.nan

    # Gradient: dC/dY
    # pdist always returns double precision distances. Thus we need to take
    grad = np.ndarray((n_samples, n_components), dtype=params.dtype)
    PQd = squareform((P - Q) * dist)
    for i in range(skip_num_points, n_samples):
        grad[i] = np.dot(np.ravel(PQd[i], order='K'),
                         X_embedded[i] - X_embedded)
    grad = grad.ravel()
    c = 2.0 * (degrees_of_freedom + 1.0) / degrees_of_freedom
    grad *= c

    return kl_divergence, grad
# ---- END VERBATIM ----


KIND = "check"
# The hand-written gradient weights each pair by dist = (1 + d_ij/dof)^(-(dof+1)/2), the kernel
# itself; the derivative of log q_ij needs (1 + d_ij/dof)^(-1).  The two agree only for
# dof = 1 (n_components <= 2), the case sklearn's tests check; with n_components = 3 (dof = 2)
# every element is off (max relative error ~0.37 here).  Centered differences agree with truth.
EXPECTED_WRONG = ["params"]


def _loss(params, P, degrees_of_freedom, n_samples, n_components):
    return _kl_divergence(params["params"], P, degrees_of_freedom, n_samples, n_components)[0]


def _grad(params, P, degrees_of_freedom, n_samples, n_components):
    return {"params": _kl_divergence(params["params"], P, degrees_of_freedom, n_samples,
                                     n_components)[1]}


def make():
    rng = np.random.RandomState(2)
    n_samples, n_components = 7, 3
    degrees_of_freedom = max(n_components - 1, 1)
    # A condensed joint-probability matrix built the way _joint_probabilities shapes it
    # (symmetrised conditional Gaussian affinities, normalised to sum 1 over the full matrix),
    # with a fixed bandwidth instead of the Cython perplexity search.
    X_high = rng.randn(n_samples, 5)
    D_high = squareform(pdist(X_high, "sqeuclidean"))
    cond = np.exp(-D_high / 4.0)
    np.fill_diagonal(cond, 0.0)
    cond /= cond.sum(axis=1, keepdims=True)
    P_full = cond + cond.T
    P = np.maximum(squareform(P_full, checks=False) / P_full.sum(), MACHINE_EPSILON)
    embedding = rng.randn(n_samples * n_components)
    return dict(loss=_loss, grad=_grad, params={"params": embedding},
                args=(P, degrees_of_freedom, n_samples, n_components))


def truth(made):
    import torch

    P, dof, n_samples, n_components = made["args"]
    eps = float(np.finfo(np.double).eps)
    flat = torch.tensor(made["params"]["params"], dtype=torch.float64, requires_grad=True)
    Y = flat.reshape(n_samples, n_components)
    iu = torch.triu_indices(n_samples, n_samples, offset=1)
    diff = Y[iu[0]] - Y[iu[1]]                      # pairs i < j, pdist order
    d2 = torch.sum(diff ** 2, dim=1)
    kernel = (1.0 + d2 / dof) ** (-(dof + 1.0) / 2.0)   # Student-t with dof degrees of freedom
    Q = torch.clamp(kernel / (2.0 * torch.sum(kernel)), min=eps)
    Pt = torch.tensor(P, dtype=torch.float64)
    kl = 2.0 * torch.sum(Pt * torch.log(torch.clamp(Pt, min=eps) / Q))
    (g,) = torch.autograd.grad(kl, flat)
    return {"params": g.detach().numpy()}
