"""The recovery battery's figure: error and interval coverage per method and scenario."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["plot_recovery"]


def plot_recovery(summary: pd.DataFrame) -> Figure:
    """Draw the error and the coverage of every method on every scenario, side by side.

    Left, the RMSE of the point estimate; right, the share of cells whose interval covers the
    truth, with the nominal coverages (the table's ``level`` of the posterior and of OLS; 0.90
    and 0.95 without one) as grey lines. One bar per method in each scenario's row, scenarios
    top to bottom in the table's order.

    Parameters
    ----------
    summary
        The table of :func:`bayes_wake.checks.recovery.score_recovery`: one row per method and
        scenario, with ``method``, ``scenario``, ``rmse`` (events per treated wake) and
        ``coverage`` (a share).

    Returns
    -------
    matplotlib.figure.Figure
        The figure, 11 inches wide, with the two axes and, below them, one legend of the
        methods and the nominal coverages.
    """
    methods = list(dict.fromkeys(summary["method"]))
    scenarios = list(dict.fromkeys(summary["scenario"]))
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.45 * len(scenarios) + 1.8), sharey=True,
                             layout="constrained")
    y = np.arange(len(scenarios))
    height = 0.8 / len(methods)
    for k, method in enumerate(methods):
        rows = summary[summary["method"] == method].set_index("scenario").reindex(scenarios)
        offset = (k - (len(methods) - 1) / 2) * height
        axes[0].barh(y + offset, rows["rmse"], height, label=method)
        axes[1].barh(y + offset, rows["coverage"], height, label=method)
    axes[0].set_xlabel("RMSE of the point estimate (events per treated wake)")
    axes[1].set_xlabel("share of cells whose interval covers the truth")
    ols = summary["method"] == "ols"
    for which, style, default in ((~ols, "--", 0.9), (ols, ":", 0.95)):
        if which.any():
            level = summary.loc[which, "level"].iloc[0] if "level" in summary else default
            level = default if pd.isna(level) else level
            name = "OLS" if style == ":" else "posterior"
            axes[1].axvline(level, color="0.3", ls=style, lw=1,
                            label=f"{level:.2f} ({name} nominal)")
    axes[1].set_xlim(0, 1)
    axes[0].set_yticks(y, scenarios)
    axes[0].invert_yaxis()
    fig.suptitle("Recovery of planted effects on the study's real outcome events")
    handles = [*axes[1].containers, *axes[1].get_lines()]  # the methods, then the nominals
    _legend_below(fig, handles, [h.get_label() for h in handles])
    return fig


def _legend_below(fig: Figure, handles: list, labels: list[str]) -> None:
    """The legend under both axes, in as few rows as the figure's width allows: over the
    axes it would hide bars."""
    ncols = len(handles)
    renderer = fig.canvas.get_renderer()
    while True:
        legend = fig.legend(handles, labels, loc="outside lower center", ncols=ncols,
                            fontsize=8, frameon=False)
        if ncols == 1 or legend.get_window_extent(renderer).width <= fig.bbox.width:
            return
        legend.remove()
        ncols -= 1
