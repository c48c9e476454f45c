"""Placebo-placement calibration: how often does each test reject on *your* data when there
is no effect?

A test of level 0.05 should flag 5% of windows when nothing happened. Whether it does on
sparse, bursty conflict data is an empirical question, answered here the way the field's
placebo designs answer it: re-draw the treatment and control placements over candidate sites
(treatments weighted by a column of the sites, e.g. nearness to a base; dates uniform over the
real anchors' span), keep the real outcome events, recount, rematch, refit, and count the
windows each standard-error choice (and the Bayesian surface) calls significant.
:func:`placebo_calibration_task` is one placement (a task of :mod:`bayes_wake.checks.tasks`),
:func:`placebo_size` the size table, :func:`calibration_sentence` its verdict and
:func:`calibration_check` all of it as a :class:`~bayes_wake.checks.result.CheckResult`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from bayes_wake.checks.recovery import placebo_placement, posterior_cells
from bayes_wake.checks.result import CheckResult
from bayes_wake.errors import EventDataError
from bayes_wake.io.tables import (
    check_coordinates,
    counted,
    find_column,
    parse_numbers,
    read_table,
)
from bayes_wake.mwa.analysis import MWASettings, standard_error_table
from bayes_wake.wakes import count_wakes

__all__ = ["CALIBRATION_CHOICES", "calibration_check", "calibration_table",
           "read_placebo_sites", "placebo_calibration_task", "placebo_size", "placebo_shift",
           "calibration_sentence"]

#: The standard-error choices a calibration sizes; none needs a column of the sites
#: (``location`` clusters anchors at identical coordinates).
CALIBRATION_CHOICES = ("classical", "HC1", "HC3", "CR1:location", "CR2:location",
                       "conley:25", "conley-bm:25")
#: A choice "holds its size" when it flags at most this multiple of the nominal level.
SIZE_TOLERANCE = 1.4
#: |t| of the mean placebo estimate above which the verdict reports a bias.
SHIFT_T = 3.0
#: The posterior interval whose exclusion of 0 counts as a Bayesian false positive, when a
#: placement's result does not say its level (``ci``: tasks stored before levels were).
BAYES_INTERVAL = 0.9


def calibration_table(cube: xr.Dataset, settings: MWASettings, choices: Sequence[str],
                      **labels) -> pd.DataFrame:
    """Per cell of one placement: the OLS estimate and the p-value of every standard-error
    choice (:func:`bayes_wake.mwa.analysis.standard_error_table`), with ``labels`` as columns."""
    table = standard_error_table(cube, settings, choices)
    for key, value in labels.items():
        table[key] = value
    return table


def read_placebo_sites(path: str | os.PathLike, covariates: Sequence[str],
                       weight: str | None = None) -> pd.DataFrame:
    """Read the candidate sites of a placebo calibration.

    Parameters
    ----------
    path
        CSV, Parquet or vector file of points: ``lat``/``lon`` (or ``latitude``/
        ``longitude``) in WGS84 degrees, every covariate of the events and the weight column.
    covariates
        The events' covariates (the match columns), which every site must carry.
    weight
        Column whose values weight where treatments are drawn (finite, >= 0, not all 0).

    Returns
    -------
    pandas.DataFrame
        ``lat``, ``lon``, the covariates and the weight as float64.

    Raises
    ------
    EventDataError
        Missing file or column, or a cell that is missing, not a number, or out of range,
        naming the file, rows and column.
    """
    frame = read_table(path, "placebo sites file")
    label = os.fspath(path)
    out = {}
    for ours, names in (("lat", ("lat", "latitude")), ("lon", ("lon", "longitude")),
                        *((c, (c,)) for c in [*covariates, *([weight] if weight else [])])):
        column = find_column(frame, names)
        if column is None:
            need = f"lat, lon, the match columns {list(covariates)}" + (
                f" and the weight column {weight!r}" if weight else "")
            raise EventDataError(f"missing column {names[0]!r} (the sites need {need}); the "
                                 f"file has columns: {', '.join(frame.columns)}",
                                 path=label, column=names[0])
        values = parse_numbers(frame[column], name=column, path=label, what="site value")
        bad = ~np.isfinite(values)
        if bad.any():
            raise EventDataError("missing or infinite site value", path=label, column=column,
                                 rows=list(np.flatnonzero(bad) + 1))
        out[ours] = values
    check_coordinates(out["lon"], out["lat"], lon_name="lon", lat_name="lat", path=label)
    if weight and ((out[weight] < 0).any() or out[weight].sum() <= 0):
        raise EventDataError("site weights must be >= 0 and not all 0", path=label,
                             column=weight, rows=list(np.flatnonzero(out[weight] < 0) + 1))
    sites = pd.DataFrame(out)
    sites.attrs["source"] = label
    return sites


def placebo_calibration_task(events: pd.DataFrame, sites: pd.DataFrame, placement: int,
                             seed: int, config: dict) -> dict:
    """One placebo placement (a task): re-draw, count, match, fit every choice.

    Parameters
    ----------
    events
        The event table (its outcome events are kept, its anchors re-drawn).
    sites
        :func:`read_placebo_sites`.
    placement, seed
        The placement's number and the run's seed (together: its random stream).
    config
        JSON-ready: ``windows``, ``radii``, ``t_unit``, ``convention``, ``mwa``
        (:meth:`MWASettings.to_dict`), ``vcovs`` (the standard-error choices; the key is
        older than the name and task keys hold it), ``weight`` and ``spec`` (a model spec
        as a dict, or None for no Bayesian fit; then ``ci``, its interval level, default
        0.9).

    Returns
    -------
    dict
        ``placement``, ``cells`` (column lists of :func:`calibration_table`, with
        ``bayes_lower``/``bayes_upper`` when a spec is fitted), ``converged`` and ``ci``
        (the posterior interval's level, or None).
    """
    from bayes_wake.bayes.spec import parse_spec

    rng = np.random.default_rng([int(seed), int(placement), 0x9A1])
    placed = placebo_placement(events, sites, rng, weight=config["weight"])
    cube = count_wakes(placed, np.asarray(config["windows"]), np.asarray(config["radii"]),
                       t_unit=config["t_unit"], convention=config["convention"])
    mwa = MWASettings.from_dict(config["mwa"])
    table = calibration_table(cube, mwa, config["vcovs"], placement=int(placement))
    converged = level = None
    if config.get("spec"):
        post = posterior_cells(cube, parse_spec(config["spec"], "reference"), mwa,
                               config.get("ci", 0.9))
        table["bayes_lower"] = np.asarray(post["lower"]).ravel()
        table["bayes_upper"] = np.asarray(post["upper"]).ravel()
        converged, level = bool(post["converged"]), post["level"]
    cells = {c: [None if pd.isna(v) else (v.item() if hasattr(v, "item") else v)
                 for v in table[c]] for c in table.columns}
    return {"placement": int(placement), "cells": cells, "converged": converged,
            "ci": level}


def placebo_size(results: Sequence[dict], choices: Sequence[str],
                 alpha: float) -> pd.DataFrame:
    """The empirical size of every choice over the placements.

    Returns
    -------
    pandas.DataFrame
        One row per choice (and, when fitted, ``posterior NN% interval`` at the results'
        level ``ci``): ``nominal``, ``size`` (share of defined cells flagged), ``mc_se``
        (its Monte Carlo standard error over placements), ``mean_flagged`` and
        ``max_flagged`` (windows per placement), ``positive_share`` (of the flagged
        estimates), ``placements``.
    """
    frame = pd.concat([pd.DataFrame(r["cells"]) for r in results], ignore_index=True)
    flagged = {}  # choice: (flagged, defined, nominal) per cell
    for choice in choices:
        p = frame[f"pvalue_{choice}"].astype(float)
        flagged[choice] = (p <= alpha, p.notna(), alpha)
    if "bayes_lower" in frame:
        lower, upper = frame["bayes_lower"].astype(float), frame["bayes_upper"].astype(float)
        level = next((r["ci"] for r in results if r.get("ci")), BAYES_INTERVAL)
        flagged[f"posterior {level:.0%} interval"] = (
            (lower > 0) | (upper < 0), lower.notna() & upper.notna(), 1 - level)
    rows = []
    for name, (hit, defined, nominal) in flagged.items():
        hit = hit & defined
        per = pd.DataFrame({"hit": hit, "defined": defined, "placement": frame["placement"]}
                           ).groupby("placement").sum()
        share = (per["hit"] / per["defined"].where(per["defined"] > 0)).dropna()
        rows.append({"choice": name, "nominal": nominal,
                     "size": float(hit.sum() / defined.sum()) if defined.any() else np.nan,
                     "mc_se": float(share.std(ddof=1) / np.sqrt(len(share)))
                     if len(share) > 1 else np.nan,
                     "mean_flagged": float(per["hit"].mean()),
                     "max_flagged": int(per["hit"].max()),
                     "positive_share": float((frame["estimate"][hit] > 0).mean())
                     if hit.any() else np.nan,
                     "placements": int((per["defined"] > 0).sum())})
    return pd.DataFrame(rows)


def placebo_shift(results: Sequence[dict]) -> tuple[float, float]:
    """The mean OLS estimate under no effect (events per wake, averaged over each
    placement's defined cells, then over placements) and its t over placements; a large
    t means the placement is confounded with outcome trends that the matching leaves."""
    frame = pd.concat([pd.DataFrame(r["cells"]) for r in results], ignore_index=True)
    per = frame["estimate"].astype(float).groupby(frame["placement"]).mean().dropna()
    if len(per) < 2 or per.std(ddof=1) == 0:
        return float(per.mean()) if len(per) else np.nan, np.nan
    return float(per.mean()), float(per.mean() / (per.std(ddof=1) / np.sqrt(len(per))))


def calibration_sentence(size: pd.DataFrame, n_placements: int, n_sites: int,
                         shift: tuple[float, float] | None = None) -> str:
    """The verdict: each choice's size beside the nominal level, which hold it, and (with
    :func:`placebo_shift`) whether the placebo estimates are off 0."""
    valid = int(size["placements"].max()) if len(size) else 0
    if valid < 2:
        return (f"Not informative, because only {valid} of "
                f"{counted(n_placements, 'placebo placement')} had a cell that could be "
                "fitted.")
    parts = [f"{r.choice} {r.size:.1%}" for r in size.itertuples()]
    holds = [r.choice for r in size.itertuples() if r.size <= SIZE_TOLERANCE * r.nominal]
    alpha = float(size["nominal"].iloc[0])
    mc = float(size["mc_se"].max())
    bayes = size.loc[size["choice"].str.startswith("posterior"), "nominal"]
    return (f"On {valid} of {counted(n_placements, 'placebo placement')} with no effect "
            f"(anchors re-drawn over {counted(n_sites, 'candidate site')}, the real outcomes "
            f"kept), the share of windows flagged at p <= {alpha:g} (nominal {alpha:.0%}" + (
                f"; the posterior's interval excluding 0: nominal {bayes.iloc[0]:.0%}"
                if len(bayes) else "") + ") is "
            + ", ".join(parts) + f" (Monte Carlo error up to {mc:.1%}). "
            + (f"Within {SIZE_TOLERANCE:g} x nominal on these data: {', '.join(holds)}."
               if holds else f"None stays within {SIZE_TOLERANCE:g} x nominal on these data.")
            + _shift_words(shift))


#: The caption of the size table in a report.
_SIZE_CAPTION = ("Per choice: the share of windows flagged when there is no effect (size; "
                 "nominal level beside it), its Monte Carlo standard error over placements, "
                 "windows flagged per placement, and the share of flagged estimates that are "
                 "positive")


def calibration_check(results: Sequence[dict], n_sites: int, alpha: float, *,
                      weight: str | None = None,
                      choices: Sequence[str] = CALIBRATION_CHOICES) -> CheckResult:
    """The placebo-placement calibration as a :class:`~bayes_wake.checks.result.CheckResult`.

    Parameters
    ----------
    results
        One :func:`placebo_calibration_task` result per placement.
    n_sites
        The candidate sites the placements were drawn over.
    alpha
        The nominal level of every standard-error choice.
    weight
        The column of the sites that weighted where treatments were drawn (None: uniform).
    choices
        The standard-error choices sized.

    Returns
    -------
    CheckResult
        ``calibration``: :func:`placebo_size` as its table (sizes are shares of windows,
        in [0, 1]), :func:`calibration_sentence` as its sentence, and every placement's
        cells (estimates in events per wake, p-values per choice) as its cells.
    """
    size = placebo_size(results, choices, alpha)
    sentence = calibration_sentence(size, len(results), n_sites, placebo_shift(results))
    cells = pd.concat([pd.DataFrame(r["cells"]) for r in results], ignore_index=True)
    note = ("Each placebo re-draws the treatments (weighted by "
            f"{weight or 'nothing: uniform'}) and the controls over the candidate sites, with "
            "dates uniform over the real anchors' span, keeps the real outcome events and "
            "reruns the matched wake analysis; the truth is no effect everywhere.")
    return CheckResult("calibration", "Placebo-placement calibration", size, sentence,
                       cells=cells, caption=_SIZE_CAPTION, notes=(note,),
                       counts=[size.columns == "mean_flagged"])  # sizes are shares


def _shift_words(shift: tuple[float, float] | None) -> str:
    if shift is None or not np.isfinite(shift[1]) or abs(shift[1]) < SHIFT_T:
        return ""
    return (f" The placebo estimates average {shift[0]:+.3f} events per wake (t = "
            f"{shift[1]:.1f} over placements), not 0: the placement is confounded with "
            "outcome trends that the matching leaves, and that bias, which no standard "
            "error removes, is part of every choice's excess.")
