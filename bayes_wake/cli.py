"""The ``bayes-wake`` command line: thin commands over the public API.

``bayes-wake mwa`` mirrors R's ``matchedwake`` call so R users recognise it; every command
exits non-zero with a one-line reason on bad input and leaves no partial files behind.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click

from bayes_wake.errors import BayesWakeError

_DEBUG = os.environ.get("BAYES_WAKE_DEBUG", "") not in ("", "0")


def _console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _fail_cleanly(command: Callable) -> Callable:
    """Turn expected errors into one line on stderr and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (BayesWakeError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            if _DEBUG:
                raise
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            click.echo(f"bayes-wake: error: {message}", err=True)
            sys.exit(2)

    return wrapper


def _parse_selector(text: str, option: str) -> tuple[str, str]:
    if "=" not in text:
        raise click.BadParameter(f"expected COLUMN=VALUE (like type=treatment), got {text!r}",
                                 param_hint=option)
    column, value = text.split("=", 1)
    if not column or not value:
        raise click.BadParameter(f"expected COLUMN=VALUE, got {text!r}", param_hint=option)
    return column, value


def _parse_columns(pairs: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        ours, theirs = _parse_selector(pair, "--column")
        mapping[ours] = theirs
    return mapping


def data_options(command: Callable) -> Callable:
    """The data and window-grid options shared by ``mwa``, ``fit`` and ``sensitivity``."""
    options = [
        click.option("--data", "data", required=True,
                     type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="Event file: CSV, Parquet, GeoPackage or GeoJSON."),
        click.option("--column", "columns", multiple=True, metavar="OURS=THEIRS",
                     help="Map a column: time=, lon=, lat=, id=, type= (repeatable)."),
        click.option("--t-window", nargs=3, type=float, required=True,
                     metavar="MIN MAX STEP", help="Temporal windows, in --t-unit."),
        click.option("--spat-window", nargs=3, type=float, required=True,
                     metavar="MIN MAX STEP", help="Spatial windows (radii), in km."),
        click.option("--treatment", default="type=treatment", show_default=True,
                     metavar="COLUMN=VALUE", help="Rows that are treatment events."),
        click.option("--control", default="type=control", show_default=True,
                     metavar="COLUMN=VALUE", help="Rows that are control events."),
        click.option("--dependent", default="type=dependent", show_default=True,
                     metavar="COLUMN=VALUE", help="Rows that are dependent (outcome) events."),
        click.option("--match", "match_on", default="", metavar="COL1,COL2",
                     help="Covariates to match on (R: matchColumns)."),
        click.option("--t-unit", default="days", show_default=True,
                     type=click.Choice(["days", "hours", "minutes", "seconds"])),
        click.option("--convention", default="mwa", show_default=True,
                     type=click.Choice(["mwa", "exact"]),
                     help="mwa: bit-for-bit R; exact: great-circle distance, symmetric "
                          "trend, edge wakes kept."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _load_and_count(data, columns, t_window, spat_window, treatment, control, dependent,
                    match_on, t_unit, convention, console, extra_covariates=()):
    """Read the events, expand the grid (checked before any counting) and count wakes."""
    from bayes_wake.events import read_events
    from bayes_wake.wakes import count_wakes
    from bayes_wake.windows import expand_windows

    windows = expand_windows(*t_window, name="--t-window", temporal=True)
    radii = expand_windows(*spat_window, name="--spat-window")
    roles = {"treatment": _parse_selector(treatment, "--treatment"),
             "control": _parse_selector(control, "--control"),
             "dependent": _parse_selector(dependent, "--dependent")}
    match_cols = [c.strip() for c in match_on.split(",") if c.strip()]
    explicit = roles != {r: ("type", r) for r in roles}
    wanted = list(dict.fromkeys([*match_cols, *extra_covariates]))
    events = read_events(data, columns=_parse_columns(columns) or None,
                         roles=roles if explicit else None, covariates=wanted)
    counts = events["role"].value_counts()
    console.print(
        f"[bold]{data}[/]: {counts.get('treatment', 0)} treatment, "
        f"{counts.get('control', 0)} control, {counts.get('dependent', 0)} dependent events"
        + (f", {counts.get('other', 0)} other rows (bound the record only)"
           if counts.get("other", 0) else ""))
    with _progress(console, "counting wakes") as advance:
        cube = count_wakes(events, windows, radii, t_unit=t_unit, convention=convention,
                           progress=advance)
    return events, cube, match_cols


class _progress:
    """A rich progress bar on stderr, as a context manager yielding ``advance(done, total)``."""

    def __init__(self, console, label: str):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(TextColumn(label), BarColumn(), TextColumn("{task.completed}/"
                             "{task.total}"), TimeElapsedColumn(), console=console,
                             transient=True)
        self._task = None

    def __enter__(self):
        self._bar.__enter__()
        self._task = self._bar.add_task("", total=None)

        def advance(done: int, total: int) -> None:
            self._bar.update(self._task, completed=done, total=total)

        return advance

    def __exit__(self, *exc):
        return self._bar.__exit__(*exc)


def _print_significant(console, result, title: str) -> None:
    from rich.table import Table

    significant = result.significant()
    t_unit = result.cube_attrs.get("t_unit", "days")
    if significant.empty:
        console.print(f"{title}: no window reaches p <= {result.settings.alpha:g}.")
        return
    table = Table(title=f"{title}: {len(significant)} of {len(result.estimates)} windows "
                        f"with p <= {result.settings.alpha:g}")
    for name in (f"Time [{t_unit}]", "Space [km]", "Effect", "p", "adj. R2"):
        table.add_column(name, justify="right")
    for row in significant.to_dict("records"):
        r2 = row.get("adj.r.squared", float("nan"))
        table.add_row(f"{row['t_window']:g}", f"{row['spat_window']:g}",
                      f"{row['estimate']:.3f}", f"{row['pvalue']:.3f}",
                      "" if r2 != r2 else f"{r2:.3f}")
    console.print(table)


def _write_mwa_outputs(stage: Path, result, cube, provenance_record: dict) -> None:
    from bayes_wake.artefacts import write_json
    from bayes_wake.plotting import save_figure
    from bayes_wake.wakes import save_cube

    result.to_csv(stage)
    save_cube(cube, stage / "cube.nc")
    fig, _ = result.plot(title="Matched wake analysis: treatment effect per window")
    save_figure(fig, stage / "effect_surface.png")
    write_json(provenance_record, stage / "provenance.json")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bayes_wake")
def main() -> None:
    """Matched wake analysis of point events and its Bayesian reanalysis."""


@main.command()
@data_options
@click.option("--weighted", is_flag=True, help="Weight the regression with CEM weights.")
@click.option("--tcm", is_flag=True, help="Also match on earlier overlaps (SO_pre, MO_pre).")
@click.option("--no-match", is_flag=True, help="Skip matching (R: match.default = FALSE).")
@click.option("--delete-sutva", is_flag=True, help="Drop wakes with earlier overlaps.")
@click.option("--formula", default="lag", show_default=True,
              type=click.Choice(["lag", "diff"]),
              help="lag: post ~ pre + treatment; diff: post - pre ~ treatment.")
@click.option("--estimation", default="lm", show_default=True,
              type=click.Choice(["lm", "att"]))
@click.option("--vcov", default="classical", show_default=True,
              type=click.Choice(["classical", "HC1", "HC3"]),
              help="Standard errors: classical (R) or heteroskedasticity-robust.")
@click.option("--alpha", default=0.05, show_default=True, type=float)
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@_fail_cleanly
def mwa(data, columns, t_window, spat_window, treatment, control, dependent, match_on,
        t_unit, convention, weighted, tcm, no_match, delete_sutva, formula, estimation, vcov,
        alpha, out):
    """Matched wake analysis, as R's mwa::matchedwake.

    Writes estimates.csv, matching.csv, SUTVA.csv and wakes.csv (R's columns and row order),
    cube.nc (the wake cube), effect_surface.png and provenance.json to OUT.
    """
    from bayes_wake.artefacts import provenance, staged_directory
    from bayes_wake.mwa import MWASettings, matched_wake_analysis

    console = _console()
    started = time.perf_counter()
    match_cols = [c.strip() for c in match_on.split(",") if c.strip()]
    MWASettings(match_on=tuple(match_cols), weighted=weighted, tcm=tcm,  # fail fast
                delete_sutva=delete_sutva, matching=not no_match, formula=formula,
                estimation=estimation, vcov=vcov, alpha=alpha)
    events, cube, match_cols = _load_and_count(
        data, columns, t_window, spat_window, treatment, control, dependent, match_on,
        t_unit, convention, console)
    with _progress(console, "matching and fitting") as advance:
        result = matched_wake_analysis(
            cube, match_on=match_cols, weighted=weighted, tcm=tcm, delete_sutva=delete_sutva,
            matching=not no_match, formula=formula, estimation=estimation, vcov=vcov,
            alpha=alpha, progress=advance)
    settings = {"command": "mwa", "t_window": list(t_window), "spat_window": list(spat_window),
                "treatment": treatment, "control": control, "dependent": dependent,
                "columns": list(columns), "t_unit": t_unit, "convention": convention,
                **json.loads(result.surface.attrs["settings"])}
    with staged_directory(out) as stage:
        _write_mwa_outputs(stage, result, cube, provenance(settings, {"data": str(data)}))
    _print_significant(console, result, "Matched wake analysis")
    if no_match:
        console.print("[yellow]ATTENTION: matching was switched off; data were not matched.")
    console.print(f"Wrote {out}/ (estimates.csv, matching.csv, SUTVA.csv, wakes.csv, cube.nc, "
                  f"effect_surface.png) in {time.perf_counter() - started:.1f} s")


@main.command()
@click.option("--out", default="bw-demo", show_default=True,
              type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--mwa-only", is_flag=True, help="Skip the Bayesian fit (seconds, not minutes).")
@_fail_cleanly
def demo(out, seed, mwa_only):
    """Run the whole path on the embedded simulated Mali-like study.

    Simulates a study with a known, planted effect, counts wakes on the paper's grid
    (t = 10..60 days by 10, s = 3..15 km by 3), runs the matched wake analysis and writes
    the tables, the cube and the figures to OUT.
    """
    from bayes_wake.artefacts import provenance, staged_directory
    from bayes_wake.mwa import matched_wake_analysis
    from bayes_wake.simulate import simulate_study
    from bayes_wake.wakes import count_wakes
    from bayes_wake.windows import expand_windows

    console = _console()
    started = time.perf_counter()
    study = simulate_study(seed)
    events = study.events
    covariates = list(events.attrs["covariates"])
    windows = expand_windows(10, 60, 10, temporal=True)
    radii = expand_windows(3, 15, 3)
    counts = events["role"].value_counts()
    console.print(f"Simulated study (seed {seed}): {counts['treatment']} treatment, "
                  f"{counts['control']} control, {counts['dependent']} dependent events; "
                  "the treatment effect is planted and known.")
    with _progress(console, "counting wakes") as advance:
        cube = count_wakes(events, windows, radii, progress=advance)
    with _progress(console, "matching and fitting") as advance:
        result = matched_wake_analysis(cube, match_on=covariates, weighted=True,
                                       progress=advance)
    truth = study.true_effect(windows, radii, convention="mwa")
    with staged_directory(out) as stage:
        events.to_csv(stage / "simulated_events.csv", index=False)
        truth.to_dataframe(name="true_effect").reset_index().to_csv(
            stage / "true_effect.csv", index=False)
        _write_mwa_outputs(stage, result, cube,
                           provenance({"command": "demo", "seed": seed,
                                       "simulation": study.settings}))
    _print_significant(console, result, "Matched wake analysis (simulated study)")
    console.print(f"Wrote {out}/ in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":  # pragma: no cover
    main()
