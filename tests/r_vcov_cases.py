"""The cases of the standard errors' R parity: data, grid, settings and choices, shared by
``tests/test_r_vcov_parity.py`` and the script that made R's outputs once,
``benchmarks/r_vcov_reference.py`` (R is never a test dependency).

Two data sets: R mwa's example (``../shared/data/mwa_example/mwa_data.csv``, its documented
call) and ``tests/data/simulated_sites.csv``, a small study from the package's own simulator
(no ACLED row: ACLED's terms forbid republishing) whose projects share sites, so that
clusters hold several wakes and CEM weights vary within them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parent / "data"
SIMULATED = DATA / "simulated_sites.csv"
EXAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "mwa_example" / "mwa_data.csv"


@dataclass(frozen=True)
class Case:
    """One data set's R-parity case.

    Attributes
    ----------
    name
        ``example`` or ``simulated``; R's outputs are ``tests/data/r_vcov_<name>.csv``.
    windows, radii
        The grid (days, km).
    match_on, weighted, tcm
        The matched wake analysis settings.
    labels
        Text columns read as group labels (cluster columns).
    choices
        The ``--vcov`` choices compared with R (all but Conley, which R's packages here lack).
    """

    name: str
    windows: tuple[int, ...]
    radii: tuple[float, ...]
    match_on: tuple[str, ...]
    weighted: bool
    tcm: bool
    labels: tuple[str, ...]
    choices: tuple[str, ...]

    @property
    def path(self) -> Path:
        return EXAMPLE if self.name == "example" else SIMULATED

    @property
    def reference(self) -> Path:
        return DATA / f"r_vcov_{self.name}.csv"


def _choices(clusters: tuple[str, ...]) -> tuple[str, ...]:
    return ("classical", "HC1", "HC3") + tuple(
        f"{kind}:{c}" for c in clusters for kind in ("CR1", "CR2", "CR2-ivw"))


CASES = {
    # the example's anchors each have their own place: location gives singleton clusters
    # (CR2 is then an HC2), near=20,30 clusters of 1 to 7 anchors
    "example": Case("example", (2, 4, 6, 8, 10), (2.0, 4.0, 6.0, 8.0, 10.0),
                    ("match1", "match2"), True, True, (), _choices(("location", "near=20,30"))),
    "simulated": Case("simulated", (30, 60, 90), (5.0, 10.0, 15.0),
                      ("dist_base_km", "pop_density"), True, False, ("site",),
                      _choices(("site", "near=5,60"))),
}


def simulated_sites_frame(seed: int = 29) -> pd.DataFrame:
    """The simulated study of ``tests/data/simulated_sites.csv`` in R mwa's column layout:
    ``type``, ``lon``, ``lat``, ``timestamp``, two covariates and ``site`` (the anchors at
    one place share a site; empty for outcome events)."""
    from bayes_wake.simulate import simulate_study

    events = simulate_study(seed, n_treatment=80, n_control=300, n_dependent=700,
                            start="2017-01-01", end="2018-12-31").events
    table = pd.DataFrame({
        "type": events["role"].astype(str),
        "lon": events["lon"].round(6), "lat": events["lat"].round(6),
        "timestamp": events["time"].dt.strftime("%Y-%m-%d %H:%M:%S"),
        "dist_base_km": events["dist_base_km"].round(3),
        "pop_density": events["pop_density"].round(3)})
    place = table["lat"].astype(str) + "," + table["lon"].astype(str)
    anchor = table["type"] != "dependent"
    codes = pd.Series(pd.factorize(place[anchor])[0], index=place[anchor].index)
    table["site"] = ""
    table.loc[anchor, "site"] = [f"S{c:03d}" for c in codes]
    return table


def case_cube(case: Case):
    """The wake cube and the matched wake analysis settings of a case."""
    from bayes_wake.io.events import read_events
    from bayes_wake.mwa.analysis import MWASettings
    from bayes_wake.wakes import count_wakes

    events = read_events(case.path, covariates=list(case.match_on), labels=list(case.labels))
    cube = count_wakes(events, list(case.windows), list(case.radii))
    return cube, MWASettings(match_on=case.match_on, weighted=case.weighted, tcm=case.tcm)


def case_cells(case: Case, cube=None, settings=None):
    """The cells of a case as the package's regressions see them.

    Yields
    ------
    tuple
        ``(cell, clusters)``: the :class:`bayes_wake.mwa.analysis.MatchedCell` and, per
        cluster choice, the cluster label of each of its rows.
    """
    from bayes_wake.core.regression import parse_vcov
    from bayes_wake.mwa.analysis import matched_cells, vcov_inputs

    if cube is None:
        cube, settings = case_cube(case)
    labels = {c: vcov_inputs(cube, c)[0] for c in case.choices if parse_vcov(c).clustered}
    for cell in matched_cells(cube, settings, balance=False):
        yield cell, {c: np.asarray(v)[cell.events] for c, v in labels.items()}
