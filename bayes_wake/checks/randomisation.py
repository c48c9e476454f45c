"""Randomisation inference for the pattern of per-window significance of an MWA table.

How often would a grid of 30 overlapping windows show as many significant windows as observed,
or as large a max |t|, if treatment did nothing? Two null worlds, each recomputing the whole
window grid:

- **Label permutations within matching strata.** In every (window, radius) cell the treatment
  labels are permuted among the matched wakes of each CEM stratum. A stratum keeps its numbers
  of treated and control wakes, so the CEM weights by (stratum, label) stay the same, the set
  of wakes in the fit stays the same, and only who is treated moves. The test is conditional
  on the observed matching. The cells are coupled: one random key per anchor event and
  permutation decides, in every cell, which wakes of a stratum become the treated ones (the
  lowest keys), so where two cells share a stratum they share its permuted labels and the
  dependence between overlapping windows is kept. Each cell on its own gets a uniformly random
  within-stratum permutation.
- **Date-shift placebos.** All treatment events move by one random offset (whole time units,
  circularly within the span of the treatment and control events cut to the core of the
  outcome record, see :func:`date_shift_span`; never less than twice the longest window so a
  placebo wake cannot overlap its own real wake), the wakes are counted again and matched
  again.

A null distribution can be degenerate: every draw the same (the placebos did not change
what the fits see), most draws with an essentially perfect fit or a near-infinite t, or too
few draws with a statistic at all. :class:`RandomisationTest` then says the check is not
informative, and why, instead of giving a p-value; every verdict gives its valid draws.

The regressions of all permutations of a cell are solved at once: the weighted normal
equations (3 x 3 for ``post ~ pre + treatment``, 2 x 2 for ``post - pre ~ treatment``) for
every permutation in one batched NumPy solve. For the observed labels this reproduces
:func:`bayes_wake.core.regression.weighted_ols` (and so R's table), including R's NA rule: a cell
whose design is aliased (the sequential pivots of the normal equations, R's QR tolerance
1e-7 on the column norms) or whose p-value is undefined is NA, and an NA cell is never
significant. Near the aliasing tolerance the cell is refitted with ``weighted_ols`` itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import xarray as xr

from bayes_wake.checks.result import CheckResult
from bayes_wake.core.regression import batched_treatment_ols
from bayes_wake.core.windows import unit_ns
from bayes_wake.errors import SettingsError
from bayes_wake.io.tables import counted
from bayes_wake.mwa.analysis import MWASettings, matched_cells

__all__ = [
    "DATE_SHIFT_STREAM",
    "LABEL_STREAM",
    "CellDesign",
    "DateShiftSettings",
    "GridDesign",
    "GridStatistics",
    "RandomisationTest",
    "ShiftSpan",
    "check_permutation_vcov",
    "chunk_rng",
    "date_shift_chunk",
    "date_shift_range",
    "date_shift_span",
    "draw_offsets",
    "grid_design",
    "label_permutation_chunk",
    "permuted_labels",
    "randomisation_checks",
    "randomisation_test",
    "shift_treatment_dates",
]

LABEL_STREAM, DATE_SHIFT_STREAM = 0, 1
#: Version of the null statistics a chunk returns; part of the chunks' task keys.
RESULT_FORMAT = 3
#: Fewest valid null draws for a p-value.
MIN_VALID_DRAWS = 20
#: A |t| at least this large is a near-perfect fit (rounding), not evidence.
HUGE_T = 1e6
#: Largest share of draws with a perfect fit or near-infinite t for an informative null.
MAX_ARTEFACT_SHARE = 0.5


@dataclass(frozen=True)
class CellDesign:
    """The wakes of one (window, radius) cell that enter the regression.

    Attributes
    ----------
    window, radius
        The cell (``t_unit``, km).
    event
        Position of each wake's anchor on the cube's ``event`` dim (0-based).
    outcome
        The regression's outcome: ``dependent_post`` (``lag``) or ``dependent_post -
        dependent_pre`` (``diff``), events per wake.
    pre
        ``dependent_pre``, events per wake.
    treated
        Observed treatment labels (bool).
    stratum
        CEM stratum of each wake, numbered 0..S-1 (all 0 without matching).
    control_weight
        Regression weight of a control wake, per stratum (1 when unweighted); treated wakes
        weigh 1.
    exposure
        With ``spillover``: the exposure columns of the cell's design, shape (wakes, m),
        held at their observed values while the labels are permuted (a test of no direct
        effect given the observed exposure to neighbouring treatments, not of Athey, Eckles
        and Imbens' exact kind); shape (wakes, 0) otherwise.
    """

    window: float
    radius: float
    event: np.ndarray
    outcome: np.ndarray
    pre: np.ndarray
    treated: np.ndarray
    stratum: np.ndarray
    control_weight: np.ndarray
    exposure: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Number of wakes in the fit."""
        return len(self.event)


@dataclass(frozen=True)
class GridDesign:
    """Every cell's regression design, ready for batched refits under permuted labels.

    Attributes
    ----------
    windows, radii
        The grid (``t_unit``; km).
    cells
        One :class:`CellDesign` per cell, window outer, radius inner.
    n_events
        Anchors on the cube's ``event`` dim.
    settings
        The MWA settings (formula, weights, vcov, alpha).
    """

    windows: np.ndarray
    radii: np.ndarray
    cells: tuple[CellDesign, ...]
    n_events: int
    settings: MWASettings

    def statistics(self, labels: Sequence[np.ndarray] | None = None) -> GridStatistics:
        """Refit every cell under the given labels.

        Parameters
        ----------
        labels
            One bool array per cell of shape (permutations, wakes in the cell), as from
            :func:`permuted_labels`; None fits the observed labels once.

        Returns
        -------
        GridStatistics
            Arrays of shape (permutations, windows, radii).
        """
        n_w, n_r = len(self.windows), len(self.radii)
        if labels is None:
            labels = [cell.treated[None, :] for cell in self.cells]
        n_perm = labels[0].shape[0] if len(labels) else 1
        out = {k: np.full((n_perm, n_w * n_r), np.nan)
               for k in ("estimate", "std_error", "t", "pvalue")}
        out["perfect"] = np.zeros((n_perm, n_w * n_r), dtype=bool)
        for c, (cell, lab) in enumerate(zip(self.cells, labels, strict=True)):
            est, se, t, p, perfect = _batched_wls(cell, lab, self.settings)
            out["estimate"][:, c], out["std_error"][:, c] = est, se
            out["t"][:, c], out["pvalue"][:, c], out["perfect"][:, c] = t, p, perfect
        shaped = {k: v.reshape(n_perm, n_w, n_r) for k, v in out.items()}
        return GridStatistics(**shaped, alpha=self.settings.alpha)


@dataclass(frozen=True)
class GridStatistics:
    """Treatment coefficients over the grid for one or many label assignments.

    Attributes
    ----------
    estimate, std_error, t, pvalue
        Shape (permutations, windows, radii); NaN where R reports NA.
    alpha
        Significance level.
    perfect
        Cells whose fit is "essentially perfect" by R's ``summary.lm`` rule (residual
        variance below 1e-30 of the fitted values' mean square): R still reports a p-value
        (so the cell counts as significant, as in R's table), but its t is a rounding
        artefact (often ~1e15), so max |t| leaves it out.
    """

    estimate: np.ndarray
    std_error: np.ndarray
    t: np.ndarray
    pvalue: np.ndarray
    alpha: float
    perfect: np.ndarray | None = None

    @property
    def significant(self) -> np.ndarray:
        """p <= alpha per cell (an NA cell is not significant)."""
        with np.errstate(invalid="ignore"):
            return np.nan_to_num(self.pvalue, nan=2.0) <= self.alpha

    @property
    def n_significant(self) -> np.ndarray:
        """Significant windows per permutation."""
        return self.significant.sum(axis=(1, 2))

    @property
    def n_significant_positive(self) -> np.ndarray:
        """Significant windows with a positive estimate, per permutation."""
        return (self.significant & (np.nan_to_num(self.estimate) > 0)).sum(axis=(1, 2))

    @property
    def informative_t(self) -> np.ndarray:
        """|t| per cell, 0 for NA cells and essentially perfect fits."""
        t = np.nan_to_num(np.abs(self.t), nan=0.0)
        return t if self.perfect is None else np.where(self.perfect, 0.0, t)

    @property
    def max_abs_t(self) -> np.ndarray:
        """Largest |t| over the grid per permutation, leaving out NA cells and essentially
        perfect fits (0 when none is left)."""
        return self.informative_t.max(axis=(1, 2))

    #: The columns of :meth:`null_rows`.
    NULL_COLUMNS = ("n_significant", "n_significant_positive", "max_abs_t", "n_perfect_fits",
                    "n_defined")

    def null_rows(self) -> dict[str, list]:
        """The statistics a null draw keeps, one JSON-ready list entry per permutation:
        ``n_significant``, ``n_significant_positive``, ``max_abs_t``, ``n_perfect_fits``
        (essentially perfect fits, left out of max |t|) and ``n_defined`` (cells with a
        p-value)."""
        return {"n_significant": self.n_significant.tolist(),
                "n_significant_positive": self.n_significant_positive.tolist(),
                "max_abs_t": self.max_abs_t.tolist(),
                "n_perfect_fits": self.n_perfect.tolist(),
                "n_defined": self.n_defined.tolist()}

    @property
    def n_defined(self) -> np.ndarray:
        """Cells with a p-value (not NA) per permutation."""
        return np.isfinite(self.pvalue).sum(axis=(1, 2))

    @property
    def n_perfect(self) -> np.ndarray:
        """Essentially perfect fits per permutation."""
        if self.perfect is None:
            return np.zeros(self.t.shape[0], dtype=np.int64)
        return self.perfect.sum(axis=(1, 2))


def check_permutation_vcov(vcov: str) -> None:
    """Raise :class:`SettingsError` unless the randomisation checks can refit with ``vcov``:
    their batched refits know classical, HC1 and HC3 errors only."""
    if str(vcov) not in ("classical", "HC1", "HC3"):
        raise SettingsError(
            f"the randomisation checks refit every cell thousands of times with classical, "
            f"HC1 or HC3 errors; {vcov} is not available there (choose vcov=HC1; the "
            f"cluster-robust and Conley p-values are in the report's first verdict)")


def grid_design(cube: xr.Dataset, settings: MWASettings) -> GridDesign:
    """Match every cell as :func:`bayes_wake.mwa.analysis.matched_wake_analysis` does and keep what
    the batched regressions need.

    Parameters
    ----------
    cube
        The wake cube.
    settings
        The MWA settings.

    Returns
    -------
    GridDesign

    Raises
    ------
    SettingsError
        For cluster-robust or Conley errors: the batched refits of the randomisation checks
        know classical, HC1 and HC3 only.
    """
    check_permutation_vcov(settings.vcov)
    cells = []
    for cell in matched_cells(cube, settings, balance=False):
        treated = cell.treated.astype(bool)
        if settings.matching and len(cell.events):
            _, stratum = np.unique(cell.stratum, return_inverse=True)
            stratum = stratum.ravel().astype(np.int64)
            control_weight = np.ones(int(stratum.max()) + 1 if len(stratum) else 0)
            control_weight[stratum[~treated]] = cell.weights[~treated]
        else:
            stratum = np.zeros(len(cell.events), dtype=np.int64)
            control_weight = np.ones(1)
        cells.append(CellDesign(
            window=float(cell.window), radius=float(cell.radius), event=cell.events,
            outcome=cell.y.astype(float), pre=cell.pre.astype(float), treated=treated,
            stratum=stratum, control_weight=control_weight,
            exposure=cell.design[:, cell.design.shape[1] - 1 - len(cell.exposure):-1]))
    windows, radii = cube["window"].to_numpy(), cube["radius"].to_numpy()
    return GridDesign(windows=windows, radii=radii, cells=tuple(cells),
                      n_events=int(cube.sizes["event"]), settings=settings)


def permuted_labels(design: GridDesign, keys: np.ndarray) -> list[np.ndarray]:
    """Treatment labels permuted within the strata of every cell, coupled across cells.

    Parameters
    ----------
    design
        The grid design.
    keys
        Random keys, shape (permutations, anchor events), e.g. uniform on [0, 1). In each
        cell and stratum the wakes with the lowest keys become the treated ones.

    Returns
    -------
    list of numpy.ndarray
        Per cell, bool labels of shape (permutations, wakes in the cell). Every stratum keeps
        its number of treated wakes.
    """
    keys = np.asarray(keys, dtype=float)
    if keys.ndim != 2 or keys.shape[1] != design.n_events:
        raise SettingsError(f"keys must have shape (permutations, {design.n_events})")
    n_perm = keys.shape[0]
    out = []
    for cell in design.cells:
        labels = np.broadcast_to(cell.treated, (n_perm, cell.n)).copy()
        if cell.n == 0:
            out.append(labels)
            continue
        n_strata = len(cell.control_weight)
        n_treated = np.bincount(cell.stratum, weights=cell.treated,
                                minlength=n_strata).astype(np.int64)
        size = np.bincount(cell.stratum, minlength=n_strata)
        mixed = np.flatnonzero((n_treated > 0) & (n_treated < size))  # only these can change
        if len(mixed):
            # rows of each stratum, grouped by stratum
            order = np.argsort(cell.stratum, kind="stable")
            start = np.concatenate([[0], np.cumsum(size)])
            # strata with the same numbers of wakes and of treated wakes are done together:
            # keys of shape (permutations, strata, wakes); the treated are those at or below
            # the n-th smallest key (a partial sort, linear in the wakes)
            pairs = size[mixed] * (int(n_treated.max()) + 1) + n_treated[mixed]
            for pair in np.unique(pairs):
                group = mixed[pairs == pair]
                k, n = int(size[group[0]]), int(n_treated[group[0]])
                rows = order[start[group][:, None] + np.arange(k)[None, :]]  # (strata, k)
                stratum_keys = keys[:, cell.event[rows]]
                nth = np.partition(stratum_keys, n - 1, axis=2)[..., n - 1:n]
                labels[:, rows] = stratum_keys <= nth
        out.append(labels)
    return out


def _batched_wls(cell: CellDesign, labels: np.ndarray, settings: MWASettings):
    """Weighted OLS of the cell for every row of ``labels`` at once
    (:func:`~bayes_wake.core.regression.batched_treatment_ols`).

    The design is ``[fixed columns, treated]`` with fixed columns ``[1, pre]`` (``lag``) or
    ``[1]`` (``diff``), then the cell's exposure columns (``spillover``). A treated wake
    weighs 1 and a control wake ``c_s`` (its stratum's CEM weight).

    Returns estimate, std_error, t and pvalue of the treatment coefficient, each of shape
    (permutations,), NaN where R reports NA, and the flags of essentially perfect fits.
    """
    n = labels.shape[1]
    fixed = [np.ones(n), cell.pre] if settings.formula == "lag" else [np.ones(n)]
    if cell.exposure is not None:
        fixed += list(cell.exposure.T)
    if settings.weighted and settings.matching:
        c = cell.control_weight[cell.stratum]
    else:
        c = np.ones(n)
    fits = batched_treatment_ols(cell.outcome, fixed, labels, c, settings.vcov)
    return fits.estimate, fits.std_error, fits.t, fits.pvalue, fits.perfect


def chunk_rng(seed: int, stream: int, chunk: int) -> np.random.Generator:
    """The random generator of one chunk: the same (seed, stream, chunk) always gives the
    same draws, whatever the chunk size of other chunks or the order they run in."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(stream, chunk)))


def label_permutation_chunk(design: GridDesign, chunk: int, size: int, seed: int) -> dict:
    """Null statistics of ``size`` within-stratum label permutations (one task).

    Parameters
    ----------
    design
        The grid design.
    chunk
        Chunk number (0-based); seeds the chunk's own random stream.
    size
        Permutations in the chunk.
    seed
        The run's seed.

    Returns
    -------
    dict
        JSON-ready lists of :meth:`GridStatistics.null_rows`.
    """
    from threadpoolctl import threadpool_limits

    if size < 1:
        raise SettingsError("a permutation chunk needs at least one permutation")
    rng = chunk_rng(seed, LABEL_STREAM, chunk)
    keys = rng.random((size, design.n_events))
    # the products are small: BLAS threads only contend (badly, on a busy machine)
    with threadpool_limits(limits=1, user_api="blas"):
        stats_ = design.statistics(permuted_labels(design, keys))
    return {"kind": "labels", "chunk": chunk, **stats_.null_rows()}


@dataclass(frozen=True)
class DateShiftSettings:
    """What a date-shift placebo needs besides the events.

    Attributes
    ----------
    windows, radii
        The grid (``t_unit``; km).
    t_unit, convention
        As for :func:`bayes_wake.wakes.count_wakes`.
    mwa
        The MWA settings.
    """

    windows: tuple[int, ...]
    radii: tuple[float, ...]
    t_unit: str
    convention: str
    mwa: MWASettings

    def to_dict(self) -> dict:
        """JSON-ready settings (for task keys and provenance)."""
        return {"windows": list(self.windows), "radii": list(self.radii),
                "t_unit": self.t_unit, "convention": self.convention,
                "mwa": self.mwa.to_dict()}


#: Central share of the outcome events' dates that bounds the date shifts: the outcome rows
#: outside it are edge rows (R's example has sentinels in 1901 and 2100), not the record.
OUTCOME_SPAN_QUANTILES = (0.01, 0.99)


@dataclass(frozen=True)
class ShiftSpan:
    """The stretch of time within which date-shift placebos move the treatments.

    Attributes
    ----------
    start, end
        First and last instant of the span (UTC timestamps of real events).
    period
        Its length in whole ``t_unit`` (``end - start``, rounded down, plus one).
    t_unit
        The time unit.
    """

    start: pd.Timestamp
    end: pd.Timestamp
    period: int
    t_unit: str

    def describe(self) -> str:
        """The span in words, e.g. ``1995-01-01 to 1995-02-28 (59 days)``."""
        return (f"{self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} "
                f"({self.period:,} {self.t_unit})").replace(" 00:00", "")


def date_shift_span(events: pd.DataFrame, t_unit: str) -> ShiftSpan:
    """The span of the treatment and control events, cut to the core of the outcome record.

    The rule: from the earliest to the latest treatment or control event, intersected with
    the outcome events' dates from their 1st to their 99th percentile
    (:data:`OUTCOME_SPAN_QUANTILES`, taken at real event dates). A few isolated outcome rows
    at the edges of the record (R's example has one in 1901 and one in 2100) therefore
    neither stretch the span nor let a placebo land where no outcome was recorded.

    Parameters
    ----------
    events
        The event table (rows of role ``other`` are ignored).
    t_unit
        ``days``, ``hours``, ``minutes`` or ``seconds``.

    Returns
    -------
    ShiftSpan

    Raises
    ------
    SettingsError
        The anchors' span and the core of the outcome record do not overlap.
    """
    times = pd.to_datetime(events["time"], utc=True)
    role = events["role"]
    anchors = times[role.isin(["treatment", "control"]).to_numpy()]
    outcomes = times[(role == "dependent").to_numpy()]
    start, end = anchors.min(), anchors.max()
    if len(outcomes):
        low, high = OUTCOME_SPAN_QUANTILES
        start = max(start, outcomes.quantile(low, interpolation="lower"))
        end = min(end, outcomes.quantile(high, interpolation="higher"))
    if end < start:
        raise SettingsError("date-shift placebos: the treatment/control events lie outside "
                            "the core of the outcome record (its 1st to 99th percentile)")
    period = int((end - start).value // unit_ns(t_unit)) + 1
    return ShiftSpan(start=start, end=end, period=period, t_unit=t_unit)


def date_shift_range(events: pd.DataFrame, windows: Sequence[int], t_unit: str
                     ) -> tuple[int, int, int]:
    """The admissible circular date offsets within :func:`date_shift_span`.

    Returns
    -------
    tuple of int
        ``(smallest, largest, period)`` offset in whole ``t_unit``: the span is ``period``
        units long, and an offset keeps a placebo wake clear of its own real wake (at least
        twice the longest window, plus one unit, either way round the circle).

    Raises
    ------
    SettingsError
        The span is too short for such an offset.
    """
    span = date_shift_span(events, t_unit)
    guard = 2 * int(max(windows)) + 1
    lo, hi = guard, span.period - guard
    if hi < lo:
        raise SettingsError(
            f"the span of the treatment/control events ({span.describe()}) is too short "
            f"for date-shift placebos: an offset must keep at least {guard} {t_unit} (twice "
            "the longest window + 1) from the real date both ways; use date_shifts=0 or "
            "shorter windows")
    return lo, hi, span.period


def shift_treatment_dates(events: pd.DataFrame, offset: int, t_unit: str) -> pd.DataFrame:
    """Move every treatment event ``offset`` whole ``t_unit`` later, circularly within
    :func:`date_shift_span` (the time of day is kept).

    Parameters
    ----------
    events
        The event table.
    offset
        Whole time units.
    t_unit
        ``days``, ``hours``, ``minutes`` or ``seconds``.

    Returns
    -------
    pandas.DataFrame
        A copy with the treatments' ``time`` shifted into the span (a treatment outside it
        lands inside it too) and every other column unchanged, plus two rows of role
        ``other`` at the first and last time of the real record: they are never counted but
        hold the record's bounds where they were (as in R, ``other`` rows bound the record),
        so a placebo wake is complete exactly when a real one would be.
    """
    span = date_shift_span(events, t_unit)
    ns_per_unit = unit_ns(t_unit)
    period_ns = span.period * ns_per_unit
    times = pd.to_datetime(events["time"], utc=True)
    treated = (events["role"] == "treatment").to_numpy()
    ns = times.dt.tz_localize(None).to_numpy("datetime64[ns]").astype(np.int64).copy()
    # (t - start + offset) mod period, written so that no intermediate overflows int64 (a
    # record of two centuries in nanoseconds is a third of the int64 range)
    since = np.mod(ns[treated] - span.start.value, period_ns)
    step = (int(offset) % span.period) * ns_per_unit
    ns[treated] = span.start.value + np.where(since >= period_ns - step,
                                              since - (period_ns - step), since + step)
    shifted = events.copy()
    shifted["time"] = pd.to_datetime(ns, utc=True).as_unit("ns")
    pins = events.iloc[[int(np.argmin(times.to_numpy())), int(np.argmax(times.to_numpy()))]]
    pins = pins.copy()
    pins["role"] = "other"
    if "event_id" in pins.columns:
        pins["event_id"] = int(events["event_id"].max()) + np.arange(1, 3)
    out = pd.concat([shifted, pins], ignore_index=True)
    out.attrs = dict(events.attrs)
    return out


def draw_offsets(events: pd.DataFrame, settings: DateShiftSettings, chunk: int, size: int,
                 seed: int) -> np.ndarray:
    """The random offsets (whole ``t_unit``) of one chunk of date-shift placebos, uniform on
    :func:`date_shift_range` (so within :func:`date_shift_span`)."""
    lo, hi, _ = date_shift_range(events, settings.windows, settings.t_unit)
    return chunk_rng(seed, DATE_SHIFT_STREAM, chunk).integers(lo, hi + 1, size)


def date_shift_chunk(events: pd.DataFrame, settings: DateShiftSettings, chunk: int, size: int,
                     seed: int) -> dict:
    """Null statistics of ``size`` date-shift placebos (one task): shift, count, match, fit.

    Returns
    -------
    dict
        JSON-ready lists ``offset`` (whole ``t_unit``, drawn by :func:`draw_offsets`) and
        those of :meth:`GridStatistics.null_rows`.
    """
    from bayes_wake.wakes import count_wakes

    if size < 1:
        raise SettingsError("a date-shift chunk needs at least one placebo")
    offsets = draw_offsets(events, settings, chunk, size, seed)
    covariates = list(settings.mwa.match_on)
    rows: dict[str, list] = {}
    for offset in offsets:
        cube = count_wakes(shift_treatment_dates(events, int(offset), settings.t_unit),
                           list(settings.windows), list(settings.radii), t_unit=settings.t_unit,
                           convention=settings.convention, covariates=covariates)
        for name, values in grid_design(cube, settings.mwa).statistics().null_rows().items():
            rows.setdefault(name, []).extend(values)
    return {"kind": "date_shift", "chunk": chunk, "offset": [int(o) for o in offsets], **rows}


@dataclass(frozen=True)
class RandomisationTest:
    """The observed pattern of significance against a null distribution.

    A null draw is *valid* when its grid has at least one window with a p-value and a finite
    max |t| below :data:`HUGE_T` (larger is a near-perfect fit, a rounding artefact). The
    p-values use the valid draws only. The check is *not informative*, and gives no p-value,
    when fewer than :data:`MIN_VALID_DRAWS` draws are valid, when more than
    :data:`MAX_ARTEFACT_SHARE` of the draws have a near-infinite t, or when every valid draw
    is the same (the placebos did not change what the fits see). The count of significant
    windows alone is not informative when more than that share of the valid draws, or the
    observed grid, has an essentially perfect fit, which R counts as significant.

    Attributes
    ----------
    kind
        ``labels`` (within-stratum permutations) or ``date_shift`` (placebo dates).
    observed
        The observed grid statistics (one row).
    null
        One row per null draw: the columns of :meth:`GridStatistics.null_rows` (and
        ``offset`` for date shifts).
    t_unit
        The time unit (for sentences).
    """

    kind: str
    observed: GridStatistics
    null: pd.DataFrame
    t_unit: str = "days"

    @property
    def n_draws(self) -> int:
        """Null draws."""
        return len(self.null)

    @property
    def huge(self) -> np.ndarray:
        """Per null draw: max |t| is not finite or at least :data:`HUGE_T`."""
        t = self.null["max_abs_t"].to_numpy(dtype=float)
        return ~(np.abs(t) < HUGE_T)

    @property
    def valid(self) -> np.ndarray:
        """Per null draw: it has a statistic (see the class notes)."""
        if "n_defined" in self.null:
            defined = self.null["n_defined"].to_numpy() > 0
        else:  # results without the column: an all-NA grid has max |t| 0
            defined = self.null["max_abs_t"].to_numpy(dtype=float) > 0
        return defined & ~self.huge

    @property
    def n_valid(self) -> int:
        """Valid null draws."""
        return int(self.valid.sum())

    def _null(self, stat: str) -> pd.Series:
        return self.null.loc[self.valid, stat]

    @property
    def observed_count(self) -> int:
        """Observed number of significant windows."""
        return int(self.observed.n_significant[0])

    @property
    def observed_max_abs_t(self) -> float:
        """Observed largest |t| over the grid."""
        return float(self.observed.max_abs_t[0])

    def problem(self) -> str | None:
        """Why the whole check is not informative (None when it is)."""
        b, v = self.n_draws, self.n_valid
        huge = int(self.huge.sum())
        if b and huge > MAX_ARTEFACT_SHARE * b:
            return (f"{huge:,} of {counted(b, 'draw')} have a near-infinite t (a near-perfect "
                    f"fit, |t| >= {HUGE_T:g}), a rounding artefact")
        if v < MIN_VALID_DRAWS:
            verb = "is" if v == 1 else "are"
            return (f"only {v:,} of {counted(b, 'draw')} {verb} valid (at least "
                    f"{MIN_VALID_DRAWS} are needed; a draw without any estimable window or "
                    "with a near-infinite t is not)")
        count, max_t = self._null("n_significant"), self._null("max_abs_t")
        if count.nunique() == 1 and np.ptp(max_t) <= 1e-9 * max(1.0, float(max_t.max())):
            return (f"all {v:,} valid draws are identical ({int(count.iloc[0])} significant "
                    f"windows, max |t| {float(max_t.iloc[0]):.2f}): the null has no spread, "
                    "so the draws did not change what the fits see")
        return None

    def count_problem(self) -> str | None:
        """Why the count of significant windows is not informative (None when it is)."""
        if self.problem():
            return self.problem()
        observed = int(self.observed.n_perfect[0])
        if observed:
            return (f"the observed grid has {counted(observed, 'essentially perfect fit')}, "
                    "which R counts as significant")
        perfect = int((self._null("n_perfect_fits") > 0).sum()) \
            if "n_perfect_fits" in self.null else 0
        if perfect > MAX_ARTEFACT_SHARE * self.n_valid:
            return (f"{perfect:,} of {self.n_valid:,} valid draws have an essentially perfect "
                    "fit, which R counts as significant")
        return None

    def max_t_problem(self) -> str | None:
        """Why max |t| is not informative (None when it is)."""
        if self.problem():
            return self.problem()
        if not abs(self.observed_max_abs_t) < HUGE_T:
            return "the observed max |t| is a near-perfect fit (a rounding artefact)"
        return None

    @property
    def informative(self) -> bool:
        """Whether the null supports any p-value (:meth:`problem` is None)."""
        return self.problem() is None

    def share_at_least_count(self) -> float:
        """Share of valid null draws with at least the observed number of significant
        windows (NaN when the count is not informative)."""
        if self.count_problem():
            return float("nan")
        return float((self._null("n_significant") >= self.observed_count).mean())

    def share_at_least_max_t(self) -> float:
        """Share of valid null draws with at least the observed max |t| (NaN when max |t| is
        not informative)."""
        if self.max_t_problem():
            return float("nan")
        return float((self._null("max_abs_t") >= self.observed_max_abs_t).mean())

    def pvalue_count(self) -> float:
        """Family-wise p-value of "this many windows are significant": (1 + k) / (1 + B)
        over the B valid draws; NaN when the count is not informative."""
        if self.count_problem():
            return float("nan")
        k = int((self._null("n_significant") >= self.observed_count).sum())
        return (1 + k) / (1 + self.n_valid)

    def pvalue_max_t(self) -> float:
        """Family-wise p-value of the largest |t| (the max-T test) over the valid draws; NaN
        when max |t| is not informative."""
        if self.max_t_problem():
            return float("nan")
        k = int((self._null("max_abs_t") >= self.observed_max_abs_t).sum())
        return (1 + k) / (1 + self.n_valid)

    def adjusted_pvalues(self) -> np.ndarray:
        """Westfall-Young single-step max-T adjusted p-value per cell, shape (windows, radii):
        (1 + #{valid draws with max |t| >= |t_cell|}) / (1 + B); NaN for NA cells, and
        everywhere when max |t| is not informative."""
        t_obs = self.observed.informative_t[0]
        if self.max_t_problem():
            return np.full(t_obs.shape, np.nan)
        null_max = np.sort(self._null("max_abs_t").to_numpy(dtype=float))
        at_least = len(null_max) - np.searchsorted(null_max, t_obs, "left")
        undefined = np.isnan(self.observed.t[0])
        if self.observed.perfect is not None:
            undefined = undefined | self.observed.perfect[0]
        return np.where(undefined, np.nan, (1 + at_least) / (1 + len(null_max)))

    def quantiles(self) -> dict[str, float]:
        """Median and 95th percentile of the valid null counts and max |t|."""
        count, max_t = self._null("n_significant"), self._null("max_abs_t")
        return {"n_significant_median": float(count.median()),
                "n_significant_q95": float(count.quantile(0.95)),
                "max_abs_t_median": float(max_t.median()),
                "max_abs_t_q95": float(max_t.quantile(0.95))}

    def summary(self) -> pd.DataFrame:
        """A short table: observed value, null median and 95th percentile, share of valid
        null draws at least as extreme, the family-wise p-value (NaN where not informative)
        and why not, the valid and all draws, per statistic."""
        q = self.quantiles()
        return pd.DataFrame({
            "statistic": ["significant windows", "max |t|"],
            "observed": [float(self.observed_count), self.observed_max_abs_t],
            "null_median": [q["n_significant_median"], q["max_abs_t_median"]],
            "null_q95": [q["n_significant_q95"], q["max_abs_t_q95"]],
            "share_at_least_observed": [self.share_at_least_count(),
                                        self.share_at_least_max_t()],
            "familywise_p": [self.pvalue_count(), self.pvalue_max_t()],
            "not_informative_because": [self.count_problem() or "",
                                        self.max_t_problem() or ""],
            "valid_draws": [self.n_valid] * 2,
            "draws": [self.n_draws] * 2,
        })

    def check_result(self) -> CheckResult:
        """This test as a :class:`~bayes_wake.checks.result.CheckResult`.

        Returns
        -------
        CheckResult
            Named by the kind, with :meth:`summary` as its table and :meth:`sentence`; no
            figure (:func:`randomisation_checks` draws every test's null in one).
        """
        summary = self.summary()
        # the row of significant windows holds counts (observed, null median and 95th
        # percentile); shares, p-values and the max |t| row do not
        counts = np.outer(summary["statistic"].eq("significant windows").to_numpy(),
                          summary.columns.isin(["observed", "null_median", "null_q95"]))
        return CheckResult(self.kind, _TITLES.get(self.kind, self.kind), summary,
                           self.sentence(), counts=counts)

    def sentence(self) -> str:
        """The verdict in one plain sentence, ending with the valid draws."""
        b = self.n_draws
        what = (f"{counted(b, 'permutation')} of the treatment labels within matching strata"
                if self.kind == "labels" else
                f"{counted(b, 'random shift')} of the treatment dates (placebos)")
        draws = f"({counted(self.n_valid, 'valid draw')} of {b:,}{self._distinct_offsets()})"
        if self.problem():
            return f"Under {what}, the check is not informative, because {self.problem()} " \
                   f"{draws}."
        return f"Under {what}, {self._count_words()}; {self._max_t_words()} {draws}."

    def _distinct_offsets(self) -> str:
        """``, from N distinct offsets`` when date shifts repeat offsets (a short span)."""
        if "offset" not in self.null:
            return ""
        distinct = int(self.null.loc[self.valid, "offset"].nunique())
        return f", from {distinct:,} distinct offsets" if distinct < self.n_valid else ""

    def _count_words(self) -> str:
        k, v = self.observed_count, self.n_valid
        if self.count_problem():
            return (f"the count of significant windows is not informative, because "
                    f"{self.count_problem()}")
        if k == 0:
            return "no window is significant, so the count of significant windows says nothing"
        if self.share_at_least_count() > 0:
            return (f"{k} or more significant windows occur with probability "
                    f"{_probability(self.share_at_least_count())} (family-wise p = "
                    f"{self.pvalue_count():.3f})")
        return (f"{k} or more significant windows never occur (0 of {v:,} valid draws; "
                f"family-wise p = {self.pvalue_count():.3f})")

    def _max_t_words(self) -> str:
        if self.max_t_problem():
            return f"max |t| is not informative, because {self.max_t_problem()}"
        t_obs = self.observed_max_abs_t
        if self.share_at_least_max_t() > 0:
            return (f"a max |t| of {t_obs:.2f} or more occurs with probability "
                    f"{_probability(self.share_at_least_max_t())}")
        return (f"a max |t| of {t_obs:.2f} or more never occurs (family-wise p = "
                f"{self.pvalue_max_t():.3f})")


#: The heading of each kind of test.
_TITLES = {"labels": "Label permutations within matching strata",
           "date_shift": "Date-shift placebos"}


def randomisation_checks(tests: dict[str, RandomisationTest], span: ShiftSpan | None = None
                         ) -> list[CheckResult]:
    """Every test as a :class:`~bayes_wake.checks.result.CheckResult`, in order.

    Parameters
    ----------
    tests
        The tests by kind (``labels``, ``date_shift``).
    span
        The span the treatment dates were shifted within (:func:`date_shift_span`), for the
        notes; None without date shifts.

    Returns
    -------
    list of CheckResult
        One per test (:meth:`RandomisationTest.check_result`); the last also carries the
        figure of all the tests' null distributions and the notes on how the draws were
        made and judged.
    """
    from bayes_wake.plotting import null_distribution_caption, plot_null_distributions

    out = [test.check_result() for test in tests.values()]
    if not out:
        return out
    figure, _ = plot_null_distributions(tests)
    out[-1] = replace(out[-1], figures={null_distribution_caption(tests, HUGE_T): figure},
                      notes=_notes(tests, span))
    return out


def _notes(tests: dict[str, RandomisationTest], span: ShiftSpan | None) -> tuple[str, ...]:
    """How the null draws were made and judged, and how many had a perfect fit."""
    notes = [_method_note(tests, span)]
    perfect = {kind: int((t.null["n_perfect_fits"] > 0).sum()) for kind, t in tests.items()
               if "n_perfect_fits" in t.null}
    if any(perfect.values()):
        notes.append("Draws with at least one essentially perfect fit: " + ", ".join(
            f"{kind} {n:,}" for kind, n in perfect.items()) + ".")
    return tuple(notes)


def _method_note(tests: dict[str, RandomisationTest], span: ShiftSpan | None) -> str:
    """How the null draws were made and judged, in words."""
    out = ("Label permutations keep the observed matching: within each cell's CEM strata the "
           "treated labels are reshuffled, so each stratum keeps its numbers of treated and "
           "control wakes and its weights. One random key per anchor event decides the "
           "shuffle in every cell, so overlapping windows stay dependent as in the data. ")
    if "date_shift" in tests and span is not None:
        low, high = (round(100 * q) for q in OUTCOME_SPAN_QUANTILES)
        out += ("Date-shift placebos move all treatments by one random whole number of "
                f"{tests['date_shift'].t_unit}, circularly within {span.describe()}: the span "
                "of the treatment and control events, cut to the outcome events' dates between "
                f"their {low}% and {high}% quantiles, so that isolated rows "
                "at the edges of the record do not stretch it; the offset keeps at least twice "
                "the longest window from the real date. Each placebo is counted, matched and "
                "fitted again. ")
    out += ("A window whose fit is NA is never significant. An essentially perfect fit (R's "
            "summary.lm warning) counts as significant, as in R's table, but its t is a "
            "rounding artefact and is left out of max |t|. A draw is valid when at least one "
            f"window is estimable and its max |t| is finite and below {HUGE_T:g}. Family-wise "
            "p = (1 + valid draws at least as extreme) / (1 + valid draws). A check is not "
            f"informative (no p-value) with fewer than {MIN_VALID_DRAWS} valid draws, with "
            f"more than {MAX_ARTEFACT_SHARE:.0%} of the draws near-infinite, or when all valid "
            "draws are identical; its count of significant windows is not informative when "
            f"more than {MAX_ARTEFACT_SHARE:.0%} of the valid draws (or the observed grid) "
            "have an essentially perfect fit.")
    return out


def _probability(share: float) -> str:
    return f"{share:.3f}" if share < 0.01 else f"{share:.2f}"


def randomisation_test(kind: str, observed: GridStatistics, chunks: Sequence[dict],
                       t_unit: str = "days") -> RandomisationTest:
    """Assemble chunk results (from :func:`label_permutation_chunk` or
    :func:`date_shift_chunk`) into a :class:`RandomisationTest`, in chunk order."""
    frames = []
    for result in sorted(chunks, key=lambda r: r["chunk"]):
        frame = pd.DataFrame({k: v for k, v in result.items() if isinstance(v, list)})
        frame.insert(0, "chunk", result["chunk"])
        frames.append(frame)
    null = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        {"chunk": [], **{k: [] for k in GridStatistics.NULL_COLUMNS}})
    null.insert(0, "draw", np.arange(len(null)))
    null.insert(0, "kind", kind)
    return RandomisationTest(kind=kind, observed=observed, null=null, t_unit=t_unit)
