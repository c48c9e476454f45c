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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

from bayes_wake.artefacts import atomic_path
from bayes_wake.errors import SettingsError
from bayes_wake.matching import coarsened_exact_match, l1_imbalance
from bayes_wake.rcompat import r_round
from bayes_wake.regression import VCov, weighted_ols

__all__ = ["MWASettings", "MWAResult", "matched_wake_analysis", "cell_frame"]

Formula = Literal["lag", "diff"]
Estimation = Literal["lm", "att"]
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
        ``classical`` (R), ``HC1`` or ``HC3`` robust standard errors.
    alpha
        Significance level for summaries (R's ``alpha1``).
    """

    match_on: tuple[str, ...] = ()
    weighted: bool = False
    tcm: bool = False
    delete_sutva: bool = False
    matching: bool = True
    formula: Formula = "lag"
    estimation: Estimation = "lm"
    vcov: VCov = "classical"
    alpha: float = 0.05

    def __post_init__(self) -> None:
        if self.formula not in FORMULAS:
            raise SettingsError(f"unknown formula {self.formula!r}; use 'lag' or 'diff'")
        if self.estimation not in ("lm", "att"):
            raise SettingsError(f"unknown estimation {self.estimation!r}; use 'lm' or 'att'")
        if self.vcov not in ("classical", "HC1", "HC3"):
            raise SettingsError(f"unknown vcov {self.vcov!r}; use classical, HC1 or HC3")
        if not 0 < self.alpha < 1:
            raise SettingsError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.matching and not self.match_on:
            raise SettingsError("name at least one covariate to match on (R: matchColumns), "
                                "or switch matching off")


@dataclass
class MWAResult:
    """The result of :func:`matched_wake_analysis`.

    Attributes
    ----------
    estimates, matching, sutva, wakes
        R's four tables (``estimates``, ``matching``, ``SUTVA``, ``wakes``), same columns and
        row order.
    surface
        The estimates as an :class:`xarray.Dataset` with dims ``window`` x ``radius``
        (variables ``estimate``, ``std_error``, ``pvalue``, ``adj_r_squared``,
        ``intercept``, ``intercept_pvalue``, ``n_treated``, ``n_control``).
    settings
        The settings used.
    cube_attrs
        Attributes of the wake cube (unit, convention, provenance).
    """

    estimates: pd.DataFrame
    matching: pd.DataFrame
    sutva: pd.DataFrame
    wakes: pd.DataFrame
    surface: xr.Dataset
    settings: MWASettings
    cube_attrs: dict = field(default_factory=dict)

    def significant(self, alpha: float | None = None) -> pd.DataFrame:
        """Rows of the estimates table with ``pvalue <= alpha`` (R's ``summary``)."""
        alpha = self.settings.alpha if alpha is None else alpha
        return self.estimates[self.estimates["pvalue"] <= alpha].reset_index(drop=True)

    def to_csv(self, directory: str | os.PathLike) -> dict[str, Path]:
        """Write ``estimates.csv``, ``matching.csv``, ``SUTVA.csv`` and ``wakes.csv``.

        Numbers are written with 15 significant digits and NA as an empty cell; each file
        is written to a temporary name and renamed into place.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written = {}
        for name, table in (("estimates", self.estimates), ("matching", self.matching),
                            ("SUTVA", self.sutva), ("wakes", self.wakes)):
            written[name] = write_table(table, directory / f"{name}.csv")
        return written

    def plot(self, **kwargs):
        """Draw the effect surface (Figure 6 style); returns ``(fig, ax)``."""
        from bayes_wake.plotting import plot_effect_surface

        kwargs.setdefault("t_unit", self.cube_attrs.get("t_unit", "days"))
        kwargs.setdefault("alpha", self.settings.alpha)
        return plot_effect_surface(self.surface, value="estimate", **kwargs)


def write_table(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a CSV atomically with R-like numbers (15 significant digits, NA empty)."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.15g", na_rep="")
    return Path(path)


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


def matched_wake_analysis(
    cube: xr.Dataset,
    *,
    match_on: Sequence[str] = (),
    weighted: bool = False,
    tcm: bool = False,
    delete_sutva: bool = False,
    matching: bool = True,
    formula: Formula = "lag",
    estimation: Estimation = "lm",
    vcov: VCov = "classical",
    alpha: float = 0.05,
    progress: Callable[[int, int], None] | None = None,
) -> MWAResult:
    """Matched wake analysis over the whole window grid, as R's ``matchedwake``.

    Parameters
    ----------
    cube
        The wake cube from :func:`bayes_wake.wakes.count_wakes`.
    match_on, weighted, tcm, delete_sutva, matching, formula, estimation, vcov, alpha
        See :class:`MWASettings`.
    progress
        Called as ``progress(done, total)`` after each cell.

    Returns
    -------
    MWAResult
        R's four tables and the effect surface. A cell whose regression has an aliased
        coefficient or an undefined p-value is NA in every estimate column, as in R.
    """
    settings = MWASettings(match_on=tuple(match_on), weighted=weighted, tcm=tcm,
                           delete_sutva=delete_sutva, matching=matching, formula=formula,
                           estimation=estimation, vcov=vcov, alpha=alpha)
    missing = [c for c in settings.match_on if c not in cube.coords]
    if missing:
        raise SettingsError(f"match column(s) {missing} are not covariates of the wake cube "
                            f"(covariates: {json.loads(cube.attrs.get('covariates', '[]'))})")
    windows = cube["window"].to_numpy()
    radii = cube["radius"].to_numpy()
    match_vars = [*settings.match_on, "dependent_trend"]
    if tcm:
        match_vars += ["SO_pre", "MO_pre"]
    columns, keep = _cube_columns(cube, settings.match_on)
    if delete_sutva:
        keep = keep & (columns["SO_pre"] == 0) & (columns["MO_pre"] == 0)

    est_rows, match_rows, sutva_rows = [], [], []
    surface_vars = {k: np.full((len(windows), len(radii)), np.nan) for k in (
        "estimate", "std_error", "pvalue", "adj_r_squared", "intercept", "intercept_pvalue",
        "n_treated", "n_control", "L1_pre", "L1_post")}
    total, done = len(windows) * len(radii), 0
    for i, window in enumerate(windows):
        for j, radius in enumerate(radii):
            rows = keep[:, i, j]
            cell = {k: v[:, i, j][rows] for k, v in columns.items()}
            treated = cell["treatment"]
            x_match = np.column_stack([cell[k] for k in match_vars]).astype(float)
            l1_pre, cs_pre = l1_imbalance(x_match, treated)
            if matching and len(treated):
                cem = coarsened_exact_match(x_match, treated)
                in_fit, weights = cem.matched, cem.weight
            else:
                in_fit, weights = np.ones(len(treated), dtype=bool), np.ones(len(treated))
            if not weighted:
                weights = in_fit.astype(float)
            l1_post, cs_post = l1_imbalance(x_match[in_fit], treated[in_fit])
            y, design = _design({k: cell[k][in_fit] for k in
                                 ("dependent_post", "dependent_pre", "treatment")}, formula)
            fit = weighted_ols(y, design, weights[in_fit], vcov=vcov)
            defined = fit.defined
            row = {"t_window": int(window), "spat_window": float(radius),
                   "estimate": fit.coef[-1] if defined else np.nan,
                   "pvalue": fit.pvalue[-1] if defined else np.nan}
            if estimation == "lm":
                row["adj.r.squared"] = fit.adj_r_squared if defined else np.nan
            row["intercept"] = fit.coef[0] if defined else np.nan
            row["intercept.pval"] = fit.pvalue[0] if defined else np.nan
            est_rows.append(row)
            n_t = int((treated[in_fit] == 1).sum())
            n_c = int((treated[in_fit] == 0).sum())
            match_rows.append({
                "t_window": int(window), "spat_window": float(radius),
                "control_pre": int((treated == 0).sum()),
                "treatment_pre": int((treated == 1).sum()),
                "L1_pre": r_round(l1_pre, 3)[0], "commonSupport_pre": r_round(cs_pre, 1)[0],
                "control_post": n_c, "treatment_post": n_t,
                "L1_post": r_round(l1_post, 3)[0], "commonSupport_post": r_round(cs_post, 1)[0],
            })
            sutva_rows.append({"t_window": int(window), "spat_window": float(radius),
                               **_sutva_shares(cell)})
            for key, value in (("estimate", row["estimate"]), ("pvalue", row["pvalue"]),
                               ("std_error", fit.std_error[-1] if defined else np.nan),
                               ("adj_r_squared", fit.adj_r_squared if defined else np.nan),
                               ("intercept", row["intercept"]),
                               ("intercept_pvalue", row["intercept.pval"]),
                               ("n_treated", n_t), ("n_control", n_c),
                               ("L1_pre", l1_pre), ("L1_post", l1_post)):
                surface_vars[key][i, j] = value
            done += 1
            if progress is not None:
                progress(done, total)

    # R's wake table: radius outer, window inner, events in time order.
    in_r_order = keep.transpose(2, 1, 0)
    wakes_table = pd.DataFrame({k: v.transpose(2, 1, 0)[in_r_order]
                                for k, v in columns.items()})
    surface = xr.Dataset(
        {k: (("window", "radius"), v) for k, v in surface_vars.items()},
        coords={"window": windows, "radius": radii},
    )
    surface["window"].attrs = dict(cube["window"].attrs)
    surface["radius"].attrs = dict(cube["radius"].attrs)
    surface.attrs.update({"estimator": "matched wake analysis (OLS DiD)",
                          "formula": FORMULAS[formula],
                          "settings": json.dumps(asdict(settings)),
                          "t_unit": cube.attrs.get("t_unit", "days"),
                          "convention": cube.attrs.get("convention", "")})
    return MWAResult(
        estimates=_spatial_as_int(pd.DataFrame(est_rows)),
        matching=_spatial_as_int(pd.DataFrame(match_rows)),
        sutva=_spatial_as_int(pd.DataFrame(sutva_rows)),
        wakes=_spatial_as_int(wakes_table),
        surface=surface,
        settings=settings,
        cube_attrs=dict(cube.attrs),
    )


def _design(rows: dict, formula: Formula) -> tuple[np.ndarray, np.ndarray]:
    post = np.asarray(rows["dependent_post"], dtype=float)
    pre = np.asarray(rows["dependent_pre"], dtype=float)
    treated = np.asarray(rows["treatment"], dtype=float)
    ones = np.ones(len(post))
    if formula == "lag":
        return post, np.column_stack([ones, pre, treated])
    return post - pre, np.column_stack([ones, treated])


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
