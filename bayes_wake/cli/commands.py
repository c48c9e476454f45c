"""The ``bayes-wake`` command line: thin commands over the public API.

``bayes-wake mwa`` mirrors R's ``matchedwake`` call so R users recognise it; every command
exits non-zero with a one-line reason on bad input and leaves no partial files behind.
Exit statuses (:data:`~bayes_wake.cli.common.EXIT_CODES`): 0 done, 2 bad input or settings,
3 a Bayesian fit (``fit``, ``sauter``) did not converge, after writing its outputs marked NOT
CONVERGED (``--allow-unconverged`` exits 0). Shared options and steps live in
:mod:`bayes_wake.cli.common`.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from bayes_wake.cli.common import (
    EXIT_CODES,
    SEED,
    RCommand,
    _check_alpha2,
    _console,
    _convergence_status,
    _event_checks,
    _fail_cleanly,
    _fit,
    _guard_output,
    _load_and_count,
    _print_significant,
    _print_undefined_errors,
    _print_surface,
    _progress,
    _write_fit,
    _write_mwa_outputs,
    allow_unconverged_option,
    alpha2_option,
    ci_option,
    data_options,
    grid_region_option,
    lead_surface_option,
    model_options,
    mwa_options,
    overwrite_option,
    settings_from_options,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES)
@click.version_option(package_name="bayes_wake")
def main() -> None:
    """Matched wake analysis of point events and its Bayesian reanalysis."""


@main.command(cls=RCommand)
@data_options
@mwa_options
@alpha2_option
@_fail_cleanly
@_guard_output
@settings_from_options
def mwa(source, mwa, out, alpha2):
    """Matched wake analysis, as R's mwa::matchedwake.

    Writes estimates.csv, matching.csv, SUTVA.csv and wakes.csv (R's columns and row order),
    cube.nc (the wake cube), effect_surface.png and provenance.json to OUT.
    """
    from rich.markup import escape

    from bayes_wake.io.artefacts import staged_directory

    console = _console()
    started = time.perf_counter()
    events, cube, result, record = _analyse(source, mwa, console, alpha2,
                                            {"command": "mwa"})
    with staged_directory(out) as stage:
        _write_mwa_outputs(stage, result, cube, record)
    _print_analysis(console, result, "Matched wake analysis", alpha2)
    if not mwa.matching:
        console.print("[yellow]ATTENTION: matching was switched off; data were not matched.")
    console.print(f"Wrote {escape(str(out))}/ (estimates.csv, matching.csv, SUTVA.csv, "
                  f"wakes.csv, cube.nc, effect_surface.png) in "
                  f"{time.perf_counter() - started:.1f} s")


def _analyse(source, mwa, console, alpha2, command: dict):
    """What ``mwa`` and ``fit`` share: check ``--alpha2``, read and count, run the matched
    wake analysis, and build its provenance record (``command``: the command line's own
    settings besides the data options).

    Returns
    -------
    tuple
        The events, the cube, the :class:`~bayes_wake.mwa.analysis.MWAResult` and the record.
    """
    from bayes_wake.io.artefacts import provenance
    from bayes_wake.mwa.analysis import matched_wake_analysis

    _check_alpha2(mwa.alpha, alpha2)
    events, cube = _load_and_count(source, mwa, console)
    with _progress(console, "matching and fitting") as advance:
        result = matched_wake_analysis(cube, mwa, progress=advance)
    record = provenance(result.settings.to_dict(), {"data": str(source.path)}, extra={
        "settings": {**command, **source.record(), "alpha2": alpha2},
        "events": _event_checks(events)})
    return events, cube, result, record


def _print_analysis(console, result, title: str, alpha2) -> None:
    """The significant windows and those whose --vcov gives no p-value."""
    _print_significant(console, result, title, alpha2)
    _print_undefined_errors(console, result)


@main.command(epilog=EXIT_CODES)
@click.option("--out", default="bw-demo", show_default=True,
              type=click.Path(file_okay=False, path_type=Path))
@overwrite_option
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--mwa-only", is_flag=True, help="Skip the Bayesian fit (seconds, not minutes).")
@allow_unconverged_option
@ci_option
@_fail_cleanly
@_guard_output
def demo(out, seed, mwa_only, allow_unconverged):
    """Run the whole path on the embedded simulated Mali-like study.

    Simulates a study with a known, planted effect, counts wakes on the paper's grid
    (t = 10..60 days by 10, s = 3..15 km by 3), runs the matched wake analysis and the
    default Bayesian fit, and writes the tables, the cube and the figures to OUT. A fit that
    fails the convergence rule is written, marked NOT CONVERGED, and the command exits 3.
    """
    from rich.markup import escape

    from bayes_wake.core.windows import expand_windows
    from bayes_wake.io.artefacts import provenance, staged_directory, write_table
    from bayes_wake.mwa.analysis import MWASettings, matched_wake_analysis
    from bayes_wake.options import PAPER_RADII, PAPER_WINDOWS
    from bayes_wake.simulate import simulate_study
    from bayes_wake.wakes import count_wakes

    console = _console()
    started = time.perf_counter()
    study = simulate_study(seed)
    events = study.events
    covariates = list(events.attrs["covariates"])
    windows = expand_windows(*PAPER_WINDOWS, temporal=True)
    radii = expand_windows(*PAPER_RADII)
    counts = events["role"].value_counts()
    console.print(f"Simulated study (seed {seed}): {counts['treatment']:,} treatment, "
                  f"{counts['control']:,} control, {counts['dependent']:,} dependent events; "
                  "the treatment effect is planted and known.")
    with _progress(console, "counting wakes") as advance:
        cube = count_wakes(events, windows, radii, progress=advance)
    with _progress(console, "matching and fitting") as advance:
        result = matched_wake_analysis(cube, MWASettings(match_on=covariates, weighted=True),
                                       progress=advance)
    truth = study.true_effect(windows, radii, convention="mwa")
    fitted = None
    with staged_directory(out) as stage:
        write_table(events, stage / "simulated_events.csv", float_format=None)
        write_table(truth.to_dataframe(name="true_effect").reset_index(),
                    stage / "true_effect.csv", float_format=None)
        _write_mwa_outputs(stage, result, cube,
                           provenance({"simulation": study.settings},
                                      extra={"settings": {"command": "demo", "seed": seed}}))
        if not mwa_only:
            from bayes_wake.bayes.spec import load_spec
            from bayes_wake.options import DEFAULT_SPEC

            fitted = _fit(cube, result, load_spec(DEFAULT_SPEC), console,
                          progressbar=console.is_terminal)
            _write_fit(stage, fitted, result, console)
    _print_significant(console, result, "Matched wake analysis (simulated study)")
    if fitted is not None:
        _print_surface(console, fitted, result)
        error_ols = float(((result.surface["estimate"] - truth) ** 2).mean() ** 0.5)
        error_bayes = float(((fitted.surface["mean"] - truth) ** 2).mean() ** 0.5)
        console.print(f"Against the planted truth: RMSE of the OLS surface {error_ols:.3f}, "
                      f"of the posterior mean surface {error_bayes:.3f} (events per wake).")
    console.print(f"Wrote {escape(str(out))}/ in {time.perf_counter() - started:.1f} s")
    return (_convergence_status(console, [fitted.diagnostics.converged], allow_unconverged)
            if fitted else 0)


@main.command(cls=RCommand, epilog=EXIT_CODES)
@data_options
@mwa_options
@alpha2_option
@model_options
@click.option("--seed", type=SEED, default=None,
              help="Seed of the sampler (default: the spec's).")
@grid_region_option
@click.option("--compare", "compare_path", default=None, metavar="SPEC",
              help="Also fit SPEC and write compare_surfaces.png and model_comparison.csv "
                   "(PSIS-LOO with Pareto k when both are models of the wake counts, e.g. "
                   "nb_did and poisson_did).")
@lead_surface_option
@_fail_cleanly
@_guard_output
@settings_from_options
def fit(source, mwa, out, alpha2, spec_path, sampler, draws, tune, chains, allow_unconverged,
        seed, grid_region, compare_path, lead_surface):
    """Bayesian reanalysis: the posterior effect surface beside the OLS table.

    Writes effect_surface.csv, grid_summary.csv (the average effect over the grid, and over
    --grid-region's cells),
    estimates.csv (the OLS table of `bayes-wake mwa`), posterior.nc, comparison.png (OLS
    surface | posterior surface), the other MWA tables, the cube and provenance.json to
    OUT; for a model of the wake counts (nb_did) also its posterior predictive check,
    ppc.csv and ppc.png, with a one-line verdict; with --lead-surface the same model fitted
    to the pre-trend placebo, lead_surface.csv and pretrend_surface.png. A fit that fails
    the convergence rule
    (R-hat <= 1.01, bulk ESS >= 400, no divergences) is still written, marked NOT CONVERGED
    (the converged column, NOT_CONVERGED.txt, a banner on the figure), and the command exits
    with status 3.
    """
    from rich.markup import escape

    from bayes_wake.bayes.spec import load_spec
    from bayes_wake.core.windows import parse_grid_region
    from bayes_wake.io.artefacts import staged_directory

    console = _console()
    started = time.perf_counter()
    region = parse_grid_region(grid_region, windows=source.windows, radii=source.radii,
                               t_unit=source.t_unit) if grid_region.strip() else None
    specs = [load_spec(path).with_sampler(backend=sampler, draws=draws, tune=tune,
                                          chains=chains, seed=seed)
             for path in (spec_path, compare_path) if path is not None]
    if lead_surface and not specs[0].cell_surface:
        from bayes_wake.errors import SettingsError
        from bayes_wake.options import DEFAULT_SPEC

        raise SettingsError(f"--lead-surface: the pre-trend surface is fitted by the "
                            f"count-scale surfaces ({DEFAULT_SPEC}, adaptive_did, "
                            f"unpooled_did), not by {specs[0].name}")
    events, cube, result, record = _analyse(source, mwa, console, alpha2, {
        "command": "fit", "spec": specs[0].model_dump(mode="json"),
        **({"grid_region": region.describe()} if region is not None else {}),
        **({"lead_surface": True} if lead_surface else {})})
    with staged_directory(out) as stage:
        _write_mwa_outputs(stage, result, cube, record)
        fitted = _fit(cube, result, specs[0], console, progressbar=console.is_terminal)
        _write_fit(stage, fitted, result, console, region)
        converged = [fitted.diagnostics.converged]
        if len(specs) > 1:
            converged.append(_compare_and_write(stage, cube, result, fitted, specs[1],
                                                console))
        if lead_surface:
            converged.append(_lead_and_write(stage, cube, result, fitted, console))
    _print_analysis(console, result, "Matched wake analysis (OLS)", alpha2)
    _print_surface(console, fitted, result)
    console.print(f"Wrote {escape(str(out))}/ (effect_surface.csv, estimates.csv, posterior.nc, "
                  f"comparison.png, ...) in {time.perf_counter() - started:.1f} s")
    return _convergence_status(console, converged, allow_unconverged)


def _compare_and_write(stage, cube, result, fitted, other_spec, console) -> bool:
    """Fit the ``--compare`` spec, write the model comparison beside the fit and say its
    verdict; returns whether that fit converged."""
    from bayes_wake.bayes.matched_fit import write_model_comparison

    other = _fit(cube, result, other_spec, console)
    sentence = write_model_comparison(fitted, other, result, stage)
    console.print(f"Model comparison ({fitted.spec.name} vs {other_spec.name}): {sentence} "
                  "(model_comparison.csv, compare_surfaces.png)", markup=False)
    return other.diagnostics.converged


def _lead_and_write(stage, cube, result, fitted, console) -> bool:
    """Fit the model to the pre-trend placebo (``--lead-surface``), write it beside the fit
    and say in how many cells it is clear; returns whether that fit converged."""
    from rich.markup import escape

    from bayes_wake.bayes.matched_fit import write_lead_surface

    lead = _fit(cube, result, fitted.spec, console, period="lead")
    text, warn = write_lead_surface(fitted, lead, result, stage)
    sentence = escape(text[0].upper() + text[1:] + ".")
    console.print(f"[bold yellow]WARNING: {sentence}[/]" if warn else sentence)
    return lead.diagnostics.converged


from bayes_wake.cli.sauter import sauter  # noqa: E402

main.add_command(sauter)

from bayes_wake.cli.sensitivity import sensitivity  # noqa: E402  (registered before __main__)

main.add_command(sensitivity)

from bayes_wake.cli.recovery import recovery  # noqa: E402

main.add_command(recovery)


if __name__ == "__main__":  # pragma: no cover
    main()
