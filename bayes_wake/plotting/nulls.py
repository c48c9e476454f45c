"""Null distributions of the randomisation checks of ``bayes-wake sensitivity``.

:func:`plot_null_distributions` draws, for each check (label permutations, date-shift
placebos), the histograms of its valid null draws of two statistics (the number of
significant windows and max |t|) with the observed value; :func:`null_distribution_caption`
is the caption that says what was left out. A check that is not informative gets a text panel
saying why (``gid`` :data:`NULL_TEXT_GID`).
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bayes_wake.errors import SettingsError
from bayes_wake.io.tables import counted
from bayes_wake.plotting.style import _FS_LABEL, _FS_LEGEND, _FS_TITLE

__all__ = ["NULL_TEXT_GID", "null_distribution_caption", "plot_null_distributions"]

NULL_TEXT_GID = "bayes_wake.null_text"
"""``gid`` of the text of a null-distribution panel whose check is not informative."""

_NULL_NAMES = {"labels": "Label permutations", "date_shift": "Date-shift placebos"}
_NULL_COLOURS = {"labels": "#3467b3", "date_shift": "#d9822b"}
_NULL_STATS = {"n_significant": "significant windows (p <= alpha)",
               "max_abs_t": "max |t| over the grid"}


def plot_null_distributions(tests) -> tuple[Figure, dict[str, Axes]]:
    """Histograms of the null distributions of the randomisation checks, one row per check.

    Each row has two panels, the number of significant windows and max |t|, drawn from the
    check's valid draws only (so the x axis is finite: draws without an estimable window or
    with a near-infinite t are left out, and :func:`null_distribution_caption` says how
    many). The y axis is the share of the valid draws per bin; the black line is the observed
    value. A check, or a statistic, that is not informative gets a text panel saying why.

    Parameters
    ----------
    tests
        :class:`~bayes_wake.checks.randomisation.RandomisationTest` by kind (``labels``,
        ``date_shift``), in row order.

    Returns
    -------
    tuple
        The figure and its axes by ``"<kind>:<statistic>"`` (``"<kind>:text"`` for a check
        that is not informative as a whole).
    """
    if not tests:
        raise SettingsError("no randomisation check to draw")
    mosaic = [[f"{kind}:text"] * 2 if test.problem() else
              [f"{kind}:n_significant", f"{kind}:max_abs_t"] for kind, test in tests.items()]
    fig, axes = plt.subplot_mosaic(mosaic, figsize=(10, 3.2 * len(mosaic)),
                                   layout="constrained")
    for name, ax in axes.items():
        kind, stat = name.split(":")
        test = tests[kind]
        title = _NULL_NAMES.get(kind, kind)
        problem = test.problem() if stat == "text" else (
            test.count_problem() if stat == "n_significant" else test.max_t_problem())
        if problem:
            heading = title if stat == "text" else f"{title}: {_NULL_STATS[stat]}"
            _null_text_panel(ax, f"{heading}: not informative", problem, test,
                             width=110 if stat == "text" else 55)
        else:
            _null_histogram(ax, test, stat, _NULL_COLOURS.get(kind, "#555555"))
            ax.set_title(f"{title}: {_NULL_STATS[stat]}", fontsize=_FS_TITLE)
    return fig, axes


def _null_histogram(ax: Axes, test, stat: str, colour: str) -> None:
    """One statistic's valid null draws as shares per bin, with the observed value."""
    values = test.null.loc[test.valid, stat].to_numpy(dtype=float)
    observed = float(test.observed_count if stat == "n_significant" else
                     test.observed_max_abs_t)
    if stat == "n_significant":
        bins = np.arange(-0.5, max(values.max(initial=0), observed) + 1.5)
    else:
        bins = np.histogram_bin_edges(np.append(values, observed), bins=30)
    ax.hist(values, bins=bins, weights=np.full(len(values), 1 / len(values)), color=colour,
            alpha=0.75, label=f"{test.n_valid:,} valid draws of {test.n_draws:,}")
    text = f"{observed:g}" if stat == "n_significant" else f"{observed:.2f}"
    ax.axvline(observed, color="black", lw=2, label=f"observed ({text})")
    ax.set_xlabel(_NULL_STATS[stat], fontsize=_FS_LABEL)
    ax.set_ylabel("share of valid draws", fontsize=_FS_LABEL)
    ax.legend(fontsize=_FS_LEGEND)


def _null_text_panel(ax: Axes, title: str, reason: str, test, *, width: int) -> None:
    """A panel that says why a check (or one of its statistics) is not informative."""

    body = textwrap.fill(f"Not informative, because {reason} "
                         f"({counted(test.n_valid, 'valid draw')} of {test.n_draws:,}).",
                         width=width)
    ax.set_axis_off()
    ax.set_title(title, fontsize=_FS_TITLE)
    ax.text(0.5, 0.5, body, ha="center", va="center", fontsize=_FS_LABEL,
            transform=ax.transAxes, gid=NULL_TEXT_GID,
            bbox={"boxstyle": "round", "facecolor": "#f4f4f4", "edgecolor": "#999999"})


def null_distribution_caption(tests, huge_t: float) -> str:
    """The caption of :func:`plot_null_distributions`: what is drawn and what was left out
    (``huge_t``: the |t| from which a draw counts as a near-perfect fit)."""
    left_out = [f"{_NULL_NAMES.get(kind, kind).lower()} {test.n_draws - test.n_valid:,} of "
                f"{counted(test.n_draws, 'draw')}" for kind, test in tests.items()
                if test.n_draws > test.n_valid]
    out = ("Null distributions of the number of significant windows and of max |t|, as the "
           "share of each check's valid draws per bin; the black line is the observed value. "
           "A check that is not informative shows why instead.")
    if left_out:
        out += (" Left out as invalid (no estimable window, or a near-perfect fit with "
                f"|t| >= {huge_t:g} or not finite): {'; '.join(left_out)}.")
    else:
        out += " No draw was left out."
    return out
