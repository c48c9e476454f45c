"""Memory estimated before any work, and the refusal of a run beyond ``--memory-budget``.

A grid, a number of permutations or of workers that cannot fit in memory used to run until
the machine ran out of it (``mwa --t-window 2 2000 2 --spat-window 1 1000 1`` took 6 GB in
30 s and went on). Each command that counts wakes adds up what its settings need, by the
per-unit costs below, and stops with one line naming the numbers when the sum exceeds the
budget: ``--memory-budget SIZE``, by default half of this machine's memory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence

import click

from bayes_wake.errors import SettingsError

__all__ = ["memory_budget_option", "parse_size", "check_memory", "counting_need",
           "permutation_need", "worker_need", "DEFAULT_SHARE"]

#: Peak memory per wake anchor and grid cell of counting, matching and the tables of ``mwa``:
#: 200-226 bytes measured (R's example, 75 anchors; 10,000 and 20,000 cells took 150 and
#: 295 MB over the imports, 5,000 cells 85 MB with the cube's netCDF built in memory;
#: ``/usr/bin/time -f %M``), 250 with a margin.
BYTES_PER_ANCHOR_CELL = 250
#: Per label permutation of ``sensitivity``: its statistics per cell and its share of the task
#: store (40,000 permutations of 25 cells took 11 MB more than 1,000), with a margin.
BYTES_PER_PERMUTATION = 512
BYTES_PER_PERMUTATION_CELL = 16
#: A Dask worker process with the package's imports, before its first task.
BYTES_PER_WORKER = 300 * 2**20
#: The default budget's share of this machine's memory.
DEFAULT_SHARE = 0.5
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_size(text: str) -> int:
    """``4G``, ``500M``, ``1.5T``, ``800MB`` or a number of bytes, as bytes (K, M, G, T are
    powers of 1,024).

    Raises
    ------
    SettingsError
        The text is not a positive size.
    """
    found = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(?:I?B)?\s*", str(text), re.I)
    if not found or float(found.group(1)) <= 0:
        raise SettingsError(f"--memory-budget {text!r}: give a size such as 4G, 500M or 1.5T")
    return int(float(found.group(1)) * _UNITS[found.group(2).upper()])


def _remember(ctx: click.Context, _param, value: str | None) -> None:
    try:
        ctx.meta["memory_budget"] = None if value is None else parse_size(value)
    except SettingsError as exc:
        raise click.BadParameter(str(exc).partition(": ")[2]) from None


def memory_budget_option(command: Callable) -> Callable:
    """``--memory-budget SIZE``, kept in the click context for :func:`check_memory`."""
    return click.option(
        "--memory-budget", metavar="SIZE", default=None, expose_value=False,
        callback=_remember, is_eager=True,
        help="Refuse, before any work, a run estimated to need more memory than this "
             f"(e.g. 8G; default: {DEFAULT_SHARE:.0%} of this machine's memory).")(command)


def _machine_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not on this system
        return None


def _budget() -> tuple[int | None, str]:
    """The budget in bytes and where it comes from (None: no limit known)."""
    ctx = click.get_current_context(silent=True)
    given = ctx.meta.get("memory_budget") if ctx is not None else None
    if given is not None:
        return given, "--memory-budget"
    total = _machine_memory()
    if total is None:
        return None, ""
    return int(DEFAULT_SHARE * total), (f"the default --memory-budget, {DEFAULT_SHARE:.0%} of "
                                        f"this machine's {_size(total)}")


def _size(n: float) -> str:
    for unit in ("TB", "GB", "MB", "KB"):
        scale = _UNITS[unit[0]]
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n:,.0f} bytes"


def counting_need(anchors: int, windows: int, radii: int) -> tuple[str, int]:
    """What counting, matching and the tables take for ``anchors`` over the grid."""
    cells = windows * radii
    return (f"the wake grid: {anchors:,} anchors x {cells:,} cells ({windows:,} windows x "
            f"{radii:,} radii)", anchors * cells * BYTES_PER_ANCHOR_CELL)


def permutation_need(permutations: int, cells: int) -> tuple[str, int]:
    """What ``permutations`` label permutations of ``cells`` cells keep."""
    return (f"{permutations:,} permutations",
            permutations * (BYTES_PER_PERMUTATION + cells * BYTES_PER_PERMUTATION_CELL))


def worker_need(workers: int) -> tuple[str, int]:
    """What ``workers`` Dask worker processes take before their tasks."""
    return f"{workers:,} Dask workers", workers * BYTES_PER_WORKER


def check_memory(needs: Sequence[tuple[str, int]]) -> None:
    """Refuse the run when what ``needs`` add up to exceeds the memory budget.

    Raises
    ------
    SettingsError
        Naming the estimate, each part and the budget.
    """
    limit, source = _budget()
    total = sum(n for _, n in needs)
    if limit is None or total <= limit:
        return
    parts = "; ".join(f"{what}: {_size(n)}" for what, n in needs if n)
    raise SettingsError(f"this run would need about {_size(total)} of memory ({parts}), more "
                        f"than {_size(limit)} ({source}); use a smaller grid or fewer "
                        "permutations or workers, or raise --memory-budget")
