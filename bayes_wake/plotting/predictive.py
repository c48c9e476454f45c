"""The posterior predictive check's figure: observed count statistics beside replications."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["plot_predictive_check"]

_LABELS = {"zero_share": "share of wakes\nwith no event", "dispersion": "variance / mean",
           "max_count": "largest wake count"}


def plot_predictive_check(table: pd.DataFrame, title: str = "", t_unit: str = "days") -> Figure:
    """Per statistic (one row of axes) and cell (x, window outer): the replications' 90% band
    (grey bar, dot at their mean) and the observed value (black; red where it misfits).

    Parameters
    ----------
    table
        :func:`bayes_wake.bayes.ppc.predictive_table`: ``t_window``, ``spat_window``,
        ``statistic``, ``observed``, ``replicated_mean``, ``replicated_lower``,
        ``replicated_upper``, ``misfit``.
    title
        Drawn above the axes (the verdict, say).
    t_unit
        Unit of the windows, for the tick labels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    statistics = list(dict.fromkeys(table["statistic"]))
    fig, axes = plt.subplots(len(statistics), 1, figsize=(11, 2.2 * len(statistics) + 1),
                             sharex=True, layout="constrained", squeeze=False)
    for ax, name in zip(axes[:, 0], statistics):
        rows = table[table["statistic"] == name].reset_index(drop=True)
        x = np.arange(len(rows))
        ax.vlines(x, rows["replicated_lower"], rows["replicated_upper"], color="0.6", lw=4,
                  label="replicated (90%)")
        ax.plot(x, rows["replicated_mean"], "o", color="0.4", ms=3)
        bad = rows["misfit"].to_numpy(bool)
        ax.plot(x[~bad], rows["observed"][~bad], "_", color="black", ms=12, mew=2,
                label="observed")
        ax.plot(x[bad], rows["observed"][bad], "_", color="#cb181d", ms=12, mew=2,
                label="observed, misfit")
        ax.set_ylabel(_LABELS.get(name, name), fontsize=9)
        ax.set_xticks(x, [f"{t:g}/{s:g}" for t, s in zip(rows["t_window"], rows["spat_window"])],
                      rotation=90, fontsize=7)
    axes[0, 0].legend(fontsize=8, ncols=3, loc="lower right", bbox_to_anchor=(1.0, 1.0))
    axes[-1, 0].set_xlabel(f"cell: window ({t_unit}) / radius (km)")
    if title:
        fig.suptitle(title, fontsize=9, wrap=True)
    return fig
