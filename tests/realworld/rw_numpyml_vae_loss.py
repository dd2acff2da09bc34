"""numpy-ml's VAELoss (Bernoulli reconstruction + Gaussian KL, batch mean) and its hand-written grad.

Repository: ddbourgin/numpy-ml
Path: numpy_ml/neural_nets/losses/losses.py
Commit: b0359af5285fbf9699d64fd5ec059493228af03e
License: GPL-3.0
Vendored verbatim: ObjectiveBase (lines 13-23) and VAELoss (lines 225-328) of that file.

VAELoss.grad returns (dY_pred, dLogVar, dMean): the gradient of VAELoss.loss with respect to
y_pred, t_log_var and t_mean, which are the three parameter blocks here (y is data).

VAELoss's docstrings have invalid escape sequences ("\\m", "\\h", "\\ "; not raw strings):
compiling this file with warnings turned into errors (pytest's filterwarnings = "error") raises
SyntaxError, so it must be loaded without that filter.
"""

from abc import ABC, abstractmethod

import numpy as np

# ---- VERBATIM ddbourgin/numpy-ml numpy_ml/neural_nets/losses/losses.py@b0359af5285fbf9699d64fd5ec059493228af03e ----
class ObjectiveBase(ABC):
    def __init__(self):
        super().__init__()

    @abstractmethod
    def loss(self, y_true, y_pred):
        pass

    @abstractmethod
    def grad(self, y_true, y_pred, **kwargs):
        pass
# ---- END VERBATIM ----


# ---- VERBATIM ddbourgin/numpy-ml numpy_ml/neural_nets/losses/losses.py@b0359af5285fbf9699d64fd5ec059493228af03e ----
class VAELoss(ObjectiveBase):
    def __init__(self):
        """
        The variational lower bound for a variational autoencoder with Bernoulli
        units.

        Notes
        -----
        The VLB to the sum of the binary cross entropy between the true input and
        the predicted output (the "reconstruction loss") and the KL divergence
        between the learned variational distribution :math:`q` and the prior,
        :math:`p`, assumed to be a unit Gaussian.

        .. math::

            \\text{VAELoss} =
                \\text{cross_entropy}(\mathbf{y}, \hat{\mathbf{y}})
                    + \\mathbb{KL}[q \ || \ p]

        where :math:`\mathbb{KL}[q \ || \ p]` is the Kullback-Leibler
        divergence between the distributions :math:`q` and :math:`p`.

        References
        ----------
        .. [1] Kingma, D. P. & Welling, M. (2014). "Auto-encoding variational Bayes".
           *arXiv preprint arXiv:1312.6114.* https://arxiv.org/pdf/1312.6114.pdf
        """
        super().__init__()

    def __call__(self, y, y_pred, t_mean, t_log_var):
        return self.loss(y, y_pred, t_mean, t_log_var)

    def __str__(self):
        return "VAELoss"

    @staticmethod
    def loss(y, y_pred, t_mean, t_log_var):
        """
        Variational lower bound for a Bernoulli VAE.

        Parameters
        ----------
        y : :py:class:`ndarray <numpy.ndarray>` of shape `(n_ex, N)`
            The original images.
        y_pred : :py:class:`ndarray <numpy.ndarray>` of shape `(n_ex, N)`
            The VAE reconstruction of the images.
        t_mean: :py:class:`ndarray <numpy.ndarray>` of shape `(n_ex, T)`
            Mean of the variational distribution :math:`q(t \mid x)`.
        t_log_var: :py:class:`ndarray <numpy.ndarray>` of shape `(n_ex, T)`
            Log of the variance vector of the variational distribution
            :math:`q(t \mid x)`.

        Returns
        -------
        loss : float
            The VLB, averaged across the batch.
        """
        # prevent nan on log(0)
        eps = np.finfo(float).eps
        y_pred = np.clip(y_pred, eps, 1 - eps)

        # reconstruction loss: binary cross-entropy
        rec_loss = -np.sum(y * np.log(y_pred) + (1 - y) * np.log(1 - y_pred), axis=1)

        # KL divergence between the variational distribution q and the prior p,
        # a unit gaussian
        kl_loss = -0.5 * np.sum(1 + t_log_var - t_mean ** 2 - np.exp(t_log_var), axis=1)
        loss = np.mean(kl_loss + rec_loss)
        return loss

    @staticmethod
    def grad(y, y_pred, t_mean, t_log_var):
        """
        Compute the gradient of the VLB with regard to the network parameters.

        Parameters
        ----------
        y : :py:class:`ndarray <numpy.ndarray>` of shape `(n_ex, N)`
            The original images.
        y_pred : :py:class:`ndarray <numpy.ndarray>` of shape `(n_ex, N)`
            The VAE reconstruction of the images.
        t_mean: :py:class:`ndarray <numpy.ndarray>` of shape `(n_ex, T)`
            Mean of the variational distribution :math:`q(t | x)`.
        t_log_var: :py:class:`ndarray <numpy.ndarray>` of shape `(n_ex, T)`
            Log of the variance vector of the variational distribution
            :math:`q(t | x)`.

        Returns
        -------
        dY_pred : :py:class:`ndarray <numpy.ndarray>` of shape `(n_ex, N)`
            The gradient of the VLB with regard to `y_pred`.
        dLogVar : :py:class:`ndarray <numpy.ndarray>` of shape `(n_ex, T)`
            The gradient of the VLB with regard to `t_log_var`.
        dMean : :py:class:`ndarray <numpy.ndarray>` of shape `(n_ex, T)`
            The gradient of the VLB with regard to `t_mean`.
        """
        N = y.shape[0]
        eps = np.finfo(float).eps
        y_pred = np.clip(y_pred, eps, 1 - eps)

        dY_pred = -y / (N * y_pred) - (y - 1) / (N - N * y_pred)
        dLogVar = (np.exp(t_log_var) - 1) / (2 * N)
        dMean = t_mean / N
        return dY_pred, dLogVar, dMean
# ---- END VERBATIM ----


KIND = "check"
EXPECTED_WRONG = []


def _loss(params, y):
    return VAELoss.loss(y, params["y_pred"], params["t_mean"], params["t_log_var"])


def _grad(params, y):
    dY_pred, dLogVar, dMean = VAELoss.grad(y, params["y_pred"], params["t_mean"], params["t_log_var"])
    return {"y_pred": dY_pred, "t_mean": dMean, "t_log_var": dLogVar}


def make():
    rng = np.random.RandomState(4)
    n_ex, N, T = 4, 6, 3
    y = (rng.uniform(size=(n_ex, N)) > 0.5).astype(np.float64)     # binary "images"
    y_pred = rng.uniform(0.1, 0.9, size=(n_ex, N))                   # decoder outputs in (0, 1)
    t_mean = rng.randn(n_ex, T)
    t_log_var = 0.5 * rng.randn(n_ex, T)
    return dict(loss=_loss, grad=_grad,
                params={"y_pred": y_pred, "t_mean": t_mean, "t_log_var": t_log_var}, args=(y,))


def truth(made):
    import torch

    (y,) = made["args"]
    p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in made["params"].items()}
    yt = torch.tensor(y, dtype=torch.float64)
    # -ELBO per example: BCE(y, y_pred) + KL(N(mean, exp(log_var)) || N(0, I)); mean over the batch.
    bce = -(yt * torch.log(p["y_pred"]) + (1 - yt) * torch.log1p(-p["y_pred"])).sum(dim=1)
    kl = 0.5 * (p["t_mean"] ** 2 + torch.exp(p["t_log_var"]) - 1.0 - p["t_log_var"]).sum(dim=1)
    obj = torch.mean(bce + kl)
    names = list(p)
    grads = torch.autograd.grad(obj, [p[k] for k in names])
    return {k: g.detach().numpy() for k, g in zip(names, grads)}
