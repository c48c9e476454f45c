"""`bayes-wake sensitivity` end to end: the report on the mwa example and on a simulated study,
resuming, failing fast on bad settings, and (slow) the Bayesian checks."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bayes_wake.checks.sensitivity import REPORT_NAME, SensitivitySettings
from bayes_wake.cli import main
from bayes_wake.errors import SettingsError
from bayes_wake.mwa.analysis import MWASettings
from bayes_wake.simulate import simulate_study

EXAMPLE_ARGS = ["--t-window", "2", "10", "2", "--spat-window", "2", "10", "2",
                "--match", "match1,match2", "--weighted", "--tcm"]
PAPER_ARGS = ["--t-window", "10", "60", "10", "--spat-window", "3", "15", "3",
              "--match", "dist_base_km,dist_river_km,pop_density", "--weighted"]
FAST = ["--workers", "0", "--bayes-checks", "none"]


@pytest.fixture(scope="module")
def simulated_csv(tmp_path_factory):
    """A small simulated study (planted effect) in R's column layout, with a region column."""
    events = simulate_study(0, n_treatment=150, n_control=450, n_dependent=500).events
    table = events.rename(columns={"role": "type"}).drop(columns=["event_id"])
    table["timestamp"] = events["time"].dt.strftime("%Y-%m-%d %H:%M:%S")
    table = table.drop(columns=["time"])
    table["region"] = np.select([events["lon"] < -4.5, events["lon"] < -1.5],
                                ["west", "centre"], "east")
    path = tmp_path_factory.mktemp("simulated") / "simulated.csv"
    table.to_csv(path, index=False, float_format="%.17g")
    return path


def _invoke(args):
    return CliRunner().invoke(main, ["sensitivity", *args])


def test_report_on_the_mwa_example(mwa_example_csv, tmp_path):
    out = tmp_path / "sens"
    result = _invoke(["--data", str(mwa_example_csv), *EXAMPLE_ARGS, "--permutations", "150",
                      "--date-shifts", "5", *FAST, "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in (REPORT_NAME, "verdicts.csv", "multiplicity.csv", "estimates.csv",
                 "randomisation_summary.csv", "randomisation_null.csv", "task_layout.csv",
                 "provenance.json"):
        assert (out / name).is_file(), name
    verdicts = _after_robust(pd.read_csv(out / "verdicts.csv"))
    assert list(verdicts["check"]) == ["multiplicity", "labels", "date_shift"]
    multiplicity = pd.read_csv(out / "multiplicity.csv")
    n_sig, n_holm = int(multiplicity["significant"].sum()), int(
        multiplicity["survives_holm"].sum())
    assert verdicts["verdict"][0].startswith(f"Of {n_sig} windows significant at p <= .05, "
                                             f"{n_holm} survive")
    assert "Under 150 permutations of the treatment labels within matching strata, " \
           f"{n_sig} or more significant windows" in verdicts["verdict"][1]
    assert verdicts["verdict"][1].endswith("(150 valid draws of 150).")
    # five placebos are too few for a p-value: the check says so, with its valid draws
    assert "the check is not informative, because only 5 of 5 draws are valid" in \
        verdicts["verdict"][2]
    null = pd.read_csv(out / "randomisation_null.csv")
    assert (null["kind"] == "labels").sum() == 150 and (null["kind"] == "date_shift").sum() == 5
    assert null["valid"].all()
    html = (out / REPORT_NAME).read_text()
    top = html.index("<h2>Verdicts</h2>")
    assert top < html.index("Of 4 windows significant") < html.index("1. Multiplicity")
    assert "data:image/png;base64," in html
    # the randomisation summary: counts of windows as integers, the rest as numbers
    summary = pd.read_csv(out / "randomisation_summary.csv").query("null == 'labels'")
    count_row = re.search(r"<tr><td class=\"text\">significant windows</td>(.*?)</tr>",
                          html).group(1)
    shown = re.findall(r"<td[^>]*>([^<]*)</td>", count_row)
    observed, median, q95, share = summary.iloc[0][["observed", "null_median", "null_q95",
                                                    "share_at_least_observed"]]
    assert shown[0] == f"{observed:.0f}" == str(n_sig)
    assert shown[1] == (f"{median:.0f}" if median.is_integer() else f"{median:.3f}")
    assert shown[2] == (f"{q95:.0f}" if q95.is_integer() else f"{q95:.3f}")
    assert shown[3] == f"{share:.3f}" and shown[-2:] == ["150", "150"]
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["settings"]["permutations"] == 150
    # the sentinel rows of 1901 and 2100 do not stretch the span of the placebos
    assert provenance["run"]["date_shift_span"] == "1995-01-01 to 1995-02-28 (59 days)"
    assert provenance["run"]["computed"] == provenance["run"]["tasks"] == 3


def test_report_on_a_simulated_study_and_resume(simulated_csv, tmp_path):
    out = tmp_path / "sens"
    args = ["--data", str(simulated_csv), *PAPER_ARGS, "--date-shifts", "4", *FAST,
            "--out", str(out)]
    first = _invoke([*args, "--permutations", "200"])
    assert first.exit_code == 0, first.output
    summary = pd.read_csv(out / "randomisation_summary.csv")
    observed = int(summary.loc[0, "observed"])
    assert observed > 0
    verdict = _after_robust(pd.read_csv(out / "verdicts.csv"))["verdict"][1]
    assert f"{observed} or more significant windows" in verdict
    run = json.loads((out / "provenance.json").read_text())["run"]
    assert (run["tasks"], run["computed"], run["reused"]) == (3, 3, 0)
    again = _invoke([*args, "--permutations", "200"])
    assert again.exit_code == 0
    run = json.loads((out / "provenance.json").read_text())["run"]
    assert (run["computed"], run["reused"]) == (0, 3)
    more = _invoke([*args, "--permutations", "300"])  # one more chunk of 100
    assert more.exit_code == 0
    run = json.loads((out / "provenance.json").read_text())["run"]
    assert (run["computed"], run["reused"]) == (1, 3)
    assert (pd.read_csv(out / "randomisation_null.csv")["kind"] == "labels").sum() == 300


def test_runs_on_a_dask_local_cluster(mwa_example_csv, tmp_path):
    out = tmp_path / "sens"
    result = _invoke(["--data", str(mwa_example_csv), *EXAMPLE_ARGS, "--permutations", "60",
                      "--chunk-size", "20", "--date-shifts", "3", "--bayes-checks", "none",
                      "--workers", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["run"]["where"] == "LocalCluster" and provenance["run"]["workers"] == 1
    layout = pd.read_csv(out / "task_layout.csv")
    assert dict(zip(layout["kind"], layout["tasks"], strict=True)) == {"labels": 3,
                                                                        "date_shift": 1}


@pytest.mark.parametrize("args, reason", [
    (["--t-window", "10", "2", "2"], "below min"),
    (["--t-window", "2", "10", "3"], "does not divide"),
    (["--permutations", "0"], "--permutations must be a whole number >= 1"),
    (["--chunk-size", "0"], "--chunk-size must be"),
    (["--workers", "-1"], "--workers must be 0"),
    (["--region-column", "regoin"], "no column 'regoin'"),
    (["--region-column", "type", "--regions", "Atlantis"], "unknown region 'Atlantis'"),
    (["--bayes-checks", "prior,likelihod"], "did you mean 'likelihood'"),
    (["--bayes-checks", "regions"], "needs --region-column"),
    (["--grid-region", "t>=100"], "no cell of the grid"),
    (["--grid-region", "x>=1"], "unknown name 'x'"),
    (["--spec", "no_such_model"], "no model spec"),
])
def test_bad_settings_fail_fast_before_any_work_is_scheduled(mwa_example_csv, tmp_path,
                                                             monkeypatch, args, reason):
    from bayes_wake.checks import sensitivity

    def scheduled(*_args, **_kwargs):
        raise AssertionError("work was scheduled")

    monkeypatch.setattr(sensitivity, "run_tasks", scheduled)
    out = tmp_path / "sens"
    result = _invoke(["--data", str(mwa_example_csv), *EXAMPLE_ARGS, *FAST, *args,
                      "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines and reason in lines[-1] and lines[-1].startswith("bayes-wake: error:")
    assert not out.exists()


def test_settings_refuse_bad_values_from_python():
    mwa = MWASettings(match_on=("x",))
    with pytest.raises(SettingsError, match="permutations"):
        SensitivitySettings(mwa=mwa, windows=(10,), radii=(3.0,), permutations=0)
    with pytest.raises(SettingsError, match="grid is empty"):
        SensitivitySettings(mwa=mwa, windows=(), radii=(3.0,))
    with pytest.raises(SettingsError, match="region_column"):
        SensitivitySettings(mwa=mwa, windows=(10,), radii=(3.0,), bayes_checks=("regions",))
    with pytest.raises(SettingsError, match="ci 0: the interval level"):
        SensitivitySettings(mwa=mwa, windows=(10,), radii=(3.0,), ci=0)


def test_a_killed_run_leaves_no_report_and_the_rerun_reuses_its_tasks(simulated_csv,
                                                                      tmp_path):
    out = tmp_path / "sens"
    command = [sys.executable, "-m", "bayes_wake.cli", "sensitivity", "--data",
               str(simulated_csv), *PAPER_ARGS, "--permutations", "100", "--date-shifts",
               "20", *FAST, "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list((out / "tasks").glob("*.json")):
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    stored = list((out / "tasks").glob("*.json"))
    assert 1 <= len(stored) < 3  # of 3 tasks: two placebo chunks run first, then labels
    for path in stored:
        json.loads(path.read_text())
    assert not (out / REPORT_NAME).exists() and not (out / "verdicts.csv").exists()
    assert not [p for p in tmp_path.iterdir() if "staging" in p.name]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    assert finished.returncode == 0, finished.stderr
    run = json.loads((out / "provenance.json").read_text())["run"]
    assert run["reused"] >= len(stored) and run["computed"] == run["tasks"] - run["reused"]
    assert (out / REPORT_NAME).is_file()


@pytest.mark.slow
def test_bayesian_checks_on_a_simulated_study(simulated_csv, tmp_path):
    out = tmp_path / "sens"
    result = _invoke(["--data", str(simulated_csv), *PAPER_ARGS, "--permutations", "100",
                      "--date-shifts", "0", "--workers", "0", "--region-column", "region",
                      "--regions", "west,east", "--bayes-checks",
                      "surface,prior,likelihood,regions", "--grid-region", "t>=20, s<=9",
                      # the likelihood check swaps a count likelihood: the rate-ratio model
                      "--spec", "smooth_nb",
                      "--draws", "300", "--tune", "300", "--allow-unconverged",
                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    verdicts = _after_robust(pd.read_csv(out / "verdicts.csv"))
    assert list(verdicts["check"]) == ["multiplicity", "labels", "surface", "prior",
                                       "likelihood", "regions"]
    assert "cells of t >= 20 days and s <= 9 km is" in verdicts["verdict"][2]
    assert "Power-scaling the top-level priors" in verdicts["verdict"][3]
    assert "Leaving out one region at a time" in verdicts["verdict"][5]
    surface = pd.read_csv(out / "bayes_surface.csv")
    assert 0 <= surface.loc[0, "P(positive in every region cell)"] <= 1
    cells = pd.read_csv(out / "bayes_surface_cells.csv")
    assert len(cells) == 30 and cells["prob_positive"].between(0, 1).all()
    prior = pd.read_csv(out / "bayes_prior.csv")
    assert list(prior["prior power"]) == [1.0, 0.5, 2.0]
    regions = pd.read_csv(out / "bayes_regions.csv")
    assert list(regions["fit"])[1:] == ["without west", "without east"]
    assert regions.loc[1, "treatment wakes"] < regions.loc[0, "treatment wakes"]


@pytest.mark.slow
def test_bayesian_checks_of_the_count_scale_default(simulated_csv, tmp_path):
    out = tmp_path / "sens"
    result = _invoke(["--data", str(simulated_csv), *PAPER_ARGS, "--permutations", "100",
                      "--date-shifts", "0", "--workers", "0", "--bayes-checks",
                      "surface,prior,likelihood", "--draws", "300", "--tune", "300",
                      "--allow-unconverged", "--out", str(out)])
    assert result.exit_code == 0, result.output
    verdicts = pd.read_csv(out / "verdicts.csv").set_index("check")["verdict"]
    assert "Power-scaling the top-level priors" in verdicts["prior"]
    assert verdicts["likelihood"].startswith("The likelihood check was not run")
    assert "no count likelihood to swap" in verdicts["likelihood"]
    cells = pd.read_csv(out / "bayes_surface_cells.csv")
    assert len(cells) == 30 and cells["prob_positive"].dropna().between(0, 1).all()


@pytest.mark.slow
def test_a_sensitivity_fit_takes_the_analysis_weights_and_formula(mwa_example_events):
    """The reference fit of the Bayesian checks is the fit beside the OLS table: unweighted
    and with the diff formula when the analysis is, as ``bayes-wake fit`` would fit it."""
    from bayes_wake.bayes.matched_fit import fit_matched
    from bayes_wake.bayes.spec import load_spec
    from bayes_wake.checks.bayesian import fit_variant, plan_fits
    from bayes_wake.core.windows import parse_grid_region
    from bayes_wake.wakes import count_wakes

    cube = count_wakes(mwa_example_events, [2, 4, 6, 8, 10], [2, 4, 6, 8, 10])
    mwa = MWASettings(match_on=("match1", "match2"), weighted=False, formula="diff")
    spec = load_spec("smooth_did").with_sampler(draws=200, tune=200, chains=2, seed=3)
    (reference,), _ = plan_fits(["surface"], spec, match_on=mwa.match_on, delete_sutva=False)
    result = fit_variant(cube, reference.to_dict(), mwa, None,
                         parse_grid_region(None).to_dict())
    beside = fit_matched(cube, spec, mwa).table()
    np.testing.assert_allclose(result["cells"]["mean"], beside["mean"], equal_nan=True)


@pytest.mark.slow
def test_a_sensitivity_run_whose_bayesian_fit_does_not_converge_exits_3(simulated_csv, tmp_path):
    out = tmp_path / "sens"
    args = ["--data", str(simulated_csv), *PAPER_ARGS, "--permutations", "20",
            "--date-shifts", "0", "--workers", "0", "--bayes-checks", "surface",
            "--draws", "10", "--tune", "10", "--chains", "2", "--out", str(out)]
    result = _invoke(args)
    assert result.exit_code == 3, result.output
    assert "did not converge: exit status 3" in " ".join(result.output.split())
    assert (out / REPORT_NAME).is_file()  # written before the exit status
    assert "did not converge" in pd.read_csv(out / "verdicts.csv").set_index(
        "check").loc["surface", "verdict"]
    assert "1 Bayesian fit did not converge" in (out / REPORT_NAME).read_text()
    assert _invoke([*args, "--allow-unconverged"]).exit_code == 0


def _after_robust(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Check the first verdict (robust standard errors) and return the others."""
    assert verdicts.loc[0, "check"] == "standard_errors"
    assert "with classical (R's) standard errors" in verdicts.loc[0, "verdict"]
    assert "with HC1" in verdicts.loc[0, "verdict"]
    return verdicts.iloc[1:].reset_index(drop=True)


def test_the_robust_verdict_counts_surviving_windows(mwa_example_events):
    from bayes_wake.checks.standard_errors import standard_error_check
    from bayes_wake.mwa.analysis import MWASettings, standard_error_table
    from bayes_wake.wakes import count_wakes

    cube = count_wakes(mwa_example_events, [2, 4, 6, 8, 10], [2, 4, 6, 8, 10])
    mwa = MWASettings(match_on=("match1", "match2"), weighted=True, tcm=True)
    table = standard_error_table(cube, mwa, ["classical", "HC1"])
    n_classical = int((table["pvalue_classical"] <= 0.05).sum())
    both = int(((table["pvalue_classical"] <= 0.05) & (table["pvalue_HC1"] <= 0.05)).sum())
    sentence = standard_error_check(cube, mwa, ["HC1"]).sentence
    assert sentence.startswith(f"Of {n_classical} windows significant")
    assert f"{both} with HC1 stay significant" in sentence
    assert n_classical == 4  # R's reference: 4 significant windows on the example


def _example_sites(mwa_example_csv, path):
    """Candidate sites near the example's anchors, with their match values and a weight."""
    frame = pd.read_csv(mwa_example_csv)
    anchors = frame[frame["type"] != "dependent"]
    rng = np.random.default_rng(0)
    sites = pd.DataFrame({"latitude": anchors["lat"] + rng.normal(0, 0.02, len(anchors)),
                          "lon": anchors["lon"] + rng.normal(0, 0.02, len(anchors)),
                          "match1": anchors["match1"], "match2": anchors["match2"],
                          "near": rng.uniform(0, 1, len(anchors))}).reset_index(drop=True)
    sites.to_csv(path, index=False)
    return sites


def test_the_placebo_calibration_sizes_every_choice_and_resumes(mwa_example_csv, tmp_path):
    from bayes_wake.checks.calibration import CALIBRATION_CHOICES

    sites = _example_sites(mwa_example_csv, tmp_path / "sites.csv")
    out = tmp_path / "calibrated"
    args = ["--data", str(mwa_example_csv), *EXAMPLE_ARGS, "--permutations", "20",
            "--date-shifts", "0", *FAST, "--placebo-sites", str(tmp_path / "sites.csv"),
            "--placebos", "6", "--placebo-weight", "near", "--out", str(out)]
    result = _invoke(args)
    assert result.exit_code == 0, result.output
    cells = pd.read_csv(out / "placebo_cells.csv")
    size = pd.read_csv(out / "placebo_size.csv").set_index("choice")
    assert sorted(cells["placement"].unique()) == list(range(6))
    assert list(size.index) == list(CALIBRATION_CHOICES)
    for choice in CALIBRATION_CHOICES:  # the size is the share of defined cells flagged
        p = cells[f"pvalue_{choice}"].dropna()
        assert size.loc[choice, "size"] == pytest.approx((p <= 0.05).mean())
        per = (cells[f"pvalue_{choice}"] <= 0.05).groupby(cells["placement"]).sum()
        assert size.loc[choice, "max_flagged"] == per.max()
    # the placements differ from one another and from the real anchors
    by = cells.groupby("placement")["estimate"].apply(lambda e: tuple(e.round(12)))
    assert by.nunique() == 6
    verdict = pd.read_csv(out / "verdicts.csv").set_index("check").loc["calibration",
                                                                        "verdict"]
    assert verdict.startswith(f"On 6 of 6 placebo placements") and f"{len(sites)} candidate" \
        in verdict
    provenance = json.loads((out / "provenance.json").read_text())
    assert len(provenance["inputs"]["placebo_sites"]["sha256"]) == 64
    again = _invoke(args)
    assert again.exit_code == 0 and "0 tasks computed" in again.output


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.drop(columns=["match2"]), "missing column 'match2'"),
    (lambda s: s.assign(lon=s["lon"].astype(object).where(s.index != 3, "east")),
     "row 4"),
    (lambda s: s.assign(near=-s["near"]), "weights must be >= 0"),
])
def test_bad_placebo_sites_are_refused_naming_file_row_and_column(mwa_example_csv, tmp_path,
                                                                  edit, message):
    sites = edit(_example_sites(mwa_example_csv, tmp_path / "sites.csv"))
    sites.to_csv(tmp_path / "bad_sites.csv", index=False)
    result = _invoke(["--data", str(mwa_example_csv), *EXAMPLE_ARGS, *FAST,
                      "--placebo-sites", str(tmp_path / "bad_sites.csv"),
                      "--placebo-weight", "near", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "bad_sites.csv" in result.output and message in result.output
    assert not (tmp_path / "o").exists()


def test_placebos_without_sites_are_refused(mwa_example_csv, tmp_path):
    result = _invoke(["--data", str(mwa_example_csv), *EXAMPLE_ARGS, *FAST, "--placebos", "5",
                      "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--placebo-sites" in result.output


@pytest.mark.slow
def test_the_placebo_calibration_sizes_the_posterior_too(mwa_example_csv, tmp_path):
    _example_sites(mwa_example_csv, tmp_path / "sites.csv")
    out = tmp_path / "bayes_calibrated"
    result = _invoke(["--data", str(mwa_example_csv), *EXAMPLE_ARGS, "--permutations", "20",
                      "--date-shifts", "0", "--workers", "0", "--bayes-checks", "surface",
                      "--placebo-sites", str(tmp_path / "sites.csv"), "--placebos", "2",
                      "--placebo-bayes", "--allow-unconverged", "--ci", "0.8",
                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    cells = pd.read_csv(out / "placebo_cells.csv")
    size = pd.read_csv(out / "placebo_size.csv").set_index("choice")
    row = size.loc["posterior 80% interval"]  # --ci travels to the placebo fits
    assert row["nominal"] == pytest.approx(0.2)
    surface = pd.read_csv(out / "bayes_surface_cells.csv")  # and to the checks' fits
    assert surface["ci_prob"].eq(0.8).all()
    fitted = cells.dropna(subset=["bayes_lower"])
    assert len(fitted) >= 2 and (fitted["bayes_lower"] <= fitted["bayes_upper"]).all()
    excludes = (fitted["bayes_lower"] > 0) | (fitted["bayes_upper"] < 0)
    assert row["size"] == pytest.approx(excludes.mean())


def test_spillover_reaches_every_table_of_the_report(mwa_example_csv, tmp_path):
    """With --spillover the report's OLS table (estimates.csv, Holm and BH) is the direct
    effect of `mwa --spillover`, the estimand its permutations test, not R's plain table."""
    args = ["--data", str(mwa_example_csv), *EXAMPLE_ARGS]
    tables = {}
    for name, extra in (("plain", []), ("direct", ["--spillover"])):
        run = CliRunner().invoke(main, ["mwa", *args, *extra, "--out", str(tmp_path / name)])
        assert run.exit_code == 0, run.output
        tables[name] = pd.read_csv(tmp_path / name / "estimates.csv")
    result = _invoke([*args, "--spillover", "--permutations", "20", "--date-shifts", "0",
                      *FAST, "--out", str(tmp_path / "sens")])
    assert result.exit_code == 0, result.output
    got = pd.read_csv(tmp_path / "sens" / "estimates.csv")
    np.testing.assert_allclose(got["estimate"], tables["direct"]["estimate"], rtol=1e-9)
    np.testing.assert_allclose(got["pvalue"], tables["direct"]["pvalue"], rtol=1e-9)
    differs = ~np.isclose(got["estimate"], tables["plain"]["estimate"], rtol=1e-6,
                          equal_nan=True)
    assert differs.sum() >= 3  # the two estimands are not the same table
