"""Building blocks shared by the ``bayes-wake`` commands: options, error handling, progress,
and the steps every command repeats (read and count, write the MWA outputs, fit and report).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import click

from bayes_wake.cli.resources import check_memory, counting_need, memory_budget_option
from bayes_wake.errors import BayesWakeError, NoDependentEventsWarning, SettingsError
from bayes_wake.options import (
    DEFAULT_SPEC,
    MAX_SEED,
    Convention,
    Estimation,
    Formula,
    Sampler,
)

#: The type of every --seed: a whole number from 0 to MAX_SEED.
SEED = click.IntRange(0, MAX_SEED)

_DEBUG = os.environ.get("BAYES_WAKE_DEBUG", "") not in ("", "0")

#: Exit status of a command whose inputs or settings are bad (one line on stderr says why).
EXIT_BAD_INPUT = 2
# errno of a full disk, a full quota and a file too large for the file system
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
#: Exit status of a run whose Bayesian fit failed the convergence rule (outputs written and
#: marked NOT CONVERGED); ``--allow-unconverged`` exits 0 instead.
EXIT_NOT_CONVERGED = 3
#: The exit statuses, for the commands' help.
EXIT_CODES = ("Exit status: 0 done; 2 bad input or settings (one line says why; nothing is "
              "written); 3 a Bayesian fit did not converge (everything is written and marked "
              "NOT CONVERGED; --allow-unconverged exits 0).")


#: How library errors name the parameters that a flag sets (``NAME=True``: a boolean flag;
#: ``NAME=`` before a value), and the flag; :func:`flags_for_parameters` rewrites a library
#: message with it, so that the command line's errors name what its user typed.
PARAMETER_FLAGS = {
    "drop_duplicates=True": "--drop-duplicates",
    "overwrite=True": "--overwrite",
    "spillover=True": "--spillover",
    "placebo_bayes=True": "--placebo-bayes",
    "bayes=False": "--mwa-only",
    "compare=": "--compare",
    "out=": "--out",
    "vcov=": "--vcov",
    "date_shifts=": "--date-shifts",
    "date_shifts": "--date-shifts",
    "chunk_size": "--chunk-size",
    "match_on": "--match",
    "t_window": "--t-window",
    "spat_window": "--spat-window",
    "placebo_sites": "--placebo-sites",
    "region_column": "--region-column",
    "leave_out": "--regions",
    "grid_region": "--grid-region",
    "bayes_checks": "--bayes-checks",
    "SensitivitySettings.permutations": "--permutations",
    "SensitivitySettings.seed": "--seed",
    "SensitivitySettings.placebos": "--placebos",
}


def _parameter_pattern(name: str) -> re.Pattern:
    """A parameter as a whole token: ``NAME=`` followed by its value, else not inside a
    longer name, a quoted value or a flag."""
    after = r"(?=\S)" if name.endswith("=") else r"(?![\w'\"])"
    return re.compile(rf"(?<![\w.'\"-]){re.escape(name)}{after}")


_PARAMETER_PATTERNS = [(_parameter_pattern(name), flag + " " * name.endswith("="))
                       for name, flag in sorted(PARAMETER_FLAGS.items(),
                                                key=lambda item: -len(item[0]))]


def flags_for_parameters(message: str) -> str:
    """A library message with every parameter it names (:data:`PARAMETER_FLAGS`) written as
    the flag that sets it: ``drop_duplicates=True`` as ``--drop-duplicates``, ``out=x`` as
    ``--out x``."""
    for pattern, flag in _PARAMETER_PATTERNS:
        message = pattern.sub(flag, message)
    return message


def _console():
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    # in a log file, one message per line: rich would otherwise wrap at 80 columns
    console.soft_wrap = not console.is_terminal
    return console


def _fail_cleanly(command: Callable) -> Callable:
    """Turn expected errors into one line on stderr and exit status 2, and a non-zero int
    that the command returns (after its outputs are in place) into that exit status."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            status = command(*args, **kwargs)
        except (BayesWakeError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            if _DEBUG:
                raise
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            message = flags_for_parameters(message)
            click.echo(f"bayes-wake: error: {message}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except OSError as exc:
            if _DEBUG or exc.errno not in _DISK_FULL:
                raise
            click.echo(f"bayes-wake: error: {_disk_full_line(exc)}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        if isinstance(status, int) and not isinstance(status, bool) and status:
            sys.exit(status)

    return wrapper


def _disk_full_line(exc: OSError) -> str:
    """One line for a write that found the disk (or the user's quota) full."""
    where = f" writing {Path(exc.filename).name}" if exc.filename else ""
    return (f"the disk is full ({os.strerror(exc.errno)}){where}: nothing was replaced, an "
            "earlier --out folder is kept as it was; free some space or write elsewhere")


def _guard_output(command: Callable) -> Callable:
    """Check ``--out`` before any work and apply ``--overwrite`` (see
    :func:`bayes_wake.io.artefacts.prepared_output`); goes right under :func:`_fail_cleanly`.
    What the check did to folders of killed runs (put one back, kept one) is printed."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from rich.markup import escape

        from bayes_wake.io.artefacts import prepared_output

        with contextlib.ExitStack() as stack:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:  # the command writes where the check resolved --out to (., a link)
                    kwargs["out"] = stack.enter_context(prepared_output(
                        kwargs["out"], overwrite=kwargs.pop("overwrite"),
                        inputs=_input_paths(kwargs)))
                finally:  # also before the error that refuses the folder put back
                    for warning in caught:
                        _console().print(f"[yellow]{escape(str(warning.message))}[/]")
            return command(*args, **kwargs)

    return wrapper


def _input_paths(options: dict) -> list[Path]:
    """The input files a command's options name, so that ``--out`` is refused when it holds
    one: every ``click.Path`` option but ``--out``, the file of each ``NAME=FILE`` option, and
    a ``--spec`` that is a file (not a spec name)."""
    found = []
    for param in click.get_current_context().command.params:
        value = options.get(param.name)
        values = value if isinstance(value, (tuple, list)) else (value,)
        for item in (v for v in values if v is not None):
            if param.name == "out":
                continue
            if isinstance(param.type, click.Path):
                found.append(Path(item))
            elif param.metavar == "NAME=FILE" and "=" in str(item):
                found.append(Path(str(item).partition("=")[2]))
            elif param.name == "spec_path" and Path(item).is_file():
                found.append(Path(item))
    return [path for path in found if path.exists()]


def overwrite_option(command: Callable) -> Callable:
    return click.option(
        "--overwrite", is_flag=True,
        help="Replace an existing --out folder whole, even one bayes-wake did not write or "
             "that holds files it did not write (without it such a folder is refused; a "
             "folder bayes-wake wrote is always replaced whole, never mixed). An --out that "
             "holds an input file is always refused.")(command)


class RCommand(click.Command):
    """A command that also takes R's ``matchColumns = c("a", "b")`` as ``--match a b``:
    the words after ``--match`` up to the next option are joined with commas. An option right
    after ``--match`` is an error, never a covariate name."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _join_match_words(args))


def _join_match_words(args: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(args):
        word = args[i]
        if word == "--":
            out += args[i:]
            break
        if word == "--match" and i + 1 < len(args):
            value, i = args[i + 1], i + 2
        elif word.startswith("--match="):
            value, i = word.split("=", 1)[1], i + 1
        else:
            out.append(word)
            i += 1
            continue
        if value.startswith("--"):
            raise click.UsageError(f"--match needs covariate names; got the option {value}")
        while i < len(args) and not args[i].startswith("-"):
            value, i = f"{value},{args[i]}", i + 1
        out += ["--match", value]
    return out


def _match_columns(match_on: str | Sequence[str]) -> list[str]:
    """The covariate names of ``--match`` (R: matchColumns), given once or repeated.

    Names are separated by commas, with the spaces around them stripped. A single
    ``--match`` whose value holds no comma is also split at spaces (``"match1 match2"``); a
    name that holds a space is given in a comma list or in a ``--match`` of its own
    (``--match match1 --match "match 2"``)."""
    values = [match_on] if isinstance(match_on, str) else list(match_on)
    if len(values) == 1 and "," not in values[0]:
        return values[0].split()
    names = [name.strip() for value in values for name in value.split(",")]
    return [name for name in names if name]


def _canonical_time_unit(_ctx, _param, value: str) -> str:
    from bayes_wake.core.windows import normalise_time_unit

    return normalise_time_unit(value)


class VCovType(click.ParamType):
    """``--vcov``: any standard-error choice of :func:`bayes_wake.core.regression.parse_vcov`,
    parsed once, here, into its value object."""

    name = "vcov"

    def convert(self, value, param, ctx):
        from bayes_wake.core.regression import VCov, parse_vcov

        if isinstance(value, VCov):
            return value
        try:
            return parse_vcov(value)
        except SettingsError as exc:
            self.fail(str(exc), param, ctx)


#: The type of every ``--vcov``.
VCOV = VCovType()


@dataclass(frozen=True)
class EventSource:
    """The data options of a command (:func:`data_options`), parsed once: the event file,
    its columns and roles, and the window grid.

    Attributes
    ----------
    path
        The event file (``--data``).
    columns
        ``--column`` as given (``OURS=THEIRS``).
    roles
        ``--treatment``, ``--control``, ``--dependent`` as (column, value) pairs.
    t_window, spat_window
        The grids as given (min, max, step).
    windows, radii
        The grids expanded (:func:`bayes_wake.core.windows.expand_windows`).
    t_unit, convention, drop_duplicates
        As given.
    """

    path: Path
    columns: tuple[str, ...]
    roles: dict[str, tuple[str, str]]
    t_window: tuple[float, float, float]
    spat_window: tuple[float, float, float]
    windows: tuple[int, ...]
    radii: tuple[float, ...]
    t_unit: str = "days"
    convention: str = "mwa"
    drop_duplicates: bool = False

    @classmethod
    def from_options(cls, data, columns, t_window, spat_window, treatment, control, dependent,
                     t_unit, convention, drop_duplicates) -> EventSource:
        """Parse :func:`data_options` (the grid is checked before any data are read)."""
        from bayes_wake.core.windows import expand_windows

        windows = expand_windows(*t_window, name="--t-window", temporal=True, t_unit=t_unit)
        radii = expand_windows(*spat_window, name="--spat-window")
        roles = {"treatment": _parse_selector(treatment, "--treatment"),
                 "control": _parse_selector(control, "--control"),
                 "dependent": _parse_selector(dependent, "--dependent")}
        return cls(path=data, columns=tuple(columns), roles=roles, t_window=tuple(t_window),
                   spat_window=tuple(spat_window), windows=tuple(int(w) for w in windows),
                   radii=tuple(float(r) for r in radii), t_unit=t_unit,
                   convention=convention, drop_duplicates=drop_duplicates)

    def record(self) -> dict:
        """The options as given, for the provenance record."""
        return {"t_window": list(self.t_window), "spat_window": list(self.spat_window),
                **{role: "=".join(pair) for role, pair in self.roles.items()},
                "columns": list(self.columns), "t_unit": self.t_unit,
                "convention": self.convention, "drop_duplicates": self.drop_duplicates}


_DATA_OPTIONS = ("data", "columns", "t_window", "spat_window", "treatment", "control",
                 "dependent", "t_unit", "convention", "drop_duplicates")
_MWA_OPTIONS = ("match_on", "weighted", "tcm", "no_match", "delete_sutva", "formula",
                "estimation", "vcov", "alpha", "spillover")


def settings_from_options(command: Callable) -> Callable:
    """Build the settings objects of :func:`data_options` and :func:`mwa_options` once, at
    the edge: the command receives ``source`` (:class:`EventSource`) and ``mwa``
    (:class:`~bayes_wake.mwa.analysis.MWASettings`) in place of those options. Goes right
    under :func:`_guard_output` (so bad settings exit as every bad input does)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        mwa = _mwa_settings(*(kwargs.pop(name) for name in _MWA_OPTIONS))
        source = EventSource.from_options(*(kwargs.pop(name) for name in _DATA_OPTIONS))
        return command(*args, source=source, mwa=mwa, **kwargs)

    return wrapper


def _mwa_settings(match_on: str | Sequence[str], weighted, tcm, no_match, delete_sutva, formula,
                  estimation, vcov, alpha, spillover=False):
    """The matched wake analysis settings of a command's options (``--match A,B`` and the
    rest of :func:`mwa_options`), validated before any data are read."""
    from bayes_wake.mwa.analysis import MWASettings

    columns = tuple(_match_columns(match_on))
    if not columns and not no_match:
        raise SettingsError("name at least one covariate to match on with --match COL1,COL2 "
                            "(R: matchColumns), or switch matching off with --no-match")
    return MWASettings(match_on=columns, weighted=weighted, tcm=tcm, delete_sutva=delete_sutva,
                       matching=not no_match, formula=formula, estimation=estimation,
                       vcov=vcov, alpha=alpha, spillover=spillover)


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
        click.option("--match", "match_on", multiple=True, metavar="COL1,COL2",
                     help="Covariates to match on (R: matchColumns), comma or space "
                          "separated; repeat --match for a name with a space in it."),
        click.option("--t-unit", default="days", show_default=True,
                     type=click.Choice(["days", "hours", "minutes", "seconds", "mins",
                                        "secs"]),
                     callback=_canonical_time_unit,
                     help="Time unit of --t-window (R's mins and secs are minutes and "
                          "seconds)."),
        click.option("--convention", default="mwa", show_default=True,
                     type=click.Choice(get_args(Convention)),
                     help="mwa: bit-for-bit R; exact: great-circle distance, symmetric "
                          "trend, edge wakes kept."),
        click.option("--drop-duplicates", is_flag=True,
                     help="Drop exact duplicate rows of the event file (they are always "
                          "reported; kept by default, as distinct events can share place "
                          "and date)."),
    ]
    for option in reversed(options):
        command = option(command)
    return memory_budget_option(command)


def _load_and_count(source: EventSource, mwa, console, *, extra_memory=(), keep=None):
    """Read the events, check the memory the grid and ``extra_memory`` (parts of
    :func:`bayes_wake.cli.resources.check_memory`) need, and count wakes.

    The cube carries ``mwa``'s match columns and the cluster column of a cluster-robust
    ``mwa.vcov``; the events also ``keep``'s columns (``read_events``')."""

    import numpy as np
    from rich.markup import escape

    from bayes_wake.io.events import read_events
    from bayes_wake.io.tables import counted
    from bayes_wake.wakes import count_wakes

    roles = source.roles
    explicit = roles != {r: ("type", r) for r in roles}
    wanted = list(dict.fromkeys(mwa.match_on))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        events = read_events(source.path, columns=_parse_columns(source.columns) or None,
                             roles=roles if explicit else None, covariates=wanted,
                             drop_duplicates=source.drop_duplicates,
                             labels=list(mwa.vcov.event_columns), keep=keep)
    for warning in caught:
        if isinstance(warning.message, NoDependentEventsWarning):
            raise SettingsError(_no_dependent_message(roles["dependent"], warning.message))
    for warning in caught:  # the reader's findings (encoding, duplicates), one line each
        said = flags_for_parameters(str(warning.message))
        console.print(f"[yellow]warning: {escape(said)}[/]")
    counts = events["role"].value_counts()
    console.print(
        f"[bold]{escape(str(source.path))}[/]: {counts.get('treatment', 0):,} treatment, "
        f"{counts.get('control', 0):,} control, {counts.get('dependent', 0):,} dependent "
        "events"
        + (f", {counted(counts.get('other', 0), 'other row')} (bound the record only)"
           if counts.get("other", 0) else ""))
    anchors = int(counts.get("treatment", 0) + counts.get("control", 0))
    check_memory([counting_need(anchors, len(source.windows), len(source.radii)),
                  *extra_memory])
    with _progress(console, "counting wakes") as advance:
        cube = count_wakes(events, np.asarray(source.windows), np.asarray(source.radii),
                           t_unit=source.t_unit, convention=source.convention,
                           progress=advance, leads=True)
    return events, cube


def _no_dependent_message(dependent: tuple[str, str], found: NoDependentEventsWarning) -> str:
    """A --dependent selector (column, value) that matches no row: every wake would count
    zero and every estimate be NA, so the command refuses, naming the values the column
    holds."""
    column = dependent[0]
    dependent = "=".join(dependent)
    values = ", ".join(repr(v) for v in found.present[:8]) or "none"
    more = f" and {len(found.present) - 8} more" if len(found.present) > 8 else ""
    hint = f"; did you mean {column}={found.guess}?" if found.guess else ""
    return (f"--dependent {dependent} matches no row, so every wake would count zero "
            f"outcome events (values in {column!r}: {values}{more}){hint}")


def _event_checks(events) -> dict:
    """What the reader found in the event file, for the provenance record."""
    repeats = events.attrs.get("duplicate_rows", ())
    return {"rows_read": len(events) + (len(repeats) if events.attrs.get("duplicates_dropped")
                                        else 0),
            "duplicate_rows": len(repeats), "duplicate_row_numbers": list(repeats[:1000]),
            "duplicates_dropped": bool(events.attrs.get("duplicates_dropped"))}


#: Work that ends sooner than this shows no progress on the console (it is still logged).
PROGRESS_AFTER_S = 2.0
_PROGRESS_LOG = logging.getLogger("bayes_wake.progress")


def _time_left(elapsed: float, done: int, total: int) -> str:
    """``, about N s left`` (or min) from the pace so far; "" before the first step or at
    the end."""
    if not done or done >= total:
        return ""
    left = elapsed * (total - done) / done
    return f", about {left:.0f} s left" if left < 120 else f", about {left / 60:.0f} min left"


class _progress:
    """Progress as a context manager yielding ``advance(done, total)``: every step is logged
    (logger ``bayes_wake.progress``, INFO). In a terminal a transient rich bar (drawn at once,
    so that long first steps show their time) with the time left at the pace so far;
    elsewhere (a log, CI) a line at every further 10% or 10 s and at the end, with the time
    left, but only for work that lasts past :data:`PROGRESS_AFTER_S`: a step that takes no
    time prints nothing."""

    def __init__(self, console, label: str):
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._console, self._label = console, label
        self._bar = Progress(TextColumn(label), BarColumn(), TextColumn(
            "{task.completed}/{task.fields[of]}"), TimeElapsedColumn(), TextColumn("left"),
            TimeRemainingColumn(), console=console,
            transient=True) if console.is_terminal else None
        self._task = None
        self._last = (-1, 0.0)  # (tenths printed, time printed)
        self._start = 0.0

    def __enter__(self):
        self._start = time.monotonic()
        if self._bar is not None:
            self._bar.__enter__()
            self._task = self._bar.add_task("", total=None, of="?")

        def advance(done: int, total: int) -> None:
            now = time.monotonic()
            _PROGRESS_LOG.info("%s: %d/%d, %.1f s%s", self._label, done, total,
                               now - self._start, _time_left(now - self._start, done, total))
            if self._bar is not None:
                self._bar.update(self._task, completed=done, total=total, of=total)
                return
            if now - self._start < PROGRESS_AFTER_S:
                return
            tenths = int(10 * done / total) if total else 0
            if tenths > self._last[0] or now - self._last[1] >= 10 or done == total:
                if done == total and self._last[0] == 10:
                    return
                self._last = (tenths, now)
                share = f" ({done / total:.0%})" if total else ""
                self._console.print(f"{self._label}: {done:,}/{total:,}{share}, "
                                    f"{now - self._start:.0f} s"
                                    f"{_time_left(now - self._start, done, total)}",
                                    markup=False)

        return advance

    def __exit__(self, *exc):
        return self._bar.__exit__(*exc) if self._bar is not None else None


def _print_significant(console, result, title: str, alpha2: float | None = None) -> None:
    from rich.markup import escape
    from rich.table import Table

    from bayes_wake.io.tables import counted
    from bayes_wake.mwa.analysis import spillover_warning

    significant = result.significant()
    t_unit = result.cube_attrs.get("t_unit", "days")
    title = escape(title)
    alpha = result.settings.alpha
    if alpha2 is not None:
        between = int(((result.estimates["pvalue"] > alpha)
                       & (result.estimates["pvalue"] <= alpha2)).sum())
        note = (f"; {counted(between, 'more window', 'more windows')} with {alpha:g} < p <= "
                f"{alpha2:g} (R's alpha2)")
    else:
        note = ""
    spillover = spillover_warning(result)
    if spillover and not result.settings.spillover:
        console.print(f"[bold yellow]WARNING: {escape(spillover)}; --spillover separates "
                      "them.[/]")
    elif spillover:
        console.print("Direct effects (--spillover): the estimates hold apart the spillover "
                      "of neighbouring treatments (estimates.csv: spillover columns).")
    _print_pretrend(console, result)
    estimable, why_na = _estimable(result)
    if significant.empty:
        if estimable == 0:
            console.print(f"{title}: 0 of {counted(len(result.estimates), 'window')} "
                          f"estimable ({why_na}).")
        else:
            console.print(f"{title}: no window reaches p <= {alpha:g}{note} ({estimable:,} of "
                          f"{counted(len(result.estimates), 'window')} estimable"
                          f"{'; NA: ' + why_na if why_na else ''}).")
        return
    errors = result.surface.attrs.get("standard_errors", str(result.settings.vcov))
    table = Table(title=f"{title}: {len(significant):,} of "
                        f"{counted(len(result.estimates), 'window')} with p <= "
                        f"{alpha:g}{note}; standard errors: {escape(errors)}")
    level = f"{1 - alpha:.0%} CI"
    for name in (f"Time [{t_unit}]", "Space [km]", "Effect", "SE", level, "p", "adj. R2"):
        table.add_column(escape(name), justify="right")
    for row in significant.to_dict("records"):
        r2 = row.get("adj.r.squared", float("nan"))
        table.add_row(f"{row['t_window']:g}", f"{row['spat_window']:g}",
                      f"{row['estimate']:.3f}", f"{row['std_error']:.3f}",
                      f"{row['ci_lower']:.3f} to {row['ci_upper']:.3f}", f"{row['pvalue']:.3f}",
                      "" if r2 != r2 else f"{r2:.3f}")
    console.print(table)


def _print_pretrend(console, result) -> None:
    """One line on the pre-trend placebo (yellow, a warning, where many leads are clear)."""
    from rich.markup import escape

    from bayes_wake.mwa.analysis import pretrend_warning

    if result.pretrend is None:
        return
    text, warn = pretrend_warning(result.pretrend, result.settings.alpha)
    console.print(f"[bold yellow]WARNING: {escape(text)}.[/]" if warn else
                  escape(text[0].upper() + text[1:] + "."))


def _print_undefined_errors(console, result) -> None:
    """The windows whose estimate stands but whose standard error the chosen ``--vcov``
    cannot give (R's NaN, e.g. HC3 with a wake of leverage 1), with the reason."""
    from rich.markup import escape

    from bayes_wake.io.tables import counted

    table = result.estimates
    rows = table[table["estimate"].notna() & table["pvalue"].isna()]
    by_reason: dict[str, list[str]] = {}
    for row in rows.itertuples():
        why = result.surface["na_reason"].sel(window=row.t_window,
                                              radius=row.spat_window).item()
        by_reason.setdefault(why, []).append(f"t={row.t_window:g}, s={row.spat_window:g}")
    for why, cells in by_reason.items():
        console.print(escape(f"No p-value with --vcov {result.settings.vcov} in "
                             f"{counted(len(cells), 'window')} ({'; '.join(cells)}): {why}."),
                      style="yellow")


def _estimable(result) -> tuple[int, str]:
    """How many windows have a p-value, and why the others are NA: each reason of the
    result's ``na_reason`` with its count, most frequent first ("" when none is NA)."""
    from collections import Counter

    estimable = int(result.estimates["pvalue"].notna().sum())
    reasons = Counter(str(r) for r in result.surface["na_reason"].to_numpy().ravel() if r)
    return estimable, ", ".join(f"{reason} in {n:,}" for reason, n in reasons.most_common())


def _write_mwa_outputs(stage: Path, result, cube, provenance_record: dict) -> None:
    from bayes_wake.io.artefacts import write_json, write_mwa_tables
    from bayes_wake.plotting import save_figure
    from bayes_wake.wakes import save_cube

    write_mwa_tables(result, stage)
    save_cube(cube, stage / "cube.nc")
    fig, _ = result.plot(title="Matched wake analysis: treatment effect per window")
    save_figure(fig, stage / "effect_surface.png")
    write_json(provenance_record, stage / "provenance.json")


def mwa_options(command: Callable) -> Callable:
    """The options of R's matchedwake besides data and windows (shared by mwa and fit)."""
    options = [
        click.option("--weighted", is_flag=True, help="Weight the regression with CEM weights."),
        click.option("--tcm", is_flag=True,
                     help="Also match on earlier overlaps (SO_pre, MO_pre)."),
        click.option("--no-match", is_flag=True, help="Skip matching (R: match.default = FALSE)."),
        click.option("--delete-sutva", is_flag=True, help="Drop wakes with earlier overlaps."),
        click.option("--formula", default="lag", show_default=True,
                     type=click.Choice(get_args(Formula)),
                     help="lag: post ~ pre + treatment; diff: post - pre ~ treatment."),
        click.option("--estimation", default="lm", show_default=True,
                     type=click.Choice(get_args(Estimation))),
        click.option("--vcov", default="classical", show_default=True,
                     type=VCOV,
                     help="Standard errors: classical (R's lm; too small on clustered count "
                          "data), HC1, HC3, CR1:CLUSTERS, CR2:CLUSTERS or CR2-ivw:CLUSTERS "
                          "(cluster-robust by an event column; location = anchors at "
                          "identical coordinates; wake = each anchor alone; near=KM,DAYS = "
                          "anchors linked within KM km and DAYS days), conley:KM[:DAYS] or "
                          "conley-bm:KM[:DAYS] (spatial HAC). CR2 (clubSandwich's, "
                          "Satterthwaite df) and conley-bm are the Bell-McCaffrey "
                          "small-sample versions."),
        click.option("--alpha", "--alpha1", "alpha", default=0.05, show_default=True,
                     type=float, help="Significance level (R: alpha1)."),
        click.option("--spillover", is_flag=True,
                     help="Direct and spillover effects: add to each window's regression the "
                          "number of other treatments whose wake reaches the wake's pre- and "
                          "post-period, so the effect is one treatment's own and the "
                          "spillover columns give the effect per neighbouring treatment."),
        click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path)),
        overwrite_option,
    ]
    for option in reversed(options):
        command = option(command)
    return command


def alpha2_option(command: Callable) -> Callable:
    """R's ``alpha2``, the second (looser) significance level, for ``mwa`` and ``fit``."""
    return click.option(
        "--alpha2", type=float, default=None,
        help="R's second significance level (R's default 0.1): the summary also counts the "
             "windows with alpha < p <= alpha2 (R's plot() shades them with dotted "
             "lines).")(command)


def _check_alpha2(alpha: float, alpha2: float | None) -> None:
    if alpha2 is not None and not alpha < alpha2 < 1:
        raise SettingsError(f"--alpha2 must lie between --alpha ({alpha:g}) and 1, "
                            f"got {alpha2:g}")


allow_unconverged_option = click.option(
    "--allow-unconverged", is_flag=True,
    help="Exit 0 when a fit fails the convergence rule (its outputs stay marked NOT "
         f"CONVERGED); without it such a run exits with status {EXIT_NOT_CONVERGED}.")


#: ``--grid-region``: a region of the grid (``t>=20, s<=9``), read by
#: :func:`bayes_wake.core.windows.parse_grid_region` against the command's grid.
grid_region_option = click.option(
    "--grid-region", default="", metavar="CONDITIONS",
    help="Region of the grid, e.g. 't>=20, s<=9' (t in --t-unit, s in km): its average "
         "effect (fit, sauter: a second row of grid_summary.csv, and the console or the "
         "report's summary) and P(effect > 0) (sensitivity); default the whole grid.")


#: ``--lead-surface``: the model fitted to the pre-trend placebo too (``fit``).
lead_surface_option = click.option(
    "--lead-surface", is_flag=True,
    help="Also fit the model to the pre-trend placebo (the table's regression one period "
         "earlier, lead vs pre; count-scale models) and write lead_surface.csv and "
         "pretrend_surface.png (the effect and the lead on one colour scale).")


def model_options(command: Callable) -> Callable:
    """The model and sampler options shared by ``fit`` and ``sauter``."""
    options = [
        click.option("--spec", "spec_path", default=DEFAULT_SPEC, show_default=True,
                     help="Model spec: a YAML file or the name of a spec in models/."),
        click.option("--sampler", type=click.Choice(get_args(Sampler)),
                     default=None, help="Sampler backend (default: the spec's)."),
        click.option("--draws", type=click.IntRange(10), default=None, help="Draws per chain."),
        click.option("--tune", type=click.IntRange(10), default=None,
                     help="Tuning steps per chain."),
        click.option("--chains", type=click.IntRange(1), default=None),
        allow_unconverged_option,
    ]
    for option in reversed(options):
        command = option(command)
    return ci_option(command)


#: The level of every posterior interval a command reports (``--ci``), unless given.
DEFAULT_CI = 0.90


def _remember_ci(ctx: click.Context, _param, value: float) -> None:
    ctx.meta["ci"] = value


def chosen_ci() -> float:
    """The level ``--ci`` chose (:func:`ci_option`), for settings that carry it to workers."""
    return click.get_current_context().meta.get("ci", DEFAULT_CI)


def ci_option(command: Callable) -> Callable:
    """``--ci LEVEL``: the one level of the posterior intervals of a command's tables, console
    and figures (equal-tailed; default :data:`DEFAULT_CI`). The command runs inside ArviZ's
    ``rc_context`` with that level, which every summary reads (and records in its attrs),
    instead of ArviZ's own default of 89%."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        import arviz as az

        level = chosen_ci()
        with az.rc_context({"stats.ci_prob": level, "stats.ci_kind": "eti"}):
            return command(*args, **kwargs)

    return click.option(
        "--ci", type=click.FloatRange(0, 1, min_open=True, max_open=True),
        default=DEFAULT_CI, show_default=True, expose_value=False, callback=_remember_ci,
        metavar="LEVEL",
        help="Level of the posterior intervals in every table, console line and figure "
             "(equal-tailed). OLS intervals stay 1 - --alpha, so they exclude 0 exactly "
             "when p <= alpha.")(wrapper)


def _convergence_status(console, converged: Sequence[bool], allow_unconverged: bool) -> int:
    """The exit status of a run whose Bayesian fits passed the convergence rule or not
    (``converged``, one flag per fit): :data:`EXIT_NOT_CONVERGED` when one failed (said on
    the console), unless ``allow_unconverged``."""
    from bayes_wake.io.tables import counted

    failed = list(converged).count(False)
    if not failed:
        return 0
    what = (f"{failed} of {counted(len(converged), 'Bayesian fit')}" if len(converged) > 1
            else "the Bayesian fit")
    if allow_unconverged:
        console.print(f"[bold red]{what} did not converge; exit status 0 because of "
                      "--allow-unconverged (the outputs are marked NOT CONVERGED).[/]")
        return 0
    console.print(f"[bold red]{what} did not converge: exit status {EXIT_NOT_CONVERGED} (the "
                  "outputs are written and marked NOT CONVERGED; --allow-unconverged exits "
                  "0).[/]")
    return EXIT_NOT_CONVERGED


def _write_fit(stage: Path, fit, result, console, region=None) -> None:
    """Write a fit beside the OLS table ``result`` (its files and the comparison figure) into
    the staging folder, and report convergence loudly; ``region`` (a grid region of
    ``--grid-region``) adds its average effect to ``grid_summary.csv`` and the console."""
    from rich.markup import escape

    from bayes_wake.bayes.matched_fit import (
        count_model_summary,
        shrinkage_warning,
        write_beside,
    )

    diagnostics = fit.diagnostics
    if not diagnostics.converged:
        console.print(f"[bold red]WARNING: the posterior did not converge "
                      f"({'; '.join(diagnostics.problems())}). Do not use these numbers; "
                      "sample longer (--draws, --tune) or change the model.[/]")
    pulled = shrinkage_warning(fit)
    if pulled:
        console.print(f"[bold yellow]WARNING: {escape(pulled)}[/]")
    write_beside(fit, result, stage, region=region)
    console.print(_grid_line(fit), markup=False)
    if region is not None:
        console.print(_grid_line(fit, region), markup=False)
    summary = count_model_summary(fit)
    if summary:
        console.print(summary, markup=False)
    verdict = fit.surface.attrs.get("ppc_verdict")
    if verdict:
        console.print(_predictive_check_line(verdict, "ppc.csv, ppc.png"))


def _predictive_check_line(verdict: str, files: str) -> str:
    """A posterior predictive check's verdict for the console (rich markup): yellow where
    the model misfits the counts, else green; ``files`` named after it."""
    from rich.markup import escape

    from bayes_wake.bayes.ppc import misfits

    colour = "bold yellow" if misfits(verdict) else "green"
    return f"[{colour}]Posterior predictive check: {escape(verdict)} ({escape(files)})[/]"


def _fit(cube, result, spec, console, *, progressbar: bool = False, period: str = "post"):
    """Fit ``spec`` with the settings of the matched wake analysis ``result`` (to the effect,
    or to the pre-trend placebo with ``period="lead"``) and say the sampler's diagnostics in
    one line."""
    from bayes_wake.bayes.matched_fit import fit_matched

    fit = fit_matched(cube, spec, result.settings, progressbar=progressbar,
                      log=lambda line: console.print(line, markup=False), period=period)
    what = "" if period == "post" else ", pre-trend placebo"
    console.print(f"sampler {spec.sampler.backend} ({spec.name}{what}): "
                  f"{fit.diagnostics.summary()}", markup=False)
    return fit


def _grid_line(fit, region=None) -> str:
    """The grid-level summary (grid_summary.csv) in one sentence: of the whole grid, or of
    ``region``."""
    from bayes_wake.bayes.matched_fit import grid_average_text

    text = grid_average_text(fit, region)
    if not text:
        where = "the grid" if region is None else region.describe()
        return f"Average over {where}: no cell with an estimate."
    return text[0].upper() + text[1:] + " (grid_summary.csv)"


def _cell(value, digits: int = 3) -> str:
    """A number in a console table: ``-`` when missing, else ``digits`` decimals (0 for a
    count), thousands separated."""
    return "-" if value is None or value != value else f"{value:,.{digits}f}"


#: Why the posterior is NA in a cell the OLS table estimates: the model pools only cells
#: whose own regression has noise to pool (see bayes_wake.bayes.did_surface).
_MODEL_ONLY_NA = "(model: too few wakes or a perfect fit)"


def _print_surface(console, fit, ols) -> None:
    """The posterior surface per cell; an NA cell says why (the OLS table's reason, from the
    matched wake analysis ``ols`` the fit reanalyses)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="Posterior effect surface (extra events per treated wake)")
    # the fit's own interval, at the level it was summarised (--ci)
    kind = "HDI" if fit.surface.attrs.get("ci_kind") == "hdi" else "interval"
    interval = f"{100 * fit.surface.attrs['ci_prob']:g}% {kind}"
    for name in ("t", "s [km]", "mean", interval, "P(>0)", "rate ratio (median)"):
        table.add_column(escape(name), justify="right")
    reasons = ols.surface["na_reason"]
    for row in fit.table().to_dict("records"):
        if row["mean"] != row["mean"]:
            why = reasons.sel(window=row["t_window"], radius=row["spat_window"]).item()
            table.add_row(f"{row['t_window']:g}", f"{row['spat_window']:g}", "NA",
                          f"(OLS: {why})" if why else _MODEL_ONLY_NA, "", "")
            continue
        table.add_row(f"{row['t_window']:g}", f"{row['spat_window']:g}", f"{row['mean']:.3f}",
                      escape(f"[{row['ci_lower']:.3f}, {row['ci_upper']:.3f}]"),
                      f"{row['prob_positive']:.2f}", _cell(row["rate_ratio_median"], 2))
    console.print(table)
