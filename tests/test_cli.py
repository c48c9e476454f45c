"""The command line, end to end, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from click.testing import CliRunner
from synthetic import write_one_treated_wake

from bayes_wake.cli import main

EXAMPLE_ARGS = ["--t-window", "2", "10", "2", "--spat-window", "2", "10", "2",
                "--treatment", "type=treatment", "--control", "type=control",
                "--dependent", "type=dependent", "--match", "match1,match2",
                "--weighted", "--tcm"]


def test_mwa_command_reproduces_r_and_writes_every_artefact(mwa_example_csv, mwa_reference,
                                                            tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "bayes_wake.cli", "mwa", "--data", str(mwa_example_csv),
         *EXAMPLE_ARGS, "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for name in ("estimates", "matching", "SUTVA", "wakes"):
        mine, r = pd.read_csv(out / f"{name}.csv"), pd.read_csv(mwa_reference / f"{name}.csv")
        assert list(mine.columns[:r.shape[1]]) == list(r.columns)  # R's columns first
        pd.testing.assert_frame_equal(mine[r.columns], r, check_dtype=False, rtol=1e-8)
    assert (out / "cube.nc").stat().st_size > 0
    assert (out / "effect_surface.png").read_bytes()[:4] == b"\x89PNG"
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["settings"]["weighted"] is True
    assert len(provenance["inputs"]["data"]["sha256"]) == 64
    assert "4 of 25 windows" in result.stderr + result.stdout
    # which standard errors made the p-values, and each window's error and interval
    assert "standard errors: classical (R's lm)" in result.stderr
    assert "95% CI" in result.stderr and "0.655 to 1.345" in result.stderr
    written = pd.read_csv(out / "estimates.csv")
    assert list(written.columns[-3:]) == ["std_error", "ci_lower", "ci_upper"]
    # the headers' units are text, not rich markup
    assert "Time [days]" in result.stderr and "Space [km]" in result.stderr


def test_mwa_process_leaves_dask_unimported(mwa_example_csv, tmp_path):
    """xarray imports dask (0.5 s) to ask whether arrays are dask arrays; mwa holds none."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bayes_wake.cli", "mwa", "--data",
         str(mwa_example_csv), *EXAMPLE_ARGS, "--out", str(tmp_path / "run")],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert "xarray" in imported and "matplotlib" in imported  # the probe itself works
    # an import of dask that happens loads its submodules (dask.config, dask.base, ...);
    # the refused attempts leave a bare "dask" line of a few microseconds
    assert not {name for name in imported if name.startswith(("dask.", "distributed"))}


@pytest.mark.parametrize("args, reason", [
    (["--t-window", "2", "10", "3"], "does not divide"),
    (["--t-window", "1", "9", "2"], "at least 2"),
    (["--match", "nope"], "nope"),
    (["--treatment", "type=treatmnet"], "no treatment"),
    (["--t-window", "1000000", "1000000", "1"], "--t-window: a window of 1,000,000 days"),
    # a selector that matches no row made every wake count zero and exited 0, all NA
    (["--dependent", "type=dependnt"], "--dependent type=dependnt matches no row"),
])
def test_bad_input_exits_non_zero_with_one_line_and_leaves_nothing(mwa_example_csv, tmp_path,
                                                                    args, reason):
    out = tmp_path / "run"
    argv = ["mwa", "--data", str(mwa_example_csv), *EXAMPLE_ARGS, *args, "--out", str(out)]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines and reason in lines[-1]
    assert not out.exists()
    assert not list(tmp_path.iterdir())


def test_a_dependent_selector_matching_no_row_names_the_values_there(mwa_example_csv,
                                                                      tmp_path):
    argv = ["mwa", "--data", str(mwa_example_csv), *EXAMPLE_ARGS, "--dependent",
            "type=dependnt", "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2
    line = result.output.strip().splitlines()[-1]
    assert "'dependent', 'control', 'treatment'" in line and "type=dependent?" in line


def test_a_run_with_no_estimable_window_says_so_and_why(tmp_path):
    """Outcome events far from every anchor: no window is estimable, which is not "no
    window reaches p <= 0.05"."""
    rows = ["type,lon,lat,timestamp,m"]
    for k in range(12):
        kind = "treatment" if k % 2 else "control"
        rows.append(f"{kind},{0.001 * k},0,2000-01-{10 + k:02d},{k % 3}")
        rows.append(f"dependent,{40 + 0.001 * k},0,2000-01-{10 + k:02d},")
    data = tmp_path / "far.csv"
    data.write_text("\n".join(rows) + "\n")
    argv = ["mwa", "--data", str(data), "--t-window", "2", "4", "2", "--spat-window", "1", "2",
            "1", "--no-match", "--convention", "exact", "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    assert "0 of 4 windows estimable (no events in matched wakes in 4)" in result.output
    assert "no window reaches" not in result.output


def test_a_failing_write_leaves_an_existing_output_folder_untouched(mwa_example_csv, tmp_path,
                                                                    monkeypatch):
    out = tmp_path / "run"
    out.mkdir()
    (out / "estimates.csv").write_text("old\n")
    import bayes_wake.plotting as plotting

    def broken(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(plotting, "save_figure", broken)
    result = CliRunner().invoke(main, ["mwa", "--data", str(mwa_example_csv), *EXAMPLE_ARGS,
                                       "--out", str(out)])
    assert result.exit_code != 0
    assert (out / "estimates.csv").read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_bad_file_content_names_file_row_and_column(tmp_path, mwa_example_csv):
    bad = tmp_path / "bad.csv"
    text = mwa_example_csv.read_text().splitlines()
    text[5] = text[5].replace("1994-12-", "1994-13-")
    bad.write_text("\n".join(text) + "\n")
    result = CliRunner().invoke(main, ["mwa", "--data", str(bad), *EXAMPLE_ARGS,
                                       "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "bad.csv" in result.output and "row 5" in result.output
    assert "timestamp" in result.output


def test_hours_and_exact_convention_run(tmp_path, mwa_example_csv):
    out = tmp_path / "h"
    result = CliRunner().invoke(main, [
        "mwa", "--data", str(mwa_example_csv), "--t-window", "24", "72", "24",
        "--spat-window", "4", "8", "4", "--match", "match1", "--t-unit", "hours",
        "--convention", "exact", "--vcov", "HC1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    estimates = pd.read_csv(out / "estimates.csv")
    assert list(estimates["t_window"]) == [24, 24, 48, 48, 72, 72]


def test_cluster_robust_errors_on_a_text_column_match_the_python_api(tmp_path,
                                                                      mwa_example_csv):
    """``--vcov CR2:zone`` clusters on a column of names; the API clusters on the same names."""
    import numpy as np

    from bayes_wake.core.regression import weighted_ols
    from bayes_wake.io.events import read_events
    from bayes_wake.mwa.analysis import MWASettings, matched_cells
    from bayes_wake.wakes import count_wakes

    frame = pd.read_csv(mwa_example_csv)
    frame["zone"] = np.where(frame["lon"] < 0.5, "west", "east")
    frame["zone"] += np.where(frame["lat"] < 0.5, " south", " north")
    data = tmp_path / "zones.csv"
    frame.to_csv(data, index=False)
    out = tmp_path / "cr2"
    result = CliRunner().invoke(main, ["mwa", "--data", str(data), *EXAMPLE_ARGS,
                                       "--vcov", "cr2:zone", "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out / "estimates.csv")
    events = read_events(data, covariates=["match1", "match2"])
    cube = count_wakes(events, range(2, 11, 2), np.arange(2.0, 10.1, 2.0))
    names = frame["zone"].to_numpy()[cube["event"].to_numpy() - 1]  # event ids: file rows
    pvalues = []
    for cell in matched_cells(cube, MWASettings(match_on=("match1", "match2"), weighted=True,
                                                tcm=True), balance=False):
        fit = weighted_ols(cell.y, cell.design, cell.weights, vcov="CR2:zone",
                           clusters=names[cell.events])
        pvalues.append(fit.pvalue[-1] if fit.defined else np.nan)
    np.testing.assert_allclose(written["pvalue"], pvalues, rtol=1e-9)
    assert len(set(names)) == 4 and np.isfinite(pvalues).sum() >= 4  # R leaves 19 NA
    assert json.loads((out / "provenance.json").read_text())["settings"]["vcov"] == "CR2:zone"
    assert "standard errors: cluster-robust by zone (CR2)" in result.output


def test_a_standard_error_choice_the_package_does_not_know_is_refused(mwa_example_csv,
                                                                      tmp_path):
    result = CliRunner().invoke(main, ["mwa", "--data", str(mwa_example_csv), *EXAMPLE_ARGS,
                                       "--vcov", "CR3:zone", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "CR2:CLUSTERS" in result.output and "conley-bm" in result.output
    assert not (tmp_path / "o").exists()


def test_demo_runs_on_the_embedded_simulated_study(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--out", str(out), "--mwa-only"])
    assert result.exit_code == 0, result.output
    assert "400 treatment, 1,500 control, 1,100 dependent events" in result.output
    truth = pd.read_csv(out / "true_effect.csv")
    estimates = pd.read_csv(out / "estimates.csv")
    assert len(truth) == len(estimates) == 30
    merged = estimates.merge(truth, left_on=["t_window", "spat_window"],
                             right_on=["window", "radius"])
    # the OLS surface tracks the planted truth on average
    assert abs((merged["estimate"] - merged["true_effect"]).mean()) < 0.05


def test_mwa_says_why_a_window_has_an_estimate_but_no_p_value(tmp_path):
    """One treated wake has leverage 1: HC3 is NA there (R: NaN), the estimate stays, and
    the console says why."""
    write_one_treated_wake(tmp_path / "one.csv")
    result = CliRunner().invoke(main, [
        "mwa", "--data", str(tmp_path / "one.csv"), "--t-window", "10", "10", "1",
        "--spat-window", "20", "20", "1", "--no-match", "--vcov", "HC3",
        "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "No p-value with --vcov HC3 in 1 window (t=10, s=20): a wake with leverage 1" \
        in " ".join(result.output.split())
    estimates = pd.read_csv(tmp_path / "out" / "estimates.csv")
    assert estimates["estimate"].notna().all() and estimates["pvalue"].isna().all()


@pytest.mark.parametrize("seed", ["-5", "100000000000000000000000", "1e23"])
def test_a_seed_out_of_range_is_refused_before_any_work(mwa_example_csv, tmp_path, seed):
    """--seed -5 and --seed 1e23 reached the sampler and ended in a traceback."""
    out = tmp_path / "fit"
    result = CliRunner().invoke(main, ["fit", "--data", str(mwa_example_csv), *EXAMPLE_ARGS,
                                       "--seed", seed, "--out", str(out)])
    assert result.exit_code == 2
    assert "Invalid value for '--seed'" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_the_python_api_checks_sampler_settings_too():
    from bayes_wake.bayes.spec import load_spec
    from bayes_wake.errors import SettingsError

    spec = load_spec("smooth_did")
    with pytest.raises(SettingsError, match="sampler seed -5: input should be greater than"):
        spec.with_sampler(seed=-5)
    with pytest.raises(SettingsError, match="sampler draws 3"):
        spec.with_sampler(draws=3)
    assert spec.with_sampler(seed=2**32 - 1).sampler.seed == 2**32 - 1
