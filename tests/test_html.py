"""The self-contained HTML report's building blocks."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from bayes_wake.io.html import HtmlReport


def test_report_tables_show_counts_stored_as_floats_as_integers():
    """'20.000' for a count read as nonsense; a float column of whole numbers is shown as
    integers, other floats to the table's digits, NaN as NA, numpy integers as numbers."""
    frame = pd.DataFrame({"n": [20.0, 3.0, np.nan], "p": [0.5, 0.25, np.nan],
                          "k": np.array([1, 2, 3], dtype=np.int64), "what": ["a", "b", "c"]})
    page = HtmlReport("t").table(frame).html()
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", page)
    assert cells == ["20", "0.500", "1", "a", "3", "0.250", "2", "b", "NA", "NA", "3", "c"]
    assert '<td class="text">1</td>' not in page  # a number, right-aligned


def test_report_tables_take_the_counts_they_are_told_and_separate_thousands():
    """A row of counts among rows of other numbers (the randomisation summary: significant
    windows, then max |t|): its counts are integers, everything else keeps its decimals,
    a probability of 1 included; integers get thousands separators."""
    frame = pd.DataFrame({"statistic": ["significant windows", "max |t|"],
                          "observed": [20_000.0, 6.177], "null_q95": [0.1, 2.107],
                          "p": [1.0, 0.048], "draws": np.array([20_000, 20_000])})
    counts = np.outer(frame["statistic"].eq("significant windows").to_numpy(),
                      frame.columns.isin(["observed", "null_q95"]))
    page = HtmlReport("t").table(frame, counts=counts).html()
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", page)
    assert cells == ["significant windows", "20,000", "0.100", "1.000", "20,000",
                     "max |t|", "6.177", "2.107", "0.048", "20,000"]
    column = HtmlReport("t").table(frame[["observed"]].head(1), counts=False).html()
    assert "20000.000" in column  # told: no counts


def test_a_long_table_is_cut_with_its_counts():
    """Counts given per row of a table longer than max_rows are cut with the table."""
    frame = pd.DataFrame({"n": np.arange(300, dtype=float) + 0.5 * (np.arange(300) % 2)})
    counts = np.ones((300, 1), dtype=bool)
    page = HtmlReport("t").table(frame, counts=counts, max_rows=5, digits=1).html()
    assert re.findall(r"<td[^>]*>([^<]*)</td>", page) == ["0", "1.5", "2", "3.5", "4"]
