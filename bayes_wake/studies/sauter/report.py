"""The report of the Sauter (2022) reanalysis: one self-contained HTML page, one function per
section.

:func:`write_report` writes ``report.html`` from what
:func:`~bayes_wake.studies.sauter.workflow.reanalyze_sauter` made: a warning when projects are
simulated, then the summary, the data, the projects and covariate balance (the paper's Tables 1
and 2), one section per outcome (Tables 3/4, multiplicity, robust errors, Figure 6 beside the
posterior), the diagnostics, the method and its caveats, and the files with their provenance.
The tables and figures the report shares with the output folder (the significant windows,
Figure 6 without the Bayesian fit, the warning about simulated projects) are made here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bayes_wake.checks.standard_errors import robust_survival
from bayes_wake.io.tables import counted
from bayes_wake.mwa.analysis import ROBUST_ERRORS, pretrend_warning, spillover_warning
from bayes_wake.mwa.multiplicity import benjamini_hochberg
from bayes_wake.mwa.multiplicity import holm as holm_adjusted

if TYPE_CHECKING:
    from bayes_wake.studies.sauter.settings import SauterSettings
    from bayes_wake.studies.sauter.workflow import OutcomeResult, SauterResult, StudyData

__all__ = ["write_report"]

# The paper's Table 2 (conditional means; distances in km), for the report's comparison.
_PAPER_TABLE_2 = pd.DataFrame(
    [["Aid projects", 28, 12, 95, 3.66, 67.29], ["QIPs", 19, 10, 59, 3.53, 70.89],
     ["Violence a. civs.", 12, 8, 99, 3.34, 68.72], ["Battles", 13, 11, 93, 2.92, 69.61]],
    columns=["Event type", "Water dist.", "Road dist.", "UN base dist.", "Pop. dens.",
             "Nightlights"])


def write_report(stage: Path, sauter: SauterResult, study: StudyData,
                 settings: SauterSettings, record: dict) -> Path:
    """Write ``report.html``: the paper's tables and figures per outcome, with the Bayesian
    surface, the diagnostics, the caveats and the provenance, one section after another.

    Parameters
    ----------
    stage
        The (staging) output folder, holding the figures the report embeds.
    sauter
        What the reanalysis made.
    study
        What it read (the ACLED layout, the regions kept, the covariates' notes).
    settings
        Its settings (the input files, the model spec, ``alpha``).
    record
        The provenance record; its ``settings`` are the settings as run.

    Returns
    -------
    pathlib.Path
        The report.
    """
    from bayes_wake.io.html import HtmlReport

    run = record["settings"]
    report = HtmlReport("Sauter (2022) reanalysis: MINUSMA Quick Impact Projects and violence "
                        "in Mali, " + f"{run['start'][:4]}-{run['end'][:4]}")
    sim_text = simulated_text(sauter, settings.seed)
    if sim_text:
        report.paragraph(sim_text, kind="warning")
    _summary_section(report, sauter, run, settings.alpha, settings.grid_region)
    _data_section(report, stage, sauter, study, run, settings.input_files())
    _balance_section(report, sauter, study.covariate_notes)
    for item in sauter.outcomes.values():
        _outcome_section(report, stage / item.outcome.name, item, settings.alpha,
                         sauter.any_simulated)
    _diagnostics_section(report, sauter)
    _method_section(report, run, settings.spec, settings.alpha)
    _files_section(report, sauter, record, run)
    path = stage / "report.html"
    report.write(path)
    return path


def _summary_section(report, sauter: SauterResult, settings: dict, alpha: float,
                     region=None) -> None:
    """Per outcome: significant OLS windows and Bayesian cells (and the grid's average
    effect, and ``region``'s, a grid region); the grid and the matching."""
    from bayes_wake.bayes.matched_fit import grid_average_text

    n_cells = len(settings["windows"]) * len(settings["radii"])
    verdict = []
    for item in sauter.outcomes.values():
        k = len(item.mwa.significant(alpha))
        line = (f"{item.outcome.label} ({counted(item.n_events, 'event')}): {k} of "
                f"{counted(n_cells, 'window')} with p <= {alpha:g} in the matched wake "
                "analysis")
        if item.bayes is not None:
            s = item.bayes.surface
            ci = round(100 * s.attrs["ci_prob"])
            pos = int(((s["ci_lower"] > 0)).sum())
            neg = int(((s["ci_upper"] < 0)).sum())
            line += (f"; Bayesian: {counted(pos, 'cell')} with the {ci}% interval above 0, "
                     f"{neg} below 0; {grid_average_text(item.bayes)}"
                     + ("" if region is None else f"; {grid_average_text(item.bayes, region)}")
                     + ("" if item.bayes.diagnostics.converged else " (NOT CONVERGED)"))
        verdict.append(line + ".")
    report.heading("Summary")
    report.bullets(verdict)
    report.paragraph(
        f"Grid: t = {_span(settings['windows'])} days, s = {_span(settings['radii'])} km "
        f"({counted(n_cells, 'cell')}). Matched on {', '.join(sauter.covariates)} and the "
        "pre-trend"
        + (", plus earlier overlapping projects (SO_pre, MO_pre)" if settings["tcm"] else "")
        + ("; weighted regression" if settings["weighted"] else "")
        + f"; wake counting convention '{settings['convention']}'.", kind="note")


def _data_section(report, stage: Path, sauter: SauterResult, study: StudyData,
                  settings: dict, inputs: dict) -> None:
    """How ACLED was read, the period, regions, outcome rules, counts, drops, map, Figure 5."""
    report.heading("Data")
    events_meta, keep_regions, disagree = study.events.attrs, study.keep_regions, study.disagree
    acled_line = (f"ACLED: {counted(events_meta['rows_read'], 'row')} of {inputs['acled']} "
                  f"({events_meta['layout']} layout"
                  + (", rebuilt to one row per event" if events_meta["layout"] == "monadic"
                     else "") + f") = {counted(events_meta['events_read'], 'event')}.")
    lines = [acled_line,
             (f"Study period {settings['start']} to {settings['end']}; study regions "
              f"{', '.join(keep_regions)} from {inputs['boundaries']}."),
             (f"Events are placed in regions by the polygons; ACLED's own admin1 column "
              f"disagrees with the polygon for {counted(disagree, 'kept event')} (boundary "
              "vintages)."),
             "Projects: " + "; ".join(
                 f"{'QIPs' if k == 'qip' else 'aid projects'} "
                 + ("SIMULATED" if v else f"from {inputs['qips' if k == 'qip' else 'aid']}")
                 for k, v in sauter.simulated.items()) + "."]
    lines += sauter.notes
    for outcome_name, item in sauter.outcomes.items():
        lines.append(f"Outcome '{outcome_name}' ({item.outcome.label}): {item.outcome.rule()}. "
                     f"{item.outcome.description}")
    report.bullets(lines)
    report.table(sauter.summary.drop(columns="projects"),
                 caption="Events by role and region (study area and period)")
    report.table(sauter.dropped, caption="What was dropped, and why")
    report.figure(stage / "map.png", caption=(
        "Study area (grey: the study regions; black lines: admin-1 boundaries), MINUSMA bases, "
        "QIPs, aid projects" + (" and the first outcome's events" if settings["event_map"]
                                else "") + ", in the style of the paper's Figure 4."
        + (" Projects are SIMULATED." if sauter.any_simulated else "")))
    report.figure(stage / "events_per_month.png", caption=(
        "Events per month by role over the study period (the paper's Figure 5): projects "
        "starting, and the outcome events (events_per_month.csv)."
        + (" Projects are SIMULATED." if sauter.any_simulated else "")))
    if settings["event_map"]:
        report.paragraph(
            "This map shows ACLED event locations: the report holds ACLED-derived data and is "
            "for your own use under ACLED's terms of use. To share it, rerun with "
            "--no-event-map (the map then shows the projects and bases only; every other "
            "part of the report is counts and estimates).", kind="note")


def _balance_section(report, sauter: SauterResult, covariate_notes: dict) -> None:
    """The paper's Table 1 (QIP funding, with budgets) and Table 2 (covariate balance)."""
    report.heading("Projects (Table 1) and covariate balance (Table 2)")
    if sauter.funding is not None:
        report.table(sauter.funding, caption="QIP funding by activity type (the paper's "
                     "Table 1; the file's currency, US$ in the UN data)", digits=0)
    else:
        report.paragraph("Table 1 (QIP funding by activity type) needs a QIP file with budgets"
                         + (": the QIPs here are simulated." if sauter.simulated["qip"]
                            else "; this file has none."), kind="note")
    balance = sauter.balance.drop(columns="projects")
    is_diff = balance["Event type"].str.startswith("Std.").to_numpy()
    means = balance[~is_diff].copy()
    means["n"] = means["n"].astype("int64")
    report.table(means, digits=1, caption="Conditional means of the covariates by event type "
                 "(the paper's Table 2)")
    report.table(balance[is_diff].drop(columns="n"), digits=2, caption=(
        "Standardised difference of the means, QIPs minus aid projects, in pooled standard "
        "deviations (|d| > 0.25 is a common flag of imbalance before matching)"))
    report.table(_PAPER_TABLE_2, digits=2, caption="For comparison, the paper's Table 2 "
                 "(OpenStreetMap water and roads, other population and night-light sources)")
    report.bullets([f"{name}: {note}" for name, note in covariate_notes.items()])


def _outcome_section(report, folder: Path, item: OutcomeResult, alpha: float,
                     placebo: bool) -> None:
    """One outcome: Tables 3/4, multiplicity, robust errors, Figure 6 beside the posterior."""
    report.heading(f"Outcome: {item.outcome.label}")
    _design_warnings(report, item, alpha)
    significant = _windows_table(item, alpha, bayes_columns=True)
    report.paragraph(_significance_text(item, alpha, len(significant)))
    if len(significant):
        report.table(significant, digits=3, caption=(
            f"Windows with p <= {alpha:g} (the paper's Table 3/4 layout), with the "
            "Bayesian posterior of the same cell beside them"))
    else:
        report.paragraph(f"No window reaches p <= {alpha:g}.", kind="note")
    if item.bayes is not None:
        _posterior_paragraphs(report, folder, item, alpha)
        _lead_paragraphs(report, folder, item)
        _predictive_check_paragraphs(report, folder, item)
        _comparison_paragraphs(report, folder, item)
    else:
        report.figure(_ols_figure(item, placebo), caption=(
            f"OLS effect per window (the paper's Figure 6), hatched where p > {alpha:g}. "
            "The Bayesian fit was skipped (--mwa-only)."))


def _design_warnings(report, item: OutcomeResult, alpha: float) -> None:
    """Spillover between treatments and the pre-trend test, when they apply."""
    spillover = spillover_warning(item.mwa)
    if spillover and item.mwa.settings.spillover:
        report.paragraph(f"Direct effects (--spillover): {spillover}; the estimates below "
                         "hold that spillover apart (estimates.csv, spillover columns: "
                         "the effect per neighbouring treatment).", kind="note")
    elif spillover:
        report.paragraph(f"Spillover between treatments: {spillover}; rerun with "
                         "--spillover for the direct effect.", kind="warning")
    if item.mwa.pretrend is not None:
        text, warn = pretrend_warning(item.mwa.pretrend, alpha)
        report.paragraph(text[0].upper() + text[1:] + ".", kind="warning" if warn else "note")


def _significance_text(item: OutcomeResult, alpha: float, k: int) -> str:
    """How many of the windows reach ``alpha``, by chance and after the corrections."""
    pvalues = item.mwa.estimates["pvalue"].to_numpy(dtype=float)
    finite = np.isfinite(pvalues)
    bh = int((benjamini_hochberg(pvalues) <= alpha).sum())
    holm = int((holm_adjusted(pvalues) <= alpha).sum())
    return (f"{counted(item.n_events, 'outcome event')}. {k} of "
            f"{counted(int(finite.sum()), 'window')} reach p <= {alpha:g}; with "
            f"{counted(int(finite.sum()), 'independent test')} about "
            f"{alpha * finite.sum():.1f} would by chance, and these windows are nested, not "
            f"independent. After Benjamini-Hochberg {bh} remain, after Holm {holm}."
            + _robust_sentence(item, alpha))


def _posterior_paragraphs(report, folder: Path, item: OutcomeResult, alpha: float) -> None:
    """Figure 6 beside the posterior, the posterior's range and where the two disagree."""
    from bayes_wake.bayes.matched_fit import shrinkage_warning

    report.figure(folder / "comparison.png", caption=(
        "Left: OLS effect per window (the paper's Figure 6), hatched where p > "
        f"{alpha:g}. Right: the Bayesian posterior mean of the same effect (extra "
        "outcome events per treated wake), hatched where the interval includes 0."))
    surface = item.bayes.surface
    report.paragraph(
        f"Posterior mean effect from {float(surface['mean'].min()):.2f} to "
        f"{float(surface['mean'].max()):.2f} events per treated wake; P(effect > 0) "
        f"per cell from {float(surface['prob_positive'].min()):.2f} to "
        f"{float(surface['prob_positive'].max()):.2f}. " + _agreement_sentence(item, alpha),
        kind="note")
    pulled = shrinkage_warning(item.bayes)
    if pulled:
        report.paragraph("The Bayesian surface understates clear effects here: " + pulled,
                         kind="warning")


def _lead_paragraphs(report, folder: Path, item: OutcomeResult) -> None:
    """The pre-trend surface beside the effect on one scale (``pretrend_surface.png``) and
    its sentence, a warning where it is clear in many cells; nothing without it."""
    from bayes_wake.bayes.matched_fit import lead_surface_text

    if item.lead is None:
        return
    report.figure(folder / "pretrend_surface.png", caption=(
        f"Left: the posterior mean effect ({item.bayes.spec.name}). Right: the same model "
        "fitted to the pre-trend placebo, the table's regression one period earlier (pre "
        "vs lead, before any treatment), on the same colour scale; it is 0 where the "
        "treated and control places evolved alike (lead_surface.csv)."))
    text, warn = lead_surface_text(item.lead, item.bayes)
    report.paragraph(text[0].upper() + text[1:] + ".", kind="warning" if warn else "note")


def _predictive_check_paragraphs(report, folder: Path, item: OutcomeResult) -> None:
    """A model of the wake counts checked against them: ``ppc.png`` and its verdict, a
    warning where the model misfits; nothing for other models."""
    from bayes_wake.bayes.ppc import misfits

    if item.check is None:
        return
    verdict = item.check[1]
    report.figure(folder / "ppc.png", caption=(
        f"Posterior predictive check of {item.bayes.spec.name}: per cell, the matched wakes' "
        "share with no event, variance/mean ratio and largest count, observed (black; red "
        "where it misfits) against the 90% band of data sets replicated from the posterior "
        "(grey; ppc.csv)."))
    if misfits(verdict):
        report.paragraph(f"Posterior predictive check: {verdict}. The model does not "
                         "reproduce these counts: read its surface with care there.",
                         kind="warning")
    else:
        report.paragraph(f"Posterior predictive check: {verdict}.", kind="note")


def _comparison_paragraphs(report, folder: Path, item: OutcomeResult) -> None:
    """The second model (--compare) beside the first: ``compare_surfaces.png``, each
    model's distance to the OLS table and the LOO sentence; nothing without one."""
    if item.compared is None:
        return
    table, sentence = item.comparison
    first, second = item.bayes.spec.name, item.compared.spec.name
    report.figure(folder / "compare_surfaces.png", caption=(
        f"Left: the posterior mean of {first}; right: that of {second} (--compare), on one "
        "colour scale, hatched where the interval includes 0. The OLS surface is the left "
        "panel of the figure above (comparison.png)."))
    distances = ", ".join(f"{row.model} {row.rms_distance_to_ols:.3f}"
                          for row in table.itertuples(index=False))
    unconverged = [name for name, fit in ((first, item.bayes), (second, item.compared))
                   if not fit.diagnostics.converged]
    report.paragraph(
        f"Model comparison ({first} vs {second}): {sentence}. Root mean square distance of "
        f"the posterior mean to the OLS estimates, events per treated wake: {distances} "
        "(model_comparison.csv)."
        + (f" NOT CONVERGED: {', '.join(unconverged)}; do not use its numbers."
           if unconverged else ""), kind="warning" if unconverged else "note")


def _diagnostics_section(report, sauter: SauterResult) -> None:
    """Matching, overlap (SUTVA) and the MCMC diagnostics."""
    report.heading("Diagnostics")
    rows = []
    for item in sauter.outcomes.values():
        matching = item.mwa.matching
        sutva = item.mwa.sutva
        row = {"outcome": item.outcome.label,
               "treated wakes (matched, min-max)":
                   f"{matching['treatment_post'].min()}-{matching['treatment_post'].max()}",
               "control wakes (matched, min-max)":
                   f"{matching['control_post'].min()}-{matching['control_post'].max()}",
               "L1 before (median)": float(matching["L1_pre"].median()),
               "L1 after (median)": float(matching["L1_post"].median()),
               "overlap SO (max)": float(sutva["SO"].max()),
               "overlap MO (max)": float(sutva["MO"].max())}
        rows.append(row)
    report.table(pd.DataFrame(rows), digits=3, caption=(
        "Matching and overlap: matched wakes per cell, multivariate imbalance L1 (0 = "
        "balanced) before and after matching, and the share of wakes with an earlier or later "
        "project of the same (SO) or other (MO) kind in the wake (SUTVA)"))
    fits = [(item.outcome.label, fit, suffix) for item in sauter.outcomes.values()
            for fit, suffix in ((item.bayes, ""), (item.lead, " (pre-trend placebo)"),
                                (item.compared, "")) if fit is not None]
    if fits:
        table = pd.DataFrame([{
            "outcome": label, "model": fit.spec.name + suffix,
            "chains x draws": f"{fit.spec.sampler.chains} x {fit.spec.sampler.draws}",
            "max R-hat": fit.diagnostics.max_r_hat,
            "min bulk ESS": round(fit.diagnostics.min_ess_bulk),
            "divergences": int(fit.diagnostics.divergences),
            "sampling [s]": f"{fit.diagnostics.sample_seconds:.1f}",
            "converged": "yes" if fit.diagnostics.converged else "NO"}
            for label, fit, suffix in fits])
        report.table(table, digits=3, caption="MCMC diagnostics of the Bayesian fits "
                     "(converged: R-hat <= 1.01, bulk ESS >= 400, no divergences)")
        if not all(fit.diagnostics.converged for _, fit, _ in fits):
            report.paragraph("At least one Bayesian fit did NOT converge: do not use its "
                             "numbers; sample longer (--draws, --tune).", kind="warning")
    else:
        report.paragraph("The Bayesian fits were skipped (--mwa-only).", kind="note")


def _method_section(report, settings: dict, spec, alpha: float) -> None:
    """What the estimators assume, in the report's words."""
    report.heading("Method and caveats")
    n_cells = len(settings["windows"]) * len(settings["radii"])
    model_name = spec.name if spec is not None else "not run"
    report.bullets([
        ("Matched wake analysis (Schutte and Donnay 2014) as R's mwa computes it: outcome "
         "events are counted within s km and t days before and after each project's start; "
         "treated (QIP) and control (aid) wakes are matched by coarsened exact matching on the "
         "covariates and the pre-trend; per window, the OLS coefficient of treatment in "
         "post ~ pre + treatment is the difference-in-differences effect (the paper's eq. 1)."),
        (f"The Bayesian model ({model_name}): "
         + (" ".join(spec.description.split()) if spec is not None else "not run.")
         + _predictive_check_sentence(spec)),
        (f"The {n_cells} windows are nested (a 9 km wake holds the 3 km wake's events), so "
         f"per-window significance is not {n_cells} pieces of evidence; and with {n_cells} "
         f"tests some will pass p <= {alpha:g} by chance."),
        ("Where projects are placed is not random (QIPs cluster at the bases): matching on "
         "the covariates and the pre-trend addresses only what is measured."),
        ("An outcome event on a project's start day counts in neither period (dates have no "
         "time of day). Wakes that run off the record's ends are dropped (R's behaviour)."),
        "See docs/method.md and docs/walkthrough_sauter.md in the bayes_wake repository.",
    ])


def _predictive_check_sentence(spec) -> str:
    """For a fitted model that is not of the wake counts, one sentence (after its
    description): it is not checked against the counts, and ``--spec nb_did`` is."""
    if spec is None or spec.counts_model:
        return ""
    what = ("It models the OLS table's per-window estimates, not the wake counts, so nothing "
            "here checks it against the counts" if spec.likelihood == "robust_normal"
            else "Nothing here checks it against the wake counts")
    return (f" {what}; --spec nb_did models the counts themselves, on the same estimand, and "
            "checks them (a posterior predictive check per outcome, ppc.png).")


def _files_section(report, sauter: SauterResult, record: dict, settings: dict) -> None:
    """The files written, the inputs with their hashes, ACLED's terms."""
    report.heading("Files and provenance")
    files = ["report.html (this file)", "provenance.json (settings, input hashes, versions)",
             "data_summary.csv, dropped.csv, covariate_balance.csv, significant_windows.csv",
             "projects.csv (the projects used, with covariates; no ACLED rows are written)",
             "map.png, events_per_month.csv, events_per_month.png"]
    if sauter.funding is not None:
        files.append("qip_funding.csv")
    if sauter.any_simulated:
        files.append("SIMULATED_PROJECTS.txt")
    for name, item in sauter.outcomes.items():
        files.append(f"{name}/: estimates.csv, matching.csv, SUTVA.csv, wakes.csv (R's tables), "
                     "cube.nc, effect_surface.png"
                     + (", effect_surface.csv, posterior.nc, comparison.png"
                        if item.bayes is not None else "")
                     + (", ppc.csv, ppc.png" if item.check is not None else "")
                     + (", compare_surfaces.png, model_comparison.csv"
                        if item.compared is not None else ""))
    report.bullets(files)
    report.bullets([f"{role}: {info['path']}" + (f" (sha256 {info['sha256'][:16]}...)"
                                                 if "sha256" in info else "")
                    for role, info in record["inputs"].items()])
    report.paragraph("ACLED data: Armed Conflict Location & Event Data Project "
                     "(acleddata.com); cite ACLED and follow its terms of use. This report "
                     "holds no ACLED rows"
                     + (", but its map shows ACLED event locations (--no-event-map leaves "
                        "them out)." if settings["event_map"] else "; it shows counts, "
                        "estimates and project locations only."), kind="note")


def _robust_sentence(item: OutcomeResult, alpha: float) -> str:
    """How many of the windows with classical p <= alpha keep it under each robust standard
    error (:func:`~bayes_wake.checks.standard_errors.robust_survival`)."""
    if item.robust is None:
        return ""
    counts = ", ".join(f"{n} with {v}" for v, n in robust_survival(item.robust, alpha).items())
    k = int((item.robust["pvalue_classical"] <= alpha).sum())
    return (f" Classical (R's lm) p-values assume independent, equally noisy wakes and "
            f"overstate the evidence on clustered counts; of the {k} with p <= {alpha:g}, "
            f"{counts} stay significant with robust standard errors.")


def _agreement_sentence(item: OutcomeResult, alpha: float) -> str:
    """Where the OLS table and the posterior disagree: cells whose OLS estimate lies outside
    the posterior interval, and cells of opposite sign where either is clear (OLS p <=
    ``alpha``, or the interval excludes 0)."""
    surface = item.bayes.surface
    dims = surface["mean"].dims
    ols = item.mwa.surface["estimate"].transpose(*dims)
    clear_ols = item.mwa.surface["pvalue"].transpose(*dims) <= alpha
    clear_bayes = (surface["ci_lower"] > 0) | (surface["ci_upper"] < 0)
    both = np.isfinite(ols) & np.isfinite(surface["mean"])
    outside = int((both & ((ols < surface["ci_lower"]) | (ols > surface["ci_upper"]))).sum())
    opposite = int((both & (np.sign(ols) * np.sign(surface["mean"]) < 0)
                    & (clear_ols | clear_bayes)).sum())
    ci = round(100 * surface.attrs["ci_prob"])
    text = (f"The OLS estimate lies outside the posterior's {ci}% interval in {outside} of "
            f"{counted(int(both.sum()), 'cell')}; the two have opposite signs, one of them "
            "clearly "
            f"(p <= {alpha:g} or the interval excluding 0), in {opposite}.")
    if outside or opposite:
        text += (" The posterior pools neighbouring cells and counts every event once, so "
                 "where the OLS table is noisy it is pulled toward its neighbours; read "
                 "single cells of either with care.")
    return text


def _span(values: Sequence[float]) -> str:
    values = list(values)
    if len(values) == 1:
        return f"{values[0]:g}"
    step = values[1] - values[0]
    return f"{values[0]:g}..{values[-1]:g} by {step:g}"


def _windows_table(item: OutcomeResult, alpha: float, *, bayes_columns: bool,
                   raw: bool = False) -> pd.DataFrame:
    """The paper's Table 3/4 layout (significant windows only), Bayesian columns beside."""
    significant = item.mwa.significant(alpha)
    keep = ["t_window", "spat_window", "estimate", "pvalue", "adj.r.squared"]
    table = significant[[c for c in keep if c in significant.columns]].copy()
    # the columns do not depend on whether any window is significant (an empty table has
    # the same header as a full one)
    if item.robust is not None:
        robust = item.robust.set_index(["t_window", "spat_window"])
        index = list(zip(table["t_window"], table["spat_window"], strict=True))
        for v in ROBUST_ERRORS:
            table[f"pvalue_{v}"] = robust[f"pvalue_{v}"].reindex(index).to_numpy()
    if bayes_columns and item.bayes is not None:
        surface = item.bayes.surface
        cells = [surface.sel(window=int(t), radius=float(s)) for t, s in
                 zip(table["t_window"], table["spat_window"], strict=True)]
        table["posterior_mean"] = [float(c["mean"]) for c in cells]
        table["ci_lower"] = [float(c["ci_lower"]) for c in cells]
        table["ci_upper"] = [float(c["ci_upper"]) for c in cells]
        table["prob_positive"] = [float(c["prob_positive"]) for c in cells]
    if raw:
        return table.reset_index(drop=True)
    names = {"t_window": "Time [days]", "spat_window": "Space [km]", "estimate": "Effect size",
             "pvalue": "p-value (classical)", **{f"pvalue_{v}": f"p ({v})" for v in
                                                 ROBUST_ERRORS},
             "adj.r.squared": "Adj. R2", "posterior_mean":
             "Posterior mean", "prob_positive": "P(effect > 0)"}
    if "ci_lower" in table:
        ci = round(100 * item.bayes.surface.attrs["ci_prob"])
        table[f"{ci}% interval"] = [f"[{lo:.2f}, {hi:.2f}]" for lo, hi in
                                    zip(table.pop("ci_lower"), table.pop("ci_upper"),
                                        strict=True)]
        table = table[[c for c in table.columns if c != "prob_positive"] + ["prob_positive"]]
    return table.rename(columns=names).reset_index(drop=True)


def simulated_text(sauter: SauterResult, seed: int) -> str:
    """The warning when projects are simulated (empty when both kinds come from files): at the
    top of the report, in ``SIMULATED_PROJECTS.txt`` and in the provenance."""
    projects = sauter.projects
    kinds = [k for k, v in sauter.simulated.items() if v]
    if not kinds:
        return ""
    counts = " and ".join(
        counted(int((projects["kind"] == k).sum()), "QIP" if k == "qip" else "aid project")
        for k in kinds)
    what = " and ".join("QIP file" if k == "qip" else "aid-project file" for k in kinds)
    return (f"PROJECTS ARE SIMULATED: no {what} was given, so the {counts} are a documented "
            f"simulated placement (seed {seed}; QIPs at the MINUSMA base towns and camps, aid "
            "projects following the towns' population, as in bayes_wake.simulate). The "
            "outcome events are real ACLED data, but every effect below compares the wakes "
            "of simulated projects: it is a placebo that shows the workflow and the noise "
            "level, not a finding about QIPs.")


def _ols_figure(item: OutcomeResult, placebo: bool):
    """The paper's Figure 6: the OLS effect per window, marked a placebo when ``placebo``."""
    fig, _ = item.mwa.plot(title=f"{item.outcome.label}: OLS effect per window",
                           warning="SIMULATED PROJECTS: a placebo, not a finding"
                           if placebo else None)
    return fig
