"""The Sauter (2022) reanalysis: real ACLED outcomes, projects, study area, covariates, report.

:func:`reanalyze_sauter` runs the whole study with one call: it reads the ACLED export (either
layout), keeps the study period and the study regions, reads the QIP and aid-project files or,
for a user without them, simulates their placement (and says so everywhere), measures the
covariates, and then, for each outcome, counts the wakes on the paper's grid, runs the matched
wake analysis as R's ``mwa`` does and fits the Bayesian wake model. Everything goes into one
self-contained HTML report beside the CSV and netCDF artefacts, written through a staging
folder so that a failed run leaves nothing half-written.

``bayes-wake sauter`` and ``scripts/reanalyze_sauter.py`` are thin layers over this function.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayes_wake.core.windows import expand_windows
from bayes_wake.errors import SettingsError
from bayes_wake.io.acled import Outcome, parse_outcome, read_acled
from bayes_wake.io.artefacts import (
    check_output_folder,
    provenance,
    staged_directory,
    write_json,
    write_mwa_tables,
    write_table,
)
from bayes_wake.io.covariates import add_covariates, load_layer
from bayes_wake.io.projects import read_projects, simulate_project_placement
from bayes_wake.io.study_area import (
    STUDY_REGIONS,
    filter_to_regions,
    load_regions,
    normalise_region_name,
    resolve_regions,
)
from bayes_wake.io.tables import counted
from bayes_wake.mwa.analysis import (
    ROBUST_ERRORS,
    MWAResult,
    MWASettings,
    matched_wake_analysis,
    pretrend_warning,
    spillover_warning,
    standard_error_table,
)
from bayes_wake.mwa.multiplicity import benjamini_hochberg
from bayes_wake.mwa.multiplicity import holm as holm_adjusted
from bayes_wake.options import (
    DEFAULT_SPEC,
    PAPER_RADII,
    PAPER_WINDOWS,
    Convention,
    check_choice,
)
from bayes_wake.wakes import count_wakes, save_cube

__all__ = [
    "DEFAULT_OUTCOMES",
    "DEFAULT_RADII",
    "DEFAULT_WINDOWS",
    "OutcomeResult",
    "SauterResult",
    "battery_studies",
    "reanalyze_sauter",
]

#: The paper's grid as (min, max, step): t = 10..60 days by 10, s = 3..15 km by 3 (30 cells).
DEFAULT_WINDOWS, DEFAULT_RADII = PAPER_WINDOWS, PAPER_RADII
#: The paper's three outcomes, main one first.
DEFAULT_OUTCOMES: tuple[str, ...] = ("vac", "battles_nsag", "nsag")

_ROLE_OF_KIND = {"qip": "treatment", "aid": "control"}
_COVARIATE_LABELS = {
    "dist_water_km": "Water dist. [km]",
    "dist_road_km": "Road dist. [km]",
    "dist_base_km": "UN base dist. [km]",
    "pop_density": "Pop. dens.",
    "night_lights": "Nightlights",
}
# The paper's Table 2 (conditional means; distances in km), for the report's comparison.
_PAPER_TABLE_2 = pd.DataFrame(
    [["Aid projects", 28, 12, 95, 3.66, 67.29], ["QIPs", 19, 10, 59, 3.53, 70.89],
     ["Violence a. civs.", 12, 8, 99, 3.34, 68.72], ["Battles", 13, 11, 93, 2.92, 69.61]],
    columns=["Event type", "Water dist.", "Road dist.", "UN base dist.", "Pop. dens.",
             "Nightlights"])


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
        Per window, the p-values of the robust standard errors
        :data:`bayes_wake.mwa.analysis.ROBUST_ERRORS`
        (:func:`bayes_wake.mwa.analysis.standard_error_table`).
    """

    outcome: Outcome
    n_events: int
    cube: xr.Dataset
    mwa: MWAResult
    bayes: object | None = None
    robust: pd.DataFrame | None = None




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


def reanalyze_sauter(
    acled: str | os.PathLike,
    boundaries: str | os.PathLike,
    bases: str | os.PathLike,
    out: str | os.PathLike,
    *,
    qips: str | os.PathLike | None = None,
    aid: str | os.PathLike | None = None,
    qip_columns: Mapping[str, str] | None = None,
    aid_columns: Mapping[str, str] | None = None,
    rivers: Sequence[str | os.PathLike] = (),
    rivers_where: str | None = None,
    roads: Sequence[str | os.PathLike] = (),
    roads_where: str | None = None,
    layers: Mapping[str, str | os.PathLike] | None = None,
    rasters: Mapping[str, str | os.PathLike] | None = None,
    covariate_columns: Sequence[str] = (),
    outcomes: Sequence[str | Outcome] = DEFAULT_OUTCOMES,
    windows: Sequence[float] = DEFAULT_WINDOWS,
    radii: Sequence[float] = DEFAULT_RADII,
    regions: Sequence[str] = STUDY_REGIONS,
    merge_menaka: bool = False,
    snap_km: float = 10.0,
    start: str = "2017-01-01",
    end: str = "2020-12-31",
    seed: int = 0,
    n_qips: int = 364,
    n_aid: int = 1500,
    convention: str = "mwa",
    weighted: bool = True,
    tcm: bool = True,
    alpha: float = 0.05,
    spillover: bool = False,
    spec: object = DEFAULT_SPEC,
    bayes: bool = True,
    event_map: bool = True,
    progressbar: bool = False,
    log: Callable[[str], None] | None = None,
) -> SauterResult:
    """Run the Sauter (2022) reanalysis and write its report.

    Parameters
    ----------
    acled
        ACLED export (monadic or dyadic; :func:`bayes_wake.io.acled.read_acled`).
    boundaries
        Admin-1 polygons (:func:`bayes_wake.io.study_area.load_regions`).
    bases
        MINUSMA bases: a CSV of points (``latitude``, ``longitude``) or a vector file; the
        covariate ``dist_base_km`` is the distance to the nearest, km.
    out
        Output folder (created; files of the same names are replaced only when the whole
        run succeeds).
    qips, aid
        Project files (:func:`bayes_wake.io.projects.read_projects`). A kind without a file is
        simulated (:func:`bayes_wake.io.projects.simulate_project_placement`, seeded by
        ``seed``), and every output says so.
    qip_columns, aid_columns
        Column mappings for the project files (keys ``id``, ``start``, ``lon``, ``lat``,
        ``point``, ``budget``, ``activity_type``, ``title``).
    rivers, roads
        Vector layers whose features are pooled into the covariates ``dist_water_km`` and
        ``dist_road_km`` (km to the nearest feature); empty: no such covariate.
    rivers_where, roads_where
        Pandas queries selecting features of those layers (e.g. ``"level <= 3"``).
    layers
        More distance covariates: name -> vector file.
    rasters
        Raster covariates sampled at the events: name -> raster file (e.g.
        ``{"pop_density": "worldpop.tif"}``).
    covariate_columns
        Covariates taken as columns of both project files (not possible for simulated
        projects).
    outcomes
        Outcome names (:data:`bayes_wake.io.acled.OUTCOMES`), override strings for
        :func:`bayes_wake.io.acled.parse_outcome`, or :class:`~bayes_wake.io.acled.Outcome` objects.
    windows, radii
        The grid as ``(min, max, step)``: temporal windows in days, radii in km.
    regions
        Study regions (any spelling; ``Menaka`` is Gao's when the boundaries predate 2016).
    merge_menaka
        Treat Ménaka as part of Gao even if the boundary file has it.
    snap_km
        Points this close (km) outside every region get the nearest region.
    start, end
        The study period (inclusive dates).
    seed
        Seed of the simulated project placement.
    n_qips, n_aid
        Numbers of simulated projects.
    convention
        Wake counting: ``mwa`` (R's, as the paper) or ``exact``.
    weighted, tcm, alpha
        Matched wake analysis settings (the paper: weighted, matched on earlier overlaps).
    spillover
        Direct and spillover effects (:class:`~bayes_wake.mwa.analysis.MWASettings`): the
        OLS tables and the Bayesian surfaces are the direct effect of one QIP.
    spec
        Model spec for the Bayesian fit: a :class:`~bayes_wake.bayes.spec.ModelSpec`, a shipped
        name or a YAML path.
    bayes
        Fit the Bayesian model (minutes); False runs only the matched wake analysis.
    event_map
        Draw the outcome events (ACLED locations) on the report's map; False leaves them
        out, for a report to share beyond ACLED's terms of use.
    progressbar
        Show the sampler's progress bar.
    log
        Called with one line per step (e.g. ``print``).

    Returns
    -------
    SauterResult

    Raises
    ------
    EventDataError
        Bad input files (naming file, rows and column).
    SettingsError
        Bad settings (grid, outcomes, regions, covariates).
    OutputFolderError
        ``out`` cannot be written, or is a non-empty folder that bayes_wake did not write
        (checked before any work).
    """
    from bayes_wake.bayes.spec import ModelSpec, load_spec
    from bayes_wake.plotting import plot_events_per_month

    started = time.perf_counter()
    say = log or (lambda _line: None)
    inputs = _input_record(acled, boundaries, bases, qips, aid, rivers, roads,
                           {**(layers or {}), **(rasters or {})})
    check_output_folder(out, inputs=[path for path in inputs.values() if path])
    window_grid = expand_windows(*windows, name="windows", temporal=True)
    radius_grid = expand_windows(*radii, name="radii")
    chosen = [o if isinstance(o, Outcome) else parse_outcome(o) for o in outcomes]
    if not chosen:
        raise SettingsError("no outcomes to analyse")
    if len({o.name for o in chosen}) != len(chosen):
        raise SettingsError(f"an outcome is named twice: {[o.name for o in chosen]}")
    check_choice("convention", convention, Convention)
    model_spec = None
    if bayes:
        model_spec = spec if isinstance(spec, ModelSpec) else load_spec(spec)
    simulated = {"qip": qips is None, "aid": aid is None}
    if covariate_columns and any(simulated.values()):
        kinds = " and ".join(k for k, v in simulated.items() if v)
        raise SettingsError(f"covariate columns {list(covariate_columns)} come from the project "
                            f"files, but the {kinds} projects are simulated; give both files "
                            "or use layers and rasters")

    events, boundary, keep_regions, dropped, notes, disagree = _outcome_events(
        acled, boundaries, regions, merge_menaka=merge_menaka, snap_km=snap_km, start=start,
        end=end, say=say)
    projects, project_drops = _all_projects(
        qips, aid, qip_columns, aid_columns, covariate_columns, boundary, keep_regions,
        snap_km=snap_km, start=start, end=end, seed=seed, n_qips=n_qips, n_aid=n_aid,
        say=say)
    dropped += project_drops
    sim_kinds = [k for k, v in simulated.items() if v]
    layer_specs = _layers(bases, rivers, rivers_where, roads, roads_where, layers)
    projects, outcome_pool, covariates, covariate_notes, covariate_drops = _with_covariates(
        projects, events, layer_specs, rasters, covariate_columns)
    dropped += covariate_drops
    say("Covariates: " + ", ".join(covariates))
    results, selections = _analyse_outcomes(
        chosen, projects, outcome_pool, covariates, window_grid, radius_grid,
        convention=convention, weighted=weighted, tcm=tcm, alpha=alpha, spillover=spillover,
        say=say)

    summary = _summary(projects, outcome_pool, selections, chosen, keep_regions)
    dropped_table = pd.DataFrame(dropped, columns=["step", "reason", "events"])
    balance = _balance(projects, outcome_pool, selections, chosen, covariates)
    funding = _funding(projects)
    sim_text = _simulated_text(simulated, seed, projects)
    for frame in (summary, balance):
        frame["projects"] = "SIMULATED" if sim_kinds else "from files"

    # -- write -------------------------------------------------------------------------------
    settings = {
        "command": "sauter", "start": start, "end": end, "regions": list(keep_regions),
        "merge_menaka": merge_menaka, "snap_km": snap_km,
        "windows": [int(w) for w in window_grid], "radii": [float(r) for r in radius_grid],
        "outcomes": {o.name: {"label": o.label, "rule": o.rule(),
                              "description": o.description} for o in chosen},
        "covariates": covariate_notes, "convention": convention, "weighted": weighted,
        "tcm": tcm, "alpha": alpha, "seed": seed, "event_map": event_map,
        "projects": {kind: (f"SIMULATED (seed {seed})" if sim else "from file")
                     for kind, sim in simulated.items()},
        "rivers_where": rivers_where, "roads_where": roads_where,
        "spec": model_spec.model_dump(mode="json") if model_spec is not None else None,
    }
    record = provenance(settings, inputs)
    if sim_kinds:
        record["WARNING"] = sim_text
    record["acled_layout"] = events.attrs["layout"]
    sauter = SauterResult(out=Path(out), outcomes=results, projects=projects, summary=summary,
                          dropped=dropped_table, balance=balance, funding=funding,
                          simulated=simulated, covariates=covariates, notes=notes)
    with staged_directory(out) as stage:
        if sim_kinds:
            (stage / "SIMULATED_PROJECTS.txt").write_text(sim_text + "\n")
        for name, item in results.items():
            _write_outcome(stage / name, item, model_spec, sim_kinds=sim_kinds,
                           progressbar=progressbar, say=say)
        write_table(_project_table(projects, covariates), stage / "projects.csv",
                    float_format=None)
        write_table(summary, stage / "data_summary.csv")
        write_table(dropped_table, stage / "dropped.csv")
        write_table(balance, stage / "covariate_balance.csv")
        if funding is not None:
            write_table(funding, stage / "qip_funding.csv")
        significant = _significant_all(results, alpha)
        significant["projects"] = "SIMULATED" if sim_kinds else "from files"
        write_table(significant, stage / "significant_windows.csv")
        monthly = _events_per_month(projects, outcome_pool, selections, chosen, start, end)
        write_table(monthly, stage / "events_per_month.csv")
        _save(plot_events_per_month(monthly, sim_kinds), stage / "events_per_month.png")
        shown = outcome_pool[selections[chosen[0].name]] if event_map else None
        _save(_study_map(boundary, keep_regions, layer_specs["dist_base_km"], projects, shown,
                         chosen[0],
                         layer_specs.get("dist_water_km"), sim_kinds), stage / "map.png")
        sauter.seconds = time.perf_counter() - started
        record["seconds"] = round(sauter.seconds, 1)
        write_json(record, stage / "provenance.json")
        _write_report(stage, sauter, events_meta=events.attrs,
                      keep_regions=keep_regions, disagree=disagree, sim_text=sim_text,
                      covariate_notes=covariate_notes, settings=settings, record=record,
                      alpha=alpha, spec=model_spec, inputs=inputs)
    sauter.seconds = time.perf_counter() - started
    say(f"Wrote {out}/report.html in {sauter.seconds:.1f} s")
    return sauter


# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------


def _outcome_events(acled, boundaries, regions, *, merge_menaka, snap_km, start, end, say):
    """The ACLED events of the study period and regions, with what was dropped and why.

    Returns (events, boundary, keep_regions, dropped, notes, disagree): ``disagree`` counts
    kept events whose ACLED admin1 differs from the polygon holding them.
    """
    events = read_acled(acled, start=start, end=end)
    say(f"ACLED: {counted(events.attrs['rows_read'], 'row')} ({events.attrs['layout']} "
        f"layout) -> {counted(events.attrs['events_read'], 'event')}; {len(events):,} in "
        f"{start}..{end}")
    dropped: list[dict] = list(events.attrs["dropped"])
    boundary = load_regions(boundaries, merge_menaka=merge_menaka)
    keep_regions = resolve_regions(regions, boundary)
    notes: list[str] = []
    if "Menaka" in [normalise_region_name(r) for r in regions] and "Menaka" not in keep_regions:
        notes.append("The boundary file has no Ménaka region (it predates the 2016 split, or "
                     "merge_menaka is set): Ménaka's events and projects are counted under "
                     "Gao.")
    events, area_drops = filter_to_regions(events, boundary, keep_regions, snap_km=snap_km,
                                           step="ACLED")
    dropped += area_drops
    acled_region = np.array([normalise_region_name(a) if isinstance(a, str) else "" for a in
                             events["admin1"]], dtype=object)
    if "Menaka" not in set(boundary["region"]):
        acled_region[acled_region == "Menaka"] = "Gao"
    disagree = int((acled_region != events["region"].to_numpy(dtype=object)).sum())
    return events, boundary, keep_regions, dropped, notes, disagree


def _all_projects(qips, aid, qip_columns, aid_columns, covariate_columns, boundary,
                  keep_regions, *, snap_km, start, end, seed, n_qips, n_aid, say):
    """QIPs and aid projects from their files, simulating the kinds without one.

    Returns (projects, dropped).
    """
    dropped: list[dict] = []
    parts = []
    for kind, path, mapping in (("qip", qips, qip_columns), ("aid", aid, aid_columns)):
        if path is None:
            continue
        frame = read_projects(path, kind=kind, columns=mapping, start=start, end=end,
                              keep=covariate_columns)
        dropped += frame.attrs["dropped"]
        frame, drops = filter_to_regions(frame, boundary, keep_regions, snap_km=snap_km,
                                         step="QIPs" if kind == "qip" else "aid projects")
        dropped += drops
        parts.append(frame)
        say(f"{kind.upper() if kind == 'qip' else 'Aid'} projects: "
            f"{counted(frame.attrs['rows_read'], 'row')} in {path} -> {len(frame):,} in the "
            "study area and period")
    sim_kinds = [kind for kind, path in (("qip", qips), ("aid", aid)) if path is None]
    if sim_kinds:
        fake = simulate_project_placement(seed, n_qips=n_qips, n_aid=n_aid, start=start,
                                          end=end, regions=boundary, keep_regions=keep_regions,
                                          kinds=sim_kinds)
        fake, _ = filter_to_regions(fake, boundary, keep_regions, snap_km=0.0, step="simulated")
        parts.append(fake)
        say("SIMULATED PROJECTS: " + ", ".join(
            counted(int((fake["kind"] == k).sum()), "QIP" if k == "qip" else "aid project")
            for k in sim_kinds) + f" placed by simulation (seed {seed}); no real file given")
    projects = pd.concat(parts, ignore_index=True)
    for kind in ("qip", "aid"):
        if not (projects["kind"] == kind).any():
            raise SettingsError(f"no {'QIPs' if kind == 'qip' else 'aid projects'} left in the "
                                f"study area and period ({', '.join(keep_regions)}, "
                                f"{start}..{end})")
    return projects, dropped


def _layers(bases, rivers, rivers_where, roads, roads_where, layers) -> dict[str, object]:
    """The distance-covariate layers by covariate name (the bases always)."""
    specs: dict[str, object] = {"dist_base_km": load_layer(bases)}
    if rivers:
        specs["dist_water_km"] = [load_layer(p, where=rivers_where, kinds=("lines", "polygons"),
                                             what="rivers layer") for p in rivers]
    if roads:
        specs["dist_road_km"] = [load_layer(p, where=roads_where, kinds=("lines",),
                                            what="roads layer") for p in roads]
    for name, path in (layers or {}).items():
        specs[name] = load_layer(path)
    return specs


def _with_covariates(projects, events, layer_specs, rasters, covariate_columns):
    """Covariates measured at every project and event; projects without a value dropped.

    Returns (projects, outcome_pool, covariates, covariate_notes, dropped).
    """
    everything = pd.concat([
        projects.assign(role=projects["kind"].map(_ROLE_OF_KIND)),
        events.assign(role="dependent"),
    ], ignore_index=True)
    everything = add_covariates(everything, layers=layer_specs, rasters=rasters,
                                columns=covariate_columns)
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


def _analyse_outcomes(chosen, projects, outcome_pool, covariates, window_grid, radius_grid,
                      *, convention, weighted, tcm, alpha, say, spillover=False):
    """Per outcome: its events, the wake cube, the matched wake analysis and the robust
    errors. Returns (results by outcome name, event selection by outcome name)."""
    results: dict[str, OutcomeResult] = {}
    selections: dict[str, np.ndarray] = {}
    for outcome in chosen:
        mask = outcome.select(outcome_pool)
        if not mask.any():
            raise SettingsError(f"outcome {outcome.name!r} ({outcome.rule()}) has no events in "
                                f"the study area and period; check its rule")
        selections[outcome.name] = mask
        table = _event_table(projects, outcome_pool[mask], covariates,
                             source=f"Sauter (2022) reanalysis, outcome {outcome.name}")
        cube = count_wakes(table, window_grid, radius_grid, convention=convention,
                           covariates=covariates, leads=True)
        result = matched_wake_analysis(cube, MWASettings(
            match_on=covariates, weighted=weighted, tcm=tcm, alpha=alpha, spillover=spillover))
        n_sig = len(result.significant())
        say(f"{outcome.label}: {counted(int(mask.sum()), 'event')}; {n_sig} of "
            f"{counted(len(result.estimates), 'window')} with p <= {alpha:g} (OLS)")
        robust = standard_error_table(cube, result.settings, ROBUST_ERRORS)
        survive = {v: int((robust[f"pvalue_{v}"] <= alpha).sum()) for v in ROBUST_ERRORS}
        say(f"{outcome.label}: with robust errors " + ", ".join(
            f"{n} ({v})" for v, n in survive.items()) + " windows")
        results[outcome.name] = OutcomeResult(outcome=outcome, n_events=int(mask.sum()),
                                              robust=robust, cube=cube, mwa=result)
    return results, selections


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
        Outcome names (:func:`bayes_wake.io.acled.parse_outcome`); battles keys are shortened
        to ``battles``.
    design
        The placement design (:data:`bayes_wake.io.projects.DESIGNS`).

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
    projects = simulate_project_placement(placement, regions=boundary, keep_regions=keep,
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


def _role_labels(chosen: Sequence[Outcome]) -> list[tuple[str, str]]:
    return [("qip", "QIPs"), ("aid", "Aid projects")] + [(o.name, o.label) for o in chosen]


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


def _windows_table(item: OutcomeResult, alpha: float, *, bayes_columns: bool,
                   raw: bool = False) -> pd.DataFrame:
    """The paper's Table 3/4 layout (significant windows only), Bayesian columns beside."""
    significant = item.mwa.significant(alpha)
    keep = ["t_window", "spat_window", "estimate", "pvalue", "adj.r.squared"]
    table = significant[[c for c in keep if c in significant.columns]].copy()
    # the columns do not depend on whether any window is significant (an empty table has
    # the same header as a full one)
    if item.robust is not None:
        robust = item.robust.set_index(["t_window", "spat_window"])
        index = list(zip(table["t_window"], table["spat_window"], strict=True))
        for v in ROBUST_ERRORS:
            table[f"pvalue_{v}"] = robust[f"pvalue_{v}"].reindex(index).to_numpy()
    if bayes_columns and item.bayes is not None:
        surface = item.bayes.surface
        cells = [surface.sel(window=int(t), radius=float(s)) for t, s in
                 zip(table["t_window"], table["spat_window"], strict=True)]
        table["posterior_mean"] = [float(c["mean"]) for c in cells]
        table["ci_lower"] = [float(c["ci_lower"]) for c in cells]
        table["ci_upper"] = [float(c["ci_upper"]) for c in cells]
        table["prob_positive"] = [float(c["prob_positive"]) for c in cells]
    if raw:
        return table.reset_index(drop=True)
    names = {"t_window": "Time [days]", "spat_window": "Space [km]", "estimate": "Effect size",
             "pvalue": "p-value (classical)", **{f"pvalue_{v}": f"p ({v})" for v in
                                                 ROBUST_ERRORS},
             "adj.r.squared": "Adj. R2", "posterior_mean":
             "Posterior mean", "prob_positive": "P(effect > 0)"}
    if "ci_lower" in table:
        ci = round(100 * item.bayes.surface.attrs["ci_prob"])
        table[f"{ci}% interval"] = [f"[{lo:.2f}, {hi:.2f}]" for lo, hi in
                                    zip(table.pop("ci_lower"), table.pop("ci_upper"),
                                        strict=True)]
        table = table[[c for c in table.columns if c != "prob_positive"] + ["prob_positive"]]
    return table.rename(columns=names).reset_index(drop=True)


def _simulated_text(simulated: dict[str, bool], seed: int, projects: pd.DataFrame) -> str:
    kinds = [k for k, v in simulated.items() if v]
    if not kinds:
        return ""
    counts = " and ".join(
        counted(int((projects["kind"] == k).sum()), "QIP" if k == "qip" else "aid project")
        for k in kinds)
    what = " and ".join("QIP file" if k == "qip" else "aid-project file" for k in kinds)
    return (f"PROJECTS ARE SIMULATED: no {what} was given, so the {counts} are a documented "
            f"simulated placement (seed {seed}; QIPs at the MINUSMA base towns and camps, aid "
            "projects following the towns' population, as in bayes_wake.simulate). The "
            "outcome events are real ACLED data, but every effect below compares the wakes "
            "of simulated projects: it is a placebo that shows the workflow and the noise "
            "level, not a finding about QIPs.")


# ---------------------------------------------------------------------------------------------
# Bayesian fit
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------


def _save(fig, path: Path) -> Path:
    from bayes_wake.plotting import save_figure

    return save_figure(fig, path)


def _ols_figure(item: OutcomeResult, sim_kinds: list[str]):
    fig, _ = item.mwa.plot(title=f"{item.outcome.label}: OLS effect per window",
                           warning="SIMULATED PROJECTS: a placebo, not a finding"
                           if sim_kinds else None)
    return fig


def _study_map(boundary, keep_regions, bases, projects, points, outcome, water, sim_kinds):
    """The paper's Figure 4 of Mali, its MINUSMA bases and ``outcome``'s events (``points``;
    None leaves them out); see :func:`bayes_wake.plotting.plot_study_map`."""
    from bayes_wake.plotting import plot_study_map

    return plot_study_map(boundary, keep_regions, bases, projects, points,
                          points_label=outcome.label, rivers=water, simulated=sim_kinds,
                          place="Mali", bases_label="MINUSMA bases")


# ---------------------------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------------------------


def _input_record(acled, boundaries, bases, qips, aid, rivers, roads, named: dict) -> dict:
    """Every input file by role, for the provenance and the report."""
    inputs = {"acled": str(acled), "boundaries": str(boundaries), "bases": str(bases),
              "qips": str(qips) if qips else None, "aid": str(aid) if aid else None}
    inputs.update({f"rivers_{i}": str(path) for i, path in enumerate(rivers, 1)})
    inputs.update({f"roads_{i}": str(path) for i, path in enumerate(roads, 1)})
    inputs.update({name: str(path) for name, path in named.items()})
    return inputs


def _write_outcome(folder: Path, item: OutcomeResult, model_spec, *, sim_kinds: list[str],
                   progressbar: bool, say) -> None:
    """One outcome's folder: R's tables, the cube, Figure 6, and the Bayesian fit (which is
    run here, so ``item.bayes`` is set when the spec is given)."""
    folder.mkdir()
    write_mwa_tables(item.mwa, folder)
    save_cube(item.cube, folder / "cube.nc")
    _save(_ols_figure(item, sim_kinds), folder / "effect_surface.png")
    if model_spec is not None:
        from bayes_wake.bayes.matched_fit import fit_matched, write_beside

        say(f"{item.outcome.label}: fitting the Bayesian model ({model_spec.name})")
        item.bayes = fit_matched(item.cube, model_spec, item.mwa.settings,
                                 progressbar=progressbar, log=say)
        say(f"{item.outcome.label}: {item.bayes.diagnostics.summary()}")
        write_beside(item.bayes, item.mwa, folder, label=item.outcome.label,
                     placebo=bool(sim_kinds))


def _write_report(stage: Path, sauter: SauterResult, *, events_meta: dict, keep_regions,
                  disagree: int, sim_text: str, covariate_notes: dict, settings: dict,
                  record: dict, alpha: float, spec, inputs: dict) -> None:
    """The HTML report: the paper's tables and figures per outcome, with the Bayesian surface,
    the diagnostics, the caveats and the provenance, one section after another."""
    from bayes_wake.io.html import HtmlReport

    report = HtmlReport("Sauter (2022) reanalysis: MINUSMA Quick Impact Projects and violence "
                        "in Mali, " + f"{settings['start'][:4]}-{settings['end'][:4]}")
    if sim_text:
        report.paragraph(sim_text, kind="warning")
    _summary_section(report, sauter, settings, alpha)
    _data_section(report, stage, sauter, settings, events_meta=events_meta, inputs=inputs,
                  keep_regions=keep_regions, disagree=disagree)
    _balance_section(report, sauter, covariate_notes)
    _outcome_sections(report, stage, sauter, alpha)
    _diagnostics_section(report, sauter)
    _method_section(report, settings, spec, alpha)
    _files_section(report, sauter, record, settings)
    report.write(stage / "report.html")


def _summary_section(report, sauter: SauterResult, settings: dict, alpha: float) -> None:
    """Per outcome: significant OLS windows and Bayesian cells (and the grid's average
    effect); the grid and the matching."""
    from bayes_wake.bayes.matched_fit import grid_average_text

    n_cells = len(settings["windows"]) * len(settings["radii"])
    verdict = []
    for item in sauter.outcomes.values():
        k = len(item.mwa.significant(alpha))
        line = (f"{item.outcome.label} ({counted(item.n_events, 'event')}): {k} of "
                f"{counted(n_cells, 'window')} with p <= {alpha:g} in the matched wake "
                "analysis")
        if item.bayes is not None:
            s = item.bayes.surface
            ci = round(100 * s.attrs["ci_prob"])
            pos = int(((s["ci_lower"] > 0)).sum())
            neg = int(((s["ci_upper"] < 0)).sum())
            line += (f"; Bayesian: {counted(pos, 'cell')} with the {ci}% interval above 0, "
                     f"{neg} below 0; {grid_average_text(item.bayes)}"
                     + ("" if item.bayes.diagnostics.converged else " (NOT CONVERGED)"))
        verdict.append(line + ".")
    report.heading("Summary")
    report.bullets(verdict)
    report.paragraph(
        f"Grid: t = {_span(settings['windows'])} days, s = {_span(settings['radii'])} km "
        f"({counted(n_cells, 'cell')}). Matched on {', '.join(sauter.covariates)} and the "
        "pre-trend"
        + (", plus earlier overlapping projects (SO_pre, MO_pre)" if settings["tcm"] else "")
        + ("; weighted regression" if settings["weighted"] else "")
        + f"; wake counting convention '{settings['convention']}'.", kind="note")


def _data_section(report, stage: Path, sauter: SauterResult, settings: dict, *,
                  events_meta: dict, inputs: dict, keep_regions, disagree: int) -> None:
    """How ACLED was read, the period, regions, outcome rules, counts, drops, map, Figure 5."""
    report.heading("Data")
    acled_line = (f"ACLED: {counted(events_meta['rows_read'], 'row')} of {inputs['acled']} "
                  f"({events_meta['layout']} layout"
                  + (", rebuilt to one row per event" if events_meta["layout"] == "monadic"
                     else "") + f") = {counted(events_meta['events_read'], 'event')}.")
    lines = [acled_line,
             (f"Study period {settings['start']} to {settings['end']}; study regions "
              f"{', '.join(keep_regions)} from {inputs['boundaries']}."),
             (f"Events are placed in regions by the polygons; ACLED's own admin1 column "
              f"disagrees with the polygon for {counted(disagree, 'kept event')} (boundary "
              "vintages)."),
             "Projects: " + "; ".join(
                 f"{'QIPs' if k == 'qip' else 'aid projects'} "
                 + ("SIMULATED" if v else f"from {inputs['qips' if k == 'qip' else 'aid']}")
                 for k, v in sauter.simulated.items()) + "."]
    lines += sauter.notes
    for outcome_name, item in sauter.outcomes.items():
        lines.append(f"Outcome '{outcome_name}' ({item.outcome.label}): {item.outcome.rule()}. "
                     f"{item.outcome.description}")
    report.bullets(lines)
    report.table(sauter.summary.drop(columns="projects"),
                 caption="Events by role and region (study area and period)")
    report.table(sauter.dropped, caption="What was dropped, and why")
    report.figure(stage / "map.png", caption=(
        "Study area (grey: the study regions; black lines: admin-1 boundaries), MINUSMA bases, "
        "QIPs, aid projects" + (" and the first outcome's events" if settings["event_map"]
                                else "") + ", in the style of the paper's Figure 4."
        + (" Projects are SIMULATED." if sauter.any_simulated else "")))
    report.figure(stage / "events_per_month.png", caption=(
        "Events per month by role over the study period (the paper's Figure 5): projects "
        "starting, and the outcome events (events_per_month.csv)."
        + (" Projects are SIMULATED." if sauter.any_simulated else "")))
    if settings["event_map"]:
        report.paragraph(
            "This map shows ACLED event locations: the report holds ACLED-derived data and is "
            "for your own use under ACLED's terms of use. To share it, rerun with "
            "--no-event-map (the map then shows the projects and bases only; every other "
            "part of the report is counts and estimates).", kind="note")


def _balance_section(report, sauter: SauterResult, covariate_notes: dict) -> None:
    """The paper's Table 1 (QIP funding, with budgets) and Table 2 (covariate balance)."""
    report.heading("Projects (Table 1) and covariate balance (Table 2)")
    if sauter.funding is not None:
        report.table(sauter.funding, caption="QIP funding by activity type (the paper's "
                     "Table 1; the file's currency, US$ in the UN data)", digits=0)
    else:
        report.paragraph("Table 1 (QIP funding by activity type) needs a QIP file with budgets"
                         + (": the QIPs here are simulated." if sauter.simulated["qip"]
                            else "; this file has none."), kind="note")
    balance = sauter.balance.drop(columns="projects")
    is_diff = balance["Event type"].str.startswith("Std.").to_numpy()
    means = balance[~is_diff].copy()
    means["n"] = means["n"].astype("int64")
    report.table(means, digits=1, caption="Conditional means of the covariates by event type "
                 "(the paper's Table 2)")
    report.table(balance[is_diff].drop(columns="n"), digits=2, caption=(
        "Standardised difference of the means, QIPs minus aid projects, in pooled standard "
        "deviations (|d| > 0.25 is a common flag of imbalance before matching)"))
    report.table(_PAPER_TABLE_2, digits=2, caption="For comparison, the paper's Table 2 "
                 "(OpenStreetMap water and roads, other population and night-light sources)")
    report.bullets([f"{name}: {note}" for name, note in covariate_notes.items()])


def _outcome_sections(report, stage: Path, sauter: SauterResult, alpha: float) -> None:
    """Per outcome: Tables 3/4, multiplicity, robust errors, Figure 6 beside the posterior."""
    from bayes_wake.bayes.matched_fit import shrinkage_warning

    for item in sauter.outcomes.values():
        report.heading(f"Outcome: {item.outcome.label}")
        spillover = spillover_warning(item.mwa)
        if spillover and item.mwa.settings.spillover:
            report.paragraph(f"Direct effects (--spillover): {spillover}; the estimates below "
                             "hold that spillover apart (estimates.csv, spillover columns: "
                             "the effect per neighbouring treatment).", kind="note")
        elif spillover:
            report.paragraph(f"Spillover between treatments: {spillover}; rerun with "
                             "--spillover for the direct effect.", kind="warning")
        if item.mwa.pretrend is not None:
            text, warn = pretrend_warning(item.mwa.pretrend, alpha)
            report.paragraph(text[0].upper() + text[1:] + ".",
                             kind="warning" if warn else "note")
        significant = _windows_table(item, alpha, bayes_columns=True)
        k = len(significant)
        pvalues = item.mwa.estimates["pvalue"].to_numpy(dtype=float)
        finite = np.isfinite(pvalues)
        bh = int((benjamini_hochberg(pvalues) <= alpha).sum())
        holm = int((holm_adjusted(pvalues) <= alpha).sum())
        report.paragraph(
            f"{counted(item.n_events, 'outcome event')}. {k} of "
            f"{counted(int(finite.sum()), 'window')} reach p <= {alpha:g}; with "
            f"{counted(int(finite.sum()), 'independent test')} about "
            f"{alpha * finite.sum():.1f} would by chance, and these windows are nested, not "
            f"independent. After Benjamini-Hochberg {bh} remain, after Holm {holm}."
            + _robust_sentence(item, alpha))
        if k:
            report.table(significant, digits=3, caption=(
                f"Windows with p <= {alpha:g} (the paper's Table 3/4 layout), with the "
                "Bayesian posterior of the same cell beside them"))
        else:
            report.paragraph(f"No window reaches p <= {alpha:g}.", kind="note")
        folder = stage / item.outcome.name
        if item.bayes is not None:
            report.figure(folder / "comparison.png", caption=(
                "Left: OLS effect per window (the paper's Figure 6), hatched where p > "
                f"{alpha:g}. Right: the Bayesian posterior mean of the same effect (extra "
                "outcome events per treated wake), hatched where the interval includes 0."))
            surface = item.bayes.surface
            report.paragraph(
                f"Posterior mean effect from {float(surface['mean'].min()):.2f} to "
                f"{float(surface['mean'].max()):.2f} events per treated wake; P(effect > 0) "
                f"per cell from {float(surface['prob_positive'].min()):.2f} to "
                f"{float(surface['prob_positive'].max()):.2f}. " + _agreement_sentence(item, alpha),
                kind="note")
            pulled = shrinkage_warning(item.bayes)
            if pulled:
                report.paragraph("The Bayesian surface understates clear effects here: "
                                 + pulled, kind="warning")
        else:
            report.figure(_ols_figure(item, [k for k, v in sauter.simulated.items() if v]),
                          caption=(
                f"OLS effect per window (the paper's Figure 6), hatched where p > {alpha:g}. "
                "The Bayesian fit was skipped (--mwa-only)."))


def _diagnostics_section(report, sauter: SauterResult) -> None:
    """Matching, overlap (SUTVA) and the MCMC diagnostics."""
    report.heading("Diagnostics")
    rows = []
    for item in sauter.outcomes.values():
        matching = item.mwa.matching
        sutva = item.mwa.sutva
        row = {"outcome": item.outcome.label,
               "treated wakes (matched, min-max)":
                   f"{matching['treatment_post'].min()}-{matching['treatment_post'].max()}",
               "control wakes (matched, min-max)":
                   f"{matching['control_post'].min()}-{matching['control_post'].max()}",
               "L1 before (median)": float(matching["L1_pre"].median()),
               "L1 after (median)": float(matching["L1_post"].median()),
               "overlap SO (max)": float(sutva["SO"].max()),
               "overlap MO (max)": float(sutva["MO"].max())}
        rows.append(row)
    report.table(pd.DataFrame(rows), digits=3, caption=(
        "Matching and overlap: matched wakes per cell, multivariate imbalance L1 (0 = "
        "balanced) before and after matching, and the share of wakes with an earlier or later "
        "project of the same (SO) or other (MO) kind in the wake (SUTVA)"))
    fits = [(item.outcome.label, item.bayes) for item in sauter.outcomes.values()
            if item.bayes is not None]
    if fits:
        table = pd.DataFrame([{
            "outcome": label, "model": fit.spec.name,
            "chains x draws": f"{fit.spec.sampler.chains} x {fit.spec.sampler.draws}",
            "max R-hat": fit.diagnostics.max_r_hat,
            "min bulk ESS": round(fit.diagnostics.min_ess_bulk),
            "divergences": int(fit.diagnostics.divergences),
            "sampling [s]": f"{fit.diagnostics.sample_seconds:.1f}",
            "converged": "yes" if fit.diagnostics.converged else "NO"} for label, fit in fits])
        report.table(table, digits=3, caption="MCMC diagnostics of the Bayesian fits "
                     "(converged: R-hat <= 1.01, bulk ESS >= 400, no divergences)")
        if not all(fit.diagnostics.converged for _, fit in fits):
            report.paragraph("At least one Bayesian fit did NOT converge: do not use its "
                             "numbers; sample longer (--draws, --tune).", kind="warning")
    else:
        report.paragraph("The Bayesian fits were skipped (--mwa-only).", kind="note")


def _method_section(report, settings: dict, spec, alpha: float) -> None:
    """What the estimators assume, in the report's words."""
    report.heading("Method and caveats")
    n_cells = len(settings["windows"]) * len(settings["radii"])
    model_name = spec.name if spec is not None else "not run"
    report.bullets([
        ("Matched wake analysis (Schutte and Donnay 2014) as R's mwa computes it: outcome "
         "events are counted within s km and t days before and after each project's start; "
         "treated (QIP) and control (aid) wakes are matched by coarsened exact matching on the "
         "covariates and the pre-trend; per window, the OLS coefficient of treatment in "
         "post ~ pre + treatment is the difference-in-differences effect (the paper's eq. 1)."),
        (f"The Bayesian model ({model_name}): "
         + (" ".join(spec.description.split()) if spec is not None else "not run.")),
        (f"The {n_cells} windows are nested (a 9 km wake holds the 3 km wake's events), so "
         f"per-window significance is not {n_cells} pieces of evidence; and with {n_cells} "
         f"tests some will pass p <= {alpha:g} by chance."),
        ("Where projects are placed is not random (QIPs cluster at the bases): matching on "
         "the covariates and the pre-trend addresses only what is measured."),
        ("An outcome event on a project's start day counts in neither period (dates have no "
         "time of day). Wakes that run off the record's ends are dropped (R's behaviour)."),
        "See docs/method.md and docs/walkthrough_sauter.md in the bayes_wake repository.",
    ])


def _files_section(report, sauter: SauterResult, record: dict, settings: dict) -> None:
    """The files written, the inputs with their hashes, ACLED's terms."""
    report.heading("Files and provenance")
    files = ["report.html (this file)", "provenance.json (settings, input hashes, versions)",
             "data_summary.csv, dropped.csv, covariate_balance.csv, significant_windows.csv",
             "projects.csv (the projects used, with covariates; no ACLED rows are written)",
             "map.png, events_per_month.csv, events_per_month.png"]
    if sauter.funding is not None:
        files.append("qip_funding.csv")
    if sauter.any_simulated:
        files.append("SIMULATED_PROJECTS.txt")
    for name in sauter.outcomes:
        files.append(f"{name}/: estimates.csv, matching.csv, SUTVA.csv, wakes.csv (R's tables), "
                     "cube.nc, effect_surface.png"
                     + (", effect_surface.csv, posterior.nc, comparison.png"
                        if sauter.outcomes[name].bayes is not None else ""))
    report.bullets(files)
    report.bullets([f"{role}: {info['path']}" + (f" (sha256 {info['sha256'][:16]}...)"
                                                 if "sha256" in info else "")
                    for role, info in record["inputs"].items()])
    report.paragraph("ACLED data: Armed Conflict Location & Event Data Project "
                     "(acleddata.com); cite ACLED and follow its terms of use. This report "
                     "holds no ACLED rows"
                     + (", but its map shows ACLED event locations (--no-event-map leaves "
                        "them out)." if settings["event_map"] else "; it shows counts, "
                        "estimates and project locations only."), kind="note")


def _robust_sentence(item: OutcomeResult, alpha: float) -> str:
    """How many windows keep p <= alpha under each robust standard error."""
    if item.robust is None:
        return ""
    counts = ", ".join(f"{int((item.robust[f'pvalue_{v}'] <= alpha).sum())} with {v}"
                       for v in ROBUST_ERRORS)
    return (f" Classical (R's lm) p-values assume independent, equally noisy wakes and "
            f"overstate the evidence on clustered counts; with robust standard errors: "
            f"{counts}.")


def _agreement_sentence(item: OutcomeResult, alpha: float) -> str:
    """Where the OLS table and the posterior disagree: cells whose OLS estimate lies outside
    the posterior interval, and cells of opposite sign where either is clear (OLS p <=
    ``alpha``, or the interval excludes 0)."""
    surface = item.bayes.surface
    dims = surface["mean"].dims
    ols = item.mwa.surface["estimate"].transpose(*dims)
    clear_ols = item.mwa.surface["pvalue"].transpose(*dims) <= alpha
    clear_bayes = (surface["ci_lower"] > 0) | (surface["ci_upper"] < 0)
    both = np.isfinite(ols) & np.isfinite(surface["mean"])
    outside = int((both & ((ols < surface["ci_lower"]) | (ols > surface["ci_upper"]))).sum())
    opposite = int((both & (np.sign(ols) * np.sign(surface["mean"]) < 0)
                    & (clear_ols | clear_bayes)).sum())
    ci = round(100 * surface.attrs["ci_prob"])
    text = (f"The OLS estimate lies outside the posterior's {ci}% interval in {outside} of "
            f"{counted(int(both.sum()), 'cell')}; the two have opposite signs, one of them "
            "clearly "
            f"(p <= {alpha:g} or the interval excluding 0), in {opposite}.")
    if outside or opposite:
        text += (" The posterior pools neighbouring cells and counts every event once, so "
                 "where the OLS table is noisy it is pulled toward its neighbours; read "
                 "single cells of either with care.")
    return text


def _span(values: Sequence[float]) -> str:
    values = list(values)
    if len(values) == 1:
        return f"{values[0]:g}"
    step = values[1] - values[0]
    return f"{values[0]:g}..{values[-1]:g} by {step:g}"

