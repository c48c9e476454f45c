"""The shared style of every figure: font sizes, colours, colour norms, the warning over a
figure that is not to be trusted, number formatting, and :func:`save_figure`.

:data:`WARNING_GID` is the ``gid`` of the warning text (and, with ``"_frame"`` appended, of its
red frame), so that callers and tests can find it.
"""

from __future__ import annotations

import math
import os
import secrets
import textwrap
from collections.abc import Hashable
from pathlib import Path

import matplotlib.colors as mcolors
import matplotlib.patches as mpatches
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine

from bayes_wake.errors import SettingsError

__all__ = ["WARNING_GID", "save_figure"]

WARNING_GID = "bayes_wake.warning"
"""``gid`` of the warning text drawn over a figure of a fit that is not to be trusted."""

# Font sizes (points) chosen for a figure printed at its own size in a paper.
_FS_TICK = 9
_FS_LABEL = 10
_FS_TITLE = 11
_FS_LEGEND = 9
_FS_CELL_MAX = 9
_FS_CELL_MIN = 5.5

_NA_COLOR = "#d9d9d9"  # a cell without an estimate (R's NA)
_MINUS = "\N{MINUS SIGN}"

# The roles of the project data (studies.sauter.projects' ``kind``), the outcome events, and
# the title of a figure drawn from simulated projects.
_AID_COLOUR = "#2171b5"
_QIP_COLOUR = "#fe9929"
_OUTCOME_COLOUR = "#cb181d"
_SIMULATED_COLOUR = "#8b0000"


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write a figure to a file atomically and close it.

    The figure is written to a temporary file in the target directory, which then replaces
    `path` in one step (:func:`os.replace`), so a reader never sees a half-written file. The
    figure is closed whether or not writing succeeds.

    Parameters
    ----------
    fig
        The figure to write.
    path
        Target file; its suffix picks the format: ``.png`` (200 dpi), ``.svg`` or ``.pdf``
        (vector; written without a creation date, so reruns give the same bytes). The
        directory must exist.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    SettingsError
        If the suffix is not one of ``.png``, ``.svg``, ``.pdf``.
    FileNotFoundError
        If the directory of `path` does not exist.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    options: dict[str, dict] = {
        "png": {"dpi": 200},
        "svg": {"metadata": {"Date": None}},
        "pdf": {"metadata": {"CreationDate": None}},
    }
    try:
        if fmt not in options:
            raise SettingsError(
                f"cannot tell the figure format from '{path.name}': use a .png, .svg or .pdf file"
            )
        directory = path.parent
        if not directory.is_dir():
            raise FileNotFoundError(f"directory of the figure does not exist: '{directory}'")
        tmp = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
        # os.open with mode 0o666 honours the umask, unlike tempfile's 0o600.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as handle:
                fig.savefig(handle, format=fmt, bbox_inches="tight", pad_inches=0.05,
                            **options[fmt])
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    finally:
        plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------
# Colours and norms


def _colormap(cmap: str | mcolors.Colormap) -> mcolors.Colormap:
    try:
        base = plt.get_cmap(cmap) if isinstance(cmap, str) else cmap
    except ValueError as err:
        raise SettingsError(f"unknown colour map {cmap!r}") from err
    return base.with_extremes(bad=_NA_COLOR)


def _make_norm(
    values: np.ndarray, vmin: float | None, vmax: float | None
) -> tuple[mcolors.Normalize, str]:
    """A norm with 0 at the centre of the colour map, and the colourbar's ``extend``."""
    finite = values[np.isfinite(values)]
    if vmin is None and vmax is None:
        largest = float(np.max(np.abs(finite))) if finite.size else 0.0
        largest = largest if largest > 0 else 1.0
        vmin, vmax = -largest, largest
    elif vmin is None:
        vmin = -abs(float(vmax))
    elif vmax is None:
        vmax = abs(float(vmin))
    vmin, vmax = float(vmin), float(vmax)
    if not (vmin < 0.0 < vmax):
        raise SettingsError(
            f"the colour scale must straddle 0 (the centre of the diverging map): "
            f"got vmin={vmin:g}, vmax={vmax:g}"
        )
    if math.isclose(-vmin, vmax):
        norm: mcolors.Normalize = mcolors.Normalize(vmin=vmin, vmax=vmax)
    else:
        norm = mcolors.TwoSlopeNorm(vcenter=0.0, vmin=vmin, vmax=vmax)
    below = finite.size and finite.min() < vmin
    above = finite.size and finite.max() > vmax
    extend = "both" if below and above else "min" if below else "max" if above else "neither"
    return norm, extend


def _luminance(rgba: tuple[float, float, float, float]) -> float:
    """Relative luminance (WCAG) of an sRGB colour."""
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgba[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


# --------------------------------------------------------------------------------------------
# The warning over a figure that is not to be trusted


_FS_WARNING = _FS_TITLE + 1
_FS_WARNING_MIN = 9
_WARNING_BOX_PAD = 0.35  # font sizes
_WARNING_FRAME_WIDTH = 4.0  # points, half of it inside the figure
_WARNING_MARGIN = 8.0  # points between the text box and the frame


def _draw_warning(fig: Figure, warning: str) -> None:
    """Draw `warning` in a red box over the top of `fig`, and a red frame around it.

    A warning wider than the figure is set smaller, down to :data:`_FS_WARNING_MIN`, then
    broken into lines (first at its ``" | "`` separators), and the figure grows by the lines
    added, so the box stays inside the frame.
    """
    engine = fig.get_layout_engine()
    if isinstance(engine, ConstrainedLayoutEngine):
        # Keep the text box and the panels' labels clear of the red frame. (The suptitle must
        # keep its automatic position: constrained layout makes room only for that.)
        engine.set(h_pad=0.12, w_pad=0.1)
    text = fig.suptitle(
        warning, color="#b30000", fontsize=_FS_WARNING, fontweight="bold", gid=WARNING_GID,
        bbox={"boxstyle": f"round,pad={_WARNING_BOX_PAD}", "facecolor": "#fde0dd",
              "edgecolor": "#b30000", "linewidth": 1.5},
    )
    _fit_warning(fig, text)
    fig.add_artist(mpatches.Rectangle(
        (0.0, 0.0), 1.0, 1.0, transform=fig.transFigure, fill=False, edgecolor="#b30000",
        linewidth=_WARNING_FRAME_WIDTH, zorder=100, gid=WARNING_GID + "_frame",
    ))


def _fit_warning(fig: Figure, text) -> None:
    """Shrink, then wrap, the warning text until its box fits inside the red frame."""
    renderer = fig.canvas.get_renderer()
    to_pixels = fig.dpi / 72.0

    def room(size: float) -> float:
        box = 2 * (_WARNING_BOX_PAD * size + _WARNING_FRAME_WIDTH / 2 + _WARNING_MARGIN)
        return fig.bbox.width - box * to_pixels

    width = text.get_window_extent(renderer).width
    if width <= room(_FS_WARNING):
        return
    size = max(_FS_WARNING_MIN, math.floor(_FS_WARNING * room(_FS_WARNING) / width * 2) / 2)
    text.set_fontsize(size)
    if text.get_window_extent(renderer).width <= room(size):
        return
    lines = text.get_text().split(" | ")
    text.set_text("\n".join(lines))
    chars = max(len(line) for line in lines)
    while text.get_window_extent(renderer).width > room(size) and chars > 10:
        chars = int(chars * 0.9)
        text.set_text("\n".join(textwrap.fill(line, chars) for line in lines))
    added = text.get_text().count("\n")
    fig.set_figheight(fig.get_figheight() + added * 1.2 * size / 72.0)


# --------------------------------------------------------------------------------------------
# Numbers


def _format_value(v: float) -> str:
    text = f"{v:.2f}"
    if text in ("-0.00", "0.00"):
        return "0.00"
    return text.replace("-", _MINUS)


def _format_coordinate(v: Hashable) -> str:
    v = float(v)
    return f"{v:g}".replace("-", _MINUS)
