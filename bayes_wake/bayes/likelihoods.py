"""The likelihoods of the rate-ratio wake model, one object per form (bambi's families).

A spec's ``likelihood`` and ``pre_count`` pick one form (:func:`likelihood_for`):

============================  ==========================  ==============================
form                          ``likelihood``              ``pre_count``
============================  ==========================  ==============================
:class:`Poisson`              ``poisson``                 ``log1p`` or ``identity``
:class:`NegativeBinomial`     ``negative_binomial``       ``log1p`` or ``identity``
:class:`PairedBinomial`       ``poisson``                 ``paired``
:class:`PairedBetaBinomial`   ``negative_binomial``       ``paired``
============================  ==========================  ==============================

Each form knows how the pre count enters the linear predictor ``eta``, the trends of the
intercept and effect priors, the weighted log-likelihood of the post counts given ``eta``,
the posterior predictive outcome, and the treated wakes' expected post count that the fit
turns into the additive effect. The model (:mod:`bayes_wake.bayes.model`) and the fit
(:mod:`bayes_wake.bayes.fit`) call these instead of branching on the spec.

Units: counts are events per wake and cell; ``eta`` is a log mean (log events per wake) for
the lagged count forms and the log odds of a wake's event falling after rather than before
its anchor for the paired forms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from scipy.special import gammaln

from bayes_wake.errors import SettingsError

if TYPE_CHECKING:
    from bayes_wake.bayes.model import ModelData
    from bayes_wake.bayes.spec import FieldPrior, ModelSpec

__all__ = ["Likelihood", "TreatedDraws", "Poisson", "NegativeBinomial",
           "PairedBinomial", "PairedBetaBinomial", "likelihood_for"]


@dataclass(frozen=True)
class TreatedDraws:
    """Posterior draws of one cell's linear-predictor terms, for its treated rows.

    Attributes
    ----------
    intercept, effect
        The cell's intercept and treatment effect, shape (samples,), on the scale of ``eta``.
    slope
        The cell's slope on the (transformed) pre count, shape (samples,); None without one.
    covariates
        ``x @ gamma`` of the rows, shape (rows, samples); None without covariates.
    strata
        The rows' stratum effects, shape (rows, samples); None without strata.
    """

    intercept: np.ndarray
    effect: np.ndarray
    slope: np.ndarray | None = None
    covariates: np.ndarray | None = None
    strata: np.ndarray | None = None


class Likelihood:
    """The interface of a likelihood form (see the module docstring for the forms).

    Attributes
    ----------
    intercept_trend
        The plane in (log window, log radius) the intercept field shrinks toward: prior means
        of its two slopes (log events per log day and per log km) and their prior sd; None
        for a flat field.
    """

    intercept_trend: tuple[float, float, float] | None = None

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> Likelihood:
        """The form with the spec's settings."""
        return cls()

    def pre_term(self, pre: np.ndarray) -> np.ndarray | None:
        """The pre count as it enters ``eta`` (times a cell slope), or None if it does not.

        Parameters
        ----------
        pre
            Pre-period counts (events per wake).
        """
        return None

    def effect_trend(self, prior: FieldPrior) -> tuple[float, float, float] | None:
        """The effect field's plane: prior means on log window and log radius (0: no tilt
        expected) and their sd (the prior's ``mean_sd``); None for a flat field."""
        return (0.0, 0.0, prior.mean_sd)

    def loglik(self, data: ModelData, eta):
        """Sum over the unique rows of weight x log p(post | eta), as a PyTensor scalar.

        Creates the form's own parameters (dispersion, concentration, sigma) in the current
        PyMC model.

        Parameters
        ----------
        data
            The unique rows (:class:`~bayes_wake.bayes.model.ModelData`).
        eta
            Linear predictor per row (PyTensor vector, the scale in the module docstring).
        """
        raise NotImplementedError

    def predictive(self, data: ModelData, eta) -> None:
        """Add the outcome ``post`` as an unobserved random variable per row (``dims="row"``),
        for prior and posterior predictive draws."""
        raise NotImplementedError

    def treated_mean(self, draws: TreatedDraws, data: ModelData, rows: np.ndarray) -> np.ndarray:
        """Expected post count of treated rows with their treatment, per draw.

        Parameters
        ----------
        draws
            The cell's posterior draws for these rows.
        data
            The unique rows.
        rows
            Indices of the cell's treated rows.

        Returns
        -------
        numpy.ndarray
            Shape (rows, samples), events per wake.
        """
        raise NotImplementedError

    def uninformative(self, events: np.ndarray) -> np.ndarray:
        """Cells where the likelihood says nothing about the effect (NA in the surface).

        Parameters
        ----------
        events
            Events (pre + post) of the treated wakes per cell, shape (windows, radii).

        Returns
        -------
        numpy.ndarray
            Boolean mask of the shape of ``events``; none for the lagged forms.
        """
        return np.zeros(np.shape(events), dtype=bool)


@dataclass(frozen=True)
class _Lagged(Likelihood):
    """Post count regressed on the wake's own pre count (``pre_count: log1p`` or
    ``identity``), a log link: ``log mu = a + b * f(pre) + tau * treated + ...``."""

    pre_count: str = "log1p"
    #: baseline counts grow with window length (~T) and area (~S^2)
    intercept_trend = (1.0, 2.0, 1.0)

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> _Lagged:
        """The form with the spec's ``pre_count``."""
        return cls(pre_count=spec.pre_count)

    def pre_term(self, pre: np.ndarray) -> np.ndarray:
        """``log1p(pre)`` or ``pre`` (events per wake), per the spec's ``pre_count``."""
        return np.log1p(pre) if self.pre_count == "log1p" else pre

    def treated_mean(self, draws: TreatedDraws, data: ModelData, rows: np.ndarray) -> np.ndarray:
        """The inverse link of ``eta = a + b f(pre) + x gamma + stratum + tau``."""
        eta0 = draws.intercept[None, :] + draws.slope[None, :] * self.pre_term(
            data.pre[rows])[:, None]
        if draws.covariates is not None:
            eta0 = eta0 + draws.covariates
        if draws.strata is not None:
            eta0 = eta0 + draws.strata
        return self.inverse_link(eta0 + draws.effect[None, :])

    @staticmethod
    def inverse_link(eta: np.ndarray) -> np.ndarray:
        """The mean (events per wake) of a log mean."""
        return np.exp(eta)


@dataclass(frozen=True)
class Poisson(_Lagged):
    """Poisson post counts with log mean ``eta``."""

    def loglik(self, data: ModelData, eta):
        """``sum w (y eta - exp(eta) - lgamma(y + 1))``."""
        y, w = data.post, data.weight
        return pt.sum(w * (y * eta - pt.exp(eta))) - float(np.sum(w * _lgamma1(y)))

    def predictive(self, data: ModelData, eta) -> None:
        """``post ~ Poisson(exp(eta))``."""
        pm.Poisson("post", mu=pt.exp(eta), dims="row")


@dataclass(frozen=True)
class NegativeBinomial(_Lagged):
    """Negative-binomial post counts with log mean ``eta`` and dispersion alpha
    (variance = mu + mu^2 / alpha), ``pooled`` or ``per_cell`` (hierarchical)."""

    dispersion: str = "pooled"

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> NegativeBinomial:
        """The form with the spec's ``pre_count`` and ``dispersion``."""
        return cls(pre_count=spec.pre_count, dispersion=spec.dispersion)

    def loglik(self, data: ModelData, eta):
        """Sum over unique rows of weight x log-likelihood, written for speed.

        With log mean ``eta`` and dispersion ``a``::

            log p(y) = lgamma(y + a) - lgamma(a) - lgamma(y + 1)
                       + a log a - (a + y) log(a + exp(eta)) + y eta

        The lgamma terms depend on the row only through (y, a): with a pooled dispersion they
        are summed once per distinct count value instead of once per row.
        """
        y, w = data.post, data.weight
        alpha, alpha_row = self._dispersion(data.cell)
        log1p_term = pt.sum(w * (alpha_row + y) * pt.logaddexp(pt.log(alpha_row), eta))
        linear = float(np.sum(w * y)) and pt.sum(w * y * eta)
        lgammas, a_log_a = self._alpha_terms(y, w, alpha, alpha_row)
        return lgammas + a_log_a - log1p_term + linear - float(np.sum(w * _lgamma1(y)))

    def _alpha_terms(self, y: np.ndarray, w: np.ndarray, alpha, alpha_row):
        """``sum w (lgamma(y + a) - lgamma(a))`` and ``sum w a log a``."""
        if self.dispersion == "pooled":
            values, inverse = np.unique(y, return_inverse=True)
            weight_by_value = np.bincount(inverse.ravel(), weights=w)
            lgammas = pt.sum(weight_by_value * (pt.gammaln(values + alpha) - pt.gammaln(alpha)))
            return lgammas, float(w.sum()) * alpha * pt.log(alpha)
        lgammas = pt.sum(w * (pt.gammaln(y + alpha_row) - pt.gammaln(alpha_row)))
        return lgammas, pt.sum(w * alpha_row * pt.log(alpha_row))

    def predictive(self, data: ModelData, eta) -> None:
        """``post ~ NegativeBinomial(exp(eta), alpha)``."""
        _, alpha_row = self._dispersion(data.cell)
        pm.NegativeBinomial("post", mu=pt.exp(eta), alpha=alpha_row, dims="row")

    def _dispersion(self, cell: np.ndarray):
        """The dispersion (dimensionless, > 0) and its value per row."""
        if self.dispersion == "per_cell":
            log_alpha_mean = pm.Normal("log_dispersion_mean", 0.0, 1.0)
            log_alpha_sd = pm.HalfNormal("log_dispersion_sd", 0.5)
            log_alpha_raw = pm.Normal("log_dispersion_raw", 0.0, 1.0, dims="cell")
            alpha = pm.Deterministic("dispersion",
                                     pt.exp(log_alpha_mean + log_alpha_sd * log_alpha_raw),
                                     dims="cell")
            return alpha, alpha[cell]
        alpha = pm.Gamma("dispersion", 2.0, 2.0)
        return alpha, alpha


@dataclass(frozen=True)
class _Paired(Likelihood):
    """Conditional likelihood of the post count given the wake's total n = pre + post.

    With pre ~ Poisson(f * r_pre) and post ~ Poisson(f * r_post) for a wake frailty f (any
    distribution, gamma giving negative-binomial margins), post | n ~ Binomial(n, p) with
    logit p = eta, whatever f is: the wake's baseline cancels. Wakes with n = 0 carry no
    information and are left out.
    """

    def treated_mean(self, draws: TreatedDraws, data: ModelData, rows: np.ndarray) -> np.ndarray:
        """E[post | n] = n p of a treated wake, ``logit p = a + tau + x gamma`` (without the
        stratum effects that the model's ``eta`` has under ``matching: strata``)."""
        eta = draws.intercept[None, :] + draws.effect[None, :]
        if draws.covariates is not None:
            eta = eta + draws.covariates
        return (data.pre + data.post)[rows, None] / (1 + np.exp(-eta))

    def uninformative(self, events: np.ndarray) -> np.ndarray:
        """No event in any treated wake: the conditional likelihood says nothing (R: NA)."""
        return events == 0

    def _informative(self, data: ModelData, eta):
        """Post counts k, totals n, weights and ``eta`` of the rows with n > 0, and the
        weighted sum of ``log C(n, k)``."""
        n = data.pre + data.post
        use = n > 0
        k, n, w = data.post[use], n[use], data.weight[use]
        log_choose = float(np.sum(w * (gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1))))
        return k, n, w, eta[np.flatnonzero(use)], log_choose


@dataclass(frozen=True)
class PairedBinomial(_Paired):
    """``post | n ~ Binomial(n, sigmoid(eta))`` (Poisson counts given their wake)."""

    def loglik(self, data: ModelData, eta):
        """``sum w (log C(n, k) + k eta - n softplus(eta))``."""
        k, n, w, eta, log_choose = self._informative(data, eta)
        return log_choose + pt.sum(w * (k * eta - n * pt.softplus(eta)))

    def predictive(self, data: ModelData, eta) -> None:
        """``post ~ Binomial(pre + post, sigmoid(eta))``."""
        n = (data.pre + data.post).astype(np.int64)
        pm.Binomial("post", n=n, p=pt.sigmoid(eta), dims="row")


@dataclass(frozen=True)
class PairedBetaBinomial(_Paired):
    """``post | n ~ BetaBinomial(n, p c, (1 - p) c)``, ``p = sigmoid(eta)``: burstiness beyond
    the shared frailty, with a learned concentration c (dimensionless, pooled)."""

    def loglik(self, data: ModelData, eta):
        """Weighted beta-binomial log-likelihood of the informative rows."""
        k, n, w, eta, log_choose = self._informative(data, eta)
        concentration = _concentration()
        p = pt.sigmoid(eta)
        a, b = p * concentration, (1 - p) * concentration
        return log_choose + pt.sum(w * (pt.gammaln(k + a) + pt.gammaln(n - k + b)
                                        - pt.gammaln(n + concentration)
                                        - pt.gammaln(a) - pt.gammaln(b)
                                        + pt.gammaln(concentration)))

    def predictive(self, data: ModelData, eta) -> None:
        """``post ~ BetaBinomial(pre + post, p c, (1 - p) c)``."""
        n = (data.pre + data.post).astype(np.int64)
        concentration = _concentration()
        p = pt.sigmoid(eta)
        pm.BetaBinomial("post", n=n, alpha=p * concentration, beta=(1 - p) * concentration,
                        dims="row")


def _concentration():
    """The beta-binomial concentration a + b (dimensionless), Gamma(2, 0.1)."""
    return pm.Gamma("concentration", 2.0, 0.1)


def _lgamma1(y: np.ndarray) -> np.ndarray:
    """``lgamma(y + 1)`` of counts, as floats."""
    return gammaln(np.asarray(y, dtype=float) + 1)


#: The form of each (``likelihood``, ``pre_count == "paired"``). A ``count_did`` spec
#: (``robust_normal``) is fitted by :mod:`bayes_wake.bayes.did_surface`; its rate-ratio twin,
#: built when the model is asked for directly, is the lagged negative binomial.
_FORMS: dict[tuple[str, bool], type[Likelihood]] = {
    ("poisson", False): Poisson,
    ("negative_binomial", False): NegativeBinomial,
    ("robust_normal", False): NegativeBinomial,
    ("poisson", True): PairedBinomial,
    ("negative_binomial", True): PairedBetaBinomial,
}


def likelihood_for(spec: ModelSpec) -> Likelihood:
    """The likelihood form of a spec (its ``likelihood`` and ``pre_count``).

    Raises
    ------
    SettingsError
        For a combination the spec schema does not allow.
    """
    form = _FORMS.get((spec.likelihood, spec.pre_count == "paired"))
    if form is None:
        raise SettingsError(f"no likelihood form for likelihood: {spec.likelihood} with "
                            f"pre_count: {spec.pre_count}")
    return form.from_spec(spec)
