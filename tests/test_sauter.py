"""The Sauter (2022) workflow end to end: made-up files, the real ACLED export, the report.

Fast tests run the matched wake analysis only; the full command with the Bayesian fits on the
real data is marked ``slow``. Real ACLED rows are read in place and never copied: the tests
check counts and files, and the workflow writes no ACLED row.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from html import unescape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner
from synthetic import (
    made_up_events,
    write_bases,
    write_monadic,
    write_projects,
    write_regions,
)

from bayes_wake.mwa.analysis import MWASettings
from bayes_wake.cli import main
from bayes_wake.errors import SettingsError
from bayes_wake.studies.sauter.settings import SauterSettings
from bayes_wake.studies.sauter.workflow import reanalyze_sauter

REPO = Path(__file__).resolve().parents[1]
SMALL_GRID = {"windows": (10, 30, 10), "radii": (5.0, 15.0, 5.0)}


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> dict[str, Path]:
    """A made-up study: ACLED-like monadic export, regions, bases, QIP and aid files."""
    folder = tmp_path_factory.mktemp("study")
    events = made_up_events(400, seed=11)
    events += made_up_events(20, seed=12, box=(-11.5, 13.0, -7.5, 15.5))  # in Kayes
    for k, event in enumerate(events):
        event["event_id_cnty"] = f"XYZ{k:05d}"
    return {
        "acled": write_monadic(folder / "acled.csv", events),
        "boundaries": write_regions(folder / "regions.geojson"),
        "bases": write_bases(folder / "bases.csv"),
        "qips": write_projects(folder / "qips.csv", 60, seed=21, kind="qip"),
        "aid": write_projects(folder / "aid.csv", 200, seed=22, kind="aid"),
    }


@pytest.fixture(scope="module")
def real_projects_run(study, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "report"
    result = reanalyze_sauter(SauterSettings(study["acled"], study["boundaries"], study["bases"],
                                             qips=study["qips"], aid=study["aid"], bayes=False,
                                             **SMALL_GRID), out)
    return result, out


def test_the_workflow_on_made_up_files_writes_every_artefact(real_projects_run):
    result, out = real_projects_run
    assert not result.any_simulated
    assert list(result.outcomes) == ["vac", "battles_nsag", "nsag"]
    for name in result.outcomes:
        for file in ("estimates.csv", "matching.csv", "SUTVA.csv", "wakes.csv", "cube.nc",
                     "effect_surface.png"):
            assert (out / name / file).stat().st_size > 0, (name, file)
        estimates = pd.read_csv(out / name / "estimates.csv")
        assert len(estimates) == 9  # 3 windows x 3 radii
    for file in ("report.html", "provenance.json", "data_summary.csv", "dropped.csv",
                 "covariate_balance.csv", "significant_windows.csv", "projects.csv",
                 "map.png", "qip_funding.csv"):
        assert (out / file).stat().st_size > 0, file
    assert not (out / "SIMULATED_PROJECTS.txt").exists()
    html = (out / "report.html").read_text()
    assert "SIMULATED" not in html
    assert html.count("data:image/png;base64,") >= 4  # the map and a surface per outcome
    assert "Violence against civilians" in html and "Table 2" in html


def test_counts_drops_and_tables_add_up(real_projects_run, study):
    result, out = real_projects_run
    summary = pd.read_csv(out / "data_summary.csv")
    total = summary.set_index("region").loc["Total"]
    assert total["QIPs"] == (result.projects["kind"] == "qip").sum() == 60
    assert total["Aid projects"] == 200
    assert summary["region"].tolist()[:-1] == ["Segou", "Mopti", "Tombouctou", "Gao", "Kidal",
                                               "Menaka"]
    dropped = pd.read_csv(out / "dropped.csv")
    acled = dropped[dropped["step"] == "ACLED"].set_index("reason")["events"]
    assert acled["in another admin-1 region (outside the study area)"] == 20  # the Kayes ones
    for item in result.outcomes.values():
        assert total[item.outcome.label] == item.n_events
        assert int(item.cube.attrs["n_dependent"]) == item.n_events
    funding = pd.read_csv(out / "qip_funding.csv")
    budgets = pd.read_csv(study["qips"], dtype=str)["budget_usd"]
    expected = budgets.str.replace("US$ ", "").str.replace(",", "").astype(float).sum()
    assert funding.iloc[-1]["Activity type"] == "Total"
    assert funding.iloc[-1]["Funding"] == expected
    monthly = pd.read_csv(out / "events_per_month.csv")  # the paper's Figure 5
    assert monthly["month"].tolist()[:2] == ["2017-01", "2017-02"] and len(monthly) == 48
    assert monthly["QIPs"].sum() == 60 and monthly["Aid projects"].sum() == 200
    for item in result.outcomes.values():
        assert monthly[item.outcome.label].sum() == item.n_events
    assert (out / "events_per_month.png").stat().st_size > 0
    balance = pd.read_csv(out / "covariate_balance.csv")
    assert balance["Event type"].tolist()[:2] == ["Aid projects", "QIPs"]
    assert "UN base dist. [km]" in balance.columns


def test_the_event_table_follows_the_contract(real_projects_run, study):
    from bayes_wake.studies.sauter.acled import read_acled
    from bayes_wake.studies.sauter.workflow import _event_table

    result, _ = real_projects_run
    cube = result.outcomes["vac"].cube
    assert json.loads(cube.attrs["covariates"]) == ["dist_base_km"] == result.covariates
    roles = pd.Series(cube["role"].to_numpy()).value_counts().to_dict()
    assert roles == {"control": 200, "treatment": 60}
    assert cube.attrs["convention"] == "mwa" and "Sauter" in cube.attrs["source"]
    # the table handed to count_wakes (read_events' contract)
    acled = read_acled(study["acled"]).head(5).assign(dist_base_km=1.0)
    table = _event_table(result.projects, acled, ["dist_base_km"], source="test")
    assert table.columns.tolist() == ["event_id", "role", "time", "lon", "lat",
                                      "dist_base_km", "source_id"]
    assert table.attrs == {"source": "test", "covariates": ["dist_base_km"]}
    assert str(table["time"].dtype) == "datetime64[ns, UTC]"
    assert table["event_id"].tolist() == list(range(1, len(table) + 1))
    assert table["role"].tolist() == ["treatment"] * 60 + ["control"] * 200 + ["dependent"] * 5
    assert table["source_id"].iloc[0] == "QIP-000" and table["source_id"].iloc[-1] == \
        acled["event_id_cnty"].iloc[-1]
    assert table.dtypes[["lon", "lat", "dist_base_km"]].eq("float64").all()


def test_missing_project_files_are_simulated_and_every_output_says_so(study, tmp_path):
    out = tmp_path / "sim"
    result = reanalyze_sauter(SauterSettings(study["acled"], study["boundaries"], study["bases"],
                                             qips=study["qips"], aid=None, n_aid=120, seed=3,
                                             bayes=False, outcomes=["vac"], **SMALL_GRID), out)
    assert result.simulated == {"qip": False, "aid": True}
    assert (result.projects["kind"] == "aid").sum() == 120
    html = (out / "report.html").read_text()
    top = html[:html.index("<h2>")]
    assert "PROJECTS ARE SIMULATED" in top and 'class="warning"' in top
    assert "120 aid projects" in (out / "SIMULATED_PROJECTS.txt").read_text()
    record = json.loads((out / "provenance.json").read_text())
    assert record["settings"]["projects"] == {"qip": "from file", "aid": "SIMULATED (seed 3)"}
    assert "PROJECTS ARE SIMULATED" in record["WARNING"]
    assert (pd.read_csv(out / "data_summary.csv")["projects"] == "SIMULATED").all()
    projects = pd.read_csv(out / "projects.csv")
    assert projects.loc[projects["kind"] == "aid", "simulated"].all()
    assert not projects.loc[projects["kind"] == "qip", "simulated"].any()
    # the same seed gives the same placement
    again = reanalyze_sauter(SauterSettings(study["acled"], study["boundaries"], study["bases"],
                                            qips=study["qips"], n_aid=120, seed=3,
                                            bayes=False, outcomes=["vac"], **SMALL_GRID),
                             tmp_path / "again")
    pd.testing.assert_frame_equal(result.projects[["lon", "lat", "time"]],
                                  again.projects[["lon", "lat", "time"]])


def test_settings_are_checked_before_any_work(study, tmp_path):
    args, out = (study["acled"], study["boundaries"], study["bases"]), tmp_path / "x"
    with pytest.raises(SettingsError, match="simulated"):
        reanalyze_sauter(SauterSettings(*args, covariate_columns=["pop_density"], bayes=False),
                         out)
    with pytest.raises(SettingsError, match="unknown outcome"):
        reanalyze_sauter(SauterSettings(*args, outcomes=["riots"], bayes=False), out)
    with pytest.raises(SettingsError, match="does not divide"):
        reanalyze_sauter(SauterSettings(*args, windows=(10, 60, 15), bayes=False), out)
    with pytest.raises(SettingsError, match="'Sikasso' is not in the boundary file"):
        reanalyze_sauter(SauterSettings(*args, regions=["Mopti", "Sikasso"], bayes=False), out)
    with pytest.raises(SettingsError, match="'riots' .* has no events"):
        reanalyze_sauter(SauterSettings(*args, outcomes=["riots:event_types=Riots"],
                                        bayes=False, n_qips=20, n_aid=40), out)
    with pytest.raises(SettingsError, match="spec=None fits nothing"):
        SauterSettings(*args, spec=None)
    with pytest.raises(SettingsError, match="grid_region: no cell of the grid has t >= 1000"):
        SauterSettings(*args, grid_region="t>=1000")
    assert SauterSettings(*args, grid_region="t>=30, s<=9").grid_region.mask(
        [10, 30, 60], [3, 9, 15]).sum() == 4
    assert not (tmp_path / "x").exists()


def test_the_default_settings_fit_the_default_model_and_compare_nothing(study):
    """With the fits on, the spec is loaded once and no second model is fitted unless one
    is named (a None compare once raised like a missing spec)."""
    from bayes_wake.options import DEFAULT_SPEC

    settings = SauterSettings(study["acled"], study["boundaries"], study["bases"])
    assert settings.bayes and settings.spec.name == DEFAULT_SPEC and settings.compare is None
    compared = SauterSettings(study["acled"], study["boundaries"], study["bases"],
                              compare="nb_did")
    assert compared.compare.name == "nb_did"


def test_command_errors_are_one_line_and_leave_nothing(study, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("event_id_cnty,event_date,latitude,longitude,event_type,inter1\n"
                   "A1,yesterday,14,-4,Battles,1\n")
    out = tmp_path / "out"
    argv = ["sauter", "--acled", str(bad), "--boundaries", str(study["boundaries"]),
            "--bases", str(study["bases"]), "--out", str(out), "--mwa-only"]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2
    last = [line for line in result.output.splitlines() if line.strip()][-1]
    assert "bad.csv, row 1, column 'event_date': cannot parse the date 'yesterday'" in last
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


@pytest.mark.parametrize("option, said", [
    ("--boundaries", "the boundary file must hold polygons, and this one holds no geometry"),
    ("--rivers", "the rivers layer must hold lines or polygons; this file holds Point"),
])
def test_a_points_file_where_shapes_are_needed_is_one_line(study, tmp_path, option, said):
    """The bases CSV given as --boundaries raised an AttributeError traceback; given as
    --rivers, its points were taken as water."""
    given = {"--acled": study["acled"], "--boundaries": study["boundaries"],
             "--bases": study["bases"], option: study["bases"]}
    out = tmp_path / "out"
    argv = ["sauter", *[str(a) for pair in given.items() for a in pair], "--out", str(out),
            "--mwa-only"]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2, result.output
    last = [line for line in result.output.splitlines() if line.strip()][-1]
    assert last.startswith(f"bayes-wake: error: {study['bases']}: {said}")
    assert not out.exists()


def test_compare_without_the_bayesian_fits_is_refused_before_any_work(study, tmp_path):
    """--compare fits a second model beside the first; --mwa-only fits none: one line, exit
    2, nothing read or written (the library refuses the same settings)."""
    out = tmp_path / "out"
    argv = ["sauter", "--acled", str(study["acled"]), "--boundaries", str(study["boundaries"]),
            "--bases", str(study["bases"]), "--out", str(out), "--mwa-only",
            "--compare", "nb_did"]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == ["bayes-wake: error: --compare nb_did needs the Bayesian fits, which "
                     "--mwa-only skips"], result.output
    assert not out.exists()
    with pytest.raises(SettingsError, match="compare=nb_did needs the Bayesian fits"):
        SauterSettings(study["acled"], study["boundaries"], study["bases"], bayes=False,
                       compare="nb_did")


def test_the_method_says_which_spec_checks_the_counts():
    """A report whose model is not of the wake counts says, once, that --spec nb_did models
    and checks them; a count model's report has its check in each outcome instead."""
    from bayes_wake.bayes.spec import load_spec
    from bayes_wake.studies.sauter.report import _predictive_check_sentence

    said = _predictive_check_sentence(load_spec("smooth_did"))
    assert said.startswith(" It models the OLS table's per-window estimates, not the wake "
                           "counts, so nothing here checks it against the counts; --spec nb_did")
    assert "counts themselves" in _predictive_check_sentence(load_spec("smooth_nb"))
    assert _predictive_check_sentence(load_spec("nb_did")) == ""
    assert _predictive_check_sentence(None) == ""


def test_the_console_separates_thousands_in_every_count(study, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "sauter", "--acled", str(study["acled"]), "--boundaries", str(study["boundaries"]),
        "--bases", str(study["bases"]), "--qips", str(study["qips"]), "--n-aid", "1500",
        "--outcome", "vac", "--t-window", "10", "30", "10", "--spat-window", "5", "15", "5",
        "--mwa-only", "--out", str(out)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "SIMULATED PROJECTS: 1,500 aid projects" in said
    assert "(66 events)" in said and "of 9 windows with p <=" in said
    assert "1500" not in said


def test_the_script_calls_the_same_workflow(study, tmp_path):
    out = tmp_path / "script"
    run = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "reanalyze_sauter.py"), "--out", str(out),
         "--acled", str(study["acled"]), "--boundaries", str(study["boundaries"]),
         "--bases", str(study["bases"]), "--qips", str(study["qips"]), "--no-water",
         "--mwa-only"], check=False, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "NOTE: projects were SIMULATED" in run.stdout  # no aid file: simulated
    assert (out / "report.html").exists() and (out / "SIMULATED_PROJECTS.txt").exists()


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_the_report_renders_in_headless_chromium(real_projects_run, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium to run this test)")
    _, out = real_projects_run
    shot = tmp_path / "report.png"
    run = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--no-first-run", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2400",
         f"--screenshot={shot}", (out / "report.html").as_uri()],
        check=False, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    from PIL import Image

    image = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert image.shape == (2400, 1200)
    # a rendered page: text and figures, not a blank or an error page
    assert image.std() > 20 and (image < 100).mean() > 0.01


@pytest.fixture(scope="module")
def real_run(shared_data, tmp_path_factory):
    """`bayes-wake sauter --mwa-only` on the real ACLED export, projects simulated."""
    out = tmp_path_factory.mktemp("real") / "report"
    data = shared_data
    argv = ["sauter",
            "--acled", str(data / "acled_mali_2017_2020" / "2017-01-01-2020-12-31-Mali.csv"),
            "--boundaries",
            str(data / "ocha_cod_ab_mali_2015" / "mli_adm1_with_menaka_derived.geojson"),
            "--bases", str(data / "geopko_minusma" / "minusma_bases_sauter2022_from_geopko.csv"),
            "--rivers", str(data / "gshhg_wdbii_mali" / "mali_bbox_rivers_wdbii_full.geojson"),
            "--rivers", str(data / "gshhg_wdbii_mali" / "mali_bbox_lakes_gshhs_full.geojson"),
            "--out", str(out), "--mwa-only"]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    return result.output, out


def test_real_acled_export_with_simulated_projects(real_run):
    output, out = real_run
    assert output.count("PROJECTS ARE SIMULATED") >= 2  # console: before and after
    summary = pd.read_csv(out / "data_summary.csv").set_index("region")
    # PROVENANCE.md: 2,939 events in the study regions, 1,088 VAC, 939 battles, 2,622 NSAG
    assert summary.loc["Total", "Violence against civilians"] == 1088
    assert summary.loc["Total", "All non-state armed group activity"] == 2622
    assert summary.loc["Total", "Battles involving a non-state armed group"] == 936
    assert summary.loc["Total", "QIPs"] == 364 and summary.loc["Total", "Aid projects"] == 1500
    dropped = pd.read_csv(out / "dropped.csv").set_index("reason")["events"]
    assert dropped["in another admin-1 region (outside the study area)"] == 3314 - 2939
    balance = pd.read_csv(out / "covariate_balance.csv").set_index("Event type")
    assert balance.loc["QIPs", "UN base dist. [km]"] < balance.loc["Aid projects",
                                                                   "UN base dist. [km]"]
    assert set(balance.columns) >= {"UN base dist. [km]", "Water dist. [km]"}
    for name in ("vac", "battles_nsag", "nsag"):
        assert len(pd.read_csv(out / name / "estimates.csv")) == 30
    html = (out / "report.html").read_text()
    assert "PROJECTS ARE SIMULATED" in html[:html.index("<h2>")]
    assert "1,088" in html and "monadic layout" in html
    assert "the report holds ACLED-derived data and is for your own use" in html
    # the two design checks (issue 24): spillover between the simulated QIPs, which sit in
    # the base towns, names --spillover; the pre-trend placebo is stated per outcome
    assert html.count("rerun with --spillover for the direct effect") == 3
    assert html.count("Pre-trend placebo (the same regression one period earlier") == 3
    assert "--spillover separates them" in output
    for name in ("vac", "battles_nsag", "nsag"):
        assert len(pd.read_csv(out / name / "pretrend.csv")["lead_estimate"].dropna()) >= 25


def test_no_event_map_leaves_the_acled_locations_out(study, tmp_path):
    out = tmp_path / "report"
    argv = ["sauter", "--acled", str(study["acled"]), "--boundaries", str(study["boundaries"]),
            "--bases", str(study["bases"]), "--qips", str(study["qips"]), "--aid",
            str(study["aid"]), "--t-window", "10", "30", "10", "--spat-window", "5", "15", "5",
            "--mwa-only", "--no-event-map", "--out", str(out)]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text()
    assert "ACLED-derived data" not in html and "outcome&#x27;s events" not in html
    assert json.loads((out / "provenance.json").read_text())["settings"]["event_map"] is False


def test_no_acled_row_is_written(real_run, shared_data):
    _, out = real_run
    raw = pd.read_csv(shared_data / "acled_mali_2017_2020" / "2017-01-01-2020-12-31-Mali.csv",
                      dtype=str)
    ids = set(raw["event_id_cnty"])
    notes = raw["notes"].dropna().str[:60].tolist()[:50]
    for path in out.rglob("*.csv"):
        text = path.read_text()
        assert not any(note in text for note in notes), path
        if path.name == "projects.csv":
            assert not ids & set(pd.read_csv(path, dtype=str)["project_id"])


def _real_argv(data: Path, out: Path, *extra: str) -> list[str]:
    """`bayes-wake sauter` on the real ACLED export, bases and boundaries, into ``out``."""
    return ["sauter",
            "--acled", str(data / "acled_mali_2017_2020" / "2017-01-01-2020-12-31-Mali.csv"),
            "--boundaries",
            str(data / "ocha_cod_ab_mali_2015" / "mli_adm1_with_menaka_derived.geojson"),
            "--bases", str(data / "geopko_minusma" / "minusma_bases_sauter2022_from_geopko.csv"),
            *extra, "--out", str(out)]


@pytest.mark.slow
def test_full_command_with_the_bayesian_fits_on_the_real_data(shared_data, tmp_path):
    out = tmp_path / "full"
    result = CliRunner().invoke(main, _real_argv(shared_data, out))
    assert result.exit_code == 0, result.output
    for name in ("vac", "battles_nsag", "nsag"):
        surface = pd.read_csv(out / name / "effect_surface.csv")
        assert len(surface) == 30 and surface["mean"].notna().all()
        assert (out / name / "posterior.nc").stat().st_size > 0
        assert (out / name / "comparison.png").stat().st_size > 0
        assert not (out / name / "NOT_CONVERGED.txt").exists()
        # the default model fitted to the pre-trend placebo too, beside the effect
        lead = pd.read_csv(out / name / "lead_surface.csv")
        assert len(lead) == 30 and lead["mean"].notna().sum() >= 20
        assert not np.allclose(lead["mean"].fillna(0), surface["mean"].fillna(0))
        assert (out / name / "pretrend_surface.png").stat().st_size > 0
    html = " ".join((out / "report.html").read_text().split())
    assert "MCMC diagnostics" in html and "Posterior mean" not in html[:200]
    assert html.count("Pre-trend surface (smooth_did, the same model one period earlier") == 3
    assert html.count("smooth_did (pre-trend placebo)") == 3  # in the diagnostics table
    assert " ".join(result.output.split()).count("Pre-trend surface (smooth_did") == 3


@pytest.mark.slow
def test_a_count_model_is_checked_and_compared_in_every_outcome_and_the_report(shared_data,
                                                                                tmp_path):
    """`sauter --spec nb_did --compare smooth_did`: each outcome's folder holds the count
    model's predictive check and the comparison, and the report shows both."""
    out = tmp_path / "nb"
    result = CliRunner().invoke(main, _real_argv(
        shared_data, out, "--outcome", "vac", "--outcome", "battles_nsag", "--spec", "nb_did",
        "--compare", "smooth_did", "--t-window", "10", "30", "20", "--spat-window", "3", "9",
        "6", "--draws", "100", "--tune", "150", "--chains", "2", "--allow-unconverged",
        "--grid-region", "t>=30"))
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    html = " ".join((out / "report.html").read_text().split())
    for name in ("vac", "battles_nsag"):
        for file in ("ppc.csv", "ppc.png", "compare_surfaces.png", "model_comparison.csv",
                     "comparison.png", "effect_surface.csv"):
            assert (out / name / file).stat().st_size > 0, (name, file)
        assert set(pd.read_csv(out / name / "ppc.csv")["statistic"]) == {
            "zero_share", "dispersion", "max_count"}
        table = pd.read_csv(out / name / "model_comparison.csv")
        assert table["model"].tolist() == ["nb_did", "smooth_did"]
    verdict = "Posterior predictive check: nb_did "
    assert said.count(verdict) == 2 and html.count(verdict) == 2
    assert html.count("--spec nb_did models the counts themselves") == 0  # a count model
    comparison = ("Model comparison (nb_did vs smooth_did): LOO: not computed (smooth_did is "
                  "not a model of the wake counts")
    assert said.count(comparison) == 2 and html.count(comparison) == 2
    assert html.count("<figcaption>Left: the posterior mean of nb_did; right: that of "
                      "smooth_did (--compare)") == 2  # compare_surfaces.png
    assert html.count("<figcaption>Posterior predictive check of nb_did") == 2  # ppc.png
    assert html.count("data:image/png;base64,") == 2 + 2 * 3  # map, Figure 5; 3 per outcome
    assert "compare_surfaces.png, model_comparison.csv" in html
    record = json.loads((out / "provenance.json").read_text())["settings"]
    assert record["spec"]["name"] == "nb_did" and record["compare"]["name"] == "smooth_did"
    assert record["compare"]["sampler"]["draws"] == 100  # the same sampler overrides
    # --grid-region: the region's average in each fit's grid_summary.csv and the summary
    assert unescape(html).count("average effect over the t >= 30 days region's 2 cells") == 2
    for name in ("vac", "battles_nsag"):
        summary = pd.read_csv(out / name / "grid_summary.csv")
        assert summary["region"].tolist() == ["grid", "t >= 30 days"]
    assert record["grid_region"]["conditions"] == [["t", ">=", 30.0]]


@pytest.mark.slow
def test_a_sauter_fit_that_does_not_converge_exits_3_after_writing_the_report(shared_data,
                                                                               tmp_path):
    out = tmp_path / "short"
    result = CliRunner().invoke(main, _real_argv(shared_data, out, "--outcome", "vac",
                                                 "--draws", "10", "--tune", "10",
                                                 "--chains", "2"))
    assert result.exit_code == 3, result.output
    assert "exit status 3" in result.output
    assert (out / "report.html").is_file()
    assert (out / "vac" / "NOT_CONVERGED.txt").read_text().startswith("NOT CONVERGED")
    assert (pd.read_csv(out / "vac" / "effect_surface.csv")["converged"] == 0).all()


def test_the_study_map_keeps_labels_clear_rivers_inside_and_a_true_scale_bar(shared_data):
    """On the real boundaries, bases and GSHHG rivers: every drawn river vertex lies inside
    Mali (the layer runs far beyond it), no region label sits on a base or a project, the
    scale bar is 200 km long by an independent haversine, and without the event map no
    outcome point is drawn."""
    import matplotlib.pyplot as plt
    import shapely
    from matplotlib.collections import LineCollection

    from bayes_wake.studies.sauter.acled import parse_outcome
    from bayes_wake.io.covariates import load_layer
    from bayes_wake.simulate.placements import simulate_project_placement
    from bayes_wake.studies.sauter.regions import StudyArea, load_regions
    from bayes_wake.studies.sauter.regions import STUDY_REGIONS
    from bayes_wake.studies.sauter.workflow import _study_map

    boundary = load_regions(shared_data / "ocha_cod_ab_mali_2015"
                            / "mli_adm1_with_menaka_derived.geojson")
    bases = load_layer(shared_data / "geopko_minusma"
                       / "minusma_bases_sauter2022_from_geopko.csv")
    rivers = load_layer(shared_data / "gshhg_wdbii_mali" / "mali_bbox_rivers_wdbii_full.geojson")
    country = boundary.geometry.union_all().buffer(1e-6)
    assert not rivers.geometry.within(country).all()  # the layer does run outside
    projects = simulate_project_placement(0, area=StudyArea(boundary, STUDY_REGIONS))
    events = pd.DataFrame({"lon": [-3.0, 0.0], "lat": [14.5, 16.0]})
    outcome = parse_outcome("vac")

    fig = _study_map(boundary, list(STUDY_REGIONS), bases, projects, events, outcome,
                     [rivers], [])
    ax = fig.axes[0]
    water = [c for c in ax.collections if isinstance(c, LineCollection)
             and np.allclose(c.get_colors()[0][:3], (0x6b / 255, 0xae / 255, 0xd6 / 255))]
    vertices = np.concatenate([p.vertices for c in water for p in c.get_paths()])
    assert len(vertices) > 1000
    assert shapely.contains_xy(country, vertices[:, 0], vertices[:, 1]).all()

    markers = np.column_stack([np.r_[bases.geometry.x, projects["lon"]],
                               np.r_[bases.geometry.y, projects["lat"]]])
    labels = [t for t in ax.texts if t.get_style() == "italic"]  # base labels are bold
    assert {t.get_text() for t in labels} >= set(STUDY_REGIONS)
    for label in labels:
        x, y = label.xy
        gap = np.hypot(markers[:, 0] - x, markers[:, 1] - y).min()
        assert gap >= 0.3, (label.get_text(), gap)

    bar = next(line for line in ax.lines if line.get_linewidth() == 3)
    (x0, x1), (y, _) = bar.get_xdata(), bar.get_ydata()
    p = np.radians(y)
    km = 2 * 6371.0088 * np.arcsin(np.cos(p) * abs(np.sin(np.radians(x1 - x0) / 2)))
    assert km == pytest.approx(200, rel=1e-3)
    assert any(t.get_text() == "200 km" for t in ax.texts)
    assert any(len(c.get_offsets()) == 2 for c in ax.collections)  # the two outcome points
    plt.close(fig)

    fig = _study_map(boundary, list(STUDY_REGIONS), bases, projects, None, outcome, None, [])
    ax = fig.axes[0]
    assert not any(len(c.get_offsets()) == 2 for c in ax.collections)
    assert outcome.label not in " ".join(t.get_text() for t in ax.get_legend().get_texts())
    plt.close(fig)


def test_the_report_counts_where_ols_and_the_posterior_disagree():
    """The report's sentence on disagreement, on a hand-built table of every case: OLS
    outside the interval or not, opposite signs clear for OLS only, for the posterior only,
    for neither, and an NA cell."""
    from types import SimpleNamespace

    from bayes_wake.studies.sauter.report import _agreement_sentence
    from bayes_wake.studies.sauter.workflow import OutcomeResult

    coords = {"window": [10, 20, 30], "radius": [3.0, 6.0]}

    def grid(values):
        return xr.DataArray(np.array(values, float).reshape(3, 2), coords=coords,
                            dims=("window", "radius"))

    # cells:           a      b      c      d      e      f(NA)
    est = grid([0.30, -0.10, 0.05, -0.02, 0.10, np.nan])
    pvalue = grid([0.01, 0.01, 0.50, 0.40, 0.01, np.nan])
    mean = grid([0.10, 0.05, -0.08, 0.01, 0.09, 0.02])
    lower = grid([0.02, -0.15, -0.15, -0.03, 0.01, -0.1])
    upper = grid([0.18, 0.15, -0.01, 0.05, 0.17, 0.1])
    surface = xr.Dataset({"mean": mean, "ci_lower": lower, "ci_upper": upper})
    surface.attrs["ci_prob"] = 0.89
    item = OutcomeResult(outcome=None, n_events=0, cube=None,
                         mwa=SimpleNamespace(surface=xr.Dataset({"estimate": est,
                                                                 "pvalue": pvalue})),
                         bayes=SimpleNamespace(surface=surface))
    text = _agreement_sentence(item, alpha=0.05)
    # outside: a (0.30 > 0.18), c (0.05 > -0.01); opposite and clear: b (OLS clear only),
    # c (posterior clear only); d is opposite but clear for neither; f is NA
    assert "interval in 2 of 5 cells" in text, text
    assert "opposite signs, one of them clearly (p <= 0.05 or the interval excluding 0), in 2." \
        in text, text


def test_significant_windows_has_the_same_columns_whether_empty_or_not(mwa_example_events):
    """With no significant window the table lost its robust and posterior columns."""
    from bayes_wake.mwa.analysis import ROBUST_ERRORS
    from bayes_wake.studies.sauter.workflow import _significant_all

    item = _unpooled_outcome(mwa_example_events)
    full = _significant_all({"vac": item}, alpha=1.0)
    empty = _significant_all({"vac": item}, alpha=0.0)
    assert len(full) > 0 and len(empty) == 0
    assert list(empty.columns) == list(full.columns)
    assert {"posterior_mean", "prob_positive", *(f"pvalue_{v}" for v in ROBUST_ERRORS)} <= \
        set(full.columns)


def _unpooled_outcome(events):
    """An outcome analysed on R's example with the unpooled surface (exact draws, no
    sampler) as its Bayesian fit."""
    import warnings

    from bayes_wake.bayes.fit import fit_surface
    from bayes_wake.bayes.spec import load_spec
    from bayes_wake.studies.sauter.acled import parse_outcome
    from bayes_wake.mwa.analysis import ROBUST_ERRORS, matched_wake_analysis, \
        standard_error_table
    from bayes_wake.studies.sauter.workflow import OutcomeResult
    from bayes_wake.wakes import count_wakes

    cube = count_wakes(events, [2, 6, 10], [2.0, 6.0, 10.0])
    result = matched_wake_analysis(cube, MWASettings(match_on=["match1", "match2"], weighted=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_surface(cube, load_spec("unpooled_did"),
                          MWASettings(match_on=["match1", "match2"], weighted=True),
                          progressbar=False)
    return OutcomeResult(outcome=parse_outcome("vac"), n_events=0, cube=cube, mwa=result,
                         bayes=fit,
                         robust=standard_error_table(cube, result.settings, ROBUST_ERRORS))


def test_the_report_summary_gives_the_grid_average_effect(mwa_example_events, tmp_path):
    """The Sauter report had no grid-level result: each outcome's summary line now gives
    the average effect over the grid's cells with its interval (grid_summary.csv)."""
    from bayes_wake.io.html import HtmlReport
    from bayes_wake.studies.sauter.report import _summary_section
    from bayes_wake.studies.sauter.workflow import SauterResult

    item = _unpooled_outcome(mwa_example_events)
    empty = pd.DataFrame()
    sauter = SauterResult(out=tmp_path, outcomes={"vac": item}, projects=empty, summary=empty,
                          dropped=empty, balance=empty, funding=None, simulated={},
                          covariates=["match1", "match2"])
    report = HtmlReport("x")
    _summary_section(report, sauter, {"windows": [2, 6, 10], "radii": [2.0, 6.0, 10.0],
                                      "tcm": False, "weighted": True, "convention": "mwa"},
                     0.05)
    import html

    row = item.bayes.grid_summary().iloc[0]
    text = " ".join(html.unescape(report.html()).split())
    assert (f"average effect over the grid's {row['cells']} cells with an estimate: "
            f"{row['mean']:.3f} extra events per treated wake, "
            f"{round(100 * row['ci_prob'])}% interval [{row['ci_lower']:.3f}, "
            f"{row['ci_upper']:.3f}]") in text
