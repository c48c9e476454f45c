"""The placebo calibration's summaries against hand counts, and its sites reader."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_wake.checks.calibration import (
    calibration_sentence,
    placebo_shift,
    placebo_size,
    read_placebo_sites,
)


def _results(estimates, pvalues):
    """One result per placement from per-cell estimates and p-values (lists of lists)."""
    return [{"cells": {"placement": [i] * len(e), "estimate": list(e), "pvalue_HC1": list(p)}}
            for i, (e, p) in enumerate(zip(estimates, pvalues, strict=True))]


def test_size_and_shift_are_the_hand_counts():
    estimates = [[0.1, -0.2, 0.3], [0.2, 0.1, None], [0.4, 0.0, 0.1]]
    pvalues = [[0.01, 0.5, 0.04], [0.2, 0.03, None], [0.06, 0.9, 0.5]]
    results = _results(estimates, pvalues)
    size = placebo_size(results, ["HC1"], 0.05).iloc[0]
    assert size["size"] == pytest.approx(3 / 8)  # 8 defined cells, 3 with p <= .05
    assert size["max_flagged"] == 2 and size["mean_flagged"] == pytest.approx(1.0)
    assert size["positive_share"] == pytest.approx(1.0)
    shares = np.array([2 / 3, 1 / 2, 0.0])
    assert size["mc_se"] == pytest.approx(shares.std(ddof=1) / np.sqrt(3))
    means = np.array([0.2 / 3, 0.15, 0.5 / 3])
    mean, t = placebo_shift(results)
    assert mean == pytest.approx(means.mean())
    assert t == pytest.approx(means.mean() / (means.std(ddof=1) / np.sqrt(3)))


def test_the_verdict_names_a_shifted_placebo_and_refuses_too_few_placements():
    results = _results([[0.1, 0.12], [0.11, 0.1], [0.1, 0.11]], [[0.01, 0.2]] * 3)
    size = placebo_size(results, ["HC1"], 0.05)
    sentence = calibration_sentence(size, 3, 50, placebo_shift(results))
    assert sentence.startswith("On 3 of 3 placebo placements")
    assert "HC1 50.0%" in sentence and "None stays within" in sentence
    assert "confounded" in sentence and "t = " in sentence
    one = placebo_size(results[:1], ["HC1"], 0.05)
    assert calibration_sentence(one, 5, 50).startswith("Not informative, because only 1 of 5")


def test_sites_are_read_with_latitude_longitude_names_and_a_bom(tmp_path):
    path = tmp_path / "sites.csv"
    path.write_bytes("\ufeffLatitude;Longitude;dist;w\n14.5;-3.2;12,5;1\n15;-2;3;0\n"
                     .replace(",", ".").encode("utf-8"))
    sites = read_placebo_sites(path, ["dist"], "w")
    assert list(sites.columns) == ["lat", "lon", "dist", "w"]
    np.testing.assert_allclose(sites["dist"], [12.5, 3.0])
    assert isinstance(sites, pd.DataFrame) and sites.attrs["source"] == str(path)
