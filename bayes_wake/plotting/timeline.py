"""Events over time: the paper's Figure 5, projects and outcome events per calendar month."""

from __future__ import annotations

from collections.abc import Collection

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from bayes_wake.plotting.style import (
    _AID_COLOUR,
    _OUTCOME_COLOUR,
    _QIP_COLOUR,
    _SIMULATED_COLOUR,
)

__all__ = ["plot_events_per_month"]

_PROJECT_COLUMNS = {"Aid projects": ("aid", _AID_COLOUR), "QIPs": ("qip", _QIP_COLOUR)}
_OUTCOME_PALETTE = [_OUTCOME_COLOUR, "#6a51a3", "#525252", "#238b45", "#d94801"]


def plot_events_per_month(monthly: pd.DataFrame, simulated: Collection[str] = ()) -> Figure:
    """Draw the events per calendar month by role (the paper's Figure 5).

    Two panels on one time axis: above, the projects starting per month (aid projects and
    QIPs); below, the outcome events per month, one line each.

    Parameters
    ----------
    monthly
        One row per month: ``month`` (``"YYYY-MM"``), ``QIPs`` and ``Aid projects`` (counts),
        and one column of counts per outcome, named by its label.
    simulated
        The project kinds (``"qip"``, ``"aid"``) that were simulated: their legend entries
        say ``(SIMULATED)``, and if any is, so does the title, in dark red.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, 9.0 x 6.0 inches, with the two axes.
    """
    x = pd.PeriodIndex(monthly["month"], freq="M").to_timestamp()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9.0, 6.0), sharex=True,
                                      layout="constrained")
    for column, (kind, colour) in _PROJECT_COLUMNS.items():
        sim = " (SIMULATED)" if kind in simulated else ""
        top.plot(x, monthly[column], color=colour, linewidth=1.6, label=column + sim)
    top.set_ylabel("projects starting per month")
    top.legend(loc="upper left", fontsize=9)
    outcomes = [c for c in monthly.columns if c != "month" and c not in _PROJECT_COLUMNS]
    for k, column in enumerate(outcomes):
        colour = _OUTCOME_PALETTE[k % len(_OUTCOME_PALETTE)]
        bottom.plot(x, monthly[column], color=colour, linewidth=1.4, label=column)
    bottom.set_ylabel("outcome events per month")
    bottom.set_xlabel("month")
    bottom.legend(loc="upper left", fontsize=9)
    for ax in (top, bottom):
        ax.set_ylim(bottom=0)
        ax.grid(color="#eeeeee", linewidth=0.5)
    fig.suptitle("Control, treatment and outcome events over the study period"
                 + (" (projects SIMULATED)" if simulated else ""), fontsize=12,
                 color=_SIMULATED_COLOUR if simulated else "black")
    return fig
