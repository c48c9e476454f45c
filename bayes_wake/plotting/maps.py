"""Maps of a study area: regions, bases, projects, outcome events and rivers, with a scale bar.

:func:`plot_study_map` draws the paper's Figure 4 from the package's data contracts: admin
regions (a GeoDataFrame with a ``region`` column, as
:func:`bayes_wake.studies.sauter.regions.load_regions` returns), bases (points), a project
table (as :mod:`bayes_wake.studies.sauter.projects` reads it: ``kind`` ``qip`` or ``aid``,
``lon``, ``lat``) and, optionally, outcome events (``lon``, ``lat``) and line or polygon
layers of rivers and lakes; its texts and scale bar are a :class:`MapStyle`.
:func:`add_scale_bar` puts a true kilometre scale bar on any axes in longitude and latitude.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from bayes_wake.core.geo import EARTH_RADIUS_KM
from bayes_wake.plotting.style import (
    _AID_COLOUR,
    _OUTCOME_COLOUR,
    _QIP_COLOUR,
    _SIMULATED_COLOUR,
)

__all__ = ["MapStyle", "add_scale_bar", "plot_study_map"]

_REGION_COLOUR = "#d9d9d9"
_WATER_COLOUR = "#6baed6"


@dataclass(frozen=True)
class MapStyle:
    """The texts and the scale of :func:`plot_study_map`: what its title and legend call the
    place, the points and the bases, the scale bar's length and which regions are labelled.

    Parameters
    ----------
    place
        Name of the country or area, for the title (``"... in <place>"``); None leaves it
        out.
    points_label
        What the points are (e.g. ``"Violence against civilians"``): in the legend, with
        their number, and, in lower case, in the title.
    bases_label
        Legend text of the bases (their number is appended).
    scale_km
        Length of the scale bar (km).
    label_min_area
        Regions smaller than this (square degrees; e.g. a capital district whose base label
        already names it) are not labelled.

    Examples
    --------
    >>> MapStyle(place="Mali", bases_label="MINUSMA bases").scale_km
    200
    """

    place: str | None = None
    points_label: str = "outcome events"
    bases_label: str = "bases"
    scale_km: float = 200
    label_min_area: float = 0.2


def plot_study_map(
    boundary,
    regions: Sequence[str],
    bases,
    projects: pd.DataFrame,
    points: pd.DataFrame | None = None,
    *,
    rivers: Sequence | None = None,
    simulated: Collection[str] = (),
    style: MapStyle = MapStyle(),
) -> Figure:
    """Draw a map of the study area (the paper's Figure 4).

    The study regions are shaded grey, every admin-1 line is drawn, rivers and lakes are
    clipped to the country, outcome events are small red dots, aid projects blue circles,
    QIPs orange triangles and bases black stars with their names. Each region is labelled
    (in italics) at a point inside it far from every base and project, and a scale bar of
    the style's `scale_km` sits in the lower right corner. The axes are longitude and
    latitude with the aspect of the map's middle latitude.

    Parameters
    ----------
    boundary
        ``geopandas.GeoDataFrame`` of the admin regions (WGS84), with a ``region`` column
        naming each; as :func:`bayes_wake.studies.sauter.regions.load_regions` returns it.
    regions
        Names (``region`` values) of the regions of the study, shaded.
    bases
        ``geopandas.GeoDataFrame`` of points (WGS84); a ``name`` column, if present, labels
        each.
    projects
        The project table of :mod:`bayes_wake.studies.sauter.projects`: ``kind`` (``"qip"`` or
        ``"aid"``), ``lon``, ``lat`` (degrees). Other kinds are not drawn.
    points
        Outcome events with ``lon`` and ``lat`` (degrees), or None to leave them out (the
        title then names the bases instead).
    rivers
        ``geopandas.GeoDataFrame`` layers of rivers (lines) and lakes (polygons, drawn by
        their outline), clipped to the union of `boundary`; None draws none.
    simulated
        The project kinds (``"qip"``, ``"aid"``) that were simulated: their legend entries
        say ``(SIMULATED)``, and if any is, the title does too, in dark red.
    style
        The place, the names of the points and the bases, the scale bar's length and the
        smallest region labelled (:class:`MapStyle`).

    Returns
    -------
    matplotlib.figure.Figure
        The figure, 9.0 x 8.2 inches, with one axes.

    Examples
    --------
    >>> fig = plot_study_map(boundary, ["Gao", "Mopti"], bases, projects,
    ...                      style=MapStyle(place="Mali"))  # doctest: +SKIP
    >>> save_figure(fig, "map.png")  # doctest: +SKIP
    """
    fig, ax = plt.subplots(figsize=(9.0, 8.2), layout="constrained")
    study = boundary["region"].isin(regions).to_numpy()
    boundary[study].plot(ax=ax, color=_REGION_COLOUR, edgecolor="none", zorder=0)
    boundary.boundary.plot(ax=ax, color="black", linewidth=0.7, zorder=1)
    if rivers is not None:
        _draw_water(ax, rivers, boundary.geometry.union_all())
    if points is not None:
        ax.scatter(points["lon"], points["lat"], s=6, c=_OUTCOME_COLOUR, alpha=0.55,
                   linewidths=0, zorder=2)
    aid = projects[projects["kind"] == "aid"]
    qip = projects[projects["kind"] == "qip"]
    ax.scatter(aid["lon"], aid["lat"], s=22, facecolors="none", edgecolors=_AID_COLOUR,
               linewidths=0.8, zorder=3)
    ax.scatter(qip["lon"], qip["lat"], s=30, marker="^", c=_QIP_COLOUR, edgecolors="black",
               linewidths=0.4, zorder=4)
    bx, by = _draw_bases(ax, bases)
    markers = np.column_stack([np.r_[bx, projects["lon"].to_numpy()],
                               np.r_[by, projects["lat"].to_numpy()]])
    _label_regions(ax, boundary, markers, style.label_min_area)
    _frame_map(ax, boundary, style.scale_km)
    ax.legend(handles=_legend_handles(bases, aid, qip, points, rivers, simulated, style),
              loc="upper left", fontsize=9, framealpha=0.9)
    what = style.points_label.lower() if points is not None else "bases"
    where = f" in {style.place}" if style.place else ""
    sim = " (SIMULATED)" if simulated else ""
    ax.set_title(f"Projects and {what}{where}{sim}", fontsize=12,
                 color=_SIMULATED_COLOUR if simulated else "black")
    ax.grid(color="#eeeeee", linewidth=0.5, zorder=-1)
    return fig


def _draw_water(ax: Axes, rivers: Sequence, country) -> None:
    """Rivers (lines) and lakes (polygons, by their outline), clipped to `country`."""
    for layer in rivers:
        shapes = layer.geometry
        areas = shapes.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()
        lines = shapes.where(~areas, shapes.boundary).intersection(country)
        lines = lines[lines.geom_type.isin(["LineString", "MultiLineString"]).to_numpy()]
        lines.plot(ax=ax, color=_WATER_COLOUR, linewidth=0.45, alpha=0.8, zorder=1)


def _draw_bases(ax: Axes, bases) -> tuple[np.ndarray, np.ndarray]:
    """The bases as black stars with their names; returns their longitudes and latitudes."""
    bx, by = bases.geometry.x.to_numpy(), bases.geometry.y.to_numpy()
    ax.scatter(bx, by, s=140, marker="*", c="black", edgecolors="white", linewidths=0.8,
               zorder=5)
    names = bases["name"].astype(str).tolist() if "name" in bases else [""] * len(bases)
    for x, y, name in zip(bx, by, names, strict=True):
        ax.annotate(name, (x, y), xytext=(5, 5), textcoords="offset points", fontsize=9,
                    fontweight="bold", zorder=6,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                          "alpha": 0.75})
    return bx, by


def _label_regions(ax: Axes, boundary, markers: np.ndarray, min_area: float) -> None:
    """Each region's name (in italics) at a point inside it far from every marker; regions
    smaller than `min_area` (square degrees) are left unlabelled."""
    for _, row in boundary.iterrows():
        if row.geometry.area < min_area:
            continue
        x, y = _label_position(row.geometry, markers)
        ax.annotate(row["region"], (x, y), ha="center", va="center", fontsize=9,
                    color="#333333", style="italic", zorder=7,
                    bbox={"boxstyle": "round,pad=0.12", "fc": "white", "ec": "none",
                          "alpha": 0.6})


def _frame_map(ax: Axes, boundary, scale_km: float) -> None:
    """The map's extent (the boundary and a margin), aspect, scale bar and axis labels."""
    west, south, east, north = boundary.total_bounds
    pad = 0.3
    ax.set_xlim(west - pad, east + pad)
    ax.set_ylim(south - pad, north + pad)
    ax.set_aspect(1.0 / np.cos(np.radians((south + north) / 2)))
    add_scale_bar(ax, km=scale_km)
    ax.set_xlabel("longitude [°E]")
    ax.set_ylabel("latitude [°N]")


def add_scale_bar(ax: Axes, km: float) -> None:
    """Draw a scale bar of `km` kilometres in the lower right corner of a map.

    The axes must be in longitude and latitude (degrees) with their limits set. The bar lies
    at 5% of the height above the bottom and ends 5% of the width from the right; its length
    in longitude is `km` along that latitude on the mean Earth radius
    (:data:`bayes_wake.core.geo.EARTH_RADIUS_KM`). It is a black line 3 points wide, labelled
    ``"<km> km"`` above its middle.

    Parameters
    ----------
    ax
        The map's axes.
    km
        Length of the bar (km).
    """
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    y = y0 + 0.05 * (y1 - y0)
    length = km / (np.radians(EARTH_RADIUS_KM) * np.cos(np.radians(y)))
    right = x1 - 0.05 * (x1 - x0)
    ax.plot([right - length, right], [y, y], color="black", linewidth=3, solid_capstyle="butt",
            zorder=8)
    ax.annotate(f"{km:g} km", (right - length / 2, y), xytext=(0, 4),
                textcoords="offset points", ha="center", va="bottom", fontsize=9, zorder=8)


def _legend_handles(bases, aid, qip, points, rivers, simulated, style: MapStyle) -> list:
    """The map's legend: study regions, bases, QIPs, aid projects, then points and rivers."""
    handles = [
        Patch(facecolor=_REGION_COLOUR, edgecolor="black", label="study regions"),
        Line2D([], [], marker="*", color="black", linestyle="none", markersize=12,
               label=f"{style.bases_label} ({len(bases)})"),
        Line2D([], [], marker="^", color=_QIP_COLOUR, markeredgecolor="black",
               linestyle="none", markersize=7,
               label=f"QIPs ({len(qip)}){' (SIMULATED)' if 'qip' in simulated else ''}"),
        Line2D([], [], marker="o", markerfacecolor="none", markeredgecolor=_AID_COLOUR,
               linestyle="none", markersize=6,
               label=f"aid projects ({len(aid)})"
                     f"{' (SIMULATED)' if 'aid' in simulated else ''}"),
    ]
    if points is not None:
        handles.append(Line2D([], [], marker="o", color=_OUTCOME_COLOUR, alpha=0.6,
                              linestyle="none", markersize=4,
                              label=f"{style.points_label} ({len(points)})"))
    if rivers is not None:
        handles.append(Line2D([], [], color=_WATER_COLOUR, label="rivers and lakes"))
    return handles


def _label_position(polygon, markers: np.ndarray) -> tuple[float, float]:
    """A point inside ``polygon`` (lon, lat) far from every marker and near its middle: on a
    grid of candidates inside it, the largest distance to the nearest marker (capped at 0.6
    degrees, where a label no longer touches one) minus a tenth of the distance to the
    polygon's representative point."""
    import shapely  # only when a map is drawn, not with every surface


    west, south, east, north = polygon.bounds
    gx, gy = np.meshgrid(np.linspace(west, east, 25), np.linspace(south, north, 25))
    inside = shapely.contains_xy(polygon.buffer(-0.15), gx.ravel(), gy.ravel())
    centre = polygon.representative_point()
    if not inside.any():
        return centre.x, centre.y
    cand = np.column_stack([gx.ravel()[inside], gy.ravel()[inside]])
    near = np.full(len(cand), 0.6)
    if len(markers):
        d = np.hypot(cand[:, None, 0] - markers[None, :, 0], cand[:, None, 1] - markers[None, :, 1])
        near = np.minimum(d.min(axis=1), 0.6)
    score = near - 0.1 * np.hypot(cand[:, 0] - centre.x, cand[:, 1] - centre.y)
    best = cand[np.argmax(score)]
    return float(best[0]), float(best[1])
