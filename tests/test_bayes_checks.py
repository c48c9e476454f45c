"""Bayesian checks without MCMC: which fits, the grid region, and the sentences from results."""

from __future__ import annotations

import re

import numpy as np
import pytest

from bayes_wake.bayes.spec import load_spec
from bayes_wake.checks.bayesian import (
    DEFAULT_CHECKS,
    plan_fits,
    resolve_checks,
    summarise_checks,
)
from bayes_wake.core.windows import GridRegion, parse_grid_region
from bayes_wake.errors import SettingsError
from bayes_wake.io.html import HtmlReport

WINDOWS, RADII = [10, 20, 30, 40, 50, 60], [3.0, 6.0, 9.0, 12.0, 15.0]


def test_grid_region_parses_and_selects_cells():
    region = parse_grid_region("t>=20, s<=9", windows=WINDOWS, radii=RADII)
    mask = region.mask(WINDOWS, RADII)
    assert mask.sum() == 5 * 3 and not mask[0].any() and not mask[:, 3:].any()
    assert region.describe() == "t >= 20 days and s <= 9 km"
    assert GridRegion.from_dict(region.to_dict()) == region
    assert parse_grid_region("window > 50 and radius == 3").mask(WINDOWS, RADII).sum() == 1
    assert parse_grid_region("").describe() == "the whole grid"


@pytest.mark.parametrize("text, message", [
    ("t>=", "cannot read"), ("q<3", "unknown name 'q'"), ("t>100", "no cell"),
])
def test_bad_grid_regions_are_refused(text, message):
    with pytest.raises(SettingsError, match=message):
        parse_grid_region(text, windows=WINDOWS, radii=RADII)


def test_which_checks():
    assert resolve_checks("default", has_regions=False) == DEFAULT_CHECKS
    assert resolve_checks(None, has_regions=True)[-1] == "regions"
    assert resolve_checks("none", has_regions=True) == ()
    assert "regions" not in resolve_checks("all", has_regions=False)
    assert resolve_checks("sutva,surface", has_regions=False) == ("surface", "sutva")
    with pytest.raises(SettingsError, match="did you mean 'matching'"):
        resolve_checks("surface,matchin", has_regions=False)
    with pytest.raises(SettingsError, match="region_column"):
        resolve_checks("regions", has_regions=False)


def test_plan_fits_changes_one_thing_per_refit():
    spec = load_spec("smooth_nb")
    fits, skipped = plan_fits(("surface", "prior", "prior_refit", "likelihood", "matching",
                               "sutva", "regions"), spec, match_on=("a",), delete_sutva=False,
                              regions=("north", "south"))
    by_name = {f.name: f for f in fits}
    assert by_name["reference"].power_scaling and not skipped
    assert by_name["likelihood"].spec["likelihood"] == "poisson"
    assert by_name["matching"].spec["matching"] == "none"
    assert by_name["sutva"].delete_sutva and not by_name["reference"].delete_sutva
    assert by_name["prior_x0.5"].spec["effect"]["scale_sd"] == spec.effect.scale_sd / 2
    assert by_name["without_region:south"].drop_region == "south"
    unmatched, skipped = plan_fits(("surface", "matching"), spec, match_on=(),
                                   delete_sutva=False)
    assert unmatched[0].spec["matching"] == "none" and "matching" in skipped


def _result(name, p_all, converged=True):
    cells = {"t_window": [10, 20], "spat_window": [3.0, 3.0], "mean": [0.1, 0.2],
             "ci_lower": [0.0, 0.1], "ci_upper": [0.2, 0.3], "prob_positive": [0.9, 0.99]}
    return {"name": name, "spec_name": "smooth_nb", "cells": cells,
            "region": {"all_positive": p_all, "mean_positive": 0.99, "mean_effect": 0.15,
                       "cells": 2, "cells_without_events": 0},
            "diagnostics": {"converged": converged, "max_r_hat": 1.0, "min_ess_bulk": 900,
                            "divergences": 0, "problems": [] if converged else ["R-hat"]},
            "wakes": {"treatment": 10, "control": 30}}


def test_sentences_from_results_including_failures():
    spec = load_spec("smooth_nb")
    fits, _ = plan_fits(("surface", "likelihood", "regions"), spec, match_on=("a",),
                        delete_sutva=False, regions=("north", "south"))
    results = {"reference": _result("reference", 0.93),
               "likelihood": _result("likelihood", 0.97, converged=False),
               "without_region:north": _result("without_region:north", 0.41),
               "without_region:south": {"name": "without_region:south",
                                        "error": "no control events left"}}
    checks = {c.name: c for c in summarise_checks(fits, results, GridRegion())}
    assert checks["surface"].sentence.startswith(
        "The posterior probability that the effect is positive in every one of the 2 cells "
        "of the whole grid is 0.93")
    assert "1 of 2 cells have P(effect > 0) >= 0.95" in checks["surface"].sentence
    # in a report, the counts of cells and wakes are integers; R-hat 1.0 is not a count
    surface = checks["surface"]
    page = HtmlReport("t").table(surface.table, counts=surface.counts).html()
    assert re.findall(r"<td[^>]*>([^<]*)</td>", page)[1:] == [
        "0.930", "0.990", "0.150", "1", "10", "30", "yes", "1.000"]
    assert "left out" not in checks["surface"].sentence
    results["reference"]["region"]["cells_without_events"] = 19  # NA cells: no estimate
    surface = summarise_checks(fits, results, GridRegion())[0].sentence
    assert "; 19 cells of the region without an estimate (NA) are left out" in surface
    assert checks["likelihood"].sentence.startswith("With a Poisson likelihood, P(positive")
    assert "0.97 (caution: did not converge: R-hat)" in checks["likelihood"].sentence
    regions = checks["regions"].sentence
    assert regions.startswith("Without north, P(positive in every cell of the whole grid) is "
                              "0.41, against 0.93 with all regions")
    assert "could not be fitted: no control events left" in regions
    assert np.isnan(checks["regions"].table["P(positive in every region cell)"].iloc[2])


def test_counts_and_probabilities_read_as_numbers_do():
    """'1 divergent transition', '2,000 tasks'; a probability that rounds onto the 0.95
    threshold keeps a third decimal, so a sentence never says it reaches what it misses."""
    from bayes_wake.checks.bayesian import _p
    from bayes_wake.io.tables import counted

    assert counted(1, "divergent transition") == "1 divergent transition"
    assert counted(2_000, "task") == "2,000 tasks"
    assert counted(0, "cell") == "0 cells"
    assert _p(0.946) == "0.946" and _p(0.951) == "0.95" and _p(0.5) == "0.50"
    assert _p(float("nan")) == "NA"


def test_unreliable_power_scaling_names_the_option_that_refits():
    """Where the importance weights fail (Pareto k > 0.7) the sentence names the command
    line option that runs the refit it recommends, not an internal check name alone."""
    spec = load_spec("smooth_nb")
    fits, _ = plan_fits(("surface", "prior"), spec, match_on=("a",), delete_sutva=False)
    reference = _result("reference", 0.93)
    cells = [{"t_window": 10.0, "spat_window": 3.0, "prior_sensitivity": 0.01,
              "likelihood_sensitivity": 0.2},
             {"t_window": 20.0, "spat_window": 3.0, "prior_sensitivity": 0.08,
              "likelihood_sensitivity": 0.3}]
    for k, shaky in ((0.4, False), (0.9, True)):
        reference["power_scaling"] = {
            "cells": cells, "all_positive": 0.93,
            "powers": [{"alpha": 0.5, "all_positive": 0.91, "pareto_k": 0.2},
                       {"alpha": 2.0, "all_positive": 0.95, "pareto_k": k}]}
        checks = {c.name: c for c in summarise_checks(fits, {"reference": reference},
                                                      GridRegion())}
        sentence = checks["prior"].sentence
        assert "exceeds 0.05 in 1 of 2 cells" in sentence
        assert ("(--bayes-checks prior_refit, or all)" in sentence) == shaky
