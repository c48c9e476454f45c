"""R numerics with values R itself prints."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_wake.core.rcompat import (
    format_digits7,
    nclass_scott,
    nclass_sturges,
    r_cut_right,
    r_pretty,
    r_round,
    r_seq_length_out,
)
from bayes_wake.core.windows import expand_windows
from bayes_wake.errors import SettingsError


def test_format_digits7_rounds_the_whole_column_to_common_decimals():
    # R: format(c(0.51959714852273498, -0.79973203443035001, 0.5)) -> 7 decimals for all
    got = format_digits7(np.array([0.51959714852273498, -0.79973203443035001, 0.5]))
    np.testing.assert_array_equal(got, [0.5195971, -0.7997320, 0.5])
    # R: format(c(1234.5678, 0.001)) -> "1234.568" "   0.001"
    np.testing.assert_array_equal(format_digits7(np.array([1234.5678, 0.001])), [1234.568, 0.001])
    # a column of small values keeps 7 significant digits of the smallest: 0.0001234568
    np.testing.assert_array_equal(format_digits7(np.array([0.000123456789, 0.5])),
                                  [0.0001234568, 0.5])
    assert np.isnan(format_digits7(np.array([np.nan, 1.0]))[0])


def test_r_round_is_nearest_with_ties_to_even():
    np.testing.assert_array_equal(r_round([2.5, 3.5, -2.5], 0), [2.0, 4.0, -2.0])
    np.testing.assert_array_equal(r_round([0.125, 0.375], 2), [0.12, 0.38])
    np.testing.assert_array_equal(r_round(47.619047619, 1), [47.6])
    assert r_round(0.15, 1)[0] == 0.1  # 0.15 is stored below 0.15
    assert np.isnan(r_round(np.nan, 3)[0])


def test_pretty_matches_r():
    np.testing.assert_allclose(r_pretty(0, 1), [0, .2, .4, .6, .8, 1])
    np.testing.assert_allclose(r_pretty(1, 10), [0, 2, 4, 6, 8, 10])
    np.testing.assert_allclose(r_pretty(0, 100), [0, 20, 40, 60, 80, 100])
    np.testing.assert_allclose(r_pretty(0, 0, 1, 1), [-1, 0])  # constant zero column
    np.testing.assert_allclose(r_pretty(-3, 2, 2, 1), [-4, -2, 0, 2])


def test_seq_cut_and_class_counts():
    np.testing.assert_array_equal(r_seq_length_out(0, 1, 3), [0, .5, 1])
    assert nclass_sturges(75) == 8
    assert nclass_scott(np.zeros(10)) == 1
    codes = r_cut_right(np.array([0, .5, .51, 1, 1.2, np.nan]), np.array([0, .5, 1]))
    np.testing.assert_array_equal(codes, [1, 1, 2, 2, np.nan, np.nan])


def test_window_grid_follows_r_rules():
    np.testing.assert_array_equal(expand_windows(10, 60, 10, temporal=True),
                                  [10, 20, 30, 40, 50, 60])
    np.testing.assert_allclose(expand_windows(0.1, 0.3, 0.1), [0.1, 0.2, 0.3])
    with pytest.raises(SettingsError, match="does not divide"):
        expand_windows(10, 60, 15, temporal=True)
    with pytest.raises(SettingsError, match="at least 2"):
        expand_windows(1, 5, 1, temporal=True)
    with pytest.raises(SettingsError, match="positive"):
        expand_windows(2, 10, 0)


def _format_digits7_by_text(x):
    """The slow definition: format each value as text, R's rules for the column."""
    from bayes_wake.core.rcompat import _sci_parts

    parts = [_sci_parts(float(v), 7) for v in x]
    decimals = max(max(0, n - k - 1) for n, k in parts)
    neg = any(v < 0 for v in x)
    fixed = neg + max(max(1, k + 1) for _, k in parts) + (decimals > 0) + decimals
    max_sig = max(n for n, _ in parts)
    sci = neg + (max_sig + 1 if max_sig > 1 else max_sig) + (
        5 if max(abs(k) for _, k in parts) >= 100 else 4)
    if fixed <= sci:
        return np.array([float(f"{v:.{decimals}f}") for v in x])
    return np.array([float(f"{v:.6e}") for v in x])


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    st.integers(-10**6, 10**6).map(lambda i: i / 10**6 + 14),  # 6-decimal coordinates: ties
    st.integers(-10**8, 10**8).map(lambda i: i / 10**8),
    st.sampled_from([0.0, 9.9999995, 0.12345675, 1e-300, 123456.75])), min_size=1, max_size=30))
def test_vectorised_format_equals_formatting_each_value_as_text(values):
    x = np.array(values)
    np.testing.assert_array_equal(format_digits7(x), _format_digits7_by_text(x))
