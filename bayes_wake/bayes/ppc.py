"""Posterior predictive checks of the count models: does the model reproduce the counts?

Real outcome counts are sparse and bursty: most wakes hold no event, a few hold many. Per
(window, radius) cell the check compares three statistics of the matched wakes' post-period
counts (CEM-weighted) with their distribution over replicated data sets drawn from the
posterior: the share of wakes with no event, the variance/mean ratio (1 for Poisson counts)
and the largest count of one wake. A statistic misfits in a cell when its observed value lies
outside the central :data:`PPP_BAND` of its replications (posterior predictive mid-p-value,
ties counted half); the
model misfits a statistic when that happens in more than :data:`MISFIT_SHARE` of the cells.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["count_statistics", "predictive_table", "predictive_check", "verdict", "misfits",
           "STATISTICS", "PPP_BAND", "MISFIT_SHARE"]

#: The statistics, with what a too-low or too-high replication means, in words.
STATISTICS = {
    "zero_share": ("share of wakes with no event", "a smaller", "a larger"),
    "dispersion": ("variance/mean of the wake counts", "a smaller", "a larger"),
    "max_count": ("largest count of one wake", "a smaller", "a larger"),
}
#: A cell's statistic misfits when P(replicated >= observed) is outside this band.
PPP_BAND = (0.005, 0.995)
#: The model misfits a statistic when more than this share of the cells misfit it.
MISFIT_SHARE = 0.1
#: The word of a :func:`verdict` that says the model misfits the counts.
_MISFITS = "MISFITS"


def count_statistics(counts: np.ndarray, weight: np.ndarray) -> dict[str, np.ndarray]:
    """The checked statistics over the wakes axis (-3) of ``counts``.

    Parameters
    ----------
    counts
        Post-period counts, shape (..., wakes, windows, radii), events.
    weight
        CEM weight per wake, shape (wakes,).

    Returns
    -------
    dict
        ``zero_share`` (weighted share of wakes with no event), ``dispersion`` (weighted
        variance over weighted mean; NaN without events) and ``max_count`` (of a wake with
        positive weight), each of shape (..., windows, radii).
    """
    w = (weight / weight.sum())[:, None, None]
    mean = (counts * w).sum(axis=-3)
    variance = (((counts - mean[..., None, :, :]) ** 2) * w).sum(axis=-3)
    with np.errstate(divide="ignore", invalid="ignore"):
        dispersion = np.where(mean > 0, variance / mean, np.nan)
    return {"zero_share": ((counts == 0) * w).sum(axis=-3), "dispersion": dispersion,
            "max_count": counts[..., weight > 0, :, :].max(axis=-3).astype(float)}


def predictive_table(replicated: np.ndarray, observed: np.ndarray, weight: np.ndarray,
                     windows, radii) -> pd.DataFrame:
    """One row per cell and statistic: observed, replicated mean and 90% band, mid-p-value
(NaN where the statistic is undefined: no event in the cell).

    Parameters
    ----------
    replicated
        Shape (replicates, wakes, windows, radii).
    observed
        Shape (wakes, windows, radii).
    weight
        CEM weight per wake.
    windows, radii
        The grid.
    """
    rep = count_statistics(replicated, weight)
    obs = count_statistics(observed, weight)
    rows = []
    for name in STATISTICS:
        for i, t in enumerate(windows):
            for j, s in enumerate(radii):
                r, o = rep[name][:, i, j], obs[name][i, j]
                r = r[np.isfinite(r)]
                p = _mid_p(r, o)
                rows.append({"t_window": t, "spat_window": s, "statistic": name,
                             "observed": o, "replicated_mean": r.mean() if len(r) else np.nan,
                             "replicated_lower": np.quantile(r, 0.05) if len(r) else np.nan,
                             "replicated_upper": np.quantile(r, 0.95) if len(r) else np.nan,
                             "p_value": p,
                             "misfit": bool(np.isfinite(p) and not
                                            PPP_BAND[0] <= p <= PPP_BAND[1])})
    return pd.DataFrame(rows)


def _mid_p(replicated: np.ndarray, observed: float) -> float:
    """P(replicated > observed) + P(replicated == observed) / 2: a posterior predictive
    p-value that ties of a discrete statistic (a largest count of 3 in most replications)
    do not push to 0 or 1; NaN without replications or observation."""
    if not len(replicated) or not np.isfinite(observed):
        return np.nan
    return float(np.mean(replicated > observed) + 0.5 * np.mean(replicated == observed))


def verdict(table: pd.DataFrame, model: str, t_unit: str = "days") -> str:
    """One line: the model reproduces the counts, or where it misfits (statistic, direction,
    how many cells, the worst cell)."""
    n_cells = table[["t_window", "spat_window"]].drop_duplicates().shape[0]
    problems = []
    for name, (words, low, high) in STATISTICS.items():
        rows = table[(table["statistic"] == name) & table["misfit"]]
        if len(rows) <= MISFIT_SHARE * n_cells:
            continue
        worst = rows.iloc[np.argmin(np.minimum(rows["p_value"], 1 - rows["p_value"]))]
        direction = low if worst["p_value"] < 0.5 else high
        problems.append(f"{direction} {words} replicated than observed in {len(rows)} of "
                        f"{n_cells} cells (e.g. {worst['t_window']:g} {t_unit} x "
                        f"{worst['spat_window']:g} km: observed {worst['observed']:.3g}, "
                        f"replicated {worst['replicated_lower']:.3g}-"
                        f"{worst['replicated_upper']:.3g})")
    if not problems:
        return (f"{model} reproduces the counts: zero-count wakes, variance/mean and largest "
                f"wake counts within their replications in at least "
                f"{100 * (1 - MISFIT_SHARE):g}% of the cells")
    return f"{model} {_MISFITS} the counts: " + "; ".join(problems)


def misfits(verdict_line: str) -> bool:
    """Whether a :func:`verdict` says the model misfits the counts (a warning to show)."""
    return f" {_MISFITS} " in verdict_line


def predictive_check(fit, n_draws: int = 200, seed: int = 0) -> tuple[pd.DataFrame, str]:
    """The posterior predictive check of a fitted count model (``fit.count_data`` set).

    Parameters
    ----------
    fit
        A :class:`~bayes_wake.bayes.fit.BayesResult` of ``nb_did`` or ``poisson_did``.
    n_draws
        Posterior draws replicated.
    seed
        Seed of the replications.

    Returns
    -------
    table, verdict
        :func:`predictive_table` and :func:`verdict`.
    """
    from bayes_wake.bayes.count_model import replicate_counts

    data = fit.count_data
    if data is None:
        raise ValueError(f"{fit.spec.name} is not a model of the wake counts")
    replicated, observed = replicate_counts(fit.idata.posterior.to_dataset(), data, n_draws,
                                            np.random.default_rng(seed))
    table = predictive_table(replicated, observed, data.weight, data.windows, data.radii)
    return table, verdict(table, fit.spec.name, data.attrs.get("t_unit", "days"))
