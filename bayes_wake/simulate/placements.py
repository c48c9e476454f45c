"""Simulated project placements: QIPs and aid projects for users without the project files.

:func:`simulate_project_placement` places projects as :func:`bayes_wake.simulate.simulate_study`
does (no outcome events, no planted effect): QIPs at MINUSMA's base towns and camps, aid
projects following the population of the study area's towns, both geocoded to places, start
dates uniform over the period, so that QIPs lie nearer to the bases than aid projects, as in
Sauter (2022)'s Table 2 (59 km against 95 km). The placement designs (:data:`DESIGNS`) move
the QIPs to the settlements or put projects in programmes. A study area (an :class:`Area`)
is filled by rejection: projects falling outside it are replaced by more draws of the same
seed until the counts hold. The table has the columns of the study's project readers
(:func:`bayes_wake.studies.sauter.projects.read_projects`), with ``simulated`` True.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import pandas as pd

from bayes_wake.core.geo import destination
from bayes_wake.errors import SettingsError
from bayes_wake.simulate.draw import simulate_study

__all__ = ["DESIGNS", "Area", "simulate_project_placement"]

#: Placement designs of :func:`simulate_project_placement`: name to (QIPs placed as aid
#: projects, clumps of aid projects, clumps of QIPs); a clump is (projects, km, days).
DESIGNS = ("bases", "settlements", "clumped", "clumped_qips")
_DESIGN_RULES = {"bases": (False, None, None), "settlements": (True, None, None),
                 "clumped": (True, (5, 5.0, 60.0), None),
                 "clumped_qips": (False, None, (3, 3.0, 30.0))}
_KINDS = ("qip", "aid")
# Draws of rejection sampling before giving up, and the largest oversampling factor.
_ATTEMPTS, _MAX_FACTOR = 4, 50


class Area(Protocol):
    """A study area the placement must fill (e.g. :class:`bayes_wake.studies.sauter.regions.
    StudyArea`).

    Attributes
    ----------
    names
        The area's region names, for messages and the placement's settings.
    """

    names: Sequence[str]

    def inside(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``frame`` (columns ``lon``, ``lat``) that lie inside the area."""


def simulate_project_placement(
    seed: int = 0,
    *,
    n_qips: int = 364,
    n_aid: int = 1500,
    start: str | pd.Timestamp = "2017-01-01",
    end: str | pd.Timestamp = "2020-12-31",
    area: Area | None = None,
    kinds: Sequence[str] = _KINDS,
    design: str = "bases",
) -> pd.DataFrame:
    """Simulated QIPs and aid projects for users without the project files.

    The placement is that of :func:`bayes_wake.simulate.simulate_study` (no outcome events, no
    planted effect): QIPs at MINUSMA's base towns and smaller camps (half at the town's
    centroid, the rest at a place within ~15 km), aid projects at the study area's towns
    weighted by population (40% at the centroid, the rest at places within ~30 km), so that
    QIPs lie nearer to the bases than aid projects as in the paper's Table 2 (59 km against
    95 km on average); start dates uniform over the period. It says nothing about where real
    projects are: results on it are a placebo, not findings.

    Parameters
    ----------
    seed
        Seed; the same seed gives the same projects.
    n_qips, n_aid
        Number of projects of each kind (the paper has 364 QIPs; its number of aid projects
        is not given).
    start, end
        First and last possible start date (inclusive).
    area
        The study area to fill (:class:`Area`): projects falling outside it are replaced by
        other draws of the same seed, so the counts hold. ``None``: no area filter.
    kinds
        Which kinds to simulate (``("aid",)`` when the user has a QIP file but no aid file).
    design
        Where the projects go (:data:`DESIGNS`): ``bases`` (above; places near bases may
        trend differently from settlements before any QIP, a placement bias every DiD
        inherits), ``settlements`` (QIPs placed exactly as aid projects: treatment and control
        exchangeable, so over placements a null's DiD is 0 on average), ``clumped`` (as
        ``settlements``, but aid projects come in programmes of 5 within 5 km and 60 days, so
        control wakes share events) or ``clumped_qips`` (as ``bases``, QIPs in programmes of
        3 within 3 km and 30 days: each treated wake holds its neighbours' effects).

    Returns
    -------
    pandas.DataFrame
        The columns of the project readers (``project_id``, ``kind``, ``time``, ``lon``,
        ``lat``, ``budget``, ``activity_type``, ``title``, ``simulated``, ``file_row``),
        ``simulated`` True, ``budget`` NaN and ``activity_type`` ``"simulated"``; rows of
        each kind sorted by start date. ``attrs``: ``source`` (``"simulated placement
        (seed=...)"``), ``seed``, ``dropped`` (empty) and ``settings``.

    Raises
    ------
    SettingsError
        Bad counts or dates, or an area where the placement puts no project.
    """
    kinds = tuple(kinds)
    wanted = _wanted_counts(kinds, n_qips, n_aid, design)
    rng = np.random.default_rng([int(seed), 7])
    events = _placed_inside(int(seed), rng, wanted, design, (start, end), area)
    chosen = _chosen(events, wanted, rng, area)
    frame = _project_frame(chosen)
    frame.attrs.update({
        "source": f"simulated placement (seed={int(seed)})",
        "kind": "+".join(kinds),
        "seed": int(seed),
        "dropped": [],
        "settings": {"seed": int(seed), "n_qips": wanted["qip"], "n_aid": wanted["aid"],
                     "start": str(pd.Timestamp(start).date()),
                     "end": str(pd.Timestamp(end).date()),
                     "placement": "bayes_wake.simulate.simulate_study (projects only)",
                     "design": design,
                     "regions": list(area.names) if area is not None and area.names else None},
    })
    return frame


def _wanted_counts(kinds: tuple[str, ...], n_qips: int, n_aid: int,
                   design: str) -> dict[str, int]:
    """The number of projects of each kind, the design and kinds checked."""
    if design not in DESIGNS:
        raise SettingsError(f"unknown placement design {design!r}; use one of {DESIGNS}")
    if not kinds or any(k not in _KINDS for k in kinds):
        raise SettingsError(f"kinds must be among 'qip', 'aid', got {kinds!r}")
    wanted = {"qip": int(n_qips) if "qip" in kinds else 0,
              "aid": int(n_aid) if "aid" in kinds else 0}
    if any(v < 0 for v in wanted.values()) or not sum(wanted.values()):
        raise SettingsError(f"the numbers of projects must be >= 0 and not all 0, got {wanted}")
    return wanted


def _placed_inside(seed: int, rng: np.random.Generator, wanted: dict[str, int], design: str,
                   period: tuple, area: Area | None) -> pd.DataFrame:
    """Rejection sampling: draws of the design, filtered to the area, until each kind has
    its count (or the oversampling factor grows too large)."""
    factor = 1.0 if area is None else 1.1
    for _attempt in range(_ATTEMPTS):
        n_draw = {k: int(np.ceil(v * factor)) + (5 if v and area is not None else 0)
                  for k, v in wanted.items()}
        events = _placed(seed, rng, n_draw, design, *period)
        if area is not None:
            events = area.inside(events)
        have = events["kind"].value_counts()
        short = {k: v for k, v in wanted.items() if v and have.get(k, 0) < v}
        if not short:
            break
        ratio = max(v / max(have.get(k, 0), 1) for k, v in short.items())
        factor = factor * ratio * 1.2
        if factor > _MAX_FACTOR:
            break
    return events


def _chosen(events: pd.DataFrame, wanted: dict[str, int], rng: np.random.Generator,
            area: Area | None) -> pd.DataFrame:
    """``wanted`` projects of each kind drawn from the placed ones, QIPs first."""
    parts = []
    for kind in _KINDS:
        if not wanted[kind]:
            continue
        rows = events[events["kind"] == kind]
        if len(rows) < wanted[kind]:
            names = list(area.names) if area is not None and area.names else []
            raise SettingsError(f"the simulated placement puts only {len(rows):,} {kind} "
                                f"project{'' if len(rows) == 1 else 's'} in the regions "
                                f"{names}; choose other regions or give a project file")
        pick = np.sort(rng.choice(len(rows), size=wanted[kind], replace=False))
        parts.append(rows.iloc[pick])
    return pd.concat(parts, ignore_index=True)


def _project_frame(chosen: pd.DataFrame) -> pd.DataFrame:
    """The placed projects in the columns of the project readers."""
    n = len(chosen)
    labels = np.where(chosen["kind"] == "qip", "QIP", "AID")
    counters = chosen.groupby("kind").cumcount().to_numpy() + 1
    frame = pd.DataFrame({
        "project_id": pd.array([f"SIM-{a}-{i:04d}" for a, i in zip(labels, counters,
                                                                    strict=True)], dtype="str"),
        "kind": pd.array(chosen["kind"].to_numpy(), dtype="str"),
        "time": chosen["time"].to_numpy(),
        "lon": chosen["lon"].to_numpy(dtype=float),
        "lat": chosen["lat"].to_numpy(dtype=float),
        "budget": np.full(n, np.nan),
        "activity_type": pd.array(["simulated"] * n, dtype="str"),
        "title": pd.array(["simulated placement"] * n, dtype="str"),
        "simulated": True,
        "file_row": np.zeros(n, dtype=np.int64),
    })
    frame["time"] = pd.to_datetime(frame["time"], utc=True).dt.as_unit("ns")
    return frame


def _placed(seed: int, rng: np.random.Generator, n_draw: dict, design: str, start,
            end) -> pd.DataFrame:
    """Projects of one draw of a design: columns role, time, lon, lat, kind."""
    as_aid, aid_clump, qip_clump = _DESIGN_RULES[design]
    n_qip, n_aid = n_draw["qip"], n_draw["aid"]
    if as_aid:  # one process places both kinds; the labels are a random split
        study = simulate_study(seed, n_treatment=0, n_control=n_qip + n_aid, n_dependent=0,
                               effect=None, start=start, end=end)
        events = study.events[["role", "time", "lon", "lat"]].copy()
        events["role"] = np.where(rng.permutation(len(events)) < n_qip, "treatment", "control")
    else:
        study = simulate_study(seed, n_treatment=n_qip, n_control=n_aid, n_dependent=0,
                               effect=None, start=start, end=end)
        events = study.events[["role", "time", "lon", "lat"]].copy()
    for role, clump in (("control", aid_clump), ("treatment", qip_clump)):
        if clump is not None:
            rows = events["role"] == role
            events = pd.concat([events[~rows], _clumps(events[rows], *clump, rng, end)],
                               ignore_index=True)
    events["kind"] = np.where(events["role"] == "treatment", "qip", "aid")
    return events.sort_values("time", kind="stable").reset_index(drop=True)


def _clumps(rows: pd.DataFrame, size: int, km: float, days: float, rng: np.random.Generator,
            end) -> pd.DataFrame:
    """The same number of projects in programmes of ``size``: each programme's first project
    is one of ``rows``, the others lie uniformly within ``km`` of it and start up to
    ``days`` days later (not after ``end``)."""
    chosen = rng.choice(len(rows), -(-len(rows) // size), replace=False)
    out = rows.iloc[np.repeat(chosen, size)[:len(rows)]].reset_index(drop=True).copy()
    first = (np.arange(len(out)) % size) == 0
    moved = ~first
    distance = km * np.sqrt(rng.random(int(moved.sum())))
    lon, lat = destination(out.loc[moved, "lon"].to_numpy(), out.loc[moved, "lat"].to_numpy(),
                           rng.uniform(0, 2 * np.pi, int(moved.sum())), distance)
    out.loc[moved, "lon"], out.loc[moved, "lat"] = lon, lat
    last = pd.Timestamp(end, tz="UTC") if pd.Timestamp(end).tz is None else pd.Timestamp(end)
    shift = pd.to_timedelta(np.floor(rng.uniform(0, days + 1, int(moved.sum()))), unit="D")
    times = pd.to_datetime(out.loc[moved, "time"], utc=True) + shift
    out.loc[moved, "time"] = times.where(times <= last, last).to_numpy()
    return out
