"""statsmodels' Poisson regression: Poisson.loglike and its hand-written score, with offset and exposure.

Repository: statsmodels/statsmodels
Path: statsmodels/discrete/discrete_model.py
Commit: 82c59e378bdfb5ae324006c477954879ad3e24be
License: BSD-3-Clause
Vendored verbatim: EXP_UPPER_LIMIT (line 73), Poisson.loglike (lines 1367-1394) and
Poisson.score (lines 1579-1606) of that file.

statsmodels is not installed, so the two methods sit in a small class of the same shape
written here (not from statsmodels): it keeps endog, exog, offset and exposure the way
CountModel.__init__ does (exposure stored as its log; offset/exposure attributes absent when
not given).  gammaln is imported from scipy.special exactly as the file does.  The checked
scalar is the log-likelihood itself (score is its gradient), not its negative.
"""

import numpy as np
from scipy.special import gammaln

# ---- VERBATIM statsmodels/statsmodels statsmodels/discrete/discrete_model.py@82c59e378bdfb5ae324006c477954879ad3e24be ----
EXP_UPPER_LIMIT = np.log(np.finfo(np.float64).max) - 1.0
# ---- END VERBATIM ----


class Poisson:
    """Shell with CountModel's data attributes (written here, not vendored)."""

    def __init__(self, endog, exog, offset=None, exposure=None):
        self.endog = np.asarray(endog, dtype=np.float64)
        self.exog = np.asarray(exog, dtype=np.float64)
        if offset is not None:
            self.offset = np.asarray(offset)
        if exposure is not None:
            self.exposure = np.log(np.asarray(exposure))

# ---- VERBATIM statsmodels/statsmodels statsmodels/discrete/discrete_model.py@82c59e378bdfb5ae324006c477954879ad3e24be ----
    def loglike(self, params):
        """
        Log-likelihood of Poisson model.

        Parameters
        ----------
        params : array_like
            The parameters of the model.

        Returns
        -------
        loglike : float
            The log-likelihood function of the model evaluated at `params`.
            See notes.

        Notes
        -----
        .. math:: \\ln L=\\sum_{i=1}^{n}\\left[-\\lambda_{i}+y_{i}x_{i}^{\\prime}\\beta-\\ln y_{i}!\\right]
        """
        offset = getattr(self, "offset", 0)
        exposure = getattr(self, "exposure", 0)
        XB = np.dot(self.exog, params) + offset + exposure
        endog = self.endog
        return np.sum(
            -np.exp(np.clip(XB, None, EXP_UPPER_LIMIT))
            + endog * XB
            - gammaln(endog + 1)
        )
# ---- END VERBATIM ----

# ---- VERBATIM statsmodels/statsmodels statsmodels/discrete/discrete_model.py@82c59e378bdfb5ae324006c477954879ad3e24be ----
    def score(self, params):
        """
        Poisson model score (gradient) vector of the log-likelihood.

        Parameters
        ----------
        params : array_like
            The parameters of the model

        Returns
        -------
        score : ndarray, 1-D
            The score vector of the model, i.e., the first derivative of the
            log-likelihood function, evaluated at `params`

        Notes
        -----
        .. math:: \\frac{\\partial\\ln L}{\\partial\\beta}=\\sum_{i=1}^{n}\\left(y_{i}-\\lambda_{i}\\right)x_{i}

        where the loglinear model is assumed

        .. math:: \\ln\\lambda_{i}=x_{i}\\beta
        """
        offset = getattr(self, "offset", 0)
        exposure = getattr(self, "exposure", 0)
        X = self.exog
        L = np.exp(np.dot(X, params) + offset + exposure)
        return np.dot(self.endog - L, X)
# ---- END VERBATIM ----


KIND = "check"
EXPECTED_WRONG = []


def _loss(params, model):
    return model.loglike(params["params"])


def _grad(params, model):
    return {"params": model.score(params["params"])}


def make():
    rng = np.random.RandomState(3)
    n, k = 20, 3
    exog = np.column_stack([np.ones(n), rng.randn(n, k - 1)])   # constant + 2 regressors
    beta = np.array([0.3, 0.5, -0.4])
    offset = 0.1 * rng.randn(n)
    exposure = rng.uniform(0.5, 3.0, n)
    mu = np.exp(exog @ beta + offset + np.log(exposure))
    endog = rng.poisson(mu).astype(np.float64)
    params = beta + 0.1 * rng.randn(k)
    # As statsmodels is used: build the model once, then evaluate loglike/score at params.
    model = Poisson(endog, exog, offset=offset, exposure=exposure)
    return dict(loss=_loss, grad=_grad, params={"params": params}, args=(model,))


def truth(made):
    import torch

    (model,) = made["args"]
    endog, exog, offset, log_exposure = model.endog, model.exog, model.offset, model.exposure
    b = torch.tensor(made["params"]["params"], dtype=torch.float64, requires_grad=True)
    y = torch.tensor(endog, dtype=torch.float64)
    eta = (torch.tensor(exog, dtype=torch.float64) @ b + torch.tensor(offset, dtype=torch.float64)
           + torch.tensor(log_exposure, dtype=torch.float64))
    # log P(y | mu) = y log mu - mu - log y!,  log mu = eta
    ll = torch.sum(y * eta - torch.exp(eta) - torch.lgamma(y + 1.0))
    (g,) = torch.autograd.grad(ll, b)
    return {"params": g.detach().numpy()}
