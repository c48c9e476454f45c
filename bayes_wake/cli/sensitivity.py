"""``bayes-wake sensitivity``: how fragile is the pattern of per-window significance?

Takes the data and window arguments of ``bayes-wake mwa`` and writes one report with a verdict
sentence per check: multiplicity (Holm, Benjamini-Hochberg), randomisation inference (label
permutations within matching strata, date-shift placebos) and Bayesian checks, the
independent pieces run on Dask.
"""

from __future__ import annotations

import os
import time

import click

from bayes_wake.cli.common import (
    EXIT_CODES,
    SEED,
    RCommand,
    _console,
    _convergence_status,
    _event_checks,
    _fail_cleanly,
    _guard_output,
    _load_and_count,
    _progress,
    allow_unconverged_option,
    chosen_ci,
    ci_option,
    data_options,
    grid_region_option,
    mwa_options,
    settings_from_options,
)
from bayes_wake.cli.resources import permutation_need, worker_need
from bayes_wake.errors import SettingsError
from bayes_wake.options import DEFAULT_SPEC

#: The event table's name for the names of ``--region-column``, read with the events and
#: popped right after (the reader refuses it if a covariate had that name); a reader's error
#: about it names the parameter, which the CLI prints as ``--region-column``.
_REGION_NAMES = "region_column"


@click.command(cls=RCommand, epilog=EXIT_CODES)
@data_options
@mwa_options
@click.option("--permutations", type=int, default=1000, show_default=True,
              help="Permutations of the treatment labels within matching strata (>= 1).")
@click.option("--date-shifts", type=int, default=100, show_default=True,
              help="Date-shift placebos: treatments moved by a random offset within the "
                   "span of the treatment/control events, cut to the 1%-99% quantiles of the "
                   "outcome dates (0: none). Fewer than 20 valid draws give no p-value.")
@click.option("--chunk-size", type=int, default=100, show_default=True,
              help="Permutations per task.")
@click.option("--seed", type=SEED, default=20220101, show_default=True,
              help="Seed of every random stream.")
@click.option("--bayes-checks", default="default", show_default=True, metavar="CHECKS",
              help="all, none, default, or a comma list of surface, prior, prior_refit, "
                   "likelihood, matching, sutva, regions. default: surface, prior, "
                   "likelihood, matching, sutva (+ regions with --region-column).")
@grid_region_option
@click.option("--region-column", default=None, metavar="COLUMN",
              help="Column of the data naming each event's region (leave one region out).")
@click.option("--regions", "leave_out", default="", metavar="A,B",
              help="Regions to leave out one at a time (default: all).")
@click.option("--placebo-sites", type=click.Path(exists=True, dir_okay=False), default=None,
              metavar="FILE",
              help="Candidate sites (CSV, Parquet or points; lat, lon and the match columns) "
                   "for the placebo-placement calibration: the size of every standard-error "
                   "choice on these data.")
@click.option("--placebos", type=click.IntRange(1), default=None,
              help="Placebo placements of the calibration (default 20 with --placebo-sites).")
@click.option("--placebo-weight", default=None, metavar="COLUMN",
              help="Column of the sites weighting where placebo treatments are drawn "
                   "(e.g. nearness to a base; default uniform).")
@click.option("--placebo-bayes", is_flag=True,
              help="Also fit the reference model on every placebo placement (one MCMC fit "
                   "each) for the size of its posterior intervals.")
@click.option("--spec", "spec_path", default=DEFAULT_SPEC, show_default=True,
              help="Reference model spec: a YAML file or the name of a spec in models/.")
@click.option("--draws", type=click.IntRange(10), default=None, help="Draws per chain.")
@click.option("--tune", type=click.IntRange(10), default=None, help="Tuning steps per chain.")
@click.option("--chains", type=click.IntRange(1), default=None)
@allow_unconverged_option
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Address of an existing Dask scheduler (default: a local cluster).")
@click.option("--workers", type=int, default=None,
              help="Workers of the local cluster (default: one per core); 0 runs the tasks "
                   "in this process without Dask.")
@ci_option
@_fail_cleanly
@_guard_output
@settings_from_options
def sensitivity(source, mwa, out, permutations, date_shifts, chunk_size, seed, bayes_checks,
                grid_region, region_column, leave_out, placebo_sites, placebos,
                placebo_weight, placebo_bayes, spec_path, draws, tune, chains,
                allow_unconverged, scheduler, workers):
    """Sensitivity checks of per-window significance, in one report.

    Writes sensitivity_report.html (a verdict sentence per check at the top), verdicts.csv,
    multiplicity.csv, randomisation_summary.csv, randomisation_null.csv, one
    bayes_<check>.csv per Bayesian check (and bayes_<check>_cells.csv per cell),
    estimates.csv, task_layout.csv, provenance.json and, with --placebo-sites,
    placebo_size.csv and placebo_cells.csv to OUT, and keeps finished tasks in
    OUT/tasks/ so an interrupted run resumes where it stopped: the same data and settings
    reuse every finished task.
    """
    from bayes_wake.bayes.spec import load_spec
    from bayes_wake.checks.bayesian import resolve_checks
    from bayes_wake.checks.randomisation import check_permutation_vcov
    from bayes_wake.checks.sensitivity import SensitivitySettings, run_sensitivity

    console = _console()
    started = time.perf_counter()
    # Everything that can be checked without the data is checked before reading it.
    check_permutation_vcov(mwa.vcov)
    _check_workers(workers, scheduler)
    names = tuple(r.strip() for r in leave_out.split(",") if r.strip())
    settings = SensitivitySettings(
        mwa=mwa, windows=source.windows, radii=source.radii, t_unit=source.t_unit,
        convention=source.convention, permutations=permutations, date_shifts=date_shifts,
        chunk_size=chunk_size, seed=seed,
        bayes_checks=resolve_checks(bayes_checks, has_regions=region_column is not None),
        spec=load_spec(spec_path).with_sampler(draws=draws, tune=tune, chains=chains),
        grid_region=grid_region, region_column=region_column, leave_out=names,
        placebos=_placebo_count(placebo_sites, placebos), placebo_weight=placebo_weight,
        placebo_bayes=placebo_bayes, ci=chosen_ci())
    local_workers = 0 if workers == 0 or scheduler else (workers or os.cpu_count() or 1)
    data, extra = _sensitivity_data(source, settings, placebo_sites, console, [
        permutation_need(permutations, len(source.windows) * len(source.radii)),
        worker_need(local_workers)])
    with _progress(console, "sensitivity tasks") as advance:
        result = run_sensitivity(
            data, settings, out, scheduler="inline" if workers == 0 else scheduler,
            n_workers=workers or None, extra=extra,
            log=lambda line: console.print(line, markup=False), progress=advance)
    _print_verdicts(console, result, out, started)
    return _convergence_status(console, result.converged, allow_unconverged)


def _check_workers(workers: int | None, scheduler: str | None) -> None:
    if workers is not None and workers < 0:
        raise SettingsError(f"--workers must be 0 (no Dask) or more, got {workers}")
    if workers is not None and scheduler:
        raise SettingsError("--workers sizes the local cluster; an existing cluster "
                            "(--scheduler) has its own workers")


def _sensitivity_data(source, settings, placebo_sites, console, extra_memory):
    """Read and count the events (one read of the file: the region names come with them),
    the anchors' regions and the placebo sites: the
    :class:`~bayes_wake.checks.sensitivity.SensitivityData` of the run, and what only the
    command line knows for its provenance record."""
    from rich.markup import escape

    from bayes_wake.checks.calibration import read_placebo_sites
    from bayes_wake.checks.sensitivity import SensitivityData, regions_of_anchors
    from bayes_wake.io.tables import counted

    keep = {_REGION_NAMES: settings.region_column} if settings.region_column else None
    events, cube = _load_and_count(source, settings.mwa, console, extra_memory=extra_memory,
                                   keep=keep)
    # The names leave the table: its hash (task keys, provenance) covers the events the
    # checks count, the same with or without --region-column.
    region_names = events.pop(_REGION_NAMES).to_numpy() if keep else None
    checks_record = _event_checks(events)
    sites = None
    if placebo_sites:
        sites = read_placebo_sites(placebo_sites, events.attrs["covariates"],
                                   settings.placebo_weight)
        console.print(f"{escape(placebo_sites)}: {counted(len(sites), 'candidate site')} for "
                      f"{counted(settings.placebos, 'placebo placement')}")
    regions = None
    if keep:
        regions = regions_of_anchors(events, cube, region_names,
                                     column=settings.region_column,
                                     leave_out=settings.leave_out)
    inputs = {"data": str(source.path),
              **({"placebo_sites": str(placebo_sites)} if placebo_sites else {})}
    extra = {"settings": {"command": "sensitivity", "drop_duplicates": source.drop_duplicates},
             "events": checks_record}
    return SensitivityData(events, cube, regions=regions, sites=sites, inputs=inputs), extra


def _print_verdicts(console, result, out, started: float) -> None:
    """Every check's verdict, and what was written and computed."""
    from rich.markup import escape

    from bayes_wake.checks.sensitivity import REPORT_NAME, VERDICT_LABELS
    from bayes_wake.io.tables import counted

    console.print("[bold]Verdicts[/]")
    for check in result.checks:
        console.print(f"- [bold]{VERDICT_LABELS.get(check.name, check.name)}[/]: "
                      f"{escape(check.sentence)}")
    run = result.run
    tables = sum(name.endswith(".csv") for name in result.files)
    console.print(f"Wrote {escape(str(out))}/{REPORT_NAME} and {counted(tables, 'table')} "
                  f"({counted(len(run.computed), 'task')} computed, "
                  f"{len(run.reused):,} reused; "
                  f"{run.where}) in {time.perf_counter() - started:.1f} s")


def _placebo_count(sites, placebos: int | None) -> int:
    """The number of placebo placements: 20 by default with sites, none without."""

    if placebos is not None and not sites:
        raise SettingsError("--placebos re-draws placements over candidate sites: give "
                            "--placebo-sites FILE")
    return (20 if placebos is None else placebos) if sites else 0
