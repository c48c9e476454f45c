"""Every ``--vcov`` choice but Conley equals R's own call on the rows of the package's cell
regressions (the matched wakes with positive weight): SEs, t-test df and p-values to 1e-8.

R's outputs were made once by ``benchmarks/r_vcov_reference.py`` (R, sandwich 3.0.2,
clubSandwich 0.5.8) and are stored in ``tests/data/r_vcov_*.csv``; the R calls are in
``benchmarks/r_vcov_reference.R`` and in docs/method.md. Conley has no R package here: its
checks are the brute-force ones of test_standard_errors.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from r_vcov_cases import CASES, case_cells, case_cube

from bayes_wake.core.regression import weighted_ols
from bayes_wake.mwa.analysis import standard_error_table

TERMS = ("(Intercept)", "pre", "treatment")
RTOL = 1e-8


def _package_rows(case, cube, settings) -> pd.DataFrame:
    rows = []
    for cell, clusters in case_cells(case, cube, settings):
        for choice in case.choices:
            fit = weighted_ols(cell.y, cell.design, cell.weights, vcov=choice,
                               clusters=clusters.get(choice))
            for k, term in enumerate(TERMS):
                rows.append({"t_window": int(cell.window), "spat_window": float(cell.radius),
                             "vcov": choice, "term": term, "aliased": fit.aliased,
                             "note": fit.se_note, "estimate_py": fit.coef[k],
                             "se_py": fit.std_error[k], "df_py": fit.df_test[k],
                             "p_py": fit.pvalue[k]})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module", params=sorted(CASES))
def compared(request):
    case = CASES[request.param]
    if not case.path.exists():
        pytest.skip(f"{case.path} not found")
    cube, settings = case_cube(case)
    ours = _package_rows(case, cube, settings)
    theirs = pd.read_csv(case.reference)
    theirs["spat_window"] = theirs["spat_window"].astype(float)
    merged = ours.merge(theirs, on=["t_window", "spat_window", "vcov", "term"], how="left",
                        indicator=True)
    return case, cube, settings, merged


def _rel(a, b) -> np.ndarray:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.abs(a - b) / np.maximum(np.abs(b), 1e-300)


def test_r_fits_exactly_the_cells_the_package_does_not_alias(compared):
    _, _, _, merged = compared
    assert (merged["_merge"] == "both").equals(~merged["aliased"])
    fitted = merged[~merged["aliased"]]
    assert set(fitted["vcov"]) == set(compared[0].choices)
    assert fitted["t_window"].nunique() > 1 and len(fitted) >= 100
    assert _rel(fitted["estimate_py"], fitted["estimate"]).max() < RTOL


def test_standard_errors_df_and_pvalues_equal_r(compared):
    case, _, _, merged = compared
    fitted = merged[~merged["aliased"]]
    both = fitted[np.isfinite(fitted["p_py"]) & np.isfinite(fitted["p"])]
    for column in ("se", "df", "p"):
        worst = _rel(both[f"{column}_py"], both[column])
        assert worst.max() < RTOL, both.iloc[int(worst.argmax())].to_dict()
    assert both["vcov"].nunique() == len(case.choices)  # every choice compared somewhere


def test_where_the_package_is_na_r_is_nan_or_the_reason_says_why(compared):
    """R's NaN cells are NA here; CR2's singular clusters are NA here with their reason
    where clubSandwich takes a pseudo-inverse and reports a number."""
    _, _, _, merged = compared
    fitted = merged[~merged["aliased"]]
    na_here = ~np.isfinite(fitted["p_py"])
    na_there = ~np.isfinite(fitted["p"])
    assert not (na_there & ~na_here).any()
    only_here = fitted[na_here & ~na_there]
    assert only_here["note"].str.contains("CR2 undefined").all(), only_here


def test_the_table_of_every_choice_reports_rs_treatment_errors(compared):
    case, cube, settings, merged = compared
    table = standard_error_table(cube, settings, case.choices)
    treatment = merged[(merged["term"] == "treatment") & ~merged["aliased"]]
    for choice in case.choices:
        theirs = treatment[treatment["vcov"] == choice].set_index(
            ["t_window", "spat_window"])
        ours = table.set_index(["t_window", "spat_window"]).loc[theirs.index]
        defined = np.isfinite(ours[f"pvalue_{choice}"].to_numpy())
        np.testing.assert_allclose(ours[f"std_error_{choice}"].to_numpy()[defined],
                                   theirs["se"].to_numpy()[defined], rtol=RTOL)
        np.testing.assert_allclose(ours[f"pvalue_{choice}"].to_numpy()[defined],
                                   theirs["p"].to_numpy()[defined], rtol=RTOL)
