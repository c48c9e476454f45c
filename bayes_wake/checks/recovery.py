"""Recovery batteries: plant known effects into a study's real outcome events, refit, score.

Which estimator to believe on *your* data is an empirical question: real outcome data are
sparse and bursty (most wakes see no event, a few see most), and a method that works on a
homogeneous simulator can fail there. A battery keeps the real outcome events, plants an
effect of known form and size (or none), refits every method on each replicate and reports
bias, RMSE, interval coverage and width, per-cell power and the false-positive rate.

Forms of planted effect (:class:`Scenario`):

``additive``
    each treatment spawns Poisson(``size``) extra outcome events;
``proportional``
    each treatment spawns Poisson(``size`` x its local baseline), the baseline being the
    real outcome events within the profile's largest radius in the profile's longest delay
    before it;
``controls``
    each *control* spawns Poisson(``size``) events (the true effect is negative);
``thinning``
    each real outcome event inside a treatment's profile is removed with probability
    ``size`` (negative, proportional to the real local activity);
``null``
    nothing planted (with ``placebo`` sites: the placements are re-drawn).

Delays are uniform on ``delay`` (days after the anchor), distances uniform on ``distance``
(km), bearings uniform.

The truth of a cell is what the scenario does to the OLS table's coefficient on the matched
sample (:func:`matched_truth`): the table's regression on the real counts plus the scenario's
*expected* change (:func:`expected_change`: its events counted into every wake they fall
into, averaged over its random draws), minus the same regression on the real counts. With
the difference formula that is the CEM-weighted mean change in (post - pre) of the matched
treated wakes minus that of the matched controls; with the lagged formula (the paper's) the
pre-period part enters through the regression's slope on the pre count. Planted or removed
events also fall into control wakes and into the *pre*-periods of later projects nearby
(projects cluster around bases and towns); the table's estimate sees those, so the truth must
too. Measured on the battery: thinning 50% of the real events near simulated QIPs removes up
to 0.18 events per treated wake directly, but changes the matched difference in differences
by at most 0.07, because most removed events also sat in another wake. The truth is an
expectation, so the planted events' own Poisson noise is error (as in a confidence
interval), not part of the truth. Beside it, ``truth_direct``
(:func:`direct_truth`) is the weighted mean over the matched treated wakes of the effect on
their own post-period alone (the expected planted events, or the realised removals), and
``truth_all`` the same over all treated wakes.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from bayes_wake.errors import SettingsError
from bayes_wake.options import DEFAULT_SPEC
from bayes_wake.io.tables import counted
from bayes_wake.mwa.analysis import (
    MWASettings,
    matched_cells,
    matched_wake_analysis,
    regression_design,
)
from bayes_wake.simulate.effects import FORMS, Scenario, plant
from bayes_wake.wakes import count_wakes

if TYPE_CHECKING:
    from bayes_wake.bayes.spec import ModelSpec

__all__ = ["Scenario", "Battery", "plant", "expected_change", "matched_truth", "direct_truth",
           "placebo_placement", "posterior_cells", "recovery_tasks", "run_recovery",
           "score_recovery", "write_recovery", "RecoverySettings", "FORMS", "load_battery",
           "baseline_task", "recovery_scoring_note", "check_scenario_names"]

#: Version of a replicate's result (3: the truth is the scenario's effect on the table's
#: coefficient); part of the task key, so a resumed battery never mixes two definitions.
_RESULT_VERSION = 3


def load_battery(path) -> tuple[list[Scenario], dict]:
    """Read a battery file (YAML): ``scenarios`` (a list of :class:`Scenario` fields) and
    optional ``settings`` (replicates, grid, methods...)."""
    import yaml

    doc = yaml.safe_load(open(path))
    try:
        scenarios = [Scenario(**{k: tuple(v) if isinstance(v, list) else v
                                 for k, v in item.items()}) for item in doc["scenarios"]]
    except (TypeError, KeyError) as exc:
        raise SettingsError(f"{path}: a battery needs 'scenarios', a list of name/form/size/"
                            f"delay/distance entries ({exc})") from None
    return scenarios, doc.get("settings", {})


def expected_change(events: pd.DataFrame, scenario: Scenario, real: xr.Dataset, *,
                    seed, convention: str = "mwa", draws: int = 20) -> np.ndarray:
    """What the scenario does, on average over its random draws, to each wake's post and pre
    counts, per cell: the events it adds (or removes) fall into the wakes they fall into,
    treated or control, post- or pre-period.

    Parameters
    ----------
    events
        The real event table (the one :func:`plant` is given).
    scenario
        What is planted.
    real
        The wake cube of ``events``.
    seed
        Seed of the Monte Carlo draws.
    convention
        The wake counter's distance convention.
    draws
        Planted forms: ``draws`` replicates at once (a Poisson process of ``draws`` x the
        rate, divided by ``draws``). Thinning is exact: ``size`` x the change when every
        real event inside a treatment's profile is removed.

    Returns
    -------
    numpy.ndarray
        Shape (2, event, window, radius): the expected change of the post (``[0]``) and
        the pre (``[1]``) counts, events per wake.
    """
    shape = (2, real.sizes["event"], real.sizes["window"], real.sizes["radius"])
    if scenario.form == "null" or scenario.size == 0:
        return np.zeros(shape)
    windows, radii = real["window"].to_numpy(), real["radius"].to_numpy()
    rng = np.random.default_rng(seed)
    if scenario.form == "thinning":
        scale, dense = scenario.size, replace(scenario, size=1.0)
    else:
        scale, dense = 1.0 / draws, replace(scenario, size=scenario.size * draws)
    changed, _ = plant(events, dense, rng, windows, radii, convention=convention)
    cube = count_wakes(changed, windows, radii, convention=convention)
    if not np.array_equal(cube["source_id"].to_numpy(), real["source_id"].to_numpy()):
        raise SettingsError("the planted and the real cube must hold the same anchors")
    return scale * (_post_and_pre(cube) - _post_and_pre(real))


def _post_and_pre(cube: xr.Dataset) -> np.ndarray:
    d = cube["dependent"].transpose("period", "event", "window", "radius")
    return np.stack([d.sel(period="post").to_numpy(), d.sel(period="pre").to_numpy()])


def matched_truth(cube: xr.Dataset, real: xr.Dataset, settings: MWASettings,
                  change: np.ndarray) -> np.ndarray:
    """The scenario's effect on the OLS table's coefficient, per cell.

    On the matched sets and CEM weights of the planted ``cube``: the coefficient of the
    table's regression (``settings.formula``) on the real counts plus the scenario's
    expected change, minus the coefficient on the real counts. With ``formula="diff"`` this
    is the weighted mean change of (post - pre) over the matched treated wakes minus that
    over the matched controls; with ``lag`` the pre-period part enters through the
    regression's slope on the pre count, as it does in the paper's estimate.

    Parameters
    ----------
    cube, real
        Wake cubes of the planted study and of the real events (the same anchors).
    settings
        The matching and formula of the OLS table.
    change
        :func:`expected_change`, shape (2, event, window, radius).

    Returns
    -------
    numpy.ndarray
        Shape (windows, radii), events per matched treated wake (NaN where a cell has no
        matched treated or control wake).
    """
    counts = _post_and_pre(real)
    truth = np.full((cube.sizes["window"], cube.sizes["radius"]), np.nan)
    for cell in matched_cells(cube, settings, balance=False):
        t = cell.treated == 1
        if not (t.any() and (~t).any()):
            continue
        i, j = cell.index
        post, pre = counts[:, cell.events, i, j]
        d_post, d_pre = change[:, cell.events, i, j]
        truth[i, j] = (_coefficient(post + d_post, pre + d_pre, t, cell.weights, settings.formula)
                       - _coefficient(post, pre, t, cell.weights, settings.formula))
    return truth


def _coefficient(post, pre, treated, weights, formula) -> float:
    """The treatment coefficient of the table's weighted regression: plain least squares,
    not :func:`bayes_wake.core.regression.weighted_ols`, whose R rule makes a cell with no
    outcome event NA (its coefficient is 0 here, so the difference of two fits stays
    defined)."""
    y, x = regression_design(post, pre, treated, formula)
    root = np.sqrt(weights)
    return float(np.linalg.lstsq(x * root[:, None], y * root, rcond=None)[0][-1])


def direct_truth(cube: xr.Dataset, settings: MWASettings, events: pd.DataFrame,
                 effects: np.ndarray) -> np.ndarray:
    """The effect on the matched treated wakes' own post-periods: per cell, the weighted mean
    of :func:`plant`'s effects over the treated wakes matched in that cell (the mean over all
    treated wakes where no cell is estimable); spill-overs into controls and pre-periods are
    left out (:func:`matched_truth` keeps them).

    Parameters
    ----------
    cube
        The wake cube of the planted study.
    settings
        The matching of the OLS table.
    events
        The event table :func:`plant` was given (its treatment rows, in order, are the rows
        of ``effects``; the cube's ``source_id`` finds them).
    effects
        From :func:`plant`, shape (treated, windows, radii), events per wake.

    Returns
    -------
    numpy.ndarray
        Shape (windows, radii), events per matched treated wake.
    """
    truth = effects.mean(axis=0) if len(effects) else np.zeros(effects.shape[1:])
    is_treated = (events["role"] == "treatment").to_numpy()
    ids = events["event_id"].to_numpy()[is_treated] if "event_id" in events.columns \
        else np.flatnonzero(is_treated) + 1  # the cube's source_id (count_wakes)
    row = pd.Series(np.arange(len(ids)), index=ids)
    position = row.reindex(cube["source_id"].to_numpy()).to_numpy()
    for cell in matched_cells(cube, settings, balance=False):
        t = cell.treated == 1
        k = position[cell.events[t]]
        if t.any() and np.all(np.isfinite(k)):
            i, j = cell.index
            truth[i, j] = np.average(effects[k.astype(int), i, j], weights=cell.weights[t])
    return truth


def placebo_placement(events: pd.DataFrame, sites: pd.DataFrame, rng: np.random.Generator,
                      *, weight: str | None = None) -> pd.DataFrame:
    """Re-draw the treatment and control placements over candidate sites; keep the outcomes.

    Treatments are drawn with probability proportional to ``sites[weight]`` (uniform when
    None), controls uniformly, both with replacement, in the numbers of the real study; dates
    are uniform over the span of the real anchors' dates. Sites carry the covariates (the
    match columns) the placements get.

    Raises
    ------
    SettingsError
        If the sites lack coordinates, a covariate of the events, or the weight column, or
        the weights are not finite and >= 0 with a positive sum.
    """
    covariates = list(events.attrs.get("covariates", []))
    need = ["lat", "lon", *covariates] + ([weight] if weight else [])
    missing = [c for c in need if c not in sites.columns]
    if missing:
        raise SettingsError(f"placebo sites lack column(s) {missing} (they need lat, lon, the "
                            f"covariates {covariates} and the weight column)")
    p = None
    if weight:
        p = sites[weight].to_numpy(float)
        if not (np.all(np.isfinite(p)) and np.all(p >= 0) and p.sum() > 0):
            raise SettingsError(f"placebo site weights {weight!r} must be finite, >= 0 and not "
                                "all 0")
        p = p / p.sum()
    anchors = events[events["role"].isin(["treatment", "control"])]
    t = pd.to_datetime(anchors["time"], utc=True).astype("int64").to_numpy()
    parts = []
    for role, prob in (("treatment", p), ("control", None)):
        n = int((anchors["role"] == role).sum())
        pick = rng.choice(len(sites), size=n, p=prob)
        frame = sites.iloc[pick][["lat", "lon", *covariates]].reset_index(drop=True)
        frame["role"] = role
        frame["time"] = pd.to_datetime(rng.integers(t.min(), t.max() + 1, n), utc=True)
        parts.append(frame)
    new = pd.concat(parts, ignore_index=True)
    new["event_id"] = np.arange(len(new)) + 2 * 10**9
    for column in events.columns.difference(new.columns):
        new[column] = anchors[column].iloc[0]
    out = pd.concat([events[~events["role"].isin(["treatment", "control"])],
                     new[events.columns]], ignore_index=True)
    out.attrs = dict(events.attrs)
    return out


# -------------------------------------------------------------------------------------------
# replicates as tasks
# -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecoverySettings:
    """Everything a replicate needs besides the data: grid, matching, methods, sampler.

    Attributes
    ----------
    windows, radii
        The grid: temporal windows (days) and radii (km).
    mwa
        The matched wake analysis every method is scored on (its OLS table) and refits.
    methods
        ``ols`` and/or names or paths of model specs, as the tables and task keys name them.
    convention
        Wake counting convention (``mwa`` or ``exact``).
    draws, tune, chains
        Sampler settings that replace the specs' own (None keeps them).
    placebo_weight
        Column of the placebo sites that weights where treatments are re-drawn.
    ci
        Level of the posterior intervals (equal-tailed); OLS's are ``1 - mwa.alpha``, so
        they exclude 0 exactly when the table's p <= alpha.
    extra
        Further settings recorded with every replicate's key.
    specs
        The parsed model spec of every method but ``ols``, by method
        (:class:`~bayes_wake.bayes.spec.ModelSpec`, e.g. the command line's, parsed once);
        a method without one is loaded from its name when the settings are built. Each
        gets ``draws``, ``tune`` and ``chains``.
    """

    windows: tuple[int, ...]
    radii: tuple[float, ...]
    mwa: MWASettings
    methods: tuple[str, ...] = ("ols", DEFAULT_SPEC)
    convention: str = "mwa"
    draws: int | None = None
    tune: int | None = None
    chains: int | None = None
    placebo_weight: str | None = None
    ci: float = 0.9
    extra: dict = field(default_factory=dict)
    specs: Mapping[str, ModelSpec] | None = None

    def __post_init__(self):
        from bayes_wake.bayes.spec import load_spec

        if not 0 < self.ci < 1:
            raise SettingsError(f"ci {self.ci!r}: the interval level is a share between 0 "
                                "and 1 (e.g. 0.9)")

        for name in ("windows", "radii", "methods"):  # lists too (a JSON round trip)
            object.__setattr__(self, name, tuple(getattr(self, name)))
        given = self.specs or {}
        specs = {method: (given[method] if method in given else load_spec(method))
                 .with_sampler(draws=self.draws, tune=self.tune, chains=self.chains)
                 for method in self.methods if method != "ols"}
        object.__setattr__(self, "specs", specs)

    def to_dict(self, *, specs: bool = False) -> dict:
        """JSON-ready settings: the methods by name (task keys, provenance); with ``specs``
        also the parsed specs' dicts (the Dask boundary, read by :meth:`from_dict`)."""
        out = {**{f.name: getattr(self, f.name) for f in fields(self) if f.name != "specs"},
               "mwa": self.mwa.to_dict()}
        if specs:
            out["specs"] = {method: spec.model_dump(mode="json")
                            for method, spec in self.specs.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict) -> RecoverySettings:
        """The settings of :meth:`to_dict` (also after a JSON round trip)."""
        from bayes_wake.bayes.spec import parse_spec

        specs = {method: parse_spec(spec, method)
                 for method, spec in (data.get("specs") or {}).items()}
        return cls(**{**data, "mwa": MWASettings.from_dict(data["mwa"]), "specs": specs})


@dataclass(frozen=True)
class Battery:
    """What a recovery run plants, and how often.

    Attributes
    ----------
    scenarios
        The planted effects (:class:`Scenario`).
    replicates
        Replicates per scenario.
    seed
        Seed of every replicate's random stream (with its number and scenario).
    placebo_replicates
        Replicates of the scenarios that re-draw placements (None: ``replicates``).
    """

    scenarios: tuple[Scenario, ...]
    replicates: int = 3
    seed: int = 0
    placebo_replicates: int | None = None

    def to_dict(self) -> dict:
        """JSON-ready, for the provenance record (``placebos``: the re-drawn replicates)."""
        return {"seed": self.seed, "replicates": self.replicates,
                "placebos": self.placebo_replicates,
                "scenarios": [asdict(s) for s in self.scenarios]}


def _fit_methods(cube: xr.Dataset, settings: RecoverySettings) -> dict:
    """OLS (its ``1 - alpha`` normal interval, the table's ``--vcov``) and each spec's
    posterior (``settings.ci`` interval) per cell, each with its ``level``."""
    from statistics import NormalDist

    mwa = settings.mwa
    out = {}
    for method in settings.methods:
        if method == "ols":
            surface = matched_wake_analysis(cube, mwa).surface
            est, se = surface["estimate"].to_numpy(), surface["std_error"].to_numpy()
            z = NormalDist().inv_cdf(1 - mwa.alpha / 2)
            out["ols"] = {"mean": est, "lower": est - z * se, "upper": est + z * se,
                          "converged": 1, "level": 1 - mwa.alpha}
            continue
        out[method] = posterior_cells(cube, settings.specs[method], mwa, settings.ci)
    return {k: {kk: (vv.tolist() if isinstance(vv, np.ndarray) else vv)
                for kk, vv in v.items()} for k, v in out.items()}


def posterior_cells(cube: xr.Dataset, spec, mwa: MWASettings, ci: float = 0.9) -> dict:
    """Fit ``spec`` (a :class:`bayes_wake.bayes.spec.ModelSpec`) with the matching of ``mwa``;
    per cell the posterior mean and ``ci`` equal-tailed interval (arrays, window x radius),
    with the convergence diagnostics and the ``level``."""

    import arviz as az

    from bayes_wake.bayes.matched_fit import fit_matched

    with warnings.catch_warnings(), az.rc_context({"stats.ci_prob": ci,
                                                   "stats.ci_kind": "eti"}):
        warnings.simplefilter("ignore")
        fit = fit_matched(cube, spec, mwa)
    s, d = fit.surface, fit.diagnostics
    return {"mean": s["mean"].to_numpy(), "lower": s["ci_lower"].to_numpy(),
            "upper": s["ci_upper"].to_numpy(), "converged": int(d.converged),
            "max_r_hat": d.max_r_hat, "min_ess_bulk": d.min_ess_bulk,
            "divergences": d.divergences, "seconds": d.compile_seconds + d.sample_seconds,
            "level": ci}


def replicate_task(events: pd.DataFrame, sites: pd.DataFrame | None, scenario: dict,
                   replicate: int, seed: int, settings: dict) -> dict:
    """One replicate: (re-place,) plant, count, fit every method. A JSON-ready dict."""
    settings_ = RecoverySettings.from_dict(settings)
    scen = Scenario(**{k: tuple(v) if isinstance(v, list) else v for k, v in scenario.items()})
    rng = np.random.default_rng([seed, replicate, _stable_int(scen.name)])
    if scen.placebo:
        if sites is None:
            raise SettingsError(f"scenario {scen.name!r} re-draws placements: give the "
                                "candidate sites (placebo_sites)")
        events = placebo_placement(events, sites, rng, weight=settings_.placebo_weight)
    planted, effects = plant(events, scen, rng, settings_.windows, settings_.radii,
                             convention=settings_.convention)
    grid = np.array(settings_.windows), np.array(settings_.radii)
    cube = count_wakes(planted, *grid, convention=settings_.convention)
    real = count_wakes(events, *grid, convention=settings_.convention)
    change = expected_change(events, scen, real, seed=[seed, replicate, _stable_int(scen.name),
                                                       1], convention=settings_.convention)
    mwa = settings_.mwa
    return {"scenario": scen.name, "replicate": replicate,
            "truth": matched_truth(cube, real, mwa, change).tolist(),
            "truth_direct": direct_truth(cube, mwa, events, effects).tolist(),
            "truth_all": effects.mean(axis=0).tolist(),
            "methods": _fit_methods(cube, settings_)}


def _stable_int(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def recovery_tasks(data: Mapping[str, pd.DataFrame], scenarios: Sequence[Scenario],
                   settings: RecoverySettings, *, replicates: int, seed: int,
                   data_hashes: Mapping[str, str], placebo_replicates: int | None = None):
    """The battery as keyed tasks for :func:`bayes_wake.checks.tasks.run_tasks` (scenarios that
    re-draw placements run ``placebo_replicates`` times, default ``replicates``)."""
    from bayes_wake.checks.tasks import Shared, Task, task_key

    check_scenario_names(scenarios)
    tasks = []
    for scen in scenarios:
        if scen.data not in data:
            raise SettingsError(f"scenario {scen.name!r} uses study {scen.data!r}, not given "
                                f"(studies: {sorted(data)})")
        n = placebo_replicates if scen.placebo and placebo_replicates else replicates
        for rep in range(n):
            conf = {"scenario": asdict(scen), "replicate": rep, "seed": seed,
                    "settings": settings.to_dict(), "result": _RESULT_VERSION}
            tasks.append(Task(key=task_key(data_hashes[scen.data], conf),
                              function=replicate_task,
                              args=(Shared(f"events:{scen.data}"), Shared("sites"),
                                    asdict(scen), rep, seed, settings.to_dict(specs=True)),
                              label=f"{scen.name} #{rep}" + (
                                  f" on {scen.data}" if scen.data != "default" else ""),
                              kind="recovery", priority=1))
    return tasks


def check_scenario_names(scenarios: Sequence[Scenario]) -> None:
    """Two scenarios of one study with one name would be pooled into one summary row."""
    seen: set[tuple[str, str]] = set()
    for scen in scenarios:
        if (scen.name, scen.data) in seen:
            raise SettingsError(f"two scenarios are named {scen.name!r}"
                                + (f" (study {scen.data!r})" if scen.data != "default" else "")
                                + "; give each its own name (name=...)")
        seen.add((scen.name, scen.data))


def baseline_task(events: pd.DataFrame, settings: dict) -> dict:
    """Every method fitted on the study as it is, nothing planted: what each method's
    estimate on a planted replicate is compared with (:func:`run_recovery`)."""
    settings_ = RecoverySettings.from_dict(settings)
    grid = np.array(settings_.windows), np.array(settings_.radii)
    cube = count_wakes(events, *grid, convention=settings_.convention)
    return {"methods": _fit_methods(cube, settings_)}


def baseline_tasks(data: Mapping[str, pd.DataFrame], scenarios: Sequence[Scenario],
                   settings: RecoverySettings, data_hashes: Mapping[str, str]) -> dict:
    """One :func:`baseline_task` per study that a scenario on the real placements uses,
    keyed by study name."""
    from bayes_wake.checks.tasks import Shared, Task, task_key

    studies = sorted({s.data for s in scenarios if not s.placebo and s.data in data})
    return {name: Task(key=task_key(data_hashes[name], {"baseline": settings.to_dict(),
                                                        "result": _RESULT_VERSION}),
                       function=baseline_task, args=(Shared(f"events:{name}"),
                                                     settings.to_dict(specs=True)),
                       label="nothing planted" + (f" on {name}" if name != "default" else ""),
                       kind="recovery", priority=1)
            for name in studies}


def run_recovery(data: Mapping[str, pd.DataFrame], battery: Battery,
                 settings: RecoverySettings, directory, *,
                 sites: pd.DataFrame | None = None, scheduler: str | None = "inline",
                 n_workers: int | None = None, baseline: bool = True,
                 progress: Callable[[int, int], None] | None = None,
                 log: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Run a battery (resumable: finished replicates are kept in ``directory/tasks``) and
    return one row per method, scenario, replicate and cell (:func:`score_recovery` scores
    it).

    With ``baseline`` (the default), a scenario on the study's real placements is scored on
    what planting changed: ``mean``, ``lower`` and ``upper`` are each method's estimate and
    interval on the planted data minus its estimate on the same data with nothing planted
    (``baseline``; ``estimate`` keeps the planted estimate), because the real placements
    carry the data's own effect (or a placement bias), which is no method's error. Scenarios
    that re-draw placements (``placebo``), and every scenario without ``baseline`` (the
    benchmark battery, whose simulated placements carry no effect by construction), score the
    estimate itself. The ``scored`` column says which.
    """
    from bayes_wake.checks.tasks import run_tasks

    hashes = {name: _frame_hash(frame) for name, frame in data.items()}
    tasks = recovery_tasks(data, battery.scenarios, settings, replicates=battery.replicates,
                           seed=battery.seed, data_hashes=hashes,
                           placebo_replicates=battery.placebo_replicates)
    bases = baseline_tasks(data, battery.scenarios, settings, hashes) if baseline else {}
    shared = {f"events:{name}": frame for name, frame in data.items()}
    shared["sites"] = sites
    report = run_tasks([*bases.values(), *tasks], directory, shared=shared,
                       scheduler=scheduler, n_workers=n_workers, progress=progress, log=log)
    rows = []
    for task in tasks:
        study = task.args[2]["data"]
        base = None
        if study in bases and not task.args[2]["placebo"]:
            base = report.results[bases[study].key]["methods"]
        rows += _replicate_rows(report.results[task.key], base, settings, task.label, study)
    return pd.DataFrame(rows)


def _replicate_rows(result: dict, base: dict | None, settings: RecoverySettings,
                    label: str, study: str) -> list[dict]:
    """The cell rows of one replicate; with ``base`` (the fits with nothing planted) each
    method's estimate and interval are shifted by its own unplanted estimate."""
    truth = np.asarray(result["truth"], float)
    truth_all = np.asarray(result["truth_all"], float)
    truth_direct = np.asarray(result["truth_direct"], float)
    rows = []
    for method, fit in result["methods"].items():
        mean = np.asarray(fit["mean"], float)
        shift = (np.asarray(base[method]["mean"], float) if base is not None
                 else np.zeros_like(mean))
        lower, upper = np.asarray(fit["lower"], float), np.asarray(fit["upper"], float)
        for i, w in enumerate(settings.windows):
            for j, r in enumerate(settings.radii):
                rows.append({"method": method, "scenario": result["scenario"],
                             "study": study, "replicate": label, "t_window": w,
                             "spat_window": r, "truth": truth[i, j],
                             "truth_direct": truth_direct[i, j],
                             "truth_all": truth_all[i, j],
                             "scored": "change" if base is not None else "estimate",
                             "estimate": mean[i, j],
                             "baseline": shift[i, j] if base is not None else np.nan,
                             "mean": mean[i, j] - shift[i, j],
                             "lower": lower[i, j] - shift[i, j],
                             "upper": upper[i, j] - shift[i, j],
                             "level": _level(fit, method),
                             "converged": _converged(fit, base, method)})
    return rows


def _level(fit: dict, method: str) -> float:
    """The level of a method's intervals (a replicate stored before levels were recorded
    has OLS's 0.95 and the posterior's 0.9)."""
    return float(fit.get("level", 0.95 if method == "ols" else 0.9))


def _converged(fit: dict, base: dict | None, method: str) -> int:
    """1 when the planted fit (and the unplanted one it is compared with) converged."""
    ok = int(fit.get("converged", 1))
    return ok if base is None else min(ok, int(base[method].get("converged", 1)))


def _frame_hash(frame: pd.DataFrame) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy()
                          .tobytes()).hexdigest()


def score_recovery(cells: pd.DataFrame, truth: str = "truth",
                   by: Sequence[str] = ("scenario",)) -> pd.DataFrame:
    """Per method and scenario: bias, RMSE, coverage, width, power, false positives.

    Cells where OLS is NA are left out for every method (so all methods are scored on the
    same cells). ``truth`` names the column scored against: ``truth`` (the scenario's effect
    on the OLS table's coefficient, what every method estimates), ``truth_direct`` (what
    each matched treated wake's own treatment caused in its own wake) or ``truth_all``.
    ``by`` are the columns that make a row besides the method (e.g. ``scenario`` and a
    ``design`` column of the caller's). ``bias_large`` is the mean error where |truth| >=
    half its maximum.
    ``power`` is the share of cells with a non-zero truth whose interval excludes 0 (on the
    right side); ``false_positive`` the share of cells with a zero truth whose interval
    excludes 0, and ``any_false_positive`` the share of replicates with at least one.

    Raises
    ------
    SettingsError
        If no cell has an OLS estimate in any replicate (too few events in the windows).
    """
    ols = cells[cells["method"] == "ols"].set_index(
        ["scenario", "replicate", "t_window", "spat_window"])["mean"]
    key = pd.MultiIndex.from_frame(cells[["scenario", "replicate", "t_window", "spat_window"]])
    cells = cells[ols.reindex(key).notna().to_numpy() & cells["mean"].notna().to_numpy()]
    if cells.empty:
        raise SettingsError("no window has an OLS estimate in any replicate, so nothing can "
                            "be scored: widen t_window or spat_window (or match on fewer "
                            "covariates)")
    rows = []
    by = list(by)
    for keys, g in cells.groupby(["method", *by], sort=False):
        true = g[truth]
        err = g["mean"] - true
        big = true.abs() >= 0.5 * true.abs().max()
        nonzero = true.abs() > 1e-12
        excl = (g["lower"] > 0) | (g["upper"] < 0)
        right = ((g["lower"] > 0) & (true > 0)) | ((g["upper"] < 0) & (true < 0))
        per_rep = excl[~nonzero].groupby(g["replicate"][~nonzero]).sum()
        rows.append({
            **dict(zip(["method", *by], keys, strict=True)), "truth": truth,
            "replicates": g["replicate"].nunique(),
            "level": float(g["level"].iloc[0]) if "level" in g else np.nan,
            "cells": len(g), "bias": err.mean(),
            "bias_large": err[big].mean() if nonzero.any() else np.nan,
            "rmse": float(np.sqrt((err**2).mean())),
            "coverage": float(((g["lower"] <= true) & (true <= g["upper"])).mean()),
            "width": float((g["upper"] - g["lower"]).mean()),
            "power": float(right[nonzero].mean()) if nonzero.any() else np.nan,
            "false_positive": float(excl[~nonzero].mean()) if (~nonzero).any() else np.nan,
            "false_positive_cells": float(per_rep.mean()) if len(per_rep) else np.nan,
            "any_false_positive": float((per_rep > 0).mean()) if len(per_rep) else np.nan,
            "converged": float(g.groupby("replicate")["converged"].min().mean()),
        })
    table = pd.DataFrame(rows)
    ref = table[table["method"] == "ols"].set_index(by)["rmse"]
    ref = ref.where(ref > 0)  # OLS exact (nothing planted on real placements): no ratio
    table["rmse_vs_ols"] = table["rmse"].to_numpy() / ref.reindex(
        pd.MultiIndex.from_frame(table[by]) if len(by) > 1 else table[by[0]]).to_numpy()
    return table


def write_recovery(out, summary: pd.DataFrame, cells: pd.DataFrame, battery: Battery,
                   settings: RecoverySettings, *, extra: dict | None = None):
    """Write recovery_summary.csv, recovery_cells.csv, recovery.png, recovery_report.html
    and provenance.json (the battery and its settings; ``extra``: what only the caller
    knows, :func:`bayes_wake.io.artefacts.provenance`) into ``out`` (the task store in
    ``out/tasks`` stays)."""
    from bayes_wake.io.artefacts import (
        provenance,
        staged_directory,
        write_json,
        write_table,
    )
    from bayes_wake.io.html import HtmlReport
    from bayes_wake.plotting import plot_recovery, save_figure

    with staged_directory(out) as stage:
        write_table(summary, stage / "recovery_summary.csv")
        write_table(cells, stage / "recovery_cells.csv")
        save_figure(plot_recovery(summary), stage / "recovery.png")
        write_json(provenance({**battery.to_dict(), **settings.to_dict()}, extra=extra),
                   stage / "provenance.json")
        report = HtmlReport("Recovery of planted effects")
        report.paragraph(recovery_verdict(summary), kind="verdict")
        report.paragraph(
            "Effects of known form and size were planted into the study's real outcome events "
            "(or the placements were re-drawn with no effect), and every method was refitted "
            f"on each replicate. Intervals: {1 - settings.mwa.alpha:.0%} confidence intervals "
            f"for OLS ({settings.mwa.vcov.label} errors), {settings.ci:.0%} posterior "
            "intervals for the Bayesian models. Cells where OLS is NA are left out for every "
            "method.", kind="note")
        report.paragraph(recovery_scoring_note(cells), kind="note")
        report.figure(stage / "recovery.png", caption="Error and coverage per method and "
                      "scenario (dashed: nominal coverage)")
        report.table(summary, caption="Per method and scenario")
        report.write(stage / "recovery_report.html")


def recovery_scoring_note(cells: pd.DataFrame) -> str:
    """What the scores measure: the change planting made (real placements) or the estimate
    itself (re-drawn placements), and what a no-effect scenario can and cannot tell."""
    scored = set(cells["scored"]) if "scored" in cells.columns else {"estimate"}
    parts = []
    if "change" in scored:
        parts.append(
            "On the study's real placements each method is scored on what planting changed: "
            "its estimate on the planted data minus its estimate on the same data with "
            "nothing planted, against the planted truth; the real placements carry the "
            "data's own effect (or a placement bias), which is not a method's error. So a "
            "no-effect scenario on the real placements measures stability (it changes "
            "nothing, and scores 0), not the size of a test: for size, re-draw the "
            "placements with --placebo-sites FILE --placebos N.")
    if "estimate" in scored:
        parts.append(
            "On re-drawn placements (or where no unplanted fit was made) the estimate itself "
            "is scored against the planted truth: re-drawn placements carry no effect, so "
            "what they show beyond the truth is error or a placement bias of the sites.")
    return " ".join(parts)


def recovery_verdict(summary: pd.DataFrame) -> str:
    """One sentence per Bayesian method: its RMSE relative to OLS and its coverage."""
    parts = []
    for method, g in summary[summary["method"] != "ols"].groupby("method", sort=False):
        planted = g[g["false_positive_cells"].isna() | (g["power"].notna())]
        wins = int((planted["rmse_vs_ols"] <= 1).sum())
        parts.append(f"{method}: RMSE {planted['rmse_vs_ols'].mean():.2f} x OLS on average "
                     f"(at most OLS's in {wins} of {counted(len(planted), 'scenario')}), "
                     f"{g['level'].iloc[0]:.0%} intervals cover the truth in "
                     f"{g['coverage'].mean():.0%} of cells")
    return "; ".join(parts) + "." if parts else "Only OLS was run."
