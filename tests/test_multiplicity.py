"""Holm and Benjamini-Hochberg over the window grid: R's p.adjust, statsmodels as the oracle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from bayes_wake.errors import SettingsError
from bayes_wake.mwa.multiplicity import (
    adjust_pvalues,
    benjamini_hochberg,
    holm,
    summarise_multiplicity,
)


def test_r_p_adjust_values():
    # R: p.adjust(c(.01, .02, .03, .04, .05), "holm") and "BH"
    p = [0.01, 0.02, 0.03, 0.04, 0.05]
    np.testing.assert_allclose(holm(p), [0.05, 0.08, 0.09, 0.09, 0.09])
    np.testing.assert_allclose(benjamini_hochberg(p), [0.05] * 5)


@pytest.mark.parametrize("seed", range(5))
def test_equal_statsmodels_on_random_pvalues_with_ties(seed):
    rng = np.random.default_rng(seed)
    p = np.round(rng.beta(0.5, 2.0, 30), 3)  # rounding makes ties
    np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1], rtol=1e-12)
    np.testing.assert_allclose(benjamini_hochberg(p), multipletests(p, method="fdr_bh")[1],
                               rtol=1e-12)


def test_na_windows_leave_the_family_as_in_r():
    # R's p.adjust: n defaults to the number of non-NA p-values
    p = np.array([0.01, np.nan, 0.04, np.nan, 0.03])
    defined = ~np.isnan(p)
    for ours, method in ((holm(p), "holm"), (benjamini_hochberg(p), "fdr_bh")):
        assert np.isnan(ours[~defined]).all()
        np.testing.assert_allclose(ours[defined], multipletests(p[defined], method=method)[1])
    assert np.isnan(holm([np.nan, np.nan])).all()


def test_rejects_values_outside_zero_one():
    with pytest.raises(SettingsError, match=r"\[0, 1\]"):
        holm([0.2, 1.5])


def test_summary_counts_and_sentence():
    estimates = pd.DataFrame({
        "t_window": [10, 10, 20, 20], "spat_window": [3, 6, 3, 6],
        "estimate": [0.1, 0.2, np.nan, 0.3], "pvalue": [0.001, 0.03, np.nan, 0.04]})
    summary = summarise_multiplicity(estimates, alpha=0.05)
    assert (summary.n_windows, summary.n_defined, summary.n_significant) == (4, 3, 3)
    assert summary.n_holm == 1  # 0.003 survives; 0.06 and 0.06 do not
    assert summary.n_bh == 3  # BH: 0.003, 0.04, 0.04
    table = adjust_pvalues(estimates)
    assert not table.loc[2, "significant"] and np.isnan(table.loc[2, "p_holm"])
    sentence = summary.sentence()
    assert sentence.startswith("Of 3 windows significant at p <= .05, 1 survives Holm")
    assert "1 of 4 windows have no estimate" in sentence
    assert list(summary.summary()["windows_significant"]) == [3, 1, 3]


def test_no_significant_window_says_so():
    estimates = pd.DataFrame({"t_window": [10], "spat_window": [3], "estimate": [0.1],
                              "pvalue": [0.5]})
    assert summarise_multiplicity(estimates).sentence().startswith("No window is significant")


def test_a_single_window_is_named_in_the_singular():
    estimates = pd.DataFrame({"t_window": [10, 20], "spat_window": [3, 3],
                              "estimate": [0.1, np.nan], "pvalue": [0.01, np.nan]})
    sentence = summarise_multiplicity(estimates, alpha=0.05).sentence()
    assert sentence.startswith("Of 1 window significant at p <= .05, 1 survives Holm")
    assert "over the 1 window tested (1 of 2 windows have no estimate)" in sentence
    assert "1 windows" not in sentence
