"""The Sauter (2022) reanalysis: real ACLED outcomes, projects, study area, covariates, files.

:func:`reanalyze_sauter` runs the whole study with one call, in three steps. The data
(:func:`read_study`): it reads the ACLED export (either layout), keeps the study period and the
study regions, reads the QIP and aid-project files or, for a user without them, simulates their
placement (and says so everywhere), and measures the covariates. The analysis: for each
outcome it counts the wakes on the paper's grid, runs the matched wake analysis as R's ``mwa``
does, with the robust standard errors beside it, and fits the Bayesian wake model through the
bayes package's one fit path. The files: R's tables, the cubes, the figures, the summary tables
and the provenance, with the report (:mod:`bayes_wake.studies.sauter.report`), written through
a staging folder so that a failed run leaves nothing half-written.

``bayes-wake sauter`` and ``scripts/reanalyze_sauter.py`` are thin layers over this function.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayes_wake.checks.standard_errors import robust_survival
from bayes_wake.errors import SettingsError
from bayes_wake.io.artefacts import (
    check_output_folder,
    provenance,
    staged_directory,
    write_json,
    write_mwa_tables,
    write_table,
)
from bayes_wake.io.covariates import add_covariates, load_layer
from bayes_wake.io.tables import counted
from bayes_wake.mwa.analysis import (
    ROBUST_ERRORS,
    MWAResult,
    MWASettings,
    matched_wake_analysis,
    standard_error_table,
)
from bayes_wake.simulate.placements import simulate_project_placement
from bayes_wake.studies.sauter.acled import Outcome, parse_outcome, read_acled
from bayes_wake.studies.sauter.projects import read_projects
from bayes_wake.studies.sauter.regions import (
    STUDY_REGIONS,
    StudyArea,
    filter_to_regions,
    load_regions,
    normalise_region_name,
    resolve_regions,
)
from bayes_wake.studies.sauter.report import (
    _ols_figure,
    _windows_table,
    simulated_text,
    write_report,
)
from bayes_wake.studies.sauter.settings import SauterSettings
from bayes_wake.wakes import count_wakes, save_cube

__all__ = [
    "OutcomeResult",
    "SauterResult",
    "StudyData",
    "battery_studies",
    "read_study",
    "reanalyze_sauter",
]

_ROLE_OF_KIND = {"qip": "treatment", "aid": "control"}
_COVARIATE_LABELS = {
    "dist_water_km": "Water dist. [km]",
    "dist_road_km": "Road dist. [km]",
    "dist_base_km": "UN base dist. [km]",
    "pop_density": "Pop. dens.",
    "night_lights": "Nightlights",
}


@dataclass
class OutcomeResult:
    """One outcome's analysis.

    Attributes
    ----------
    outcome
        The outcome definition.
    n_events
        Dependent (outcome) events in the study area and period.
    cube
        The wake cube.
    mwa
        The matched wake analysis (R's tables, the OLS surface).
    bayes
        The Bayesian fit (:class:`bayes_wake.bayes.fit.BayesResult`), or None when skipped.
    robust
        Per window, the p-values of the classical and the robust standard errors
        :data:`bayes_wake.mwa.analysis.ROBUST_ERRORS`
        (:func:`bayes_wake.mwa.analysis.standard_error_table`; which classical significant
        windows survive: :func:`bayes_wake.checks.standard_errors.robust_survival`).
    check
        The posterior predictive check of ``bayes`` when it is a model of the wake counts:
        its table and one-line verdict (:func:`bayes_wake.bayes.matched_fit.check_counts`);
        else None.
    compared
        The second model's fit (``SauterSettings.compare``), or None.
    comparison
        ``bayes`` against ``compared``: the table and one line
        (:func:`bayes_wake.bayes.matched_fit.compare_models`), or None.
    lead
        The same model fitted to the pre-trend placebo (``period="lead"``) when ``bayes`` is
        a count-scale surface; else None.
    """

    outcome: Outcome
    n_events: int
    cube: xr.Dataset
    mwa: MWAResult
    bayes: object | None = None
    robust: pd.DataFrame | None = None
    check: tuple[pd.DataFrame, str] | None = None
    compared: object | None = None
    comparison: tuple[pd.DataFrame, str] | None = None
    lead: object | None = None


@dataclass
class SauterResult:
    """What :func:`reanalyze_sauter` made.

    Attributes
    ----------
    out
        The output folder.
    outcomes
        Outcome name -> :class:`OutcomeResult`, in the order run.
    projects
        The treatment and control projects used (with ``region`` and the covariates).
    summary
        Events by role and region (the report's data summary).
    dropped
        What was dropped at each step and why (``step``, ``reason``, ``events``).
    balance
        Conditional means of the covariates by event type (the paper's Table 2).
    funding
        QIP funding by activity type (the paper's Table 1), or None without budgets.
    simulated
        Kind (``qip``, ``aid``) -> True when that kind was simulated.
    covariates
        The matching covariates.
    seconds
        Wall time of the run.
    notes
        Notes for the report's data section (e.g. Ménaka counted under Gao).
    """

    out: Path
    outcomes: dict[str, OutcomeResult]
    projects: pd.DataFrame
    summary: pd.DataFrame
    dropped: pd.DataFrame
    balance: pd.DataFrame
    funding: pd.DataFrame | None
    simulated: dict[str, bool]
    covariates: list[str]
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def any_simulated(self) -> bool:
        """True when any projects were simulated."""
        return any(self.simulated.values())

    @property
    def report(self) -> Path:
        """The HTML report."""
        return self.out / "report.html"


@dataclass
class StudyData:
    """What the study reads, before any analysis (:func:`read_study`).

    Attributes
    ----------
    events
        The ACLED events of the study period and regions (``attrs``: the layout and counts of
        :func:`~bayes_wake.studies.sauter.acled.read_acled`).
    boundary
        The admin-1 regions (:func:`~bayes_wake.studies.sauter.regions.load_regions`).
    keep_regions
        The study regions as the boundary file names them.
    projects
        QIPs and aid projects in the study area and period, with ``role``, ``region`` and
        the covariates.
    pool
        The ACLED events with the covariates: every outcome's events are drawn from it.
    selections
        Outcome name -> boolean mask of ``pool``: the outcome's events.
    covariates
        The matching covariates.
    covariate_notes
        Covariate name -> how it was measured.
    layers
        The distance-covariate layers by covariate name (``dist_base_km``: the bases).
    dropped
        ``{"step", "reason", "events"}`` records: what was dropped at each step and why.
    notes
        Notes for the report (Ménaka counted under Gao).
    disagree
        Kept events whose ACLED admin1 differs from the polygon holding them.
    """

    events: pd.DataFrame
    boundary: object
    keep_regions: tuple[str, ...]
    projects: pd.DataFrame
    pool: pd.DataFrame
    selections: dict[str, np.ndarray]
    covariates: list[str]
    covariate_notes: dict[str, str]
    layers: dict[str, object]
    dropped: list[dict]
    notes: list[str]
    disagree: int


def reanalyze_sauter(settings: SauterSettings, out: str | os.PathLike, *,
                     progressbar: bool = False, log: Callable[[str], None] | None = None,
                     extra: dict | None = None) -> SauterResult:
    """Run the Sauter (2022) reanalysis and write its report.

    Parameters
    ----------
    settings
        The study's options (:class:`~bayes_wake.studies.sauter.settings.SauterSettings`,
        checked when built).
    out
        Output folder (created; files of the same names are replaced only when the whole
        run succeeds).
    progressbar
        Show the sampler's progress bar.
    log
        Called with one line per step (e.g. ``print``).
    extra
        What only the caller knows, for the provenance record
        (:func:`bayes_wake.io.artefacts.provenance`; the command line's ``{"settings":
        {"command": "sauter"}}``).

    Returns
    -------
    SauterResult

    Raises
    ------
    EventDataError
        Bad input files (naming file, rows and column).
    SettingsError
        Settings the data cannot meet (regions not in the boundary file, outcomes without
        events, covariates).
    OutputFolderError
        ``out`` cannot be written, or is a non-empty folder that bayes_wake did not write
        (checked before any work).
    """
    started = time.perf_counter()
    say = log or (lambda _line: None)
    check_output_folder(out, inputs=[path for path in settings.input_files().values() if path])
    study = read_study(settings, say)
    results = _analyse_outcomes(settings, study, say)
    if settings.spec is not None:
        _fit_outcomes(results, settings, progressbar=progressbar, say=say)
    sauter = _sauter_result(Path(out), settings, study, results)
    record = _provenance(settings, study, sauter, extra)
    with staged_directory(out) as stage:
        _write_files(stage, sauter, settings, study)
        sauter.seconds = time.perf_counter() - started
        record["seconds"] = round(sauter.seconds, 1)
        write_json(record, stage / "provenance.json")
        write_report(stage, sauter, study, settings, record)
    sauter.seconds = time.perf_counter() - started
    say(f"Wrote {out}/report.html in {sauter.seconds:.1f} s")
    return sauter


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------


def read_study(settings: SauterSettings, say: Callable[[str], None]) -> StudyData:
    """The study's data: ACLED events and projects of the study area and period, with the
    covariates measured at each, and each outcome's events.

    Parameters
    ----------
    settings
        The study's options.
    say
        Called with one line per step.

    Returns
    -------
    StudyData

    Raises
    ------
    EventDataError, SettingsError
        As :func:`reanalyze_sauter`.
    """
    events, boundary, keep_regions, dropped, notes, disagree = _outcome_events(settings, say)
    projects, project_drops = _all_projects(settings, boundary, keep_regions, say)
    layers = _layers(settings)
    projects, pool, covariates, covariate_notes, covariate_drops = _with_covariates(
        projects, events, layers, settings)
    say("Covariates: " + ", ".join(covariates))
    return StudyData(events=events, boundary=boundary, keep_regions=keep_regions,
                     projects=projects, pool=pool,
                     selections=_outcome_selections(settings.outcomes, pool),
                     covariates=covariates, covariate_notes=covariate_notes, layers=layers,
                     dropped=dropped + project_drops + covariate_drops, notes=notes,
                     disagree=disagree)


def _outcome_events(settings: SauterSettings, say):
    """The ACLED events of the study period and regions, with what was dropped and why.

    Returns (events, boundary, keep_regions, dropped, notes, disagree): ``disagree`` counts
    kept events whose ACLED admin1 differs from the polygon holding them.
    """
    start, end = settings.start, settings.end
    events = read_acled(settings.acled, start=start, end=end)
    say(f"ACLED: {counted(events.attrs['rows_read'], 'row')} ({events.attrs['layout']} "
        f"layout) -> {counted(events.attrs['events_read'], 'event')}; {len(events):,} in "
        f"{start}..{end}")
    dropped: list[dict] = list(events.attrs["dropped"])
    boundary = load_regions(settings.boundaries, merge_menaka=settings.merge_menaka)
    keep_regions = resolve_regions(settings.regions, boundary)
    notes: list[str] = []
    if ("Menaka" in [normalise_region_name(r) for r in settings.regions]
            and "Menaka" not in keep_regions):
        notes.append("The boundary file has no Ménaka region (it predates the 2016 split, or "
                     "merge_menaka is set): Ménaka's events and projects are counted under "
                     "Gao.")
    events, area_drops = filter_to_regions(events, boundary, keep_regions,
                                           snap_km=settings.snap_km, step="ACLED")
    dropped += area_drops
    acled_region = np.array([normalise_region_name(a) if isinstance(a, str) else "" for a in
                             events["admin1"]], dtype=object)
    if "Menaka" not in set(boundary["region"]):
        acled_region[acled_region == "Menaka"] = "Gao"
    disagree = int((acled_region != events["region"].to_numpy(dtype=object)).sum())
    return events, boundary, keep_regions, dropped, notes, disagree


def _all_projects(settings: SauterSettings, boundary, keep_regions, say):
    """QIPs and aid projects from their files, simulating the kinds without one.

    Returns (projects, dropped).
    """
    parts, dropped = _project_files(settings, boundary, keep_regions, say)
    if settings.simulated_kinds:
        parts.append(_simulated_projects(settings, boundary, keep_regions, say))
    projects = pd.concat(parts, ignore_index=True)
    for kind in ("qip", "aid"):
        if not (projects["kind"] == kind).any():
            raise SettingsError(f"no {'QIPs' if kind == 'qip' else 'aid projects'} left in the "
                                f"study area and period ({', '.join(keep_regions)}, "
                                f"{settings.start}..{settings.end})")
    return projects, dropped


def _project_files(settings: SauterSettings, boundary, keep_regions, say):
    """The projects of the kinds given as files, in the study area and period.

    Returns (one table per file, dropped).
    """
    dropped: list[dict] = []
    parts = []
    for kind, path, mapping in (("qip", settings.qips, settings.qip_columns),
                                ("aid", settings.aid, settings.aid_columns)):
        if path is None:
            continue
        frame = read_projects(path, kind=kind, columns=mapping, start=settings.start,
                              end=settings.end, keep=settings.covariate_columns)
        dropped += frame.attrs["dropped"]
        frame, drops = filter_to_regions(frame, boundary, keep_regions, snap_km=settings.snap_km,
                                         step="QIPs" if kind == "qip" else "aid projects")
        dropped += drops
        parts.append(frame)
        say(f"{kind.upper() if kind == 'qip' else 'Aid'} projects: "
            f"{counted(frame.attrs['rows_read'], 'row')} in {path} -> {len(frame):,} in the "
            "study area and period")
    return parts, dropped


def _simulated_projects(settings: SauterSettings, boundary, keep_regions, say) -> pd.DataFrame:
    """The projects of the kinds without a file, placed by simulation in the study area."""
    sim_kinds = settings.simulated_kinds
    fake = simulate_project_placement(settings.seed, n_qips=settings.n_qips,
                                      n_aid=settings.n_aid, start=settings.start,
                                      end=settings.end, area=StudyArea(boundary, keep_regions),
                                      kinds=sim_kinds)
    fake, _ = filter_to_regions(fake, boundary, keep_regions, snap_km=0.0, step="simulated")
    say("SIMULATED PROJECTS: " + ", ".join(
        counted(int((fake["kind"] == k).sum()), "QIP" if k == "qip" else "aid project")
        for k in sim_kinds) + f" placed by simulation (seed {settings.seed}); no real file "
        "given")
    return fake


def _layers(settings: SauterSettings) -> dict[str, object]:
    """The distance-covariate layers by covariate name (the bases always)."""
    specs: dict[str, object] = {"dist_base_km": load_layer(settings.bases)}
    if settings.rivers:
        specs["dist_water_km"] = [load_layer(p, where=settings.rivers_where,
                                             kinds=("lines", "polygons"), what="rivers layer")
                                  for p in settings.rivers]
    if settings.roads:
        specs["dist_road_km"] = [load_layer(p, where=settings.roads_where, kinds=("lines",),
                                            what="roads layer") for p in settings.roads]
    for name, path in (settings.layers or {}).items():
        specs[name] = load_layer(path)
    return specs


def _with_covariates(projects, events, layer_specs, settings: SauterSettings):
    """Covariates measured at every project and event; projects without a value dropped.

    Returns (projects, outcome_pool, covariates, covariate_notes, dropped).
    """
    everything = pd.concat([
        projects.assign(role=projects["kind"].map(_ROLE_OF_KIND)),
        events.assign(role="dependent"),
    ], ignore_index=True)
    everything = add_covariates(everything, layers=layer_specs, rasters=settings.rasters,
                                columns=settings.covariate_columns)
    covariates = list(everything.attrs["covariates"])
    covariate_notes = dict(everything.attrs["covariate_notes"])
    dropped: list[dict] = []
    anchors = everything["role"].isin(["treatment", "control"]).to_numpy()
    no_value = anchors & everything[covariates].isna().any(axis=1).to_numpy()
    if no_value.any():
        for kind in ("qip", "aid"):
            mask = no_value & (everything["kind"] == kind).to_numpy()
            dropped.append({"step": "QIPs" if kind == "qip" else "aid projects",
                            "reason": "no covariate value (e.g. outside a raster)",
                            "events": int(mask.sum())})
        everything = everything[~no_value].reset_index(drop=True)
    projects = everything[everything["role"] != "dependent"].reset_index(drop=True)
    outcome_pool = everything[everything["role"] == "dependent"].reset_index(drop=True)
    return projects, outcome_pool, covariates, covariate_notes, dropped


def _outcome_selections(outcomes: Sequence[Outcome], pool: pd.DataFrame
                        ) -> dict[str, np.ndarray]:
    """Outcome name -> the mask of its events in ``pool``; an outcome without any is refused."""
    selections: dict[str, np.ndarray] = {}
    for outcome in outcomes:
        mask = outcome.select(pool)
        if not mask.any():
            raise SettingsError(f"outcome {outcome.name!r} ({outcome.rule()}) has no events in "
                                f"the study area and period; check its rule")
        selections[outcome.name] = mask
    return selections


# ---------------------------------------------------------------------------------------------
# analysis
# ---------------------------------------------------------------------------------------------


def _analyse_outcomes(settings: SauterSettings, study: StudyData,
                      say) -> dict[str, OutcomeResult]:
    """Per outcome: the wake cube, the matched wake analysis and the robust errors."""
    return {outcome.name: _analyse_outcome(outcome, settings, study, say)
            for outcome in settings.outcomes}


def _analyse_outcome(outcome: Outcome, settings: SauterSettings, study: StudyData,
                     say) -> OutcomeResult:
    """One outcome's wake cube, matched wake analysis and robust standard errors."""
    mask = study.selections[outcome.name]
    table = _event_table(study.projects, study.pool[mask], study.covariates,
                         source=f"Sauter (2022) reanalysis, outcome {outcome.name}")
    cube = count_wakes(table, settings.window_grid, settings.radius_grid,
                       convention=settings.convention, covariates=study.covariates, leads=True)
    result = matched_wake_analysis(cube, MWASettings(
        match_on=study.covariates, weighted=settings.weighted, tcm=settings.tcm,
        alpha=settings.alpha, spillover=settings.spillover))
    alpha = settings.alpha
    say(f"{outcome.label}: {counted(int(mask.sum()), 'event')}; "
        f"{len(result.significant())} of {counted(len(result.estimates), 'window')} with "
        f"p <= {alpha:g} (OLS)")
    robust = standard_error_table(cube, result.settings, ("classical", *ROBUST_ERRORS))
    say(f"{outcome.label}: of these, with robust errors " + ", ".join(
        f"{n} ({v})" for v, n in robust_survival(robust, alpha).items()) + " stay significant")
    return OutcomeResult(outcome=outcome, n_events=int(mask.sum()), robust=robust, cube=cube,
                         mwa=result)


def _fit_outcomes(results: dict[str, OutcomeResult], settings: SauterSettings, *,
                  progressbar: bool, say) -> None:
    """The Bayesian fit of each outcome (``item.bayes``) through the one fit path of the
    bayes package (the analysis's own settings), its predictive check when it models the
    wake counts (``item.check``) and, with ``settings.compare``, the second model's fit and
    the comparison of the two (``item.compared``, ``item.comparison``); a count-scale
    surface is also fitted to the pre-trend placebo (``item.lead``)."""
    from bayes_wake.bayes.matched_fit import check_counts, compare_models, lead_surface_text

    for item in results.values():
        item.bayes = _fit_outcome(item, settings.spec, progressbar, say)
        if settings.spec.cell_surface:
            item.lead = _fit_outcome(item, settings.spec, progressbar, say, period="lead")
            say(f"{item.outcome.label}: {lead_surface_text(item.lead, item.bayes)[0]}")
        item.check = check_counts(item.bayes)
        if item.check is not None:
            say(f"{item.outcome.label}: posterior predictive check: {item.check[1]}")
        if settings.compare is not None:
            item.compared = _fit_outcome(item, settings.compare, progressbar, say)
            item.comparison = compare_models(item.bayes, item.compared, item.mwa)
            say(f"{item.outcome.label}: model comparison ({item.bayes.spec.name} vs "
                f"{item.compared.spec.name}): {item.comparison[1]}")


def _fit_outcome(item: OutcomeResult, spec, progressbar: bool, say, period: str = "post"):
    """One outcome's fit of ``spec`` with its matched wake analysis's settings (to the
    effect, or to the pre-trend placebo with ``period="lead"``)."""
    from bayes_wake.bayes.matched_fit import fit_matched

    what = "" if period == "post" else " to the pre-trend placebo"
    say(f"{item.outcome.label}: fitting the Bayesian model ({spec.name}){what}")
    fit = fit_matched(item.cube, spec, item.mwa.settings, progressbar=progressbar, log=say,
                      period=period)
    say(f"{item.outcome.label}: {fit.diagnostics.summary()}")
    return fit


def _sauter_result(out: Path, settings: SauterSettings, study: StudyData,
                   results: dict[str, OutcomeResult]) -> SauterResult:
    """The run's result: the outcomes with the study's summary tables."""
    projects, pool, selections = study.projects, study.pool, study.selections
    summary = _summary(projects, pool, selections, settings.outcomes, study.keep_regions)
    balance = _balance(projects, pool, selections, settings.outcomes, study.covariates)
    for frame in (summary, balance):
        frame["projects"] = "SIMULATED" if settings.simulated_kinds else "from files"
    return SauterResult(out=out, outcomes=results, projects=projects, summary=summary,
                        dropped=pd.DataFrame(study.dropped, columns=["step", "reason", "events"]),
                        balance=balance, funding=_funding(projects),
                        simulated=settings.simulated, covariates=study.covariates,
                        notes=study.notes)


# ---------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------


def _provenance(settings: SauterSettings, study: StudyData, sauter: SauterResult,
                extra: dict | None) -> dict:
    """The provenance record: the settings as run, the inputs with their hashes, the warning
    when projects are simulated, and ``extra`` (what only the caller knows)."""
    spec = settings.spec
    record = provenance({
        "start": settings.start, "end": settings.end,
        "regions": list(study.keep_regions), "merge_menaka": settings.merge_menaka,
        "snap_km": settings.snap_km, "windows": [int(w) for w in settings.window_grid],
        "radii": [float(r) for r in settings.radius_grid],
        "outcomes": {o.name: {"label": o.label, "rule": o.rule(),
                              "description": o.description} for o in settings.outcomes},
        "covariates": study.covariate_notes, "convention": settings.convention,
        "weighted": settings.weighted, "tcm": settings.tcm, "alpha": settings.alpha,
        "seed": settings.seed, "event_map": settings.event_map,
        # only with a region, so that a run without one records what it recorded before
        **({"grid_region": settings.grid_region.to_dict()}
           if settings.grid_region is not None else {}),
        "projects": {kind: (f"SIMULATED (seed {settings.seed})" if sim else "from file")
                     for kind, sim in settings.simulated.items()},
        "rivers_where": settings.rivers_where, "roads_where": settings.roads_where,
        "spec": spec.model_dump(mode="json") if spec is not None else None,
        # only with --compare, so that a run without it records what it recorded before
        **({"compare": settings.compare.model_dump(mode="json")}
           if settings.compare is not None else {}),
    }, settings.input_files(), extra=extra)
    if settings.simulated_kinds:
        record["WARNING"] = simulated_text(sauter, settings.seed)
    record["acled_layout"] = study.events.attrs["layout"]
    return record


def _write_files(stage: Path, sauter: SauterResult, settings: SauterSettings,
                 study: StudyData) -> None:
    """Everything but the provenance and the report: the outcomes' folders, the tables and
    the figures."""
    placebo = sauter.any_simulated
    if placebo:
        (stage / "SIMULATED_PROJECTS.txt").write_text(
            simulated_text(sauter, settings.seed) + "\n")
    for name, item in sauter.outcomes.items():
        _write_outcome(stage / name, item, placebo, settings.grid_region)
    _write_tables(stage, sauter, settings.alpha)
    monthly = _events_per_month(study.projects, study.pool, study.selections,
                                settings.outcomes, settings.start, settings.end)
    write_table(monthly, stage / "events_per_month.csv")
    _write_figures(stage, settings, study, monthly)


def _write_outcome(folder: Path, item: OutcomeResult, placebo: bool, region=None) -> None:
    """One outcome's folder: R's tables, the cube, Figure 6, and the Bayesian fit's files
    with ``comparison.png`` (and ``ppc.csv``, ``ppc.png`` for a model of the wake counts;
    ``region``'s average in ``grid_summary.csv``) when it was fitted, and the comparison
    with the second model when there is one."""
    from bayes_wake.bayes.matched_fit import (
        write_beside,
        write_lead_surface,
        write_model_comparison,
    )

    folder.mkdir()
    write_mwa_tables(item.mwa, folder)
    save_cube(item.cube, folder / "cube.nc")
    _save(_ols_figure(item, placebo), folder / "effect_surface.png")
    label = item.outcome.label
    if item.bayes is not None:
        write_beside(item.bayes, item.mwa, folder, label=label, placebo=placebo,
                     check=item.check, region=region)
    if item.lead is not None:
        write_lead_surface(item.bayes, item.lead, item.mwa, folder, label=label,
                           placebo=placebo)
    if item.compared is not None:
        write_model_comparison(item.bayes, item.compared, item.mwa, folder,
                               comparison=item.comparison, label=label, placebo=placebo)


def _write_tables(stage: Path, sauter: SauterResult, alpha: float) -> None:
    """The projects used, the data summary, the drops, the balance (Table 2), the funding
    (Table 1) and every outcome's significant windows."""
    write_table(_project_table(sauter.projects, sauter.covariates), stage / "projects.csv",
                float_format=None)
    write_table(sauter.summary, stage / "data_summary.csv")
    write_table(sauter.dropped, stage / "dropped.csv")
    write_table(sauter.balance, stage / "covariate_balance.csv")
    if sauter.funding is not None:
        write_table(sauter.funding, stage / "qip_funding.csv")
    significant = _significant_all(sauter.outcomes, alpha)
    significant["projects"] = "SIMULATED" if sauter.any_simulated else "from files"
    write_table(significant, stage / "significant_windows.csv")


def _write_figures(stage: Path, settings: SauterSettings, study: StudyData,
                   monthly: pd.DataFrame) -> None:
    """Events per month (the paper's Figure 5) and the study map (its Figure 4)."""
    from bayes_wake.plotting import plot_events_per_month

    sim_kinds = settings.simulated_kinds
    _save(plot_events_per_month(monthly, sim_kinds), stage / "events_per_month.png")
    first = settings.outcomes[0]
    shown = study.pool[study.selections[first.name]] if settings.event_map else None
    _save(_study_map(study.boundary, study.keep_regions, study.layers["dist_base_km"],
                     study.projects, shown, first, study.layers.get("dist_water_km"),
                     sim_kinds), stage / "map.png")


# ---------------------------------------------------------------------------------------------
# the recovery battery's studies and the tables
# ---------------------------------------------------------------------------------------------


def battery_studies(data_dir: str | os.PathLike, placement: int,
                    outcomes: Sequence[str] = ("vac", "battles_nsag"),
                    design: str = "bases") -> dict[str, pd.DataFrame]:
    """Sauter-design event tables on the real ACLED outcomes with simulated placements.

    The studies of the recovery battery: ACLED Mali 2017-2020 in the six study regions,
    364 simulated QIPs near MINUSMA bases and 1,500 aid projects at settlements (placement
    seed ``placement``), distance to the nearest base (km) as covariate.

    Parameters
    ----------
    data_dir
        The shared data folder (``../shared/data``) with the ACLED export, the admin-1
        boundaries and the MINUSMA bases.
    placement
        Seed of the simulated project placement.
    outcomes
        Outcome names (:func:`bayes_wake.studies.sauter.acled.parse_outcome`); battles keys
        are shortened to ``battles``.
    design
        The placement design (:data:`bayes_wake.simulate.placements.DESIGNS`).

    Returns
    -------
    dict
        Event table per outcome, ready for :func:`bayes_wake.wakes.count_wakes`.
    """
    data_dir = Path(data_dir)
    events = read_acled(data_dir / "acled_mali_2017_2020" / "2017-01-01-2020-12-31-Mali.csv",
                        start="2017-01-01", end="2020-12-31")
    boundary = load_regions(data_dir / "ocha_cod_ab_mali_2015"
                            / "mli_adm1_with_menaka_derived.geojson")
    keep = resolve_regions(STUDY_REGIONS, boundary)
    events, _ = filter_to_regions(events, boundary, keep, snap_km=10.0, step="ACLED")
    projects = simulate_project_placement(placement, area=StudyArea(boundary, keep),
                                          design=design)
    projects, _ = filter_to_regions(projects, boundary, keep, snap_km=0.0, step="simulated")
    roles = projects["kind"].map({"qip": "treatment", "aid": "control"})
    everything = pd.concat([projects.assign(role=roles), events.assign(role="dependent")],
                           ignore_index=True)
    bases = data_dir / "geopko_minusma" / "minusma_bases_sauter2022_from_geopko.csv"
    everything = add_covariates(everything, layers={"dist_base_km": load_layer(bases)})
    anchors = everything[everything["role"] != "dependent"].reset_index(drop=True)
    pool = everything[everything["role"] == "dependent"].reset_index(drop=True)
    return {("battles" if name.startswith("battles") else name): _event_table(
        anchors, pool[parse_outcome(name).select(pool)], ["dist_base_km"],
        source=f"battery placement {placement} ({design})") for name in outcomes}


def _event_table(projects: pd.DataFrame, outcome_events: pd.DataFrame, covariates: list[str],
                 source: str) -> pd.DataFrame:
    """The event table of one outcome: projects first (QIPs, then aid), then outcome events.

    Projects come first so that an outcome event on a project's start day counts in neither
    period of its wake (the wake counter counts same-time events as pre events only when they
    come earlier in the table): the day of the start is ambiguous, a date has no time of day.
    """
    order = np.argsort(projects["role"].map({"treatment": 0, "control": 1}).to_numpy(),
                       kind="stable")
    anchors = projects.iloc[order]
    source_id = np.concatenate([anchors["project_id"].astype(str).to_numpy(),
                                outcome_events["event_id_cnty"].astype(str).to_numpy()])
    table = pd.DataFrame({
        "event_id": np.arange(1, len(anchors) + len(outcome_events) + 1, dtype=np.int64),
        "role": pd.array(np.concatenate([anchors["role"].to_numpy(dtype=object),
                                         np.full(len(outcome_events), "dependent", object)]),
                         dtype="str"),
        "time": pd.concat([anchors["time"], outcome_events["time"]], ignore_index=True),
        "lon": np.concatenate([anchors["lon"].to_numpy(float),
                               outcome_events["lon"].to_numpy(float)]),
        "lat": np.concatenate([anchors["lat"].to_numpy(float),
                               outcome_events["lat"].to_numpy(float)]),
    })
    for name in covariates:
        table[name] = np.concatenate([anchors[name].to_numpy(float),
                                      outcome_events[name].to_numpy(float)])
    table["source_id"] = pd.array(source_id, dtype="str")
    table["time"] = pd.to_datetime(table["time"], utc=True).dt.as_unit("ns")
    table.attrs["source"] = source
    table.attrs["covariates"] = list(covariates)
    return table


def _summary(projects, pool, selections, chosen, keep_regions) -> pd.DataFrame:
    rows = []
    regions = list(keep_regions)
    for region in regions + ["Total"]:
        row = {"region": region}
        in_region = (lambda f: np.ones(len(f), bool)) if region == "Total" else (
            lambda f, r=region: (f["region"] == r).to_numpy())
        row["QIPs"] = int(((projects["kind"] == "qip").to_numpy() & in_region(projects)).sum())
        row["Aid projects"] = int(((projects["kind"] == "aid").to_numpy()
                                   & in_region(projects)).sum())
        for outcome in chosen:
            row[outcome.label] = int((selections[outcome.name] & in_region(pool)).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def _events_per_month(projects, pool, selections, chosen, start, end) -> pd.DataFrame:
    """Events per calendar month and role (the paper's Figure 5): QIPs, aid projects and
    each outcome, every month of the study period (zeros included)."""
    months = pd.period_range(pd.Timestamp(start), pd.Timestamp(end), freq="M")

    def per_month(times) -> np.ndarray:
        stamps = pd.to_datetime(times, utc=True).dt.tz_localize(None).dt.to_period("M")
        return stamps.value_counts().reindex(months, fill_value=0).to_numpy()

    table = pd.DataFrame({"month": months.astype(str)})
    table["QIPs"] = per_month(projects.loc[projects["kind"] == "qip", "time"])
    table["Aid projects"] = per_month(projects.loc[projects["kind"] == "aid", "time"])
    for outcome in chosen:
        table[outcome.label] = per_month(pool.loc[selections[outcome.name], "time"])
    return table


def _balance(projects, pool, selections, chosen, covariates) -> pd.DataFrame:
    rows = []
    groups = [("Aid projects", projects[projects["kind"] == "aid"]),
              ("QIPs", projects[projects["kind"] == "qip"])]
    groups += [(o.label, pool[selections[o.name]]) for o in chosen]
    for label, frame in groups:
        row = {"Event type": label, "n": len(frame)}
        for name in covariates:
            values = frame[name].to_numpy(float)
            row[_COVARIATE_LABELS.get(name, name)] = (float(np.nanmean(values))
                                                      if np.isfinite(values).any() else np.nan)
        rows.append(row)
    table = pd.DataFrame(rows)
    # standardised difference of the means, QIPs minus aid (pooled sd), a balance measure
    qip, aid = groups[1][1], groups[0][1]
    row = {"Event type": "Std. difference (QIPs - aid)", "n": np.nan}
    for name in covariates:
        a, b = qip[name].to_numpy(float), aid[name].to_numpy(float)
        sd = np.sqrt((np.nanvar(a, ddof=1) + np.nanvar(b, ddof=1)) / 2) if len(a) > 1 and \
            len(b) > 1 else np.nan
        row[_COVARIATE_LABELS.get(name, name)] = ((np.nanmean(a) - np.nanmean(b)) / sd
                                                  if sd and np.isfinite(sd) else np.nan)
    table = pd.concat([table, pd.DataFrame([row])], ignore_index=True)
    table["n"] = table["n"].astype("Int64")
    return table


def _funding(projects: pd.DataFrame) -> pd.DataFrame | None:
    qips = projects[(projects["kind"] == "qip") & ~projects["simulated"].astype(bool)]
    if qips.empty or not qips["budget"].notna().any():
        return None
    # one budget per project, however many locations it has
    unique = qips.drop_duplicates(subset="project_id")
    kind = unique["activity_type"].fillna("(not given)")
    table = (unique.assign(activity_type=kind).groupby("activity_type", sort=False)
             .agg(projects=("project_id", "size"), funding=("budget", "sum"))
             .sort_values("funding").reset_index())
    table = table.rename(columns={"activity_type": "Activity type", "projects": "QIPs",
                                  "funding": "Funding"})
    total = pd.DataFrame([{"Activity type": "Total", "QIPs": int(table["QIPs"].sum()),
                           "Funding": float(table["Funding"].sum())}])
    return pd.concat([table, total], ignore_index=True)


def _project_table(projects: pd.DataFrame, covariates: list[str]) -> pd.DataFrame:
    columns = ["project_id", "kind", "role", "time", "lon", "lat", "region", "budget",
               "activity_type", "simulated", *covariates]
    out = projects[columns].copy()
    out["time"] = out["time"].dt.strftime("%Y-%m-%d")
    return out


def _significant_all(results: dict[str, OutcomeResult], alpha: float) -> pd.DataFrame:
    parts = []
    for name, item in results.items():
        table = _windows_table(item, alpha, bayes_columns=True, raw=True)
        table.insert(0, "outcome", name)
        parts.append(table)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


# ---------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------


def _save(fig, path: Path) -> Path:
    from bayes_wake.plotting import save_figure

    return save_figure(fig, path)


def _study_map(boundary, keep_regions, bases, projects, points, outcome, water, sim_kinds):
    """The paper's Figure 4 of Mali, its MINUSMA bases and ``outcome``'s events (``points``;
    None leaves them out); see :func:`bayes_wake.plotting.plot_study_map`."""
    from bayes_wake.plotting import MapStyle, plot_study_map

    return plot_study_map(boundary, keep_regions, bases, projects, points, rivers=water,
                          simulated=sim_kinds,
                          style=MapStyle(place="Mali", points_label=outcome.label,
                                         bases_label="MINUSMA bases"))
