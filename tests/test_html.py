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
