"""``bayes-wake sauter``: the Sauter (2022) reanalysis with one command.

A thin layer over :func:`bayes_wake.studies.sauter.workflow.reanalyze_sauter`: the options
build one :class:`~bayes_wake.studies.sauter.settings.SauterSettings`;
``scripts/reanalyze_sauter.py`` calls the same function. Registered in
:mod:`bayes_wake.cli` with ``main.add_command(sauter)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import click

from bayes_wake.cli.common import (
    EXIT_CODES,
    SEED,
    _console,
    _convergence_status,
    _fail_cleanly,
    _guard_output,
    _parse_selector,
    _predictive_check_line,
    _print_significant,
    grid_region_option,
    model_options,
    overwrite_option,
)
from bayes_wake.options import PAPER_RADII, PAPER_WINDOWS, Convention

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    out = {}
    for text in values:
        key, value = _parse_selector(text, option)
        if key in out:
            raise click.BadParameter(f"{key!r} is given twice", param_hint=option)
        out[key] = value
    return out


@click.command(epilog=EXIT_CODES)
@click.option("--acled", required=True, type=_FILE,
              help="ACLED export, monadic (Export Tool) or dyadic layout.")
@click.option("--boundaries", required=True, type=_FILE,
              help="Admin-1 polygons (GeoJSON, GeoPackage, Shapefile).")
@click.option("--bases", required=True, type=_FILE,
              help="MINUSMA bases: CSV with latitude/longitude, or a vector file of points.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder for the report and the artefacts.")
@overwrite_option
@click.option("--qips", type=_FILE, default=None,
              help="QIP file (treatments). Without it, QIPs are SIMULATED.")
@click.option("--aid", type=_FILE, default=None,
              help="Aid-project file (controls; IATI/d-portal). Without it, aid projects are "
                   "SIMULATED.")
@click.option("--qip-column", "qip_columns", multiple=True, metavar="OURS=THEIRS",
              help="Map a QIP column: id=, start=, lon=, lat=, point=, budget=, "
                   "activity_type=, title= (repeatable).")
@click.option("--aid-column", "aid_columns", multiple=True, metavar="OURS=THEIRS",
              help="Map an aid-file column, as --qip-column (repeatable).")
@click.option("--rivers", multiple=True, type=_FILE,
              help="River/lake layer(s): covariate dist_water_km (repeatable; features pooled).")
@click.option("--rivers-where", default=None, metavar="QUERY",
              help="Select river features, e.g. 'level <= 3' (GSHHG major rivers).")
@click.option("--roads", multiple=True, type=_FILE,
              help="Road layer(s): covariate dist_road_km (repeatable).")
@click.option("--roads-where", default=None, metavar="QUERY", help="Select road features.")
@click.option("--layer", "layers", multiple=True, metavar="NAME=FILE",
              help="Another distance covariate: km to the nearest feature of FILE.")
@click.option("--raster", "rasters", multiple=True, metavar="NAME=FILE",
              help="A raster covariate sampled at the events, e.g. pop_density=worldpop.tif.")
@click.option("--covariate-column", "covariate_columns", multiple=True, metavar="NAME",
              help="A covariate taken from a column of both project files.")
@click.option("--outcome", "outcomes", multiple=True, metavar="NAME[:FIELD=VALUE;...]",
              help="Outcome(s) to analyse: vac, battles_nsag, nsag (default: all three), "
                   "optionally overridden, e.g. 'nsag:inter_codes=2,3'.")
@click.option("--t-window", nargs=3, type=float, default=PAPER_WINDOWS, show_default=True,
              metavar="MIN MAX STEP", help="Temporal windows, days.")
@click.option("--spat-window", nargs=3, type=float, default=PAPER_RADII, show_default=True,
              metavar="MIN MAX STEP", help="Spatial windows (radii), km.")
@click.option("--regions", default="Segou,Mopti,Tombouctou,Gao,Kidal,Menaka", show_default=True,
              help="Study regions, comma-separated, any spelling.")
@click.option("--merge-menaka", is_flag=True, help="Count Ménaka as part of Gao (pre-2016).")
@click.option("--snap-km", default=10.0, show_default=True, type=click.FloatRange(0),
              help="Give points this close outside every region the nearest region.")
@click.option("--start", default="2017-01-01", show_default=True, help="First day of the study.")
@click.option("--end", default="2020-12-31", show_default=True, help="Last day of the study.")
@click.option("--n-qips", default=364, show_default=True, type=click.IntRange(1),
              help="Simulated QIPs (only without --qips).")
@click.option("--n-aid", default=1500, show_default=True, type=click.IntRange(1),
              help="Simulated aid projects (only without --aid).")
@click.option("--convention", default="mwa", show_default=True,
              type=click.Choice(get_args(Convention)),
              help="mwa: R's counting (as the paper); exact: great-circle distances, edge "
                   "wakes kept.")
@click.option("--unweighted", is_flag=True, help="OLS without the CEM weights.")
@click.option("--no-tcm", is_flag=True, help="Do not match on earlier overlapping projects.")
@click.option("--alpha", default=0.05, show_default=True, type=float)
@click.option("--spillover", is_flag=True,
              help="Direct and spillover effects: each window's regression holds the number "
                   "of other QIPs whose wake reaches the wake's pre- and post-period, so the "
                   "effect is one QIP's own.")
@click.option("--mwa-only", is_flag=True, help="Skip the Bayesian fits (seconds, not minutes).")
@click.option("--no-event-map", is_flag=True,
              help="Leave the outcome events (ACLED locations) out of the report's map.")
@model_options
@click.option("--seed", type=SEED, default=None,
              help="Seed of the simulated placement (default 0) and of the sampler (default: "
                   "the spec's).")
@click.option("--compare", "compare_path", default=None, metavar="SPEC",
              help="Also fit SPEC per outcome and write compare_surfaces.png and "
                   "model_comparison.csv into its folder, shown in the report (PSIS-LOO with "
                   "Pareto k when both are models of the wake counts, e.g. nb_did and "
                   "poisson_did).")
@grid_region_option
@_fail_cleanly
@_guard_output
def sauter(acled, boundaries, bases, out, qips, aid, qip_columns, aid_columns, rivers,
           rivers_where, roads, roads_where, layers, rasters, covariate_columns, outcomes,
           t_window, spat_window, regions, merge_menaka, snap_km, start, end, n_qips, n_aid,
           convention, unweighted, no_tcm, alpha, spillover, mwa_only, no_event_map, spec_path,
           sampler, draws, tune, chains, allow_unconverged, seed, compare_path, grid_region):
    """The Sauter (2022) reanalysis: MINUSMA QIPs and violence in Mali, one report.

    Reads the ACLED export, keeps the study period and regions, reads the project files (or
    SIMULATES the projects a user does not have, and says so everywhere), measures the
    covariates, and for each outcome runs the matched wake analysis on the paper's grid and
    the Bayesian wake model. Writes OUT/report.html (self-contained) with the CSV and netCDF
    artefacts beside it; for a model of the wake counts (--spec nb_did) each outcome's
    posterior predictive check (ppc.csv, ppc.png, a one-line verdict), and with --compare
    SPEC the comparison with a second model. When a fit fails the convergence rule the report
    and the outcome's folder (NOT_CONVERGED.txt, the converged column) say so and the command
    exits with status 3.
    """
    from bayes_wake.bayes.spec import load_spec
    from bayes_wake.studies.sauter.settings import DEFAULT_OUTCOMES, SauterSettings
    from bayes_wake.studies.sauter.workflow import reanalyze_sauter

    console = _console()
    overrides = {"backend": sampler, "draws": draws, "tune": tune, "chains": chains,
                 "seed": seed}
    settings = SauterSettings(
        acled, boundaries, bases, qips=qips, aid=aid,
        qip_columns=_pairs(qip_columns, "--qip-column") or None,
        aid_columns=_pairs(aid_columns, "--aid-column") or None,
        rivers=list(rivers), rivers_where=rivers_where, roads=list(roads),
        roads_where=roads_where, layers=_pairs(layers, "--layer") or None,
        rasters=_pairs(rasters, "--raster") or None,
        covariate_columns=list(covariate_columns), outcomes=outcomes or DEFAULT_OUTCOMES,
        windows=t_window, radii=spat_window, regions=regions.split(","),
        merge_menaka=merge_menaka, snap_km=snap_km, start=start, end=end,
        seed=0 if seed is None else seed, n_qips=n_qips, n_aid=n_aid,
        convention=convention, weighted=not unweighted, tcm=not no_tcm, alpha=alpha,
        spillover=spillover, bayes=not mwa_only, event_map=not no_event_map,
        spec=None if mwa_only else load_spec(spec_path).with_sampler(**overrides),
        compare=None if compare_path is None else load_spec(compare_path).with_sampler(
            **overrides), grid_region=grid_region or None)
    banner = _simulated_banner(settings)
    if banner:
        console.print(f"[bold red]{banner}[/]")
    result = reanalyze_sauter(settings, out, progressbar=console.is_terminal,
                              log=lambda line: console.print(line, markup=False,
                                                             highlight=False),
                              extra={"settings": {"command": "sauter"}})
    _print_result(console, result, banner)
    converged = [fit.diagnostics.converged for item in result.outcomes.values()
                 for fit in (item.bayes, item.lead, item.compared) if fit is not None]
    return _convergence_status(console, converged, allow_unconverged)


def _simulated_banner(settings) -> str:
    """The console's warning when projects are simulated (empty when both files are given)."""
    simulated = [{"qip": "QIPs", "aid": "aid projects"}[kind]
                 for kind in settings.simulated_kinds]
    if not simulated:
        return ""
    return (f"PROJECTS ARE SIMULATED ({' and '.join(simulated)}; seed {settings.seed}): "
            "effects are a placebo, not findings about QIPs. Give --qips and --aid to analyse "
            "real projects.")


def _print_result(console, result, banner: str) -> None:
    """The drops, per outcome the significant windows and the Bayesian cells, the warning
    about simulated projects again, and where the report is."""
    from rich.markup import escape

    from bayes_wake.io.tables import counted

    dropped = result.dropped[result.dropped["events"] > 0]
    for row in dropped.itertuples(index=False):
        console.print(f"  {row.step}: {row.events:,} {row.reason}", markup=False,
                      highlight=False)
    for item in result.outcomes.values():
        _print_significant(console, item.mwa,
                           f"{item.outcome.label} ({counted(item.n_events, 'event')})")
        if item.bayes is not None:
            surface = item.bayes.surface
            ci = round(100 * surface.attrs["ci_prob"])
            above = int((surface["ci_lower"] > 0).sum())
            below = int((surface["ci_upper"] < 0).sum())
            console.print(f"  Bayesian ({escape(item.bayes.spec.name)}): "
                          f"{counted(above, 'cell')} with the {ci}% "
                          f"interval above 0, {below} below 0; posterior mean "
                          f"{float(surface['mean'].min()):.3f} to "
                          f"{float(surface['mean'].max()):.3f} events per wake"
                          f"{_not_converged(item.bayes)}")
        _print_checks(console, item)
    if banner:
        console.print(f"[bold red]{banner}[/]")
    console.print(f"Report: {escape(str(result.report))} ({result.seconds:.1f} s)")


def _print_checks(console, item) -> None:
    """An outcome's pre-trend surface, posterior predictive check (a count model) and model
    comparison (--compare), each in one line, when they were made."""
    from rich.markup import escape

    from bayes_wake.bayes.matched_fit import lead_surface_text

    if item.lead is not None:
        text, warn = lead_surface_text(item.lead, item.bayes)
        line = escape(text[0].upper() + text[1:]) + _not_converged(item.lead)
        console.print(f"  [bold yellow]WARNING: {line}[/]" if warn else f"  {line}")
    if item.check is not None:
        console.print("  " + _predictive_check_line(
            item.check[1], f"{item.outcome.name}/ppc.csv, ppc.png"))
    if item.compared is not None:
        console.print(f"  Model comparison ({escape(item.bayes.spec.name)} vs "
                      f"{escape(item.compared.spec.name)}): {escape(item.comparison[1])} "
                      f"({item.outcome.name}/model_comparison.csv, compare_surfaces.png)"
                      f"{_not_converged(item.compared)}")


def _not_converged(fit) -> str:
    """`` NOT CONVERGED: why`` in red (rich markup) for a fit that failed the rule, else
    ""."""
    if fit.diagnostics.converged:
        return ""
    return " [bold red]NOT CONVERGED: " + "; ".join(fit.diagnostics.problems()) + "[/]"
