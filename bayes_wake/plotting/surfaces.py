"""Effect surfaces over the (temporal window, spatial window) grid.

The paper's Figure 6 draws the point estimate of every (window, radius) cell as a shaded
surface and hatches the cells that are not significant. :func:`plot_effect_surface` draws one
such surface, from the OLS table of the matched wake analysis (``estimate``, ``pvalue``) or from
a posterior summary (``mean``, ``ci_lower``, ``ci_upper``) or from posterior draws (a variable
with ``chain``/``draw`` dims); :func:`plot_surfaces_side_by_side` puts two on one colour scale.
How a single surface is drawn (its colour scale, cell labels and hatching's legend text) is a
:class:`SurfaceStyle`.

Cells are drawn in grid-index space (every cell the same size, whatever the spacing of the
windows), with tick labels at the cell centres giving the actual window and radius.

Artists that carry meaning have a ``gid`` so that callers and tests can find them:
:data:`HATCH_GID` (the collection of hatched squares, one path per non-significant cell),
:data:`NA_GID` (one "NA" label per cell without an estimate), :data:`VALUE_GID` (one value
label per annotated cell), :data:`FILLED_GID` (the outlines of the cells that only the right
panel of a side-by-side figure fills) and :data:`~bayes_wake.plotting.style.WARNING_GID` (the
warning text of a non-converged fit). In data coordinates, the cell of the i-th window and
j-th radius (ascending) is centred on ``(j, i)`` and spans one unit each way.
"""

from __future__ import annotations

import math
import numbers
import textwrap
import warnings
from dataclasses import dataclass, replace

import matplotlib.colors as mcolors
import matplotlib.patches as mpatches
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection, QuadMesh
from matplotlib.figure import Figure

from bayes_wake.core.windows import normalise_time_unit, unit_ns
from bayes_wake.errors import SettingsError
from bayes_wake.plotting.style import (
    _FS_CELL_MAX,
    _FS_CELL_MIN,
    _FS_LABEL,
    _FS_LEGEND,
    _FS_TICK,
    _FS_TITLE,
    _NA_COLOR,
    _colormap,
    _draw_warning,
    _format_coordinate,
    _format_value,
    _luminance,
    _make_norm,
)

__all__ = [
    "FILLED_GID",
    "HATCH_GID",
    "NA_GID",
    "VALUE_GID",
    "SurfaceStyle",
    "plot_effect_surface",
    "plot_surfaces_side_by_side",
]


HATCH_GID = "bayes_wake.hatch"
"""``gid`` of the collection of hatched squares, one per non-significant cell."""
NA_GID = "bayes_wake.na"
"""``gid`` of the "NA" label written in each cell without an estimate."""
VALUE_GID = "bayes_wake.value"
"""``gid`` of the value label written in each annotated cell."""
FILLED_GID = "bayes_wake.filled"
"""``gid`` of the collection of dashed outlines, one per cell that the right panel of a
side-by-side figure fills where the left one is NA."""

_HATCH_HALO_GID = "bayes_wake.hatch_halo"
_FILLED_HALO_GID = "bayes_wake.filled_halo"
_HATCH = "///"
_SAMPLE_DIMS = ("chain", "draw")
_DEFAULT_HATCH_LABEL = "not significant"
_DEFAULT_FILLED_LABEL = "no OLS estimate: pooled from neighbouring windows"

# Size of one cell (inches) of a figure this module creates, and the bounds of the plot area.
_CELL_W, _CELL_H = 0.78, 0.46
_AX_W_MIN, _AX_W_MAX = 1.6, 7.5
_AX_H_MIN, _AX_H_MAX = 1.0, 6.5
# A vertical colourbar shorter than this cannot carry its label: go horizontal.
_VERTICAL_COLORBAR_MIN_H = 2.2

_VALUE_LABELS = {
    "estimate": "effect (events per wake)",
    "effect": "effect (events per wake)",
    "mean": "posterior mean (events per wake)",
    "median": "posterior median (events per wake)",
}


@dataclass(frozen=True)
class _Grid:
    """One surface, laid out as (window, radius) arrays in ascending coordinate order."""

    values: np.ndarray  # float, (n_window, n_radius)
    hatched: np.ndarray | None  # bool, True where not significant and a value exists
    windows: np.ndarray  # in t_unit
    radii: np.ndarray  # km
    hatch_label: str | None
    value_label: str
    filled: np.ndarray | None = None  # bool, True where only this panel of a pair has a value
    filled_label: str | None = None


@dataclass(frozen=True)
class SurfaceStyle:
    """How :func:`plot_effect_surface` draws a surface: its colour scale, cell labels and the
    legend text of its hatching.

    Parameters
    ----------
    vmin, vmax
        Limits of the colour scale (unit of the surface's value). If both are None, the scale
        is symmetric, ``[-m, m]`` with ``m`` the largest ``|value|``. If only one is given,
        the other mirrors it. If both are given they must straddle 0, and 0 stays the white
        centre of the map (a two-slope norm).
    cmap
        Diverging colour map (name or object); NaN cells are drawn light grey regardless.
    annotate
        Write the value (2 decimals) in each cell, in black or white by the background. Left
        out if the cells are too small for a legible label; "NA" labels are always written.
    hatch_label
        Legend text of the hatching. When left at its default, the criterion is appended,
        e.g. "not significant (p > 0.05)" or "not significant (interval includes 0)".

    Examples
    --------
    >>> style = SurfaceStyle(hatch_label="does not survive Holm", annotate=False)
    >>> style.cmap
    'RdBu_r'
    """

    vmin: float | None = None
    vmax: float | None = None
    cmap: str | mcolors.Colormap = "RdBu_r"
    annotate: bool = True
    hatch_label: str = _DEFAULT_HATCH_LABEL


def plot_effect_surface(
    surface: xr.Dataset,
    *,
    value: str = "estimate",
    significant: xr.DataArray | None = None,
    t_unit: str = "days",
    alpha: float = 0.05,
    title: str | None = None,
    warning: str | None = None,
    ax: Axes | None = None,
    style: SurfaceStyle = SurfaceStyle(),
) -> tuple[Figure, Axes]:
    """Draw an effect surface over the (temporal window, spatial window) grid.

    Every (window, radius) cell is a tile shaded by its value on a diverging colour map centred
    on 0; cells that are not significant are hatched (``'///'``, black with a white halo so the
    lines show on any colour), cells without a value (R's ``NA``) are light grey and labelled
    "NA". The temporal window is on the y axis and the spatial window on the x axis, as in the
    paper's Figure 6.

    Parameters
    ----------
    surface
        Dataset with dims ``window`` (temporal window, in `t_unit`; numbers or timedeltas) and
        ``radius`` (spatial window, km), in any order, holding the variable `value`. Other
        dims of length 1 are dropped. If `value` has the sample dims ``chain``/``draw``, the
        surface is its mean over the draws and a cell is significant when the equal-tailed
        ``1 - alpha`` interval of the draws excludes 0.
    value
        Name of the variable to draw: ``"estimate"`` for the OLS coefficient of the matched
        wake analysis, ``"mean"`` for a posterior mean, ... (events per wake, or the unit in
        the variable's ``units`` attribute).
    significant
        Boolean DataArray with dims ``window`` and ``radius``: True where the cell is
        significant. If None, significance is ``pvalue <= alpha`` when the dataset has
        ``pvalue``, else "the interval ``[ci_lower, ci_upper]`` excludes 0" when it has both
        bounds, else no cell is hatched. A missing p-value or bound counts as not significant.
    t_unit
        Unit of the temporal window: ``"days"``, ``"hours"``, ``"minutes"`` or ``"seconds"``
        (the R argument ``t_unit``); used in the axis label and to convert timedelta windows.
    alpha
        Significance level for the p-values (significant when ``pvalue <= alpha``), and
        ``1 - alpha`` is the mass of the interval computed from draws.
    title
        Title of the axes.
    warning
        If given (e.g. ``"NOT CONVERGED: max R-hat 1.08, 12 divergences"``), drawn in red over
        the top of the figure with a red frame, so that a fit that is not to be trusted is never
        shown as a result.
    ax
        Axes to draw in; a new figure sized to the grid is made if None. A colourbar is added
        beside it.
    style
        Colour scale, cell labels and the hatching's legend text (:class:`SurfaceStyle`).

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure that holds `ax`.
    ax : matplotlib.axes.Axes
        The axes of the surface. The hatching is a collection with ``gid``
        :data:`HATCH_GID` (one path per hatched cell), "NA" labels have :data:`NA_GID`, value
        labels :data:`VALUE_GID`.

    Raises
    ------
    SettingsError
        If `surface` lacks the dims or the variable, has other dims of length above 1, or if
        `t_unit`, `alpha`, the style's `vmin`/`vmax` or `significant` cannot be used.

    Examples
    --------
    >>> fig, ax = plot_effect_surface(result.surface, value="estimate")  # doctest: +SKIP
    >>> fig, ax = plot_effect_surface(result.surface,
    ...                               style=SurfaceStyle(vmin=-1, vmax=1))  # doctest: +SKIP
    >>> save_figure(fig, "effect_surface.png")  # doctest: +SKIP
    """
    _check_alpha(alpha)
    grid = _read_grid(
        surface, value=value, significant=significant, t_unit=t_unit, alpha=alpha,
        hatch_label=style.hatch_label,
    )
    norm, extend = _make_norm(grid.values, style.vmin, style.vmax)
    colormap = _colormap(style.cmap)
    layout = None
    if ax is None:
        layout = _figure_layout(grid, n_panels=1, warning=warning)
        fig, ax = plt.subplots(figsize=(layout.width, layout.height), layout="constrained")
    else:
        fig = _root_figure(ax)
    mesh = _draw_grid(ax, grid, norm=norm, cmap=colormap, title=title, t_unit=t_unit)
    cbar = _add_colorbar(fig, mesh, [ax], layout, extend)
    _style_colorbar(cbar, grid.value_label)
    if warning:
        _draw_warning(fig, warning)
    _finish_cells(fig, [ax], [grid], cbar, norm=norm, cmap=colormap,
                  annotate=style.annotate, resize=layout is not None)
    return fig, ax


def plot_surfaces_side_by_side(
    left: xr.Dataset,
    right: xr.Dataset,
    *,
    left_value: str = "estimate",
    right_value: str = "mean",
    left_title: str = "OLS (matched wake analysis)",
    right_title: str = "Bayesian posterior mean",
    t_unit: str = "days",
    alpha: float = 0.05,
    warning: str | None = None,
    filled_label: str = _DEFAULT_FILLED_LABEL,
) -> tuple[Figure, np.ndarray]:
    """Draw two effect surfaces side by side on one colour scale.

    Typically the OLS estimates of the matched wake analysis (left) beside a posterior summary
    of the Bayesian reanalysis (right). Both panels share one colour scale, symmetric around 0
    from the largest ``|value|`` over both, and one colourbar.

    Parameters
    ----------
    left, right
        Surfaces as for :func:`plot_effect_surface` (dims ``window`` in `t_unit` and
        ``radius`` in km). The left panel is hatched where ``pvalue > alpha`` (if it has
        ``pvalue``, else where its interval includes 0); the right panel where the interval
        ``[ci_lower, ci_upper]`` includes 0 (if it has the bounds, else where
        ``pvalue > alpha``; or, for draws, where the ``1 - alpha`` interval includes 0).
    left_value, right_value
        Names of the variables to draw (events per wake).
    left_title, right_title
        Panel titles.
    t_unit
        Unit of the temporal window (``"days"``, ``"hours"``, ``"minutes"``, ``"seconds"``).
    alpha
        Significance level of the p-values.
    warning
        If given (e.g. ``"NOT CONVERGED: max R-hat 1.08, 12 divergences"``), drawn in red
        across the top of the figure with a red frame around it.
    filled_label
        Legend text of the right panel's cells that have a value where the left panel's
        same cell is NA (outlined with a dashed line): how the right-hand model fills them.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    axes : numpy.ndarray of matplotlib.axes.Axes
        The two panels, ``axes[0]`` left and ``axes[1]`` right. The outlines of the cells
        only the right panel fills are a collection with ``gid`` :data:`FILLED_GID`.

    Raises
    ------
    SettingsError
        As :func:`plot_effect_surface`.
    """
    _check_alpha(alpha)
    grids = [
        _read_grid(left, value=left_value, significant=None, t_unit=t_unit, alpha=alpha,
                   hatch_label=_DEFAULT_HATCH_LABEL, prefer="pvalue"),
        _read_grid(right, value=right_value, significant=None, t_unit=t_unit, alpha=alpha,
                   hatch_label=_DEFAULT_HATCH_LABEL, prefer="interval"),
    ]
    grids[1] = _mark_filled(grids[1], grids[0], filled_label)
    both = np.concatenate([g.values.ravel() for g in grids])
    norm, extend = _make_norm(both, None, None)
    colormap = _colormap("RdBu_r")
    layout = _figure_layout(grids[0], n_panels=2, warning=warning, other=grids[1])
    fig, axes = plt.subplots(
        1, 2, figsize=(layout.width, layout.height), layout="constrained", squeeze=False
    )
    axes = axes[0]
    same_windows = np.array_equal(grids[0].windows, grids[1].windows)
    meshes = []
    for ax, grid, title in zip(axes, grids, (left_title, right_title), strict=True):
        meshes.append(_draw_grid(ax, grid, norm=norm, cmap=colormap, title=title,
                                 t_unit=t_unit, legend_room=layout.panel_width))
    if same_windows:
        axes[1].set_ylabel("")
    label = grids[0].value_label if grids[0].value_label == grids[1].value_label else "effect"
    if label == "effect" and "events per wake" in grids[0].value_label + grids[1].value_label:
        label = "effect (events per wake)"
    cbar = _add_colorbar(fig, meshes[0], list(axes), layout, extend)
    _style_colorbar(cbar, label)
    if warning:
        _draw_warning(fig, warning)
    _finish_cells(fig, list(axes), grids, cbar, norm=norm, cmap=colormap, annotate=True)
    return fig, axes


# --------------------------------------------------------------------------------------------
# Reading a surface


def _check_alpha(alpha: float) -> None:
    if isinstance(alpha, bool) or not (isinstance(alpha, numbers.Real) and 0.0 < alpha < 1.0):
        raise SettingsError(f"alpha must be a number between 0 and 1, not {alpha!r}")


def _read_grid(
    surface: xr.Dataset,
    *,
    value: str,
    significant: xr.DataArray | None,
    t_unit: str,
    alpha: float,
    hatch_label: str,
    prefer: str = "pvalue",
) -> _Grid:
    """Lay a surface out as ascending (window, radius) arrays and decide its hatching."""
    normalise_time_unit(t_unit)  # an unknown unit is a SettingsError
    _check_surface(surface, value)
    surface = _drop_unit_dims(surface, keep=("window", "radius", *_SAMPLE_DIMS))
    if isinstance(significant, xr.DataArray):
        significant = _follow_surface_order(significant, surface)
    surface = surface.sortby(["window", "radius"])

    data = surface[value]
    sample_dims = [d for d in _SAMPLE_DIMS if d in data.dims]
    extra = [d for d in data.dims if d not in ("window", "radius", *sample_dims)]
    if extra:
        raise SettingsError(
            f"variable '{value}' has dims {extra} besides 'window' and 'radius': "
            "select one slice first (e.g. surface.sel(...))"
        )
    point = data.mean(sample_dims) if sample_dims else data
    values = np.asarray(point.transpose("window", "radius").values, dtype=float)
    if significant is not None:
        sig, criterion = _align_significant(significant, point), None
    elif sample_dims:
        sig, criterion = _interval_excludes_zero(data, sample_dims, alpha)
    else:
        sig, criterion = _table_significance(surface, alpha, prefer)

    hatched = None if sig is None else (~sig) & np.isfinite(values)
    label = None
    if hatched is not None:
        label = hatch_label
        if hatch_label == _DEFAULT_HATCH_LABEL and criterion is not None:
            label = f"{hatch_label} ({criterion})"

    return _Grid(
        values=values,
        hatched=hatched,
        windows=_coordinate_values(surface["window"], t_unit),
        radii=_coordinate_values(surface["radius"], None),
        hatch_label=label,
        value_label=_value_label(surface[value], value),
    )


def _check_surface(surface, value: str) -> None:
    """A :class:`SettingsError` unless `surface` is a Dataset whose `value` has dims
    ``window`` and ``radius``."""
    if not isinstance(surface, xr.Dataset):
        raise SettingsError(
            f"surface must be an xarray.Dataset with dims 'window' and 'radius', "
            f"not {type(surface).__name__}"
        )
    if value not in surface.data_vars:
        names = ", ".join(map(str, surface.data_vars)) or "none"
        raise SettingsError(f"surface has no variable '{value}' (variables: {names})")
    dims = ", ".join(map(str, surface[value].dims))
    for dim in ("window", "radius"):
        if dim not in surface[value].dims:
            raise SettingsError(f"variable '{value}' has no dim '{dim}' (dims: {dims})")


def _follow_surface_order(significant: xr.DataArray, surface: xr.Dataset) -> xr.DataArray:
    """A mask without coordinates follows the surface's own order of cells."""
    for dim in ("window", "radius"):
        if (dim in significant.dims and dim not in significant.coords
                and significant.sizes[dim] == surface.sizes[dim]):
            significant = significant.assign_coords({dim: surface[dim].values})
    return significant


def _interval_excludes_zero(data: xr.DataArray, sample_dims: list[str],
                            alpha: float) -> tuple[np.ndarray, str]:
    """Per cell, whether the central ``1 - alpha`` interval of the draws excludes 0, and the
    criterion in words."""
    stacked = data.stack(sample=sample_dims).transpose("window", "radius", "sample")
    draws = np.asarray(stacked.values, dtype=float)
    with warnings.catch_warnings():  # a cell without any draw is NA, not an error
        warnings.simplefilter("ignore", RuntimeWarning)
        lower = np.nanquantile(draws, alpha / 2, axis=-1)
        upper = np.nanquantile(draws, 1 - alpha / 2, axis=-1)
    return (lower > 0) | (upper < 0), _interval_text(1 - alpha)


def _table_significance(surface: xr.Dataset, alpha: float,
                        prefer: str) -> tuple[np.ndarray | None, str | None]:
    """Per cell, whether a table's surface is significant, by its p-values (``pvalue`` at
    `alpha`) or its interval (``ci_lower``, ``ci_upper``), `prefer` choosing where it holds
    both; and the criterion in words. None, None where it holds neither."""
    has_p = "pvalue" in surface.data_vars
    has_ci = "ci_lower" in surface.data_vars and "ci_upper" in surface.data_vars
    if has_p and (prefer == "pvalue" or not has_ci):
        p = _as_grid(surface["pvalue"], "pvalue")
        return p <= alpha, f"p > {alpha:g}"
    if has_ci:
        lo = _as_grid(surface["ci_lower"], "ci_lower")
        hi = _as_grid(surface["ci_upper"], "ci_upper")
        return (lo > 0) | (hi < 0), _interval_text(_find_ci_prob(surface))
    return None, None


def _mark_filled(grid: _Grid, other: _Grid, label: str) -> _Grid:
    """Mark the cells of `grid` with a value where the same cell of `other` is NA."""
    if not (np.array_equal(grid.windows, other.windows)
            and np.array_equal(grid.radii, other.radii)):
        return grid
    filled = np.isfinite(grid.values) & np.isnan(other.values)
    return replace(grid, filled=filled, filled_label=label) if filled.any() else grid


def _drop_unit_dims(surface: xr.Dataset, keep: tuple[str, ...]) -> xr.Dataset:
    unit_dims = [d for d, n in surface.sizes.items() if d not in keep and n == 1]
    return surface.squeeze(unit_dims, drop=True) if unit_dims else surface


def _as_grid(data: xr.DataArray, name: str) -> np.ndarray:
    extra = [d for d in data.dims if d not in ("window", "radius")]
    if extra or set(data.dims) != {"window", "radius"}:
        raise SettingsError(
            f"variable '{name}' must have exactly the dims 'window' and 'radius', "
            f"not {list(data.dims)}"
        )
    return np.asarray(data.transpose("window", "radius").values, dtype=float)


def _align_significant(significant: xr.DataArray, point: xr.DataArray) -> np.ndarray:
    if not isinstance(significant, xr.DataArray):
        raise SettingsError(
            "significant must be a boolean xarray.DataArray with dims 'window' and 'radius', "
            f"not {type(significant).__name__}"
        )
    significant = _drop_unit_dims(significant.to_dataset(name="s"), ("window", "radius"))["s"]
    if set(significant.dims) != {"window", "radius"}:
        raise SettingsError(
            f"significant must have exactly the dims 'window' and 'radius', "
            f"not {list(significant.dims)}"
        )
    if significant.dtype != bool:
        raise SettingsError(f"significant must be boolean, not {significant.dtype}")
    try:
        significant = significant.sel(window=point["window"], radius=point["radius"])
    except (KeyError, ValueError) as err:
        raise SettingsError(
            "significant must have the 'window' and 'radius' coordinates of the surface "
            f"({err})"
        ) from err
    return np.asarray(significant.transpose("window", "radius").values, dtype=bool)


def _find_ci_prob(surface: xr.Dataset) -> float | None:
    for attrs in (surface["ci_lower"].attrs, surface.attrs):
        for key in ("ci_prob", "hdi_prob", "prob"):
            if key in attrs:
                try:
                    return float(attrs[key])
                except (TypeError, ValueError):
                    return None
    return None


def _interval_text(ci_prob: float | None) -> str:
    if ci_prob is None:
        return "interval includes 0"
    return f"{100 * ci_prob:g}% interval includes 0"


def _coordinate_values(coord: xr.DataArray, t_unit: str | None) -> np.ndarray:
    values = np.asarray(coord.values)
    if np.issubdtype(values.dtype, np.timedelta64):
        return values / np.timedelta64(unit_ns(t_unit or "days"), "ns")
    return values.astype(float)


def _value_label(data: xr.DataArray, value: str) -> str:
    long_name = data.attrs.get("long_name")
    units = data.attrs.get("units")
    base = long_name or _VALUE_LABELS.get(value)
    if base is None:
        base = value.replace("_", " ")
    if units and f"({units})" not in base:
        base = f"{base.split(' (')[0]} ({units})"
    return base


# --------------------------------------------------------------------------------------------
# Drawing


@dataclass(frozen=True)
class _Layout:
    """Planned size (inches) of a figure this module creates."""

    width: float
    height: float
    panel_width: float  # one plot area
    panel_height: float
    n_panels: int
    horizontal: bool  # colourbar below the panels rather than beside them


def _figure_layout(
    grid: _Grid, *, n_panels: int, warning: str | None, other: _Grid | None = None
) -> _Layout:
    """Figure and plot-area sizes for the grid, and whether the colourbar lies flat."""
    n_window = max(grid.values.shape[0], other.values.shape[0] if other else 0)
    n_radius = max(grid.values.shape[1], other.values.shape[1] if other else 0)
    ax_w = min(max(n_radius * _CELL_W, _AX_W_MIN), _AX_W_MAX / (1 if n_panels == 1 else 1.4))
    ax_h = min(max(n_window * _CELL_H, _AX_H_MIN), _AX_H_MAX)
    horizontal = ax_h < _VERTICAL_COLORBAR_MIN_H
    # Margins: y ticks and label (left), colourbar and its label (right), x ticks and label,
    # legend and title (top and bottom).
    width = n_panels * (ax_w + 0.85) + (0.2 if horizontal else 1.05)
    height = ax_h + 1.45 + (0.7 if horizontal else 0.0) + (0.45 if warning else 0.0)
    width = max(width, 3.6 if n_panels == 1 else 6.5)
    return _Layout(width, height, ax_w, ax_h, n_panels, horizontal)


_COLORBAR_THICKNESS = 0.16  # inches
_COLORBAR_PAD = 0.12  # inches between the last panel and a vertical colourbar


def _add_colorbar(fig: Figure, mesh: QuadMesh, axes: list[Axes], layout: _Layout | None,
                  extend: str):
    """A colourbar of fixed thickness along the panels.

    A vertical bar is placed explicitly, :data:`_COLORBAR_PAD` right of the last panel, as
    an inset of it: a bar laid out by ``Figure.colorbar(ax=...)`` would sit right of
    everything the panels own, legends and titles wider than the panel included.
    """
    parent = axes[0] if len(axes) == 1 else axes
    if layout is None:  # the caller's axes: matplotlib's defaults
        return fig.colorbar(mesh, ax=parent, extend=extend, orientation="vertical")
    if layout.horizontal:
        length = layout.n_panels * layout.panel_width * (0.8 if layout.n_panels == 1 else 0.6)
        return fig.colorbar(
            mesh, ax=parent, extend=extend, orientation="horizontal", location="bottom",
            fraction=0.15, pad=0.03, shrink=0.8 if layout.n_panels == 1 else 0.6,
            aspect=length / _COLORBAR_THICKNESS)
    cax = axes[-1].inset_axes([1 + _COLORBAR_PAD / layout.panel_width, 0.0,
                               _COLORBAR_THICKNESS / layout.panel_width, 1.0])
    return fig.colorbar(mesh, cax=cax, extend=extend, orientation="vertical")


def _root_figure(ax: Axes) -> Figure:
    try:
        return ax.get_figure(root=True)
    except TypeError:  # matplotlib < 3.10
        return ax.figure


def _draw_grid(
    ax: Axes,
    grid: _Grid,
    *,
    norm: mcolors.Normalize,
    cmap: mcolors.Colormap,
    title: str | None,
    t_unit: str,
    legend_room: float | None = None,
) -> QuadMesh:
    """Tiles, hatching, axis labels and legend of one surface (cell labels come later).

    `legend_room` (inches) is the width the legend must keep within (a panel beside
    another); None for no bound.
    """
    n_window, n_radius = grid.values.shape
    x_edges = np.arange(n_radius + 1) - 0.5
    y_edges = np.arange(n_window + 1) - 0.5
    mesh = ax.pcolormesh(
        x_edges, y_edges, np.ma.masked_invalid(grid.values), cmap=cmap, norm=norm,
        linewidth=0, antialiased=False, zorder=1,
    )
    # White cell borders above the hatching, so that hatch lines stop at their cell.
    ax.vlines(x_edges[1:-1], y_edges[0], y_edges[-1], colors="white", linewidth=1.0, zorder=4)
    ax.hlines(y_edges[1:-1], x_edges[0], x_edges[-1], colors="white", linewidth=1.0, zorder=4)
    _mark_cells(ax, grid)
    ax.set_xlim(x_edges[0], x_edges[-1])
    ax.set_ylim(y_edges[0], y_edges[-1])
    _label_axes(ax, grid, t_unit, title)
    handles = _legend_handles(grid)
    if handles:
        _add_legend(ax, handles, ncol=len(handles) if n_radius >= 4 else 1,
                    room=math.inf if legend_room is None
                    else legend_room * _root_figure(ax).dpi)
    return mesh


def _mark_cells(ax: Axes, grid: _Grid) -> None:
    """Hatch the cells of ``grid.hatched`` and outline those of ``grid.filled``."""
    if grid.hatched is not None and grid.hatched.any():
        rows, cols = np.nonzero(grid.hatched)
        corners = [(j - 0.5, i - 0.5) for i, j in zip(rows, cols, strict=True)]
        # A wide white hatch under a thin black one: black lines with a white halo, legible on
        # the darkest and the lightest colours alike.
        for gid, colour, width, z in (
            (_HATCH_HALO_GID, "white", 1.7, 2), (HATCH_GID, "black", 0.8, 3)
        ):
            ax.add_collection(_hatch_cells(corners, colour, width, gid, z), autolim=False)
    if grid.filled is not None:
        rows, cols = np.nonzero(grid.filled)
        for gid, colour, width, style, z in (
            (_FILLED_HALO_GID, "white", 2.8, "solid", 4.5),
            (FILLED_GID, "black", 1.4, (0, (3, 2)), 4.6),
        ):
            ax.add_collection(_outline_cells(rows, cols, colour, width, style, gid, z),
                              autolim=False)


def _label_axes(ax: Axes, grid: _Grid, t_unit: str, title: str | None) -> None:
    """Ticks at the cells' windows and radii, axis labels, spines and the title."""
    n_window, n_radius = grid.values.shape
    ax.set_xticks(np.arange(n_radius), [_format_coordinate(r) for r in grid.radii])
    ax.set_yticks(np.arange(n_window), [_format_coordinate(w) for w in grid.windows])
    ax.tick_params(labelsize=_FS_TICK, length=3, width=0.8)
    ax.set_xlabel("Spatial window (km)", fontsize=_FS_LABEL)
    ax.set_ylabel(f"Temporal window ({t_unit})", fontsize=_FS_LABEL)
    for spine in ax.spines.values():
        spine.set_linewidth(0.8)
    if title:
        ax.set_title(title, fontsize=_FS_TITLE, pad=6)


def _legend_handles(grid: _Grid) -> list:
    """The legend's entries: the hatching, NA cells and outlined cells, where present."""
    handles = []
    if grid.hatched is not None and grid.hatch_label:
        handles.append(_legend_hatch(grid.hatch_label))
    if np.isnan(grid.values).any():
        handles.append(mpatches.Patch(facecolor=_NA_COLOR, edgecolor="0.55", linewidth=0.6,
                                      label="NA (no estimate)"))
    if grid.filled is not None:
        handles.append(mpatches.Patch(facecolor="white", edgecolor="black", linewidth=1.2,
                                      linestyle=(0, (3, 2)), label=grid.filled_label))
    return handles


def _add_legend(ax: Axes, handles: list, *, ncol: int, room: float) -> None:
    """The legend below the x-axis label, kept within `room` (pixels, the panel's width).

    Entries go one per row when a row of them is wider than the panel, and an entry still
    wider is broken into lines, so that the legends of neighbouring panels never meet.
    """
    labels = [h.get_label() for h in handles]
    for attempt in range(3):
        # The pad (in font sizes) clears the tick labels and the axis label.
        legend = ax.legend(
            handles=handles, labels=labels, loc="upper center", bbox_to_anchor=(0.5, 0.0),
            borderaxespad=3.4, ncol=ncol, frameon=False, fontsize=_FS_LEGEND,
            handlelength=2.2, handleheight=1.3, columnspacing=1.5,
        )
        width = legend.get_window_extent(_root_figure(ax).canvas.get_renderer()).width
        if width <= room or attempt == 2:
            return
        if ncol > 1:
            ncol = 1
            continue
        widest = max(len(text) for text in labels)
        chars = max(12, int(widest * room / width) - 4)
        labels = [textwrap.fill(text, chars) for text in labels]


def _hatch_cells(
    corners: list[tuple[float, float]], colour: str, width: float, gid: str, zorder: float
) -> PolyCollection:
    """One hatched unit square per cell (lower-left corners given), in one collection."""
    squares = [[(x, y), (x + 1.0, y), (x + 1.0, y + 1.0), (x, y + 1.0)] for x, y in corners]
    hatches = PolyCollection(
        squares, facecolors="none", edgecolors=colour, linewidths=0.0, hatch=_HATCH,
        zorder=zorder, gid=gid,
    )
    if hasattr(hatches, "set_hatchcolor"):  # matplotlib >= 3.10; before, the edge colour
        hatches.set_hatchcolor(colour)
    if hasattr(hatches, "set_hatch_linewidth"):
        hatches.set_hatch_linewidth(width)
    return hatches


def _outline_cells(rows: np.ndarray, cols: np.ndarray, colour: str, width: float, style,
                   gid: str, zorder: float) -> PolyCollection:
    """One outline per cell, drawn a little inside it (clear of the white cell borders)."""
    inset = 0.07
    squares = [[(j - 0.5 + inset, i - 0.5 + inset), (j + 0.5 - inset, i - 0.5 + inset),
                (j + 0.5 - inset, i + 0.5 - inset), (j - 0.5 + inset, i + 0.5 - inset)]
               for i, j in zip(rows, cols, strict=True)]
    return PolyCollection(squares, facecolors="none", edgecolors=colour, linewidths=width,
                          linestyles=style, zorder=zorder, gid=gid)


def _legend_hatch(label: str) -> mpatches.Patch:
    patch = mpatches.Patch(facecolor="white", edgecolor="black", hatch=_HATCH, linewidth=0.6,
                           label=label)
    if hasattr(patch, "set_hatchcolor"):
        patch.set_hatchcolor("black")
    if hasattr(patch, "set_hatch_linewidth"):
        patch.set_hatch_linewidth(0.9)
    return patch


def _style_colorbar(cbar, label: str) -> None:
    cbar.set_label(label, fontsize=_FS_LABEL)
    cbar.ax.tick_params(labelsize=_FS_TICK, length=3, width=0.8)
    cbar.outline.set_linewidth(0.8)


def _finish_cells(
    fig: Figure,
    axes: list[Axes],
    grids: list[_Grid],
    cbar,
    *,
    norm: mcolors.Normalize,
    cmap: mcolors.Colormap,
    annotate: bool,
    resize: bool = True,
) -> None:
    """Thin crowded tick labels and write the cell labels, sized to the laid-out cells.

    With `resize`, a figure whose panel titles run past its sides is first made wider.
    """
    # Lay the figure out first so the cells have their final size.
    fig.draw_without_rendering()
    if resize:
        _widen_for_titles(fig, axes)
    wrapped = False
    for ax in axes:
        wrapped |= _wrap_label(ax.yaxis.label, ax.get_window_extent().height, vertical=True)
    vertical = cbar.orientation == "vertical"
    along = cbar.ax.get_window_extent()
    cbar_label = cbar.ax.yaxis.label if vertical else cbar.ax.xaxis.label
    wrapped |= _wrap_label(cbar_label, along.height if vertical else along.width,
                           vertical=vertical)
    if wrapped:
        fig.draw_without_rendering()
    for ax, grid in zip(axes, grids, strict=True):
        cell_w, cell_h = _cell_size_points(ax, grid.values.shape)
        _thin_ticks(ax, cell_w, cell_h)
        _write_cells(ax, grid, norm=norm, cmap=cmap, annotate=annotate,
                     cell_w=cell_w, cell_h=cell_h)


_TITLE_MARGIN = 0.15  # inches between a panel title and a side of the figure


def _widen_for_titles(fig: Figure, axes: list[Axes]) -> None:
    """Widen a laid-out figure until the panel titles keep clear of its sides (constrained
    layout leaves the width of titles out)."""
    for _ in range(3):
        margin = _TITLE_MARGIN * fig.dpi
        overflow = max(max(ax.title.get_window_extent().x1 - (fig.bbox.x1 - margin),
                           fig.bbox.x0 + margin - ax.title.get_window_extent().x0)
                       for ax in axes)
        if overflow <= 0:
            return
        # A title is centred on its panel, which takes a share of the added width.
        fig.set_figwidth(fig.get_figwidth() + 2 * len(axes) * overflow / fig.dpi)
        fig.draw_without_rendering()


def _wrap_label(label, room: float, *, vertical: bool) -> bool:
    """Break an axis label before its unit if it is longer than the side it labels."""
    text = label.get_text()
    if not text or "\n" in text or " (" not in text:
        return False
    extent = label.get_window_extent()
    if (extent.height if vertical else extent.width) <= room:
        return False
    label.set_text(text.replace(" (", "\n(", 1))
    return True


def _cell_size_points(ax: Axes, shape: tuple[int, int]) -> tuple[float, float]:
    fig = _root_figure(ax)
    bbox = ax.get_window_extent()
    to_points = 72.0 / fig.dpi
    return bbox.width * to_points / shape[1], bbox.height * to_points / shape[0]


def _thin_ticks(ax: Axes, cell_w: float, cell_h: float) -> None:
    """Label every k-th cell when the labels would overlap."""
    x_labels = [t.get_text() for t in ax.get_xticklabels()]
    widest = max((len(s) for s in x_labels), default=1)
    x_step = max(1, math.ceil((0.62 * _FS_TICK * widest + 6) / max(cell_w, 1e-9)))
    y_step = max(1, math.ceil(1.4 * _FS_TICK / max(cell_h, 1e-9)))
    for labels, step in ((ax.get_xticklabels(), x_step), (ax.get_yticklabels(), y_step)):
        if step > 1:
            for k, label in enumerate(labels):
                label.set_visible(k % step == 0)


def _write_cells(
    ax: Axes,
    grid: _Grid,
    *,
    norm: mcolors.Normalize,
    cmap: mcolors.Colormap,
    annotate: bool,
    cell_w: float,
    cell_h: float,
) -> None:
    values = grid.values
    texts = [_format_value(v) for v in values.ravel() if np.isfinite(v)]
    widest = max((len(s) for s in texts), default=2)
    # Room for the label with its padding: about 0.6 em per character, 1.25 em of height.
    size = min(_FS_CELL_MAX, 0.78 * cell_w / (0.6 * widest + 0.6), 0.62 * cell_h / 1.25)
    legible = size >= _FS_CELL_MIN
    size = max(size, _FS_CELL_MIN)
    for i, j in np.ndindex(values.shape):
        v = values[i, j]
        if not np.isfinite(v):
            ax.text(j, i, "NA", ha="center", va="center", fontsize=size, color="0.3",
                    zorder=5, gid=NA_GID)
            continue
        if not (annotate and legible):
            continue
        background = cmap(norm(v))
        colour = "white" if _luminance(background) < 0.2 else "black"
        hatched = grid.hatched is not None and grid.hatched[i, j]
        ax.text(
            j, i, _format_value(v), ha="center", va="center", fontsize=size, color=colour,
            zorder=5, gid=VALUE_GID,
            # On hatched cells a patch of the cell's own colour keeps the digits clear of the
            # hatch lines.
            bbox={"boxstyle": "square,pad=0.15", "facecolor": background, "edgecolor": "none"}
            if hatched else None,
        )
