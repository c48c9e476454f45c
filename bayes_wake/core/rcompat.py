"""R's numerics that the `mwa` convention must reproduce to the last digit.

R's ``mwa`` hands its data to Java as text (``as.matrix`` of a data frame formats each numeric
column with ``format(x, digits = 7)``), and ``cem`` bins with ``seq``, ``cut``, ``pretty`` and
the Sturges and Scott rules. These are small, well-defined algorithms; they are written here
by hand because no Python library reproduces R's exact floating-point choices, and the
reference outputs depend on them.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "format_digits7",
    "r_round",
    "r_seq_length_out",
    "r_cut_right",
    "nclass_sturges",
    "nclass_scott",
    "r_pretty",
]

_DBL_EPSILON = np.finfo(float).eps


def _sci_parts(x: float, digits: int) -> tuple[int, int]:
    """Significant digits needed (<= digits) and the decimal exponent of ``x``.

    Mirrors R's ``scientific()`` in format.c: round to ``digits`` significant digits, drop
    trailing zeros.
    """
    if x == 0.0:
        return 1, 0
    text = f"{abs(x):.{digits - 1}e}"
    mantissa, exponent = text.split("e")
    significant = mantissa.replace(".", "").rstrip("0")
    return max(1, len(significant)), int(exponent)


def format_digits7(values: np.ndarray, digits: int = 7) -> np.ndarray:
    """Round a numeric column as R's ``format(x, digits = 7)`` prints it.

    R finds, over the whole column, the number of decimals the value needing most decimals
    requires to show ``digits`` significant digits, and prints every value with that many
    decimals (fixed notation) unless scientific notation is narrower.

    Parameters
    ----------
    values
        One column of finite or missing numbers.
    digits
        Significant digits, R's default 7.

    Returns
    -------
    numpy.ndarray
        The values as R's text shows them, parsed back to float64 (NaN stays NaN).

    Notes
    -----
    Vectorised for large columns; Python's correctly rounded formatting decides wherever a
    value lies close to a rounding tie, so the result equals formatting every value as text.
    """
    x = np.asarray(values, dtype=float)
    finite = np.isfinite(x)
    out = np.full_like(x, np.nan)
    if not finite.any():
        return out
    v = x[finite]
    decimals, fixed = _column_decimals(v, digits)
    if fixed:
        out[finite] = _round_decimals(v, decimals)
    else:  # scientific notation: every value keeps its own significant digits
        out[finite] = _round_significant(v, digits)
    return out


def _decimal_exponent(a: np.ndarray) -> np.ndarray:
    """floor(log10(a)) for a > 0, corrected near powers of ten."""
    with np.errstate(divide="ignore", over="ignore"):
        kp = np.floor(np.log10(np.where(a > 0, a, 1.0))).astype(np.int64)
        kp = np.where((a > 0) & (10.0 ** kp.astype(float) > a), kp - 1, kp)
        kp = np.where((a > 0) & (10.0 ** (kp + 1).astype(float) <= a), kp + 1, kp)
    return kp


def _column_decimals(v: np.ndarray, digits: int) -> tuple[int, bool]:
    """Decimals R's fixed notation uses for the column, and whether fixed notation wins."""
    a = np.abs(v)
    kp = _decimal_exponent(a)
    # 7-digit mantissas for the fixed/scientific width decision; exact text near ties
    with np.errstate(all="ignore"):
        scaled = a * 10.0 ** (digits - 1 - kp).astype(float)
        mantissa = np.rint(scaled)
        unsure = ~np.isfinite(scaled) | (np.abs(np.abs(scaled - np.trunc(scaled)) - 0.5) < 1e-6)
        carry = mantissa >= 10.0**digits
        kexp = np.where(carry, kp + 1, kp)
        mantissa = np.where(carry, np.rint(mantissa / 10), mantissa)
        mantissa = np.where(np.isfinite(mantissa), mantissa, 1.0)
        nsig = np.full(len(v), digits)
        for _ in range(digits - 1):
            trailing = (mantissa % 10 == 0) & (nsig > 1)
            nsig = np.where(trailing, nsig - 1, nsig)
            mantissa = np.where(trailing, mantissa // 10, mantissa)
    for i in np.flatnonzero(unsure):
        nsig[i], kexp[i] = _sci_parts(float(v[i]), digits)
    nsig = np.where(a == 0, 1, nsig)
    # Exact column decimals: upper bound digits - 1 - kp per value; check candidates exactly,
    # highest bound first, until no remaining value can need more decimals.
    bound = np.where(a == 0, 0, np.maximum(0, digits - 1 - kp))
    best = 0
    for level in np.unique(bound)[::-1]:
        if level <= best:
            break
        for t in v[bound == level]:
            nsig_t, k_t = _sci_parts(float(t), digits)
            best = max(best, nsig_t - k_t - 1)
            if best >= level:
                break
    negative = bool((v < 0).any())
    left_digits = int(max(1, (kexp + 1).max()))
    max_sig = int(nsig.max())
    fixed_width = int(negative) + left_digits + (best > 0) + best
    sci_width = int(negative) + (max_sig + 1 if max_sig > 1 else max_sig) + (
        5 if np.abs(kexp).max() >= 100 else 4)
    return best, fixed_width <= sci_width


def _round_significant(v: np.ndarray, digits: int) -> np.ndarray:
    """Round to ``digits`` significant digits exactly as ``float(f"{v:.{digits-1}e}")``."""
    a = np.abs(v)
    shift = digits - 1 - _decimal_exponent(a)
    exact_power = np.abs(shift) <= 22
    power = 10.0 ** np.where(exact_power, np.abs(shift), 0).astype(float)
    scaled = np.where(shift >= 0, v * power, v / power)
    rounded = np.rint(scaled)
    result = np.where(shift >= 0, rounded / power, rounded * power)
    frac = np.abs(scaled - np.trunc(scaled))
    # near a tie, at a carry into the next power of ten, or with an inexact power of ten
    check = (np.abs(frac - 0.5) < 1e-6) | ~exact_power | (np.abs(rounded) >= 10.0**digits)
    check |= (shift < 0) & (np.abs(rounded * power) > 2**52)
    for i in np.flatnonzero(check):
        result[i] = float(f"{v[i]:.{digits - 1}e}")
    return result


def _round_decimals(v: np.ndarray, decimals: int) -> np.ndarray:
    """Round to ``decimals`` places exactly as ``float(f"{v:.{decimals}f}")`` does."""
    if decimals > 22:  # 10**decimals is no longer exact in float64
        return np.array([float(f"{t:.{decimals}f}") for t in v])
    scale = 10.0**decimals
    scaled = v * scale
    rounded = np.rint(scaled)
    result = rounded / scale  # exact integer / exact power of ten: correctly rounded
    frac = np.abs(scaled - np.trunc(scaled))
    near_tie = (np.abs(frac - 0.5) < 1e-6) | ~np.isfinite(scaled) | (np.abs(scaled) > 2**52)
    for i in np.flatnonzero(near_tie):
        result[i] = float(f"{v[i]:.{decimals}f}")
    return result


def r_round(x: float | np.ndarray, digits: int = 0) -> np.ndarray:
    """R >= 4.0's ``round(x, digits)``: the nearer of the two decimal candidates, ties to even.

    Parameters
    ----------
    x
        Numbers to round; NaN stays NaN.
    digits
        Decimal places.

    Returns
    -------
    numpy.ndarray
        Rounded values (float64).
    """
    arr = np.atleast_1d(np.asarray(x, dtype=float))
    out = arr.copy()
    p10 = 10.0**digits
    for i, v in enumerate(arr):
        if not math.isfinite(v) or v == 0.0:
            continue
        sign = -1.0 if v < 0 else 1.0
        a = abs(v)
        x10 = p10 * a
        i10 = math.floor(x10)
        lower = i10 / p10
        upper = math.ceil(x10) / p10
        down, up = a - lower, upper - a
        pick_up = up < down or (up == down and i10 % 2 == 1)
        out[i] = sign * (upper if pick_up else lower)
    return out


def r_seq_length_out(start: float, stop: float, length_out: int) -> np.ndarray:
    """R's ``seq(from, to, length.out = n)``: ends exact, inner points ``from + i * by``."""
    if length_out == 1:
        return np.array([start])
    if start == stop:
        return np.full(length_out, start)
    by = (stop - start) / (length_out - 1)
    inner = start + np.arange(1, length_out - 1) * by
    return np.concatenate([[start], inner, [stop]])


def r_seq_int_length_out(start: float, stop: float, length_out: int) -> np.ndarray:
    """R's internal ``seq.int(from, to, length.out = n)``, as ``pretty`` calls it.

    The first half is stepped from ``from`` and the second half back from ``to``.
    """
    if length_out == 1:
        return np.array([start])
    out = np.empty(length_out)
    out[0], out[-1] = start, stop
    by = (stop - start) / (length_out - 1)
    for i in range(1, length_out - 1):
        out[i] = start + i * by if i < length_out // 2 else stop - (length_out - 1 - i) * by
    return out


def r_cut_right(x: np.ndarray, breaks: np.ndarray) -> np.ndarray:
    """R's ``cut(x, breaks, include.lowest = TRUE, labels = FALSE)`` (right-closed bins).

    Returns 1-based bin codes as float64, NaN outside the breaks or for missing ``x``.
    """
    b = np.sort(np.asarray(breaks, dtype=float))
    x = np.asarray(x, dtype=float)
    code = np.searchsorted(b, x, side="left").astype(float)  # x in (b[k-1], b[k]] -> k
    code[x == b[0]] = 1.0  # include.lowest
    code[(x < b[0]) | (x > b[-1]) | np.isnan(x)] = np.nan
    return code


def nclass_sturges(n: int) -> int:
    """Sturges' number of classes, ``ceiling(log2(n) + 1)``."""
    return int(math.ceil(math.log2(n) + 1))


def nclass_scott(x: np.ndarray) -> int:
    """Scott's number of classes as R's ``nclass.scott`` computes it."""
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) < 2:
        return 1
    h = 3.5 * math.sqrt(np.var(x, ddof=1)) * len(x) ** (-1.0 / 3.0)
    if h > 0:
        return max(1, int(math.ceil((x.max() - x.min()) / h)))
    return 1


def r_pretty(
    lo: float,
    up: float,
    n: int = 5,
    min_n: int | None = None,
    shrink_sml: float = 0.75,
    high_u_bias: float = 1.5,
    u5_bias: float | None = None,
) -> np.ndarray:
    """R's ``pretty(c(lo, up), n, min.n)``: about ``n + 1`` round break points covering the range.

    Parameters
    ----------
    lo, up
        The range to cover.
    n
        Desired number of intervals.
    min_n
        Minimal number of intervals (R's default ``n %/% 3``).

    Returns
    -------
    numpy.ndarray
        The break points.
    """
    if min_n is None:
        min_n = n // 3
    h = high_u_bias
    h5 = 0.5 + 1.5 * h if u5_bias is None else u5_bias
    cell = _pretty_cell(lo, up, n, min_n, shrink_sml, (h, h5))
    unit = _pretty_unit(cell, h, h5)
    ns, nu, ndiv = _pretty_steps(lo, up, unit, n, min_n)
    low, high = ns * unit, nu * unit
    s = r_seq_int_length_out(low, high, ndiv + 1)
    if ndiv:
        delta = (high - low) / ndiv
        s[np.abs(s) < 1e-14 * delta] = 0.0
    return s


def _pretty_cell(lo: float, up: float, ndiv: int, min_n: int, shrink_sml: float,
                 biases: tuple[float, float]) -> float:
    """R_pretty's first step: the cell, the range per interval (or, for a range too small
    for its magnitude, a shrunk share of that magnitude), at least 20 x the tiniest double."""
    h, h5 = biases
    dx = up - lo
    if dx == 0 and up == 0:
        cell = 1.0
        i_small = True
    else:
        cell = max(abs(lo), abs(up))
        u_bound = 1 + (1 / (1 + h) if h5 >= 1.5 * h + 0.5 else 1.5 / (1 + h5))
        u_bound *= max(1, ndiv) * _DBL_EPSILON
        i_small = dx < cell * u_bound * 3
    if i_small:
        if cell > 10:
            cell = 9 + cell / 10
        cell *= shrink_sml
        if min_n > 1:
            cell /= min_n
    else:
        cell = dx
        if ndiv > 1:
            cell /= ndiv
    tiny = 20 * np.finfo(float).tiny
    return tiny if cell < tiny else cell


def _pretty_unit(cell: float, h: float, h5: float) -> float:
    """R_pretty's second step: the unit, 1, 2, 5 or 10 times the power of ten below the
    cell, the larger ones preferred by the biases ``h`` and ``h5``."""
    base = 10.0 ** math.floor(math.log10(cell))
    unit = base
    if 2 * base - cell < h * (cell - unit):
        unit = 2 * base
        if 5 * base - cell < h5 * (cell - unit):
            unit = 5 * base
            if 10 * base - cell < h * (cell - unit):
                unit = 10 * base
    return unit


def _pretty_steps(lo: float, up: float, unit: float, ndiv: int,
                  min_n: int) -> tuple[int, int, int]:
    """R_pretty's last step: the first and last multiples of the unit (``ns``, ``nu``) that
    cover the range, widened to at least ``min_n`` intervals, and the number of intervals."""
    rounding_eps = 1e-10  # R >= 3.5; R <= 3.4 used 1e-7
    ns = math.floor(lo / unit + rounding_eps)
    nu = math.ceil(up / unit - rounding_eps)
    while ns * unit > lo + rounding_eps * unit:
        ns -= 1
    while nu * unit < up - rounding_eps * unit:
        nu += 1
    k = int(0.5 + nu - ns)
    if k < min_n:
        k = min_n - k
        if ns >= 0:
            nu += k // 2
            ns -= k // 2 + k % 2
        else:
            ns -= k // 2
            nu += k // 2 + k % 2
        return ns, nu, min_n
    return ns, nu, k
