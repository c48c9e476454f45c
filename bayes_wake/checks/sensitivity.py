"""How fragile is the pattern of per-window significance? One run, one report.

:func:`run_sensitivity` takes the data (:class:`SensitivityData`: the event table, its wake
cube, the regions and placebo sites) and the settings, runs every check and writes
a self-contained HTML report with one verdict sentence per check at the top, and the tables
behind them as CSV. Every check returns a :class:`~bayes_wake.checks.result.CheckResult`
(sentence, table, figures), and the report prints them one after the other:

0. robust standard errors (:mod:`bayes_wake.checks.standard_errors`): how many significant windows
   stay significant with heteroskedasticity-consistent, cluster-robust and Conley errors;
1. multiplicity (:mod:`bayes_wake.mwa.multiplicity`): Holm and Benjamini-Hochberg adjusted
   p-values, and how many significant windows survive each;
2. randomisation inference (:mod:`bayes_wake.checks.randomisation`): label permutations within the
   matching strata and date-shift placebos, the null distribution of the number of
   significant windows and of max |t|, family-wise p-values, Westfall-Young adjusted p-values;
3. Bayesian checks (:mod:`bayes_wake.checks.bayesian`): per-cell P(effect > 0), P(positive over
   a region of the grid), power-scaling prior sensitivity, Poisson vs negative binomial, with
   and without matching, without overlapping wakes, leave one region out;
4. placebo-placement calibration (:mod:`bayes_wake.checks.calibration`, with candidate
   sites): the empirical size of every standard-error choice, and of the posterior's
   intervals, on the user's own outcomes.

Every permutation chunk, placebo chunk and model fit is a task keyed by the hash of the data
and its settings and run on Dask (:mod:`bayes_wake.checks.tasks`); finished tasks are stored in
``OUT/tasks/`` as they finish, so an interrupted run resumes where it stopped. The report and
the tables are written through a staging folder: a run that fails or is killed leaves no
half-written report.
"""

from __future__ import annotations

import difflib
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from bayes_wake.checks.bayesian import (
    CHECKS,
    DEFAULT_CHECKS,
    fit_variant,
    plan_fits,
    summarise_checks,
)
from bayes_wake.checks.bayesian import RESULT_FORMAT as FIT_FORMAT
from bayes_wake.checks.calibration import (
    CALIBRATION_CHOICES,
    calibration_check,
    placebo_calibration_task,
)
from bayes_wake.checks.standard_errors import multiplicity_check, standard_error_check
from bayes_wake.checks.randomisation import RESULT_FORMAT as NULL_FORMAT
from bayes_wake.checks.randomisation import (
    DateShiftSettings,
    RandomisationTest,
    date_shift_chunk,
    date_shift_range,
    date_shift_span,
    grid_design,
    label_permutation_chunk,
    randomisation_checks,
    randomisation_test,
)
from bayes_wake.checks.result import CheckResult
from bayes_wake.checks.tasks import (
    RunReport,
    Shared,
    Task,
    chunk_sizes,
    layout,
    run_tasks,
    task_key,
)
from bayes_wake.core.windows import GridRegion, parse_grid_region
from bayes_wake.errors import EventDataError, SettingsError
from bayes_wake.io.tables import counted
from bayes_wake.io.artefacts import write_table
from bayes_wake.mwa.analysis import MWASettings, matched_wake_analysis
from bayes_wake.mwa.multiplicity import MultiplicitySummary, summarise_multiplicity
from bayes_wake.options import DEFAULT_SPEC

if TYPE_CHECKING:
    from bayes_wake.bayes.spec import ModelSpec
    from bayes_wake.io.html import HtmlReport

__all__ = [
    "REPORT_NAME",
    "VERDICT_LABELS",
    "SensitivityData",
    "SensitivityResult",
    "SensitivitySettings",
    "event_table_sha256",
    "regions_of_anchors",
    "run_sensitivity",
]

REPORT_NAME = "sensitivity_report.html"
#: Short names of the checks at the head of the verdicts.
VERDICT_LABELS = {"standard_errors": "Robust standard errors",
                  "multiplicity": "Multiplicity", "labels": "Label permutations",
                  "date_shift": "Date-shift placebos", "surface": "Posterior surface",
                  "prior": "Prior (power-scaling)", "prior_refit": "Prior (refits)",
                  "likelihood": "Likelihood", "matching": "Matching",
                  "sutva": "Overlapping wakes", "regions": "Leave one region out",
                  "calibration": "Placebo placements"}
#: The report's numbered sections: heading, the checks shown in it (in run order), whether
#: each check gets its own sub-heading, and what to say when none of them ran (None: the
#: section is left out). The robust standard errors have a verdict only.
_SECTIONS = (("1. Multiplicity over the window grid", ("multiplicity",), False, None),
             ("2. Randomisation inference", ("labels", "date_shift"), True, None),
             ("3. Bayesian checks", CHECKS, True,
              "No Bayesian check was run (--bayes-checks none)."),
             ("4. Placebo-placement calibration", ("calibration",), False, None))


@dataclass(frozen=True)
class SensitivitySettings:
    """Everything a sensitivity run needs besides the data.

    Attributes
    ----------
    mwa
        The matched wake analysis settings (as ``bayes-wake mwa``).
    windows, radii
        The grid: temporal windows (``t_unit``) and radii (km).
    t_unit, convention
        As for :func:`bayes_wake.wakes.count_wakes` (date-shift placebos recount wakes).
    permutations
        Label permutations (at least 1).
    date_shifts
        Date-shift placebos (0 to skip them).
    chunk_size, date_shift_chunk
        Permutations per task, placebos per task.
    seed
        Seed of every random stream (each chunk has its own stream from it).
    bayes_checks
        The Bayesian checks (see :mod:`bayes_wake.checks.bayesian`); empty for none.
    spec
        The reference :class:`~bayes_wake.bayes.spec.ModelSpec` (None: the shipped default,
        :data:`bayes_wake.options.DEFAULT_SPEC`, loaded once here).
    grid_region
        The region of the grid for P(effect > 0), e.g. ``"t>=20, s<=9"``; empty for the
        whole grid. Parsed once, into ``region``
        (:func:`bayes_wake.core.windows.parse_grid_region`).
    region_column
        Column of the data file naming each event's region (for leave-one-region-out).
    leave_out
        Regions to leave out one at a time (empty: every region).
    placebos
        Placebo placements of the calibration (0: none; needs candidate sites).
    placebo_weight
        Column of the sites weighting where placebo treatments are drawn (None: uniform).
    placebo_bayes
        Also fit the reference model on every placebo placement (one MCMC fit each).
    """

    mwa: MWASettings
    windows: tuple[int, ...]
    radii: tuple[float, ...]
    t_unit: str = "days"
    convention: str = "mwa"
    permutations: int = 1000
    date_shifts: int = 100
    chunk_size: int = 100
    date_shift_chunk: int = 10
    seed: int = 20220101
    bayes_checks: tuple[str, ...] = DEFAULT_CHECKS
    spec: ModelSpec | None = None
    grid_region: str = ""
    region_column: str | None = None
    leave_out: tuple[str, ...] = ()
    placebos: int = 0
    placebo_weight: str | None = None
    placebo_bayes: bool = False
    ci: float = 0.9
    region: GridRegion = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        def whole(name: str, value, minimum: int) -> None:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                    or value < minimum:
                raise SettingsError(f"{name} must be a whole number >= {minimum}, got {value!r}")

        whole("SensitivitySettings.permutations", self.permutations, 1)
        whole("date_shifts", self.date_shifts, 0)
        whole("chunk_size", self.chunk_size, 1)
        whole("date-shift chunk size", self.date_shift_chunk, 1)
        whole("SensitivitySettings.seed", self.seed, 0)
        whole("SensitivitySettings.placebos", self.placebos, 0)
        if self.placebo_bayes and not self.placebos:
            raise SettingsError("placebo_bayes=True fits the model on placebo placements: give "
                                "placebo_sites")
        if len(self.windows) == 0 or len(self.radii) == 0:
            raise SettingsError("the window grid is empty")
        if not 0 < self.ci < 1:
            raise SettingsError(f"ci {self.ci!r}: the interval level is a share between 0 "
                                "and 1 (e.g. 0.9)")
        unknown = [c for c in self.bayes_checks if c not in CHECKS]
        if unknown:
            raise SettingsError(f"unknown Bayesian check(s) {unknown}; checks: "
                                f"{', '.join(CHECKS)}")
        if "regions" in self.bayes_checks and not self.region_column:
            raise SettingsError("leave-one-region-out needs region_column")
        if self.leave_out and not self.region_column:
            raise SettingsError("leave_out needs region_column")
        object.__setattr__(self, "region", parse_grid_region(
            self.grid_region, windows=self.windows, radii=self.radii, t_unit=self.t_unit))
        if self.spec is None:
            from bayes_wake.bayes.spec import load_spec

            object.__setattr__(self, "spec", load_spec(DEFAULT_SPEC))

    def to_dict(self) -> dict:
        """JSON-ready settings (provenance): the MWA settings' and the spec's own dicts."""
        return {**{f.name: getattr(self, f.name) for f in fields(self) if f.init},
                "mwa": self.mwa.to_dict(), "spec": self.spec.model_dump(mode="json")}


@dataclass
class SensitivityResult:
    """What :func:`run_sensitivity` found and wrote.

    Attributes
    ----------
    checks
        Every check's :class:`~bayes_wake.checks.result.CheckResult`, in report order:
        ``standard_errors``, ``multiplicity``, the randomisation tests, the Bayesian checks,
        ``calibration``.
    multiplicity
        The multiplicity summary.
    tests
        The randomisation tests by kind (``labels``, ``date_shift``), with their null draws.
    run
        What the task runner did (computed and reused tasks, workers, seconds).
    layout
        The task layout table (per task kind).
    out
        The output folder.
    files
        The files written into ``out``.
    converged
        Per Bayesian fit: whether it passed the convergence rule (False also when the fit
        failed).
    """

    checks: list[CheckResult]
    multiplicity: MultiplicitySummary
    tests: dict[str, RandomisationTest]
    run: RunReport
    layout: pd.DataFrame
    out: Path
    files: list[str] = field(default_factory=list)
    converged: list[bool] = field(default_factory=list)

    @property
    def verdicts(self) -> list[tuple[str, str]]:
        """``(check, sentence)`` in report order."""
        return [(check.name, check.sentence) for check in self.checks]

    @property
    def bayes(self) -> list[CheckResult]:
        """The Bayesian checks."""
        return [check for check in self.checks if check.name in CHECKS]


# --------------------------------------------------------------------------------------------
# data: regions and hashes
# --------------------------------------------------------------------------------------------


def regions_of_anchors(events: pd.DataFrame, cube: xr.Dataset, region_of_row: Sequence,
                       *, column: str = "region", leave_out: Sequence[str] = ()
                       ) -> tuple[np.ndarray, list[str]]:
    """The region of every anchor on the cube's ``event`` dim, and the regions to leave out.

    Parameters
    ----------
    events
        The event table (row-aligned with ``region_of_row``).
    cube
        Its wake cube.
    region_of_row
        The region of every row of the event table (dependent rows may be empty).
    column
        The column's name, for messages.
    leave_out
        Regions to leave out (empty: all regions of the anchors).

    Returns
    -------
    tuple
        Region label per anchor (str array), and the regions to leave out in order.

    Raises
    ------
    EventDataError
        A treatment or control event has no region.
    SettingsError
        A region to leave out is not among the anchors' regions, or only one region exists.
    """
    values = pd.Series(region_of_row, dtype=object)
    text = values.map(lambda v: "" if v is None or pd.isna(v) else str(v).strip())
    row_of_id = pd.Series(np.arange(len(events)), index=events["event_id"].to_numpy())
    rows = row_of_id.loc[cube["source_id"].to_numpy()].to_numpy()
    anchor_regions = text.to_numpy()[rows].astype(str)
    missing = anchor_regions == ""
    if missing.any():
        bad = sorted(rows[missing] + 1)
        n_missing = int(missing.sum())
        raise EventDataError(f"{counted(n_missing, 'treatment/control event')} "
                             f"{'has' if n_missing == 1 else 'have'} no region",
                             path=events.attrs.get("source"), rows=bad, column=column)
    known = sorted(set(anchor_regions))
    if leave_out:
        unknown = [r for r in leave_out if r not in known]
        if unknown:
            close = difflib.get_close_matches(unknown[0], known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise SettingsError(f"leave_out: unknown region {unknown[0]!r}{hint} (regions of "
                                f"the anchors in '{column}': {', '.join(known)})")
        chosen = list(dict.fromkeys(leave_out))
    else:
        chosen = known
    if len(known) < 2:
        raise SettingsError(f"leave-one-region-out needs at least two regions; '{column}' has "
                            f"{known}")
    return anchor_regions, chosen


def event_table_sha256(events: pd.DataFrame, extra: Sequence | None = None) -> str:
    """SHA-256 of an event table's content (ids, roles, times, coordinates, covariates), in a
    canonical byte form independent of the file format or path it came from."""
    digest = hashlib.sha256()
    for name in sorted(map(str, events.columns)):
        column = events[name]
        digest.update(name.encode() + b"\x00")
        if pd.api.types.is_datetime64_any_dtype(column):
            values = pd.to_datetime(column, utc=True).dt.tz_localize(None)
            digest.update(values.to_numpy("datetime64[ns]").astype(np.int64).tobytes())
        elif pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            digest.update(column.to_numpy(dtype=float).tobytes())
        else:
            digest.update("\x1f".join(map(str, column.tolist())).encode())
    if extra is not None:
        digest.update(b"extra\x00" + "\x1f".join(map(str, list(extra))).encode())
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------


def _plan(events: pd.DataFrame, cube: xr.Dataset, settings: SensitivitySettings,
          region_of_event: np.ndarray | None, leave_out: Sequence[str],
          sites: pd.DataFrame | None = None):
    """Every task of the run, in a fixed order."""
    data_hash = event_table_sha256(events)
    base = {"mwa": settings.mwa.to_dict(), "windows": list(map(int, settings.windows)),
            "radii": list(map(float, settings.radii)), "t_unit": settings.t_unit,
            "convention": settings.convention, "seed": settings.seed,
            "format": NULL_FORMAT}
    tasks: list[Task] = []
    for chunk, size in enumerate(chunk_sizes(settings.permutations, settings.chunk_size)):
        key = task_key(data_hash, {**base, "kind": "labels", "chunk": chunk, "size": size})
        tasks.append(Task(key, label_permutation_chunk,
                          (Shared("design"), chunk, size, settings.seed),
                          f"label permutations, chunk {chunk}", "labels", priority=0))
    shift = DateShiftSettings(tuple(int(w) for w in settings.windows),
                              tuple(float(r) for r in settings.radii), settings.t_unit,
                              settings.convention, settings.mwa)
    if settings.date_shifts:
        for chunk, size in enumerate(chunk_sizes(settings.date_shifts,
                                                 settings.date_shift_chunk)):
            key = task_key(data_hash, {**base, "kind": "date_shift", "chunk": chunk,
                                       "size": size})
            tasks.append(Task(key, date_shift_chunk,
                              (Shared("events"), shift, chunk, size, settings.seed),
                              f"date-shift placebos, chunk {chunk}", "date_shift",
                              priority=5))
    spec = settings.spec
    fits, skipped = plan_fits(settings.bayes_checks, spec, match_on=settings.mwa.match_on,
                              delete_sutva=settings.mwa.delete_sutva, regions=leave_out)
    region = settings.region
    region_hash = (hashlib.sha256("\x1f".join(region_of_event).encode()).hexdigest()
                   if region_of_event is not None else None)
    fit_tasks = {}
    for variant in fits:
        key = task_key(data_hash, {**base, "format": FIT_FORMAT, "kind": "fit",
                                   "variant": variant.to_dict(),
                                   "grid_region": region.to_dict(), "ci": settings.ci,
                                   "regions": region_hash if variant.drop_region else None})
        task = Task(key, fit_variant,
                    (Shared("cube"), variant.to_dict(), settings.mwa,
                     Shared("regions") if variant.drop_region else None, region.to_dict(),
                     settings.ci),
                    f"fit: {variant.label}", "fit", priority=10)
        tasks.append(task)
        fit_tasks[variant.name] = key
    if settings.placebos:
        tasks += _placebo_tasks(data_hash, base, settings, sites, spec)
    return tasks, fits, skipped, fit_tasks, shift


def _placebo_tasks(data_hash: str, base: dict, settings: SensitivitySettings,
                   sites: pd.DataFrame, spec) -> list[Task]:
    """One task per placebo placement of the calibration, keyed by data, sites and settings
    (``base``: the grid, counting and MWA settings every task of the run shares)."""
    config = {**base, "vcovs": list(CALIBRATION_CHOICES), "weight": settings.placebo_weight,
              "spec": spec.model_dump(mode="json") if settings.placebo_bayes else None,
              # the posterior's level only where there is a posterior (the keys of the
              # placements without one stay as they were)
              **({"ci": settings.ci} if settings.placebo_bayes else {})}
    sites_hash = hashlib.sha256(pd.util.hash_pandas_object(sites, index=False).to_numpy()
                                .tobytes()).hexdigest()
    return [Task(task_key(data_hash, {**config, "kind": "placebo", "placement": i,
                                      "sites": sites_hash}),
                 placebo_calibration_task, (Shared("events"), Shared("sites"), i,
                                            settings.seed, config),
                 f"placebo placement {i}", "placebo",
                 priority=10 if settings.placebo_bayes else 5)
            for i in range(settings.placebos)]


@dataclass(frozen=True)
class SensitivityData:
    """What a sensitivity run checks: the events, their wake cube and what goes with them.

    Attributes
    ----------
    events
        The event table (for date-shift placebos).
    cube
        Its wake cube, counted on the settings' ``windows`` x ``radii``.
    regions
        From :func:`regions_of_anchors`: the region of every anchor and the regions to leave
        out (None: no leave-one-region-out).
    sites
        Candidate sites of the placebo calibration
        (:func:`bayes_wake.checks.calibration.read_placebo_sites`); needed when the settings
        ask for placebos.
    inputs
        Input files for the provenance record (``{"data": path}``).
    """

    events: pd.DataFrame
    cube: xr.Dataset
    regions: tuple[np.ndarray, Sequence[str]] | None = None
    sites: pd.DataFrame | None = None
    inputs: dict = field(default_factory=dict)

    @property
    def region_of_event(self) -> np.ndarray | None:
        """The region of every anchor on the cube's ``event`` dim (None without regions)."""
        return None if self.regions is None else self.regions[0]

    @property
    def leave_out(self) -> list[str]:
        """The regions to leave out one at a time (every anchor's region unless chosen)."""
        if self.regions is None:
            return []
        return list(self.regions[1]) or sorted(set(map(str, self.regions[0])))


def run_sensitivity(data: SensitivityData, settings: SensitivitySettings,
                    out: str | os.PathLike, *, scheduler: str | None = None,
                    n_workers: int | None = None, extra: dict | None = None,
                    log: Callable[[str], None] | None = None,
                    progress: Callable[[int, int], None] | None = None) -> SensitivityResult:
    """Run every sensitivity check and write the report.

    Parameters
    ----------
    data
        The events, their cube, the anchors' regions, the placebo sites and the input files.
    settings
        The run's settings.
    out
        Output folder: ``sensitivity_report.html``, the CSV tables and ``provenance.json``
        (written only when the whole run succeeded), and ``tasks/`` (finished tasks, kept
        so that a rerun resumes).
    scheduler, n_workers
        Where the tasks run (see :func:`bayes_wake.checks.tasks.run_tasks`): None for a new
        LocalCluster, ``"inline"`` for this process, or a scheduler address.
    extra
        What only the caller knows, for the provenance record
        (:func:`bayes_wake.io.artefacts.provenance`).
    log, progress
        Status lines, and ``progress(done, total)`` over tasks.

    Returns
    -------
    SensitivityResult
    """
    log = log or (lambda _message: None)
    span = _check_inputs(data, settings)
    mwa = settings.mwa
    result = matched_wake_analysis(data.cube, mwa)
    multiplicity = summarise_multiplicity(result.estimates, alpha=mwa.alpha)
    design = grid_design(data.cube, mwa)
    tasks, fits, skipped, fit_tasks, _ = _plan(data.events, data.cube, settings,
                                               data.region_of_event, data.leave_out,
                                               data.sites)
    log(f"{counted(len(tasks), 'task')}: "
        f"{counted(settings.permutations, 'label permutation')}, "
        f"{counted(settings.date_shifts, 'date-shift placebo')}, "
        f"{counted(len(fits), 'Bayesian fit')}, "
        f"{counted(settings.placebos, 'placebo placement')}")
    shared = {"design": design, "events": data.events, "cube": data.cube,
              "regions": data.region_of_event, "sites": data.sites}
    run = run_tasks(tasks, out, shared=shared, scheduler=scheduler, n_workers=n_workers,
                    progress=progress, log=log)
    by_kind: dict[str, list[dict]] = {}
    for task in tasks:
        by_kind.setdefault(task.kind, []).append(run.results[task.key])
    tests = _randomisation_tests(design.statistics(), by_kind, settings)
    fit_results = {name: run.results[key] for name, key in fit_tasks.items()}
    converged = [("error" not in r and r["diagnostics"]["converged"])
                 for r in fit_results.values()]
    converged += [r["converged"] for r in by_kind.get("placebo", [])
                  if r["converged"] is not None]
    checks = [standard_error_check(data.cube, mwa),
              multiplicity_check(multiplicity, result.surface, t_unit=settings.t_unit,
                                 westfall_young=tests["labels"].adjusted_pvalues()),
              *randomisation_checks(tests, span),
              *summarise_checks(fits, fit_results, settings.region, skipped)]
    if settings.placebos:
        checks.append(calibration_check(by_kind["placebo"], len(data.sites), mwa.alpha,
                                        weight=settings.placebo_weight))
    task_layout = pd.DataFrame(layout(tasks, run))
    record = {**(extra or {}), "run": _run_record(run, len(tasks), data.events, span)}
    files = _write_outputs(out, data, settings, (checks, result.estimates, tests),
                           (task_layout, run, converged.count(False)), record)
    return SensitivityResult(checks=checks, multiplicity=multiplicity, tests=tests, run=run,
                             layout=task_layout, out=Path(out), files=files,
                             converged=converged)


def _check_inputs(data: SensitivityData, settings: SensitivitySettings):
    """Refuse data that do not fit the settings, before any task; the span of the date-shift
    placebos (None without them)."""
    windows = data.cube["window"].to_numpy()
    radii = data.cube["radius"].to_numpy()
    if not (np.array_equal(windows, np.asarray(settings.windows))
            and np.allclose(radii, np.asarray(settings.radii, dtype=float))):
        raise SettingsError("the wake cube was counted on another grid than the settings name")
    if "regions" in settings.bayes_checks and data.regions is None:
        raise SettingsError("leave-one-region-out needs the region of every anchor")
    if settings.placebos and data.sites is None:
        raise SettingsError("the placebo calibration needs candidate sites (placebo_sites)")
    if not settings.date_shifts:
        return None
    date_shift_range(data.events, settings.windows, settings.t_unit)  # fail fast
    return date_shift_span(data.events, settings.t_unit)


def _run_record(run: RunReport, n_tasks: int, events: pd.DataFrame, span) -> dict:
    """Where and how the tasks ran, for the provenance record."""
    return {"tasks": n_tasks, "computed": len(run.computed), "reused": len(run.reused),
            "where": run.where, "workers": run.workers, "wall_seconds": run.wall_seconds,
            "data_sha256": event_table_sha256(events),
            "date_shift_span": None if span is None else span.describe()}


def _write_outputs(out, data: SensitivityData, settings: SensitivitySettings, found: tuple,
                   ran: tuple, extra: dict) -> list[str]:
    """Write the tables, ``provenance.json`` (``extra``: :func:`provenance`'s) and the report
    through a staging folder.

    ``found`` is (checks, estimates, randomisation tests), ``ran`` (task layout, run report,
    Bayesian fits that did not converge); returns the files written."""
    from bayes_wake.io.artefacts import provenance, staged_directory, write_json

    checks, estimates, tests = found
    task_layout, run, unconverged = ran
    record = provenance(settings.to_dict(), data.inputs, extra=extra)
    with staged_directory(out) as stage:
        files = _write_tables(stage, checks, estimates, tests, task_layout)
        write_json(record, stage / "provenance.json")
        _write_report(stage / REPORT_NAME, settings, checks, task_layout, run, data.inputs,
                      unconverged=unconverged)
    return files + ["provenance.json", REPORT_NAME]


def _randomisation_tests(observed, by_kind: dict[str, list[dict]],
                         settings: SensitivitySettings) -> dict[str, RandomisationTest]:
    """The label permutation test and, with date shifts, the date-shift test, from the
    chunks' results (``observed``: the observed grid statistics)."""
    kinds = ("labels", "date_shift") if settings.date_shifts else ("labels",)
    return {kind: randomisation_test(kind, observed, by_kind.get(kind, []), settings.t_unit)
            for kind in kinds}


# --------------------------------------------------------------------------------------------
# outputs
# --------------------------------------------------------------------------------------------


def _write_tables(stage: Path, checks: Sequence[CheckResult], estimates: pd.DataFrame,
                  tests: dict[str, RandomisationTest], task_layout: pd.DataFrame) -> list[str]:
    """Write the CSV tables into ``stage``.

    Returns
    -------
    list of str
        The file names, in the order written.
    """
    by_name = {check.name: check for check in checks}
    frames = {
        "verdicts.csv": pd.DataFrame([(c.name, c.sentence) for c in checks],
                                     columns=["check", "verdict"]),
        "estimates.csv": estimates,
        "multiplicity.csv": by_name["multiplicity"].cells,
        "randomisation_summary.csv": pd.concat([by_name[kind].table.assign(null=kind)
                                                for kind in tests], ignore_index=True),
        "randomisation_null.csv": pd.concat([t.null.assign(valid=t.valid)
                                             for t in tests.values()], ignore_index=True)}
    for check in (c for c in checks if c.name in CHECKS):  # Bayesian: table, cells if any
        if len(check.table):
            frames[f"bayes_{check.name}.csv"] = check.table
        if check.cells is not None:
            frames[f"bayes_{check.name}_cells.csv"] = check.cells
    frames["task_layout.csv"] = task_layout
    if "calibration" in by_name:
        frames["placebo_size.csv"] = by_name["calibration"].table
        frames["placebo_cells.csv"] = by_name["calibration"].cells
    for name, frame in frames.items():
        write_table(frame, stage / name)
    return list(frames)


def _write_report(path: Path, settings: SensitivitySettings, checks: Sequence[CheckResult],
                  task_layout: pd.DataFrame, run: RunReport, inputs: dict, *,
                  unconverged: int = 0) -> None:
    """Write the HTML report: every verdict, each section's checks, where the work ran.

    ``unconverged`` counts the Bayesian fits that did not converge or failed (a warning
    under the verdicts).
    """
    from bayes_wake.io.html import HtmlReport

    report = HtmlReport("Sensitivity of per-window significance")
    report.paragraph(_data_words(settings, inputs.get("data", "the events")), kind="note")
    report.heading("Verdicts")
    for check in checks:
        report.paragraph(f"{VERDICT_LABELS.get(check.name, check.name)}: {check.sentence}",
                         kind="verdict")
    if unconverged:
        report.paragraph(f"{counted(unconverged, 'Bayesian fit')} did not converge or failed; "
                         "the numbers are flagged above and in the tables.", kind="warning")
    for heading, names, subheadings, if_none in _SECTIONS:
        shown = [check for check in checks if check.name in names]
        if shown or if_none:
            report.heading(heading)
        if not shown and if_none:
            report.paragraph(if_none, kind="note")
        for check in shown:
            _add_check(report, check, subheading=subheadings)
    _add_run(report, run, task_layout)
    report.write(path)


def _add_check(report: HtmlReport, check: CheckResult, *, subheading: bool) -> None:
    """One check in the report: its title, sentence, tables, figures and notes."""
    if subheading:
        report.heading(check.title, level=3)
    report.paragraph(check.sentence, kind="verdict")
    if len(check.table):
        report.table(check.table, caption=check.caption, digits=check.digits,
                     counts=check.counts)
    for caption, table in check.tables.items():
        report.table(table, caption=caption, digits=check.digits)
    for caption, figure in check.figures.items():
        report.figure(figure, caption=caption)
    for note in check.notes:
        report.paragraph(note, kind="note")


def _add_run(report: HtmlReport, run: RunReport, task_layout: pd.DataFrame) -> None:
    """Where the tasks ran, what was reused, and the time per kind of task."""
    report.heading("Where the work ran")
    report.paragraph(
        f"{counted(len(run.results), 'task')}: {len(run.computed)} computed in this "
        f"run, {len(run.reused)} reused from an earlier run (keyed by the hash of data and "
        f"settings); workers: {run.workers} ({run.where}); wall time {run.wall_seconds:.1f} s.",
        kind="note")
    report.table(task_layout)


def _data_words(settings: SensitivitySettings, source: str) -> str:
    """The data, the grid (time unit, km) and the matched wake analysis, in words."""
    return (f"Data: {source}. Grid: t = {', '.join(f'{w:g}' for w in settings.windows)}"
            f" {settings.t_unit}; s = {', '.join(f'{r:g}' for r in settings.radii)} km. "
            f"{_mwa_words(settings.mwa)}")


def _mwa_words(settings: MWASettings) -> str:
    if settings.matching:
        match = (f"Matched on {', '.join(settings.match_on)} and the pre-trend"
                 f"{' and earlier overlaps' if settings.tcm else ''}, "
                 f"{'weighted' if settings.weighted else 'unweighted'}")
    else:
        match = "Not matched"
    return (f"{match}; formula {settings.formula}; {settings.vcov} standard errors; "
            f"alpha {settings.alpha:g}"
            f"{'; overlapping wakes dropped' if settings.delete_sutva else ''}.")
