"""The options of the Sauter (2022) reanalysis, checked once and passed whole.

:class:`SauterSettings` is built once (by ``bayes-wake sauter``, the script, or a user) and
handed to :func:`bayes_wake.studies.sauter.workflow.reanalyze_sauter`. Building it checks
every option that needs no data (the grid, the outcomes, the counting convention, the model
spec, covariate columns against simulated projects), so a bad option fails before any file is
read or written.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from bayes_wake.core.windows import GridRegion, expand_windows, parse_grid_region
from bayes_wake.errors import SettingsError
from bayes_wake.options import DEFAULT_SPEC, PAPER_RADII, PAPER_WINDOWS, Convention, check_choice
from bayes_wake.studies.sauter.acled import Outcome, parse_outcome
from bayes_wake.studies.sauter.regions import STUDY_REGIONS

__all__ = ["DEFAULT_OUTCOMES", "DEFAULT_RADII", "DEFAULT_WINDOWS", "SauterSettings"]

#: The paper's grid as (min, max, step): t = 10..60 days by 10, s = 3..15 km by 3 (30 cells).
DEFAULT_WINDOWS, DEFAULT_RADII = PAPER_WINDOWS, PAPER_RADII
#: The paper's three outcomes, main one first.
DEFAULT_OUTCOMES: tuple[str, ...] = ("vac", "battles_nsag", "nsag")

_Path = str | os.PathLike


@dataclass(frozen=True)
class SauterSettings:
    """What the Sauter (2022) reanalysis reads and how it analyses it.

    Attributes
    ----------
    acled
        ACLED export (monadic or dyadic; :func:`bayes_wake.studies.sauter.acled.read_acled`).
    boundaries
        Admin-1 polygons (:func:`bayes_wake.studies.sauter.regions.load_regions`).
    bases
        MINUSMA bases: a CSV of points (``latitude``, ``longitude``) or a vector file; the
        covariate ``dist_base_km`` is the distance to the nearest, km.
    qips, aid
        Project files (:func:`bayes_wake.studies.sauter.projects.read_projects`). A kind
        without a file is simulated
        (:func:`bayes_wake.simulate.placements.simulate_project_placement`, seeded by
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
        Outcome names (:data:`bayes_wake.studies.sauter.acled.OUTCOMES`), override strings for
        :func:`~bayes_wake.studies.sauter.acled.parse_outcome`, or
        :class:`~bayes_wake.studies.sauter.acled.Outcome` objects; held as ``Outcome`` objects.
    windows, radii
        The grid as ``(min, max, step)``: temporal windows in days, radii in km
        (``window_grid`` and ``radius_grid`` hold them expanded).
    regions
        Study regions (any spelling, or one comma-separated string; ``Menaka`` is Gao's when
        the boundaries predate 2016).
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
        name or a YAML path; held as the loaded spec, or None without ``bayes``.
    compare
        A second model fitted per outcome beside ``spec`` and compared with it (the
        surfaces, and PSIS-LOO when both are models of the wake counts), given as ``spec``
        is and held as the loaded spec; None (default): no comparison. Needs ``bayes``.
    bayes
        Fit the Bayesian model (minutes); False runs only the matched wake analysis.
    event_map
        Draw the outcome events (ACLED locations) on the report's map; False leaves them
        out, for a report to share beyond ACLED's terms of use.
    grid_region
        A region of the grid (``"t>=20, s<=9"``, :func:`~bayes_wake.core.windows.parse_grid_region`,
        or a :class:`~bayes_wake.core.windows.GridRegion`) whose average effect each Bayesian
        fit adds to ``grid_summary.csv`` and the report's summary; held parsed, or None
        (the whole grid only).

    Raises
    ------
    SettingsError
        A bad grid or grid region, no or twice-named outcomes, an unknown convention or spec,
        a model to compare without the Bayesian fit, or covariate columns with simulated
        projects.
    """

    acled: _Path
    boundaries: _Path
    bases: _Path
    qips: _Path | None = None
    aid: _Path | None = None
    qip_columns: Mapping[str, str] | None = None
    aid_columns: Mapping[str, str] | None = None
    rivers: Sequence[_Path] = ()
    rivers_where: str | None = None
    roads: Sequence[_Path] = ()
    roads_where: str | None = None
    layers: Mapping[str, _Path] | None = None
    rasters: Mapping[str, _Path] | None = None
    covariate_columns: Sequence[str] = ()
    outcomes: Sequence[str | Outcome] = DEFAULT_OUTCOMES
    windows: Sequence[float] = DEFAULT_WINDOWS
    radii: Sequence[float] = DEFAULT_RADII
    regions: Sequence[str] = STUDY_REGIONS
    merge_menaka: bool = False
    snap_km: float = 10.0
    start: str = "2017-01-01"
    end: str = "2020-12-31"
    seed: int = 0
    n_qips: int = 364
    n_aid: int = 1500
    convention: str = "mwa"
    weighted: bool = True
    tcm: bool = True
    alpha: float = 0.05
    spillover: bool = False
    spec: object = DEFAULT_SPEC
    compare: object = None
    bayes: bool = True
    event_map: bool = True
    grid_region: object = None
    window_grid: np.ndarray = field(init=False, repr=False, compare=False)
    radius_grid: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._set("window_grid", expand_windows(*self.windows, name="windows", temporal=True))
        self._set("radius_grid", expand_windows(*self.radii, name="radii"))
        chosen = tuple(o if isinstance(o, Outcome) else parse_outcome(o) for o in self.outcomes)
        if not chosen:
            raise SettingsError("no outcomes to analyse")
        if len({o.name for o in chosen}) != len(chosen):
            raise SettingsError(f"an outcome is named twice: {[o.name for o in chosen]}")
        self._set("outcomes", chosen)
        check_choice("convention", self.convention, Convention)
        if self.compare is not None and not self.bayes:
            name = getattr(self.compare, "name", self.compare)
            raise SettingsError(f"compare={name} needs the Bayesian fits, which bayes=False "
                                "skips")
        if self.bayes and self.spec is None:
            raise SettingsError("spec=None fits nothing: give a model spec, or bayes=False to "
                                "skip the Bayesian fits")
        self._set("spec", self._model_spec(self.spec))
        if not isinstance(self.grid_region, GridRegion | None):
            region = parse_grid_region(self.grid_region, windows=self.window_grid,
                                       radii=self.radius_grid)
            self._set("grid_region", region if region.conditions else None)
        self._set("compare", self._model_spec(self.compare))
        if self.covariate_columns and self.simulated_kinds:
            kinds = " and ".join(self.simulated_kinds)
            raise SettingsError(f"covariate columns {list(self.covariate_columns)} come from "
                                f"the project files, but the {kinds} projects are simulated; "
                                "give both files or use layers and rasters")

    def _set(self, name: str, value) -> None:
        object.__setattr__(self, name, value)

    def _model_spec(self, spec):
        """``spec`` loaded; None for None or without the Bayesian fit."""
        from bayes_wake.bayes.spec import ModelSpec, load_spec

        if spec is None or not self.bayes:
            return None
        return spec if isinstance(spec, ModelSpec) else load_spec(spec)

    @property
    def simulated(self) -> dict[str, bool]:
        """Kind (``qip``, ``aid``) -> True when that kind has no file and is simulated."""
        return {"qip": self.qips is None, "aid": self.aid is None}

    @property
    def simulated_kinds(self) -> list[str]:
        """The kinds without a file (simulated), QIPs first."""
        return [kind for kind, simulated in self.simulated.items() if simulated]

    def input_files(self) -> dict[str, str | None]:
        """Every input file by role, for the provenance and the report."""
        inputs = {"acled": str(self.acled), "boundaries": str(self.boundaries),
                  "bases": str(self.bases), "qips": str(self.qips) if self.qips else None,
                  "aid": str(self.aid) if self.aid else None}
        inputs.update({f"rivers_{i}": str(path) for i, path in enumerate(self.rivers, 1)})
        inputs.update({f"roads_{i}": str(path) for i, path in enumerate(self.roads, 1)})
        named = {**(self.layers or {}), **(self.rasters or {})}
        inputs.update({name: str(path) for name, path in named.items()})
        return inputs
