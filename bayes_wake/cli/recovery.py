"""``bayes-wake recovery``: which method recovers a known effect on *your* outcome data?

Takes the data and window arguments of ``bayes-wake mwa``, plants effects of chosen forms into
the real outcome events (or re-draws the placements with no effect), refits every method on
each replicate and writes bias, RMSE, coverage, width, power and false positives per method
and scenario. Replicates are keyed, resumable tasks on the Dask scale-out.
"""

from __future__ import annotations

import time
from dataclasses import replace

import click

from bayes_wake.cli.common import (
    RCommand,
    _cell,
    _console,
    _fail_cleanly,
    _guard_output,
    _load_and_count,
    _progress,
    chosen_ci,
    ci_option,
    data_options,
    mwa_options,
    settings_from_options,
)
from bayes_wake.errors import SettingsError
from bayes_wake.options import DEFAULT_SPEC


def _parse_scenario(text: str):
    """``form=additive,size=0.3,delay=20:60,distance=2:9[,name=...][,placebo=1]``."""
    from bayes_wake.checks.recovery import Scenario

    if not text.strip():
        raise SettingsError("--scenario '': empty; give e.g. "
                            "'form=additive,size=0.3,delay=20:60,distance=2:9'")
    fields: dict = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        key, sep, value = part.partition("=")
        if not sep:
            raise SettingsError(f"--scenario {text!r}: expected KEY=VALUE parts, got {part!r}")
        if key in ("delay", "distance"):
            lo, _, hi = value.partition(":")
            try:
                fields[key] = (float(lo), float(hi))
            except ValueError:
                raise SettingsError(f"--scenario {text!r}: {key} is FIRST:LAST, e.g. 20:60"
                                    ) from None
        elif key == "size":
            fields[key] = float(value)
        elif key == "placebo":
            fields[key] = value not in ("0", "false", "no")
        elif key in ("form", "name"):
            fields[key] = value
        else:
            raise SettingsError(f"--scenario {text!r}: unknown key {key!r} (form, size, delay, "
                                "distance, name, placebo)")
    fields.setdefault("name", text)
    return Scenario(**fields)


@click.command(cls=RCommand)
@data_options
@mwa_options
@click.option("--scenario", "scenario_texts", multiple=True, metavar="SPEC",
              help="A planted effect, e.g. 'form=additive,size=0.3,delay=20:60,distance=2:9' "
                   "(forms: additive, proportional, controls, thinning, null; repeatable).")
@click.option("--battery", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A YAML file of scenarios (see benchmarks/battery.yaml).")
@click.option("--replicates", type=click.IntRange(1), default=3, show_default=True,
              help="Replicates per scenario.")
@click.option("--methods", default=f"ols,{DEFAULT_SPEC}", show_default=True, metavar="A,B",
              help="ols and model specs (names in models/ or YAML files).")
@click.option("--placebo-sites", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Candidate sites (CSV with lat, lon and the match columns) for re-drawn "
                   "placements; adds a null scenario with re-drawn placements.")
@click.option("--placebo-weight", default=None, metavar="COLUMN",
              help="Column of the sites weighting where treatments are drawn.")
@click.option("--placebos", type=click.IntRange(0), default=0, show_default=True,
              help="Replicates of the re-drawn null placement (with --placebo-sites).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--draws", type=click.IntRange(10), default=None, help="Draws per chain.")
@click.option("--tune", type=click.IntRange(10), default=None, help="Tuning steps per chain.")
@click.option("--chains", type=click.IntRange(1), default=None)
@click.option("--scheduler", default="inline", show_default=True, metavar="ADDRESS",
              help="inline (this process), local (a LocalCluster) or a Dask scheduler address.")
@ci_option
@_fail_cleanly
@_guard_output
@settings_from_options
def recovery(source, mwa, out, scenario_texts, battery, replicates, methods, placebo_sites,
             placebo_weight, placebos, seed, draws, tune, chains, scheduler):
    """Plant known effects into the real outcome events and score every method.

    Writes recovery_summary.csv (per method and scenario: bias, RMSE and its ratio to OLS,
    coverage of the --ci posterior / 1 - --alpha OLS intervals, width, power, false
    positives),
    recovery_cells.csv (every cell of every replicate), recovery.png and
    recovery_report.html to OUT; finished replicates stay in OUT/tasks/ so a rerun resumes.
    """
    import pandas as pd
    from rich.markup import escape

    from bayes_wake.checks.recovery import (
        Battery,
        RecoverySettings,
        recovery_scoring_note,
        run_recovery,
        score_recovery,
        write_recovery,
    )
    from bayes_wake.io.tables import counted

    console = _console()
    started = time.perf_counter()
    plan = Battery(scenarios=_scenarios(scenario_texts, battery, placebo_sites, placebos),
                   replicates=replicates, seed=seed, placebo_replicates=placebos)
    names, specs = _methods(methods)
    settings = RecoverySettings(
        windows=source.windows, radii=source.radii, mwa=mwa, methods=names, specs=specs,
        convention=source.convention, draws=draws, tune=tune, chains=chains,
        placebo_weight=placebo_weight, ci=chosen_ci())
    sites = pd.read_csv(placebo_sites) if placebo_sites else None
    events, _ = _load_and_count(source, mwa, console)
    n_tasks = sum(placebos if s.placebo else replicates for s in plan.scenarios)
    console.print(f"{counted(len(plan.scenarios), 'scenario')}, "
                  f"{counted(n_tasks, 'replicate')}, "
                  f"methods {escape(', '.join(settings.methods))}")
    with _progress(console, "recovery replicates") as advance:
        cells = run_recovery({"default": events}, plan, settings, out, sites=sites,
                             scheduler=None if scheduler == "local" else scheduler,
                             progress=advance,
                             log=lambda line: console.print(line, markup=False))
    # with --spillover every method estimates the direct effect: score it on that
    summary = score_recovery(cells, truth="truth_direct" if mwa.spillover else "truth")
    if mwa.spillover:
        console.print("--spillover: scored on the direct effect (truth_direct: what each "
                      "matched treated wake's own treatment caused in its own wake).")
    console.print(recovery_scoring_note(cells), markup=False)
    write_recovery(out, summary, cells, plan, settings, extra={
        "settings": {"command": "recovery", "data": str(source.path)}})
    _print_summary(console, summary)
    console.print(f"Wrote {escape(str(out))}/ (recovery_summary.csv, recovery_cells.csv, "
                  f"recovery.png, recovery_report.html) in {time.perf_counter() - started:.1f} s")


def _scenarios(texts, battery, placebo_sites, placebos) -> tuple:
    """The scenarios of ``--scenario``, ``--battery`` and the re-drawn null placement, on
    the one study of the command line."""
    from bayes_wake.checks.recovery import Scenario, check_scenario_names, load_battery

    scenarios = [_parse_scenario(t) for t in texts]
    if battery:
        scenarios += load_battery(battery)[0]
    if placebo_sites and placebos:
        scenarios.append(Scenario(name="null, re-drawn placements", form="null", size=0,
                                  placebo=True))
    if not scenarios:
        raise SettingsError("give at least one --scenario, a --battery file, or "
                            "--placebo-sites with --placebos N")
    scenarios = [replace(s, data="default") for s in scenarios]
    check_scenario_names(scenarios)
    return tuple(scenarios)


def _methods(text: str) -> tuple[tuple[str, ...], dict]:
    """``--methods``: the methods as named (``ols`` and model specs), and each spec parsed
    now, once (to fail before any work; the settings carry it to every replicate)."""
    from bayes_wake.bayes.spec import load_spec

    methods = tuple(m.strip() for m in text.split(",") if m.strip())
    return methods, {method: load_spec(method) for method in methods if method != "ols"}


def _print_summary(console, summary) -> None:
    """Per method and scenario: RMSE and its ratio to OLS's, coverage, interval width and
    the false-positive cells per replicate (a mean count: whole numbers as integers)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="Recovery of the planted effects",
                  caption="RMSE/OLS: the method's RMSE over OLS's; false +: false-positive "
                          "cells per replicate (mean)")
    for name in ("method", "scenario"):
        table.add_column(name, overflow="fold")  # whole names, wrapped in a narrow log
    for name in ("RMSE", "RMSE/OLS", "coverage", "width", "false +"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in summary.to_dict("records"):
        false_cells = row["false_positive_cells"]
        table.add_row(escape(str(row["method"])), escape(str(row["scenario"])),
                      _cell(row["rmse"]), _cell(row["rmse_vs_ols"], 2),
                      _cell(row["coverage"], 2), _cell(row["width"]),
                      _cell(false_cells, 0 if float(false_cells).is_integer() else 2))
    console.print(table)
