"""Typed errors of bayes_wake.

Every error a user can cause with bad input or bad settings is one of these, so the command
line can print a one-line reason and exit non-zero, and Python users can catch them by kind.
"""

from __future__ import annotations

from collections.abc import Sequence


class BayesWakeError(Exception):
    """Base class of all errors raised on purpose by bayes_wake."""


class SettingsError(BayesWakeError, ValueError):
    """Settings that cannot be used: a bad window grid, an unknown option, an empty grid."""


class EventDataError(BayesWakeError, ValueError):
    """An event file whose content is not valid.

    Parameters
    ----------
    problem
        What is wrong, in plain words.
    path
        The file the data came from (``None`` for in-memory data).
    rows
        1-based data-row numbers (the header is not counted) where the problem was found.
    column
        The column at fault, as named in the file.
    """

    def __init__(
        self,
        problem: str,
        *,
        path: str | None = None,
        rows: Sequence[int] | None = None,
        column: str | None = None,
    ) -> None:
        self.problem = problem
        self.path = path
        self.rows = list(rows) if rows is not None else []
        self.column = column
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.path:
            where.append(str(self.path))
        if self.rows:
            shown = ", ".join(str(r) for r in self.rows[:10])
            more = f" and {len(self.rows) - 10} more" if len(self.rows) > 10 else ""
            label = "row" if len(self.rows) == 1 else "rows"
            where.append(f"{label} {shown}{more}")
        if self.column:
            where.append(f"column '{self.column}'")
        prefix = ", ".join(where)
        return f"{prefix}: {self.problem}" if prefix else self.problem


class OutputFolderError(BayesWakeError):
    """An output folder that cannot or must not be written (``out``)."""


class ModelSpecError(BayesWakeError, ValueError):
    """A model specification file that does not follow the schema."""


class TaskFailed(BayesWakeError):
    """A task of a scaled-out run raised; the finished tasks are stored and a rerun resumes
    from them."""


class DuplicateRowsWarning(UserWarning):
    """An event file holds exact duplicate rows (kept unless ``drop_duplicates=True``)."""


class NoDependentEventsWarning(UserWarning):
    """No row of an event file matches the dependent (outcome) selector: every wake counts
    zero. ``present`` holds the values the selector's column does hold (most frequent
    first) and ``guess`` the closest of them, if any, so a command line can name them."""

    def __init__(self, message: str, *, present: tuple[str, ...] = (),
                 guess: str | None = None) -> None:
        super().__init__(message)
        self.present = tuple(present)
        self.guess = guess


class ConvergenceWarning(UserWarning):
    """MCMC diagnostics (R-hat, ESS, divergences) say the posterior is not trustworthy."""
