"""Figures, one module per kind, each drawn from the data contract's tables and arrays.

``surfaces`` (effect surfaces over the window grid, alone or side by side: the paper's
Figure 6), ``nulls`` (null distributions of the randomisation checks), ``maps`` (the study
area with its regions, bases, projects, events and rivers: Figure 4), ``timeline`` (events per
month: Figure 5), ``predictive`` (a count model's posterior predictive check), ``recovery``
(error and coverage of a recovery battery) and ``style`` (the shared fonts, colours, norms,
warning text and number formats, and :func:`save_figure`).
Every function returns a matplotlib figure and saves nothing; :func:`save_figure` writes one.
Imports: errors, options, core, simulate, io, wakes; never an estimator or a check (mwa,
bayes, checks, studies, cli), whose results come in as tables and datasets.
"""

from bayes_wake.plotting.maps import MapStyle, add_scale_bar, plot_study_map
from bayes_wake.plotting.nulls import (
    NULL_TEXT_GID,
    null_distribution_caption,
    plot_null_distributions,
)
from bayes_wake.plotting.predictive import plot_predictive_check
from bayes_wake.plotting.recovery import plot_recovery
from bayes_wake.plotting.style import WARNING_GID, save_figure
from bayes_wake.plotting.surfaces import (
    FILLED_GID,
    HATCH_GID,
    NA_GID,
    VALUE_GID,
    SurfaceStyle,
    plot_effect_surface,
    plot_surfaces_side_by_side,
)
from bayes_wake.plotting.timeline import plot_events_per_month

__all__ = [
    "FILLED_GID",
    "HATCH_GID",
    "NA_GID",
    "NULL_TEXT_GID",
    "VALUE_GID",
    "WARNING_GID",
    "MapStyle",
    "SurfaceStyle",
    "add_scale_bar",
    "null_distribution_caption",
    "plot_effect_surface",
    "plot_events_per_month",
    "plot_null_distributions",
    "plot_predictive_check",
    "plot_recovery",
    "plot_study_map",
    "plot_surfaces_side_by_side",
    "save_figure",
]
