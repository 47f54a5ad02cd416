"""Response families of the generalized linear mixed model: link, variance, likelihood.

A family gives the conditional distribution of ``y`` given the linear
predictor ``eta = X beta + Z b + o``: the mean ``mu = g^-1(eta)``, the
variance function ``V(mu)``, the unit deviance and the log-likelihood with
its constants.  Both families here use their canonical link, so Fisher
scoring (PIRLS) is Newton's method and the working weights are
``w mu'(eta)^2 / V(mu) = w mu'(eta)``.

The numbers follow R's ``binomial()`` and ``poisson()``, as lme4 uses them:

- the inverse logit is clamped so that ``mu`` stays in ``[eps, 1 - eps]``
  (R's ``logit_linkinv``: ``eta`` beyond +-30 gives ``eps`` or ``1/eps``
  for ``exp(eta)``), and ``mu'(eta) >= eps``; ``exp`` is bounded below by
  ``eps`` for the log link;
- the binomial response is a proportion with the prior weights as the
  numbers of trials (lme4's ``prop ~ ..., weights = size``; 0/1 data with
  unit weights are Bernoulli).  ``-2 log-likelihood`` is R's ``aic``:
  ``-2 sum log dbinom(round(w y), round(w), mu)`` with its log binomial
  coefficients; for weights that are not whole numbers the binomial
  coefficients have no meaning and ``-2 sum w (y log mu + (1 - y) log(1 -
  mu))`` is used;
- Poisson: ``-2 sum w log dpois(y, mu)``, with ``-lgamma(y + 1)``.
"""

import numpy as np
from scipy.special import expit, gammaln, xlogy

__all__ = ["Binomial", "Family", "Poisson", "make_family"]

_EPS = np.finfo(float).eps
_THRESHOLD = 30.0  # R's THRESH / MTHRESH of the logit link


class Family:
    """A response distribution with its canonical link (see the module docstring)."""

    name = ""
    link = ""

    def linkfun(self, mu):
        """``eta = g(mu)``."""
        raise NotImplementedError

    def linkinv(self, eta):
        """``mu = g^-1(eta)``."""
        raise NotImplementedError

    def mu_eta(self, eta):
        """``d mu / d eta``."""
        raise NotImplementedError

    def variance(self, mu):
        """``V(mu)``."""
        raise NotImplementedError

    def weight_derivative(self, eta, w):
        """``dW / d eta`` of the working weights ``W = w mu'(eta)``."""
        raise NotImplementedError

    def unit_deviance(self, y, mu, w):
        """Per-row deviance residuals squared, ``2 w (l(y; y) - l(mu; y))``."""
        raise NotImplementedError

    def minus_two_log_likelihood(self, y, mu, w):
        """``-2 log p(y | mu)`` with all constants (R's ``family$aic``)."""
        raise NotImplementedError

    def validate(self, y, w):
        """Raise ``ValueError`` naming the problem if ``y`` is not of this family."""

    def starting_mean(self, y, w):
        """A mean to start the iterations from (R's ``mustart``)."""
        raise NotImplementedError

    def working(self, y, eta, w):
        """``(mu, W, z - eta)``: the mean, the working weights ``w mu'^2 / V`` and
        the working residual ``(y - mu) / mu'`` (canonical link: ``mu' = V``)."""
        mu = self.linkinv(eta)
        d = self.mu_eta(eta)
        return mu, w * d * d / self.variance(mu), (y - mu) / d

    def __repr__(self):
        return f"{type(self).__name__}()"


class Binomial(Family):
    """Binomial proportions (Bernoulli for 0/1 data) with the logit link."""

    name, link = "binomial", "logit"

    def linkfun(self, mu):
        return np.log(mu / (1.0 - mu))

    def linkinv(self, eta):
        e = np.clip(eta, -_THRESHOLD, _THRESHOLD)
        return np.clip(expit(e), _EPS / (1 + _EPS), 1.0 / (1 + _EPS))

    def mu_eta(self, eta):
        e = np.exp(-np.abs(eta))
        return np.maximum(e / (1.0 + e) ** 2, _EPS)

    def variance(self, mu):
        return mu * (1.0 - mu)

    def weight_derivative(self, eta, w):
        mu = self.linkinv(eta)
        return w * mu * (1.0 - mu) * (1.0 - 2.0 * mu)

    def unit_deviance(self, y, mu, w):
        return 2.0 * w * (xlogy(y, y / mu) + xlogy(1.0 - y, (1.0 - y) / (1.0 - mu)))

    def minus_two_log_likelihood(self, y, mu, w):
        if not _whole_numbers(w):
            return -2.0 * float(np.sum(w * (xlogy(y, mu) + xlogy(1.0 - y, 1.0 - mu))))
        m = np.round(w)
        k = np.round(w * y)
        log_choose = gammaln(m + 1.0) - gammaln(k + 1.0) - gammaln(m - k + 1.0)
        return -2.0 * float(np.sum(log_choose + xlogy(k, mu) + xlogy(m - k, 1.0 - mu)))

    def validate(self, y, w):
        if np.any((y < 0) | (y > 1)):
            raise ValueError(
                "the binomial response must be 0/1 or a proportion in [0, 1] (with the "
                "numbers of trials as weights)"
            )
        if _whole_numbers(w) and not np.allclose(w * y, np.round(w * y), atol=1e-7):
            raise ValueError(
                "the binomial proportions times the weights (the numbers of trials) "
                "must be whole numbers of successes"
            )

    def starting_mean(self, y, w):
        return (w * y + 0.5) / (w + 1.0)  # R's binomial mustart


class Poisson(Family):
    """Counts with the log link."""

    name, link = "poisson", "log"

    def linkfun(self, mu):
        return np.log(mu)

    def linkinv(self, eta):
        return np.maximum(np.exp(eta), _EPS)

    def mu_eta(self, eta):
        return np.maximum(np.exp(eta), _EPS)

    def variance(self, mu):
        return mu

    def weight_derivative(self, eta, w):
        return w * self.linkinv(eta)

    def unit_deviance(self, y, mu, w):
        return 2.0 * w * (xlogy(y, y / mu) - (y - mu))

    def minus_two_log_likelihood(self, y, mu, w):
        return -2.0 * float(np.sum(w * (xlogy(y, mu) - mu - gammaln(y + 1.0))))

    def validate(self, y, w):
        if np.any(y < 0):
            raise ValueError("the Poisson response must be counts: non-negative values")

    def starting_mean(self, y, w):
        return y + 0.1  # R's poisson mustart


def _whole_numbers(w):
    return bool(np.all(np.abs(w - np.round(w)) <= 1e-8 * np.maximum(1.0, np.abs(w))))


def make_family(family):
    """A :class:`Family` from its name (``"binomial"``, ``"poisson"``) or itself."""
    if isinstance(family, Family):
        return family
    families = {"binomial": Binomial, "poisson": Poisson}
    if family not in families:
        raise ValueError(f"family must be one of {sorted(families)}, got {family!r}")
    return families[family]()
