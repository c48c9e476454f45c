"""The grid of temporal and spatial windows, expanded and checked as R's ``mwa`` does."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bayes_wake.errors import SettingsError

__all__ = ["expand_windows", "TIME_UNITS", "normalise_time_unit", "unit_ns", "units_per_day",
           "MAX_SPAN_NS", "check_window_span", "GridRegion", "parse_grid_region"]

#: The longest time span a time in nanoseconds (int64, as pandas and NumPy hold times) can
#: represent: 2**63 - 1 ns, about 106,751 days or 292 years.
MAX_SPAN_NS = np.iinfo(np.int64).max

#: Time units and their length in seconds.
TIME_UNITS: dict[str, int] = {"days": 86_400, "hours": 3_600, "minutes": 60, "seconds": 1}
_UNIT_ALIASES = {
    "day": "days", "d": "days",
    "hour": "hours", "h": "hours",
    "mins": "minutes", "min": "minutes", "minute": "minutes",
    "secs": "seconds", "sec": "seconds", "second": "seconds", "s": "seconds",
}


def normalise_time_unit(t_unit: str) -> str:
    """Return the canonical name of a time unit (``days``, ``hours``, ``minutes``, ``seconds``)."""
    unit = _UNIT_ALIASES.get(str(t_unit).lower(), str(t_unit).lower())
    if unit not in TIME_UNITS:
        raise SettingsError(
            f"unknown t_unit {t_unit!r}; use one of {', '.join(TIME_UNITS)}"
        )
    return unit


def unit_ns(t_unit: str) -> int:
    """Nanoseconds in one ``t_unit`` (R's spellings such as ``mins`` accepted)."""
    return TIME_UNITS[normalise_time_unit(t_unit)] * 1_000_000_000


def units_per_day(t_unit: str) -> int:
    """How many ``t_unit`` make a day (1 for days, 24 for hours, ...)."""
    return TIME_UNITS["days"] // TIME_UNITS[normalise_time_unit(t_unit)]


def check_window_span(windows, t_unit: str, *, name: str = "t_window") -> None:
    """Refuse temporal windows longer than a time in nanoseconds can represent.

    Times are int64 nanoseconds, so a window of more than 2**63 - 1 ns (about 106,751 days)
    cannot be told apart from an overflowed one. A window longer than the record is allowed
    (every event of the record is in it); the counter counts it exactly.

    Raises
    ------
    SettingsError
        Naming ``name``, the longest window, and the longest representable one in ``t_unit``.
    """
    unit = normalise_time_unit(t_unit)
    longest = max((float(w) for w in np.ravel(windows)), default=0.0)
    limit = MAX_SPAN_NS // unit_ns(unit)
    if not longest <= limit:
        raise SettingsError(
            f"{name}: a window of {longest:,.0f} {unit} is longer than a time can represent "
            f"(at most {limit:,} {unit}, about 292 years, the range of int64 nanoseconds)")


def expand_windows(
    minimum: float, maximum: float, step: float, *, name: str = "window", temporal: bool = False,
    t_unit: str | None = None,
) -> np.ndarray:
    """Expand ``(min, max, step)`` into ``min, min + step, ..., max`` as R's ``mwa`` does.

    Parameters
    ----------
    minimum, maximum, step
        The window grid, in the time unit (temporal) or in km (spatial).
    name
        The argument's name, for error messages (``t_window`` or ``spat_window``).
    temporal
        Temporal windows must be whole numbers of at least 2 units (a pre-trend needs two
        halves), as in R.
    t_unit
        With ``temporal``: the windows' unit, to refuse windows longer than a time can
        represent (:func:`check_window_span`); without it, windows beyond that in seconds
        (the finest unit) are refused.

    Returns
    -------
    numpy.ndarray
        int64 window lengths (temporal) or float64 radii in km (spatial).

    Raises
    ------
    SettingsError
        If the step does not divide the range, the grid is empty or reversed, or a temporal
        window is not a whole number >= 2 or is longer than a time can represent.
    """
    values = [minimum, maximum, step]
    if not all(isinstance(v, (int, float, np.integer, np.floating)) for v in values) or not all(
        math.isfinite(float(v)) for v in values
    ):
        raise SettingsError(f"{name}: min, max and step must be finite numbers, got {values}")
    minimum, maximum, step = (float(v) for v in values)
    if step <= 0:
        raise SettingsError(f"{name}: the step must be positive, got {step:g}")
    if maximum < minimum:
        raise SettingsError(f"{name}: max {maximum:g} is below min {minimum:g}")
    if minimum <= 0:
        raise SettingsError(f"{name}: windows must be positive, got min {minimum:g}")
    ratio = (maximum - minimum) / step
    # R: abs(ratio) - round(ratio) < sqrt(.Machine$double.eps)
    if abs(ratio - round(ratio)) >= math.sqrt(np.finfo(float).eps):
        raise SettingsError(
            f"{name}: the step {step:g} does not divide the range {minimum:g}..{maximum:g}"
        )
    count = int(round(ratio)) + 1
    grid = minimum + np.arange(count) * ((maximum - minimum) / (count - 1) if count > 1 else 0)
    if count > 1:
        grid[-1] = maximum
    # R hands the windows to Java as text with 15 significant digits.
    grid = np.array([float(f"{v:.15g}") for v in grid])
    if temporal:
        if minimum < 2:
            raise SettingsError(
                f"{name}: the smallest temporal window is {minimum:g}; it must be at least 2 "
                "to compute a pre-trend"
            )
        if not np.all(grid == np.round(grid)):
            raise SettingsError(f"{name}: temporal windows must be whole numbers, got {grid}")
        check_window_span(grid, t_unit or "seconds", name=name)
        return grid.astype(np.int64)
    return grid


#: The comparisons of a grid region's conditions, and its names.
_OPS = {">=": np.greater_equal, "<=": np.less_equal, ">": np.greater, "<": np.less,
        "==": np.equal, "=": np.equal}
_NAMES = ("t", "s")


@dataclass(frozen=True)
class GridRegion:
    """A region of the (window, radius) grid: conditions joined by "and".

    Attributes
    ----------
    conditions
        ``(name, operator, value)`` with name ``t`` (temporal window, ``t_unit``) or ``s``
        (radius, km), operator one of ``>= <= > < ==``.
    t_unit
        Unit of ``t`` (for sentences).
    """

    conditions: tuple[tuple[str, str, float], ...] = ()
    t_unit: str = "days"

    def mask(self, windows: Sequence[float], radii: Sequence[float]) -> np.ndarray:
        """Bool array (windows, radii): True for the cells in the region."""
        w = np.asarray(windows, dtype=float)[:, None]
        r = np.asarray(radii, dtype=float)[None, :]
        mask = np.ones((w.shape[0], r.shape[1]), dtype=bool)
        for name, op, value in self.conditions:
            mask &= _OPS[op](w if name == "t" else r, value)
        return mask

    def describe(self) -> str:
        """In words: ``t >= 20 days and s <= 9 km`` (or ``the whole grid``)."""
        if not self.conditions:
            return "the whole grid"
        parts = [f"{name} {op if op != '=' else '=='} {value:g} "
                 f"{self.t_unit if name == 't' else 'km'}"
                 for name, op, value in self.conditions]
        return " and ".join(parts)

    def to_dict(self) -> dict:
        """JSON-ready form (for task keys)."""
        return {"conditions": [list(c) for c in self.conditions], "t_unit": self.t_unit}

    @classmethod
    def from_dict(cls, data: dict) -> GridRegion:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple((str(n), str(o), float(v)) for n, o, v in data["conditions"]),
                   data.get("t_unit", "days"))


def parse_grid_region(text: str | None, *, windows: Sequence[float] | None = None,
                      radii: Sequence[float] | None = None, t_unit: str = "days"
                      ) -> GridRegion:
    """Parse a grid region like ``"t>=20, s<=9"`` (conditions joined by commas or "and").

    Parameters
    ----------
    text
        The conditions; ``t`` is the temporal window (``t_unit``), ``s`` the radius (km).
        None or empty means the whole grid.
    windows, radii
        The grid; when given, a region holding no cell is an error.
    t_unit
        The unit of ``t``.

    Returns
    -------
    GridRegion

    Raises
    ------
    SettingsError
        A condition that does not parse, or a region without cells.
    """
    if text is None or not text.strip():
        region = GridRegion((), t_unit)
    else:
        parts = [p.strip() for p in re.split(r",|\band\b|&", text) if p.strip()]
        conditions = []
        for part in parts:
            match = re.fullmatch(r"([A-Za-z_]+)\s*(>=|<=|==|=|>|<)\s*([-+]?[0-9.]+(?:e[-+]?\d+)?)",
                                 part)
            if not match:
                raise SettingsError(f"grid_region: cannot read {part!r}; write conditions "
                                    "like 't>=20, s<=9' (t: window, s: radius in km)")
            name, op, value = match.groups()
            name = {"window": "t", "t_window": "t", "radius": "s", "spat_window": "s"}.get(
                name, name)
            if name not in _NAMES:
                raise SettingsError(f"grid_region: unknown name {match.group(1)!r}; use t "
                                    "(temporal window) or s (radius, km)")
            try:
                number = float(value)
            except ValueError:
                raise SettingsError(f"grid_region: {value!r} is not a number") from None
            conditions.append((name, op, number))
        region = GridRegion(tuple(conditions), t_unit)
    if windows is not None and radii is not None and not region.mask(windows, radii).any():
        raise SettingsError(f"grid_region: no cell of the grid has {region.describe()}")
    return region
