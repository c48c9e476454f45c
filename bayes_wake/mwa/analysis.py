"""Matched wake analysis: R's ``mwa::matchedwake`` on a wake cube.

For every (window, radius) cell: optionally drop wakes with earlier overlapping anchors
(``delete_sutva``), match treatment and control wakes by coarsened exact matching on the
covariates and the pre-trend (plus the overlap counts with ``tcm``), and fit the
difference-in-differences regression ``dependent_post ~ dependent_pre + treatment`` by
(weighted) OLS. The tables keep R's column names and row order so R users can diff them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy import special

from bayes_wake.core.matching import coarsened_exact_match, l1_imbalance
from bayes_wake.core.rcompat import r_round
from bayes_wake.core.regression import (
    OLSFit,
    VCov,
    cluster_ids,
    conley_kernel,
    parse_vcov,
    weighted_ols,
)
from bayes_wake.errors import SettingsError
from bayes_wake.io.artefacts import write_mwa_tables
from bayes_wake.options import Estimation, Formula, check_choice

__all__ = ["MWASettings", "MWAResult", "matched_wake_analysis", "cell_frame", "MatchedCell",
           "EXTRA_ESTIMATE_COLUMNS", "coefficient_interval",
           "matched_cells", "match_variables", "wake_weights", "covariate_strata",
           "vcov_inputs", "standard_error_table", "ROBUST_ERRORS", "regression_design",
           "spillover_warning", "SPILLOVER_SHARE", "SPILLOVER_COLUMNS",
           "spillover_coefficient", "lead_cells", "pretrend_table", "pretrend_warning",
           "PRETREND_SHARE",
           "PRETREND_COLUMNS"]

#: The columns the estimates table has beyond R's, after them so R's stay a prefix: the
#: treatment coefficient's standard error (the ``vcov`` choice) and its interval at level
#: 1 - alpha (the interval that inverts the reported test).
EXTRA_ESTIMATE_COLUMNS = ("std_error", "ci_lower", "ci_upper")

FORMULAS = {
    "lag": "dependent_post ~ dependent_pre + treatment",
    "diff": "dependent_post - dependent_pre ~ treatment",
}


@dataclass(frozen=True)
class MWASettings:
    """The settings of one matched wake analysis (R's ``matchedwake`` arguments).

    Attributes
    ----------
    match_on
        Covariates to match on (R's ``matchColumns``); the pre-trend is always added.
    weighted
        Weight the regression with the CEM weights (R's ``weighted``).
    tcm
        Also match on the earlier overlap counts ``SO_pre`` and ``MO_pre`` (R's ``TCM``).
    delete_sutva
        Drop wakes with any earlier same- or other-type anchor in the pre window.
    matching
        False skips matching (R's ``match.default = FALSE``): all wakes, weight 1.
    formula
        ``lag`` (``dependent_post ~ dependent_pre + treatment``) or ``diff``
        (``dependent_post - dependent_pre ~ treatment``).
    estimation
        ``lm`` or ``att`` (cem's ``att`` with a linear model: the same coefficient).
    vcov
        Standard errors, a parsed :class:`~bayes_wake.core.regression.VCov` (text is
        parsed once, here, by :func:`bayes_wake.core.regression.parse_vcov`): ``classical`` (R's;
        too small on clustered count data), ``HC1``, ``HC3``, ``CR1:CLUSTERS`` (an event
        column that is a covariate of the cube; ``location``: anchors at identical
        coordinates; ``wake``: each anchor its own cluster; ``near=KM,DAYS``: anchors linked
        within KM km and DAYS days, see :func:`vcov_inputs`), ``conley:KM[:DAYS]``, or their
        Bell-McCaffrey small-sample versions ``CR2:CLUSTERS`` (clubSandwich's CR2 of the
        weighted fit; ``CR2-ivw`` takes the weights as inverse variances) and
        ``conley-bm:KM[:DAYS]`` (calibrated on placebo placements).
    alpha
        Significance level for summaries (R's ``alpha1``).
    spillover
        Add the exposure terms of :func:`bayes_wake.mwa.spillover.spillover_exposure` (other
        treatments reaching the wake's pre- and post-period) to every cell's regression,
        before the treatment column: the treatment coefficient is then the direct effect of
        one treatment and the ``exposure_post`` coefficient the spillover per neighbouring
        treatment. False (the default) is R's regression.
    """

    match_on: tuple[str, ...] = ()
    weighted: bool = False
    tcm: bool = False
    delete_sutva: bool = False
    matching: bool = True
    formula: Formula = "lag"
    estimation: Estimation = "lm"
    vcov: VCov = VCov()
    alpha: float = 0.05
    spillover: bool = False

    def __post_init__(self) -> None:
        check_choice("formula", self.formula, Formula)
        check_choice("estimation", self.estimation, Estimation)
        object.__setattr__(self, "match_on", tuple(self.match_on))
        object.__setattr__(self, "vcov", parse_vcov(self.vcov))  # a VCov passes as is
        if not 0 < self.alpha < 1:
            raise SettingsError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.matching and not self.match_on:
            raise SettingsError("name at least one covariate to match on in match_on (R: "
                                "matchColumns), or switch matching off (matching=False)")

    def to_dict(self) -> dict:
        """JSON-ready settings, for task keys and provenance (``vcov`` as its canonical
        text, which :meth:`from_dict` parses back)."""
        return {**{f.name: getattr(self, f.name) for f in fields(self)},
                "vcov": str(self.vcov)}

    @classmethod
    def from_dict(cls, data: dict) -> MWASettings:
        """The settings of :meth:`to_dict` (also after a JSON round trip)."""
        return cls(**data)


@dataclass
class MWAResult:
    """The result of :func:`matched_wake_analysis`.

    Attributes
    ----------
    estimates, matching, sutva, wakes
        R's four tables (``estimates``, ``matching``, ``SUTVA``, ``wakes``), same columns and
        row order; ``estimates`` adds :data:`EXTRA_ESTIMATE_COLUMNS` after R's columns:
        ``std_error`` (of the ``vcov`` choice) and ``ci_lower``, ``ci_upper``, the
        ``1 - alpha`` interval that inverts the reported test (it excludes 0 exactly when
        ``pvalue <= alpha``).
    surface
        The estimates as an :class:`xarray.Dataset` with dims ``window`` x ``radius``
        (variables ``estimate``, ``std_error``, ``ci_lower``, ``ci_upper``, ``pvalue``,
        ``adj_r_squared``,
        ``intercept``, ``intercept_pvalue``, ``n_treated``, ``n_control``, and
        ``na_reason``: why a cell is NA, in a few words, empty where it is estimated).
    settings
        The settings used.
    cube_attrs
        Attributes of the wake cube (unit, convention, provenance).
    pretrend
        The pre-trend placebo per cell (:func:`pretrend_table`), where the cube holds lead
        counts (``count_wakes(..., leads=True)``); else None.
    """

    estimates: pd.DataFrame
    matching: pd.DataFrame
    sutva: pd.DataFrame
    wakes: pd.DataFrame
    surface: xr.Dataset
    settings: MWASettings
    cube_attrs: dict = field(default_factory=dict)
    pretrend: pd.DataFrame | None = None

    def significant(self, alpha: float | None = None) -> pd.DataFrame:
        """Rows of the estimates table with ``pvalue <= alpha`` (R's ``summary``)."""
        alpha = self.settings.alpha if alpha is None else alpha
        return self.estimates[self.estimates["pvalue"] <= alpha].reset_index(drop=True)

    def to_csv(self, directory: str | os.PathLike) -> dict[str, Path]:
        """Write the tables to ``directory`` (:func:`~bayes_wake.io.artefacts.write_mwa_tables`)."""
        return write_mwa_tables(self, directory)

    def plot(self, **kwargs):
        """Draw the effect surface (Figure 6 style); returns ``(fig, ax)``."""
        from bayes_wake.plotting import plot_effect_surface

        kwargs.setdefault("t_unit", self.cube_attrs.get("t_unit", "days"))
        kwargs.setdefault("alpha", self.settings.alpha)
        return plot_effect_surface(self.surface, value="estimate", **kwargs)


_WAKE_COLUMNS = ("eventID", "t_window", "spat_window", "treatment", "dependent_pre",
                 "dependent_trend", "SO_pre", "MO_pre", "dependent_post", "SO_post", "MO_post")


def _cube_columns(cube: xr.Dataset, match_on: Sequence[str]) -> tuple[dict, np.ndarray]:
    """R's wake-table columns as arrays of shape (event, window, radius), and the mask of
    wakes that enter the analysis (complete ones in the ``mwa`` convention)."""
    order = ("event", "window", "radius")
    n_e, n_w, n_r = (cube.sizes[d] for d in order)

    def grid(name: str, period: str | None = None) -> np.ndarray:
        var = cube[name] if period is None else cube[name].sel(period=period)
        return var.transpose(*order).to_numpy()

    def per_event(values) -> np.ndarray:
        return np.broadcast_to(np.asarray(values)[:, None, None], (n_e, n_w, n_r))

    columns = {
        "eventID": per_event(cube["event"].to_numpy()),
        "t_window": np.broadcast_to(cube["window"].to_numpy()[None, :, None], (n_e, n_w, n_r)),
        "spat_window": np.broadcast_to(cube["radius"].to_numpy()[None, None, :],
                                       (n_e, n_w, n_r)),
        "treatment": per_event(cube["treated"].to_numpy().astype(np.int64)),
        "dependent_pre": grid("dependent", "pre"),
        "dependent_trend": grid("trend"),
        "SO_pre": grid("same_type", "pre"),
        "MO_pre": grid("other_type", "pre"),
        "dependent_post": grid("dependent", "post"),
        "SO_post": grid("same_type", "post"),
        "MO_post": grid("other_type", "post"),
    }
    for name in match_on:
        columns[name] = per_event(cube[name].to_numpy())
    if cube.attrs.get("convention") == "mwa":
        keep = np.broadcast_to(cube["complete"].transpose("event", "window").to_numpy()[
            :, :, None], (n_e, n_w, n_r))
    else:
        keep = np.ones((n_e, n_w, n_r), dtype=bool)
    return columns, keep


def cell_frame(cube: xr.Dataset, window, radius, match_on: Sequence[str] = ()) -> pd.DataFrame:
    """The wakes of one (window, radius) cell as rows of R's wake table (only the complete
    wakes in the ``mwa`` convention)."""
    columns, keep = _cube_columns(cube, match_on)
    i = int(np.flatnonzero(cube["window"].to_numpy() == window)[0])
    j = int(np.flatnonzero(cube["radius"].to_numpy() == radius)[0])
    rows = keep[:, i, j]
    return pd.DataFrame({k: v[:, i, j][rows] for k, v in columns.items()})


def matched_wake_analysis(cube: xr.Dataset, settings: MWASettings, *,
                          progress: Callable[[int, int], None] | None = None) -> MWAResult:
    """Matched wake analysis over the whole window grid, as R's ``matchedwake``.

    Parameters
    ----------
    cube
        The wake cube from :func:`bayes_wake.wakes.count_wakes`.
    settings
        R's ``matchedwake`` arguments (:class:`MWASettings`). With ``settings.spillover``
        ``estimate`` is the direct effect, and the estimates table and surface add
        :data:`SPILLOVER_COLUMNS` (the coefficient of ``exposure_post``, events per wake per
        neighbouring treatment).
    progress
        Called as ``progress(done, total)`` after each cell.

    Returns
    -------
    MWAResult
        R's four tables and the effect surface. A cell whose regression has an aliased
        coefficient or an undefined p-value is NA in every estimate column, as in R.
    """
    windows = cube["window"].to_numpy()
    radii = cube["radius"].to_numpy()
    clusters, kernel = vcov_inputs(cube, settings.vcov)
    est_rows, match_rows, sutva_rows = [], [], []
    surface_vars = {k: np.full((len(windows), len(radii)), np.nan) for k in (
        *_SURFACE_VARIABLES, *(SPILLOVER_COLUMNS if settings.spillover else ()))}
    na_reason = np.full((len(windows), len(radii)), "", dtype=object)
    total = len(windows) * len(radii)
    for done, cell in enumerate(matched_cells(cube, settings), 1):
        idx = cell.events
        fit = weighted_ols(cell.y, cell.design, cell.weights, vcov=settings.vcov,
                           clusters=None if clusters is None else clusters[idx],
                           kernel=None if kernel is None else kernel[idx][:, idx])
        i, j = cell.index
        na_reason[i, j] = _na_reason(cell, fit, settings)
        row = _estimates_row(cell, fit, settings)
        est_rows.append(row)
        match_rows.append({"t_window": int(cell.window), "spat_window": float(cell.radius),
                           **cell.balance})
        sutva_rows.append({"t_window": int(cell.window), "spat_window": float(cell.radius),
                           **_sutva_shares(cell.wakes)})
        for key, value in _surface_values(cell, row, settings).items():
            surface_vars[key][i, j] = value
        if progress is not None:
            progress(done, total)
    return MWAResult(
        estimates=_spatial_as_int(pd.DataFrame(est_rows)),
        matching=_spatial_as_int(pd.DataFrame(match_rows)),
        sutva=_spatial_as_int(pd.DataFrame(sutva_rows)),
        wakes=_spatial_as_int(_wakes_table(cube, settings)),
        surface=_surface(cube, surface_vars, na_reason, settings),
        settings=settings,
        cube_attrs=dict(cube.attrs),
        pretrend=pretrend_table(cube, settings) if "dependent_lead" in cube else None,
    )


#: The effect surface's variables besides ``na_reason`` (and the spillover columns).
_SURFACE_VARIABLES = ("estimate", "std_error", "ci_lower", "ci_upper", "pvalue",
                      "adj_r_squared", "intercept", "intercept_pvalue", "n_treated",
                      "n_control", "L1_pre", "L1_post", "treated_overlap")


def _estimates_row(cell: MatchedCell, fit: OLSFit, settings: MWASettings) -> dict:
    """One cell's row of R's estimates table, with :data:`EXTRA_ESTIMATE_COLUMNS` (and the
    spillover columns).

    R's NA rule: no estimate where the fit is NA; an estimate without its p-value where only
    this choice's standard errors are undefined (R's NaN, e.g. HC3 at leverage 1).
    """
    defined, estimated = fit.defined, fit.estimated
    row = {"t_window": int(cell.window), "spat_window": float(cell.radius),
           "estimate": fit.coef[-1] if estimated else np.nan,
           "pvalue": fit.pvalue[-1] if defined else np.nan}
    if settings.estimation == "lm":
        row["adj.r.squared"] = fit.adj_r_squared if estimated else np.nan
    row["intercept"] = fit.coef[0] if estimated else np.nan
    row["intercept.pval"] = fit.pvalue[0] if defined else np.nan
    row["std_error"] = fit.std_error[-1] if defined else np.nan
    row["ci_lower"], row["ci_upper"] = coefficient_interval(fit, 1 - settings.alpha) \
        if defined else (np.nan, np.nan)
    if settings.spillover:
        row.update(spillover_coefficient(cell, fit))
    return row


def _surface_values(cell: MatchedCell, row: dict, settings: MWASettings) -> dict:
    """One cell's values of the effect surface's variables (:data:`_SURFACE_VARIABLES`)."""
    values = {"estimate": row["estimate"], "pvalue": row["pvalue"],
              "std_error": row["std_error"], "ci_lower": row["ci_lower"],
              "ci_upper": row["ci_upper"],
              "adj_r_squared": row.get("adj.r.squared", np.nan),
              "intercept": row["intercept"], "intercept_pvalue": row["intercept.pval"],
              "n_treated": cell.balance["treatment_post"],
              "n_control": cell.balance["control_post"],
              "L1_pre": cell.l1[0], "L1_post": cell.l1[1],
              "treated_overlap": _treated_overlap(cell.wakes)}
    if settings.spillover:
        values.update({key: row[key] for key in SPILLOVER_COLUMNS})
    return values


def _wakes_table(cube: xr.Dataset, settings: MWASettings) -> pd.DataFrame:
    """R's wake table: radius outer, window inner, events in time order (and, with
    ``spillover``, each wake's exposure to neighbouring treatments after R's columns)."""
    columns, keep = _cube_columns(cube, settings.match_on)
    if settings.delete_sutva:
        keep = keep & (columns["SO_pre"] == 0) & (columns["MO_pre"] == 0)
    in_r_order = keep.transpose(2, 1, 0)
    if settings.spillover:
        columns = {**columns, **{k: v.astype(np.int64) for k, v in
                                 _exposure_columns(cube).items()}}
    return pd.DataFrame({k: v.transpose(2, 1, 0)[in_r_order] for k, v in columns.items()})


def _surface(cube: xr.Dataset, variables: dict, na_reason: np.ndarray,
             settings: MWASettings) -> xr.Dataset:
    """The estimates as a (window, radius) Dataset, with the analysis's settings in attrs."""
    surface = xr.Dataset(
        {k: (("window", "radius"), v) for k, v in variables.items()},
        coords={"window": cube["window"].to_numpy(), "radius": cube["radius"].to_numpy()},
    )
    surface["na_reason"] = (("window", "radius"), na_reason)
    surface["window"].attrs = dict(cube["window"].attrs)
    surface["radius"].attrs = dict(cube["radius"].attrs)
    surface.attrs.update({"estimator": "matched wake analysis (OLS DiD)",
                          "formula": FORMULAS[settings.formula],
                          "settings": json.dumps(settings.to_dict()),
                          "standard_errors": settings.vcov.label,
                          "ci_level": 1 - settings.alpha,
                          "t_unit": cube.attrs.get("t_unit", "days"),
                          "convention": cube.attrs.get("convention", "")})
    return surface


def coefficient_interval(fit: OLSFit, level: float) -> tuple[float, float]:
    """The ``level`` interval of the treatment coefficient that inverts the fit's own test.

    It holds the effects that the two-sided test behind ``fit.pvalue`` would not reject at
    ``1 - level``, so it excludes 0 exactly when the p-value is at most ``1 - level``: t with
    the test's own degrees of freedom (``fit.df_test``: the residual df for classical, HC1
    and HC3, G - 1 for CR1, Satterthwaite's for CR2 and ``conley-bm``), the normal where
    they are infinite (``conley``).

    Returns
    -------
    tuple of float
        ``(lower, upper)`` in the estimate's unit (events per wake).
    """
    estimate, se = float(fit.coef[-1]), float(fit.std_error[-1])
    df = float(np.asarray(fit.df_test)[-1])
    tail = (1 - level) / 2
    critical = -special.ndtri(tail) if np.isinf(df) else -special.stdtrit(df, tail)
    return estimate - critical * se, estimate + critical * se


@dataclass(frozen=True)
class MatchedCell:
    """The matched wakes of one (window, radius) cell, ready for the regression.

    Attributes
    ----------
    index, window, radius
        Position (window index, radius index) and labels of the cell.
    events
        Positions (along the cube's ``event`` dim) of the wakes in the regression.
    y, design, weights
        Outcome, design matrix (intercept first, treatment last) and regression weights of
        those wakes (CEM weights when weighted, else 1).
    treated, pre, stratum
        Treatment flag, pre count and CEM stratum (0 without matching) of those wakes.
    wakes
        R's wake-table columns of all wakes of the cell before matching.
    balance
        R's matching-table entries of the cell.
    l1
        L1 imbalance before and after matching.
    exposure
        Names of the exposure columns in ``design`` (with ``spillover``; they sit just before
        the treatment column, in this order; a column constant over the matched wakes is
        left out, as the intercept already holds it).
    """

    index: tuple[int, int]
    window: float
    radius: float
    events: np.ndarray
    y: np.ndarray
    design: np.ndarray
    weights: np.ndarray
    treated: np.ndarray
    pre: np.ndarray
    stratum: np.ndarray
    wakes: dict
    balance: dict
    l1: tuple[float, float]
    exposure: tuple[str, ...] = ()


def matched_cells(cube: xr.Dataset, settings: MWASettings, *, balance: bool = True):
    """The per-cell matched sets of a matched wake analysis: the one matcher.

    For every cell (window outer, radius inner): drop wakes with earlier overlaps under
    ``delete_sutva``, coarsened exact matching on the covariates and the pre-trend (plus
    ``SO_pre`` and ``MO_pre`` with ``tcm``), and the regression design of the formula.
    ``balance=False`` skips the L1 imbalance (NaN in ``balance`` and ``l1``), which costs
    more than the matching itself, for callers that only fit.

    Yields
    ------
    MatchedCell
    """
    _check_match_columns(cube, settings)
    match_vars = match_variables(settings)
    columns, keep = _cube_columns(cube, settings.match_on)
    if settings.delete_sutva:
        keep = keep & (columns["SO_pre"] == 0) & (columns["MO_pre"] == 0)
    exposure = _exposure_columns(cube) if settings.spillover else {}
    for i, window in enumerate(cube["window"].to_numpy()):
        for j, radius in enumerate(cube["radius"].to_numpy()):
            rows = keep[:, i, j]
            cell = {k: v[:, i, j][rows] for k, v in columns.items()}
            treated = cell["treatment"]
            x_match = np.column_stack([cell[k] for k in match_vars]).astype(float)
            l1_pre, cs_pre = l1_imbalance(x_match, treated) if balance else (np.nan, np.nan)
            in_fit, weights, stratum = _match(x_match, treated, settings)
            l1_post, cs_post = l1_imbalance(x_match[in_fit], treated[in_fit]) if balance \
                else (np.nan, np.nan)
            y, design = regression_design(cell["dependent_post"][in_fit],
                                          cell["dependent_pre"][in_fit],
                                          cell["treatment"][in_fit], settings.formula)
            design, names = _with_exposure(design, {
                k: v[:, i, j][rows][in_fit] for k, v in exposure.items()})
            table = {
                "control_pre": int((treated == 0).sum()),
                "treatment_pre": int((treated == 1).sum()),
                "L1_pre": r_round(l1_pre, 3)[0], "commonSupport_pre": r_round(cs_pre, 1)[0],
                "control_post": int((treated[in_fit] == 0).sum()),
                "treatment_post": int((treated[in_fit] == 1).sum()),
                "L1_post": r_round(l1_post, 3)[0], "commonSupport_post": r_round(cs_post, 1)[0],
            }
            yield MatchedCell(index=(i, j), window=window, radius=radius,
                              events=np.flatnonzero(rows)[in_fit], y=y, design=design,
                              weights=weights[in_fit], treated=treated[in_fit],
                              pre=cell["dependent_pre"][in_fit], stratum=stratum[in_fit],
                              wakes=cell,
                              balance=table, l1=(l1_pre, l1_post), exposure=names)


def _exposure_columns(cube: xr.Dataset) -> dict[str, np.ndarray]:
    """The exposure terms of every wake, shape (event, window, radius) each."""
    from bayes_wake.mwa.spillover import EXPOSURE_COLUMNS, spillover_exposure

    counts = spillover_exposure(cube).transpose("event", "window", "radius", "period")
    return {name: counts.sel(period=period).to_numpy().astype(float)
            for name, period in zip(EXPOSURE_COLUMNS, ("pre", "post"))}


def _with_exposure(design: np.ndarray, exposure: dict[str, np.ndarray]):
    """The design with the exposure columns that vary over the matched wakes inserted just
    before the treatment column, and their names."""
    names = tuple(k for k, v in exposure.items() if len(v) and np.ptp(v) > 0)
    if not names:
        return design, ()
    return np.column_stack([design[:, :-1], *(exposure[k] for k in names),
                            design[:, -1]]), names


def match_variables(settings: MWASettings) -> list[str]:
    """R's matching columns of a cell: the covariates, the pre-trend (``dependent_trend``)
    and, with ``tcm``, the earlier overlap counts ``SO_pre`` and ``MO_pre``."""
    names = [*settings.match_on, "dependent_trend"]
    return names + ["SO_pre", "MO_pre"] if settings.tcm else names


def _check_match_columns(cube: xr.Dataset, settings: MWASettings) -> None:
    """Raise :class:`SettingsError` if a match column is not a covariate of the cube."""
    missing = [c for c in settings.match_on if c not in cube.coords]
    if missing:
        raise SettingsError(f"match column(s) {missing} are not covariates of the wake cube "
                            f"(covariates: {json.loads(cube.attrs.get('covariates', '[]'))})")


def _match(x_match: np.ndarray, treated: np.ndarray, settings: MWASettings):
    """CEM of one set of wakes (all of them, weight 1, without matching).

    Returns
    -------
    tuple of numpy.ndarray
        Whether each wake is matched, its weight (the CEM weight when ``weighted``, else 1
        for matched wakes; 0 for unmatched ones) and its CEM stratum (0 without matching).
    """
    if settings.matching and len(treated):
        cem = coarsened_exact_match(x_match, treated)
        in_fit, weights, stratum = cem.matched, cem.weight, cem.stratum
    else:
        in_fit, weights = np.ones(len(treated), dtype=bool), np.ones(len(treated))
        stratum = np.zeros(len(treated), dtype=np.int64)
    if not settings.weighted:
        weights = in_fit.astype(float)
    return in_fit, weights, stratum


def _na_reason(cell: MatchedCell, fit: OLSFit, settings: MWASettings) -> str:
    """Why a cell's OLS (or only its p-value) is NA, in a few words (the first reason that
    applies; empty when the cell is estimated with its p-value)."""
    if fit.defined:
        return ""
    if fit.se_note:  # the fit is R's; this choice of standard errors is undefined
        return fit.se_note
    for flag, arm in ((1, "treated"), (0, "control")):
        if not (cell.wakes["treatment"] == flag).any():
            return f"no {arm} wakes" + (" after delete-SUTVA" if settings.delete_sutva else "")
        if not (cell.treated == flag).any():
            return f"no matched {arm} wakes"
    if fit.n <= cell.design.shape[1]:
        return "too few matched wakes"
    post = cell.y if settings.formula == "lag" else cell.y + cell.pre
    if np.ptp(cell.pre) == 0 and np.ptp(post) == 0:
        return ("no events in matched wakes" if not (cell.pre.any() or post.any())
                else "equal counts in matched wakes")
    if fit.aliased:  # the lag formula's pre-period count, with the intercept and treatment
        if cell.exposure and not _aliased_without_exposure(cell):
            return "exposure collinear with treatment (--spillover)"
        if np.ptp(cell.pre) == 0:
            return ("no pre events in matched wakes" if not cell.pre.any()
                    else "equal pre counts in matched wakes")
        return "pre counts collinear with treatment"
    if np.ptp(cell.y) == 0:
        if settings.formula == "diff":
            return "equal post - pre in matched wakes"
        return ("no post events in matched wakes" if not post.any()
                else "equal post counts in matched wakes")
    return "no finite p-value"


def _aliased_without_exposure(cell: MatchedCell) -> bool:
    """Whether the cell's design is rank deficient even without its exposure columns."""
    k = len(cell.exposure)
    x = np.column_stack([cell.design[:, :-1 - k], cell.design[:, -1]])
    return np.linalg.matrix_rank(x * np.sqrt(cell.weights)[:, None]) < x.shape[1]


#: The columns ``spillover=True`` adds to the estimates table (after
#: :data:`EXTRA_ESTIMATE_COLUMNS`): the coefficient of ``exposure_post`` (extra events in a
#: wake's post-period per other treatment whose post-period wake reaches it; NA where no
#: matched wake is exposed), its standard error (the ``vcov`` choice) and p-value.
SPILLOVER_COLUMNS = ("spillover", "spillover_std_error", "spillover_pvalue")


def spillover_coefficient(cell: MatchedCell, fit: OLSFit) -> dict[str, float]:
    """The :data:`SPILLOVER_COLUMNS` of one cell's fit (NaN where undefined)."""
    out = dict.fromkeys(SPILLOVER_COLUMNS, np.nan)
    if "exposure_post" not in cell.exposure or not fit.estimated:
        return out
    k = cell.design.shape[1] - 1 - len(cell.exposure) + cell.exposure.index("exposure_post")
    out["spillover"] = float(fit.coef[k])
    if fit.defined:
        out["spillover_std_error"] = float(fit.std_error[k])
        out["spillover_pvalue"] = float(fit.pvalue[k])
    return out


def wake_weights(cube: xr.Dataset, settings: MWASettings,
                 index: tuple[int, int] = (-1, -1)) -> np.ndarray:
    """Matching weight of every wake from one matching in one cell, over all its wakes.

    One matching for the whole grid: the match variables (:func:`match_variables`) of the
    cell at ``index`` for every wake of the cube, complete or not and whatever its earlier
    overlaps, matched by :func:`matched_cells`' rule. The Bayesian increments model matches
    once on the largest cell (the default), so that every increment refers to one
    population of matched treated wakes.

    Parameters
    ----------
    cube
        The wake cube.
    settings
        Match columns, ``tcm``, ``matching`` and ``weighted`` (the rest is ignored).
    index
        (window index, radius index) of the cell whose match variables are used.

    Returns
    -------
    numpy.ndarray
        Shape (event,): the weight of each matched wake (dimensionless), 0 for unmatched ones.
    """
    _check_match_columns(cube, settings)
    columns, _ = _cube_columns(cube, settings.match_on)
    i, j = index
    x_match = np.column_stack([columns[k][:, i, j] for k in match_variables(settings)])
    in_fit, weights, _ = _match(x_match.astype(float), columns["treatment"][:, i, j], settings)
    return np.where(in_fit, weights, 0.0)


def covariate_strata(cube: xr.Dataset, match_on: Sequence[str]) -> np.ndarray:
    """CEM stratum of every wake on its event covariates alone (no pre-trend, no overlaps).

    Returns
    -------
    numpy.ndarray
        Shape (event,), int64 from 0: wakes with equal numbers share every coarsened value of
        the ``match_on`` covariates (NaN is a value of its own).
    """
    _check_match_columns(cube, MWASettings(match_on=tuple(match_on)))
    x = np.column_stack([cube[n].to_numpy().astype(float) for n in match_on])
    return coarsened_exact_match(x, cube["treated"].to_numpy()).stratum


def vcov_inputs(cube: xr.Dataset, vcov: "str | VCov"):
    """What a standard-error choice needs from the cube: the cluster of every event (``CR1``,
    ``CR2``, ``CR2-ivw``; :func:`bayes_wake.core.regression.cluster_ids` over the cube's
    anchors, so that with ``near=KM,DAYS`` anchors sharing outcome events share a cluster) or
    the Conley kernel between events (``conley``, ``conley-bm``); None otherwise. Kernel and
    clusters are over all the cube's events; a cell takes its matched wakes' rows.

    Returns
    -------
    tuple
        ``(clusters, kernel)``: integer ids of shape (event,) or None, and a sparse (event,
        event) kernel or None.

    Raises
    ------
    SettingsError
        If the cluster column is not a covariate of the cube.
    """
    vcov = parse_vcov(vcov)
    if not (vcov.clustered or vcov.spatial):
        return None, None
    _refuse_shadowed_cluster(cube, vcov)
    days = (cube["time"].to_numpy() - np.datetime64("1970-01-01")) / np.timedelta64(1, "D")
    lat, lon = cube["lat"].to_numpy(), cube["lon"].to_numpy()
    if vcov.spatial:
        return None, conley_kernel(lat, lon, vcov.km, vcov.days, days)
    values = None
    for column in vcov.event_columns:
        if column not in cube.coords or "event" not in cube[column].dims:
            raise SettingsError(
                f"cluster column {column!r} (from {vcov}) is not an event column of the "
                f"wake cube; pass it as a covariate (covariates: "
                f"{json.loads(cube.attrs.get('covariates', '[]'))})")
        values = cube[column].to_numpy()
    return cluster_ids(vcov, lon=lon, lat=lat, time_days=days, values=values), None


def _refuse_shadowed_cluster(cube: xr.Dataset, vcov: VCov) -> None:
    """``wake`` and ``location`` are the grammar's clusters of anchors (each alone, identical
    coordinates), not columns: a cube with an event column of that name is refused rather
    than silently clustered otherwise (before the grammar had them, such a column won)."""
    if vcov.clustered and not vcov.event_columns and vcov.column in cube.coords:
        meaning = ("each anchor its own cluster" if vcov.column == "wake"
                   else "anchors at identical coordinates")
        raise SettingsError(f"{vcov}: {vcov.column!r} means {meaning}, but the wake cube also "
                            f"has an event column {vcov.column!r}; rename that column to "
                            "cluster on it")


#: The robust standard errors reported beside R's classical ones (the Sauter report, the
#: sensitivity report's first verdict): heteroskedasticity-robust, clustered by project
#: location (projects geocoded to one town share their wakes) and Conley's spatial HAC with a
#: 25 km cutoff, the last two in their Bell-McCaffrey versions, which hold their size on
#: placebo placements where CR1 and plain Conley do not (``benchmarks/run.py calibration``).
ROBUST_ERRORS = ("HC1", "CR2:location", "conley-bm:25")


def standard_error_table(cube: xr.Dataset, settings: MWASettings,
                         choices: Sequence[str]) -> pd.DataFrame:
    """Per cell, the OLS estimate with the standard error and p-value of several choices.

    Parameters
    ----------
    cube, settings
        As for :func:`matched_wake_analysis` (``settings.vcov`` is ignored).
    choices
        Standard-error choices (:func:`bayes_wake.core.regression.parse_vcov`).

    Returns
    -------
    pandas.DataFrame
        ``t_window``, ``spat_window``, ``estimate`` and ``std_error_<choice>``,
        ``pvalue_<choice>`` per choice (NA where R reports NA; the estimate stays where only
        a choice's standard errors are undefined).
    """
    choices = [parse_vcov(v) for v in choices]
    inputs = [vcov_inputs(cube, v) for v in choices]
    rows = []
    for cell in matched_cells(cube, settings, balance=False):
        idx = cell.events
        row = {"t_window": int(cell.window), "spat_window": float(cell.radius)}
        for vcov, (clusters, kernel) in zip(choices, inputs):
            fit = weighted_ols(cell.y, cell.design, cell.weights, vcov=vcov,
                               clusters=None if clusters is None else clusters[idx],
                               kernel=None if kernel is None else kernel[idx][:, idx])
            ok = fit.defined
            if fit.estimated or "estimate" not in row:
                row["estimate"] = fit.coef[-1] if fit.estimated else np.nan
            row[f"std_error_{vcov}"] = fit.std_error[-1] if ok else np.nan
            row[f"pvalue_{vcov}"] = fit.pvalue[-1] if ok else np.nan
        rows.append(row)
    return _spatial_as_int(pd.DataFrame(rows))


def regression_design(post, pre, treated, formula: Formula) -> tuple[np.ndarray, np.ndarray]:
    """Outcome and design of the table's regression (intercept first, treatment last):
    ``lag`` regresses post on (1, pre, treated), ``diff`` post - pre on (1, treated)."""
    post = np.asarray(post, dtype=float)
    pre = np.asarray(pre, dtype=float)
    treated = np.asarray(treated, dtype=float)
    ones = np.ones(len(post))
    if formula == "lag":
        return post, np.column_stack([ones, pre, treated])
    return post - pre, np.column_stack([ones, treated])


#: Above this share of treated wakes that hold another treatment's anchor, the outputs warn
#: that the treatment coefficient mixes each treatment's own effect with its neighbours'.
SPILLOVER_SHARE = 0.10


def _treated_overlap(wakes: dict) -> float:
    """Share of the cell's treated wakes holding another treatment anchor before or after
    (R's SO_pre, SO_post of the treated wakes); NaN without treated wakes."""
    treated = wakes["treatment"] == 1
    if not treated.any():
        return np.nan
    return float(((wakes["SO_pre"][treated] > 0) | (wakes["SO_post"][treated] > 0)).mean())


def spillover_warning(result: MWAResult) -> str | None:
    """One sentence when more than :data:`SPILLOVER_SHARE` of the treated wakes of some cell
    hold another treatment's anchor, else None.

    Treatments that come in clumps (a programme's projects in one town within weeks) put
    their neighbours' anchors, and so their neighbours' effects, into each other's wakes:
    the coefficient is then a treatment's own effect plus the spillover from the others,
    not the effect of one treatment.
    """
    share = result.surface["treated_overlap"]
    over = share.where(share > SPILLOVER_SHARE)
    n = int(over.notnull().sum())
    if not n:
        return None
    worst = float(share.max())
    return (f"in {n} of {share.size} windows more than {SPILLOVER_SHARE:.0%} of the treated "
            f"wakes hold another treatment's anchor (up to {worst:.0%}): there each treated "
            "wake also catches its neighbours' effects, so the coefficient mixes a treatment's "
            "own effect with spillover from treatments nearby (SUTVA.csv, SO columns)")


def _sutva_shares(wakes: dict) -> dict[str, float]:
    n = len(wakes["SO_pre"])
    out = {}
    for prefix in ("SO", "MO"):
        pre, post = wakes[f"{prefix}_pre"] > 0, wakes[f"{prefix}_post"] > 0
        for name, flag in ((f"{prefix}_pre", pre), (f"{prefix}_post", post),
                           (prefix, pre | post)):
            out[name] = r_round(flag.sum() / n, 3)[0] if n else np.nan
    return out


def _spatial_as_int(table: pd.DataFrame) -> pd.DataFrame:
    """R prints whole-number radii without decimals; keep them integers when they are."""
    if "spat_window" in table and len(table):
        values = table["spat_window"].to_numpy(dtype=float)
        if np.all(values == np.round(values)):
            table = table.assign(spat_window=values.astype(np.int64))
    return table


#: Above this share of the estimable windows with a clear lead (p <= alpha), the outputs warn
#: that the placements already differed before the treatment: four times the share expected
#: by chance at alpha = .05 (nested windows share events, so chance alone gives clumps).
PRETREND_SHARE = 0.20

#: The pre-trend placebo's columns (:func:`pretrend_table`), per cell.
PRETREND_COLUMNS = ("lead_estimate", "lead_std_error", "lead_pvalue", "lead_ci_lower",
                    "lead_ci_upper", "lead_wakes")


def lead_cells(cube: xr.Dataset, settings: MWASettings):
    """The matched cells of the pre-trend placebo: each cell of :func:`matched_cells` moved
    back one period.

    On the cell's matched wakes and weights, the table's formula with the pre-period count
    as the outcome and the lead-period count (the ``window + 1`` units before the
    pre-period, :func:`bayes_wake.wakes.count_wakes` with ``leads=True``) as the "pre"
    count: ``pre ~ lead + treatment`` (``lag``) or ``pre - lead ~ treatment`` (``diff``),
    with the cell's exposure terms under ``spillover``. Wakes whose lead period runs off the
    record are left out.

    Yields
    ------
    MatchedCell
        With ``events``, ``y``, ``design``, ``weights``, ``treated``, ``pre`` (the lead
        count) and ``stratum`` of the wakes kept; the rest as :func:`matched_cells` gives it.

    Raises
    ------
    SettingsError
        When the cube has no lead counts.
    """
    if "dependent_lead" not in cube:
        raise SettingsError("the wake cube has no lead counts: count it with "
                            "count_wakes(..., leads=True)")
    return _moved_back(cube, settings)


def _moved_back(cube: xr.Dataset, settings: MWASettings):
    """:func:`lead_cells`' cells (a generator, so that its check runs when it is called)."""
    lead = cube["dependent_lead"].transpose("event", "window", "radius").to_numpy()
    covered = cube["lead_complete"].transpose("event", "window").to_numpy()
    for cell in matched_cells(cube, settings, balance=False):
        i, j = cell.index
        keep = covered[cell.events, i]
        idx = cell.events[keep]
        y, x = regression_design(cell.pre[keep], lead[idx, i, j], cell.treated[keep],
                                 settings.formula)
        p = cell.design.shape[1]
        exposure = cell.design[keep][:, p - 1 - len(cell.exposure):p - 1]
        yield replace(cell, events=idx, y=y,
                      design=np.column_stack([x[:, :-1], exposure, x[:, -1]]),
                      weights=cell.weights[keep], treated=cell.treated[keep],
                      pre=lead[idx, i, j], stratum=cell.stratum[keep])


def pretrend_table(cube: xr.Dataset, settings: MWASettings) -> pd.DataFrame:
    """The pre-trend placebo per cell: the cell's own regression moved back one period
    (:func:`lead_cells`).

    No treatment has started in either period, so its coefficient (the *lead*) estimates 0
    where treated and control places evolved alike; a clear lead says the places already
    differed, and that the cell's estimate carries that difference. Standard errors: the
    ``vcov`` choice, HC1 in place of R's classical ones.

    Limits: matching uses the pre-period trend, so the lead is partly matched away (a
    difference in levels that grows steadily still shows); a lead of one period cannot see
    a difference that starts with the treatment; and clear leads in nested cells are not
    independent confirmations.

    Returns
    -------
    pandas.DataFrame
        ``t_window``, ``spat_window`` and :data:`PRETREND_COLUMNS` (events per wake; NA where
        the regression is, by R's rule).
    """
    vcov = parse_vcov("HC1") if settings.vcov.kind == "classical" else settings.vcov
    cells = lead_cells(cube, settings)  # refuses a cube without leads before any work
    clusters, kernel = vcov_inputs(cube, vcov)
    rows = []
    for cell in cells:
        idx = cell.events
        fit = weighted_ols(cell.y, cell.design, cell.weights, vcov=vcov,
                           clusters=None if clusters is None else clusters[idx],
                           kernel=None if kernel is None else kernel[idx][:, idx])
        lower, upper = coefficient_interval(fit, 1 - settings.alpha) if fit.defined \
            else (np.nan, np.nan)
        rows.append({"t_window": int(cell.window), "spat_window": float(cell.radius),
                     "lead_estimate": fit.coef[-1] if fit.estimated else np.nan,
                     "lead_std_error": fit.std_error[-1] if fit.defined else np.nan,
                     "lead_pvalue": fit.pvalue[-1] if fit.defined else np.nan,
                     "lead_ci_lower": lower, "lead_ci_upper": upper,
                     "lead_wakes": len(idx)})
    return _spatial_as_int(pd.DataFrame(rows))


def pretrend_warning(table: pd.DataFrame, alpha: float) -> tuple[str, bool]:
    """One sentence on the pre-trend placebo: in how many windows the lead is clear, and
    whether that is more than :data:`PRETREND_SHARE` of the estimable ones (the warning)."""
    estimable = int(table["lead_pvalue"].notna().sum())
    clear = table["lead_pvalue"] <= alpha
    n = int(clear.sum())
    if not estimable:
        return "pre-trend placebo: no window has an estimable lead", False
    signs = table.loc[clear, "lead_estimate"]
    side = "" if not n else (" (all positive)" if (signs > 0).all() else
                             " (all negative)" if (signs < 0).all() else "")
    text = (f"pre-trend placebo (the same regression one period earlier, lead vs pre): the "
            f"lead is clear (p <= {alpha:g}) in {n} of {estimable} windows{side}")
    if n > PRETREND_SHARE * estimable:
        return (text + f", more than {PRETREND_SHARE:.0%}: treated and control places already "
                "differed before any treatment, so those windows' estimates are suspect "
                "(pretrend.csv)"), True
    return text + " (pretrend.csv)", False
