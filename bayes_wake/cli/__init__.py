"""The command line, ``bayes-wake``: one module per command over the stages' public names.

``commands`` (the group, ``mwa``, ``fit``, ``demo``), ``sauter``, ``sensitivity``,
``recovery``, and ``common`` (the options, loaders and printers the commands share; its
private helpers are for this subpackage only). Imports: every stage.
"""

import signal
import sys

from bayes_wake.cli.commands import main

__all__ = ["main", "run"]

#: Commands that hold no dask array (see :func:`run`).
_WITHOUT_DASK = ("mwa",)


def run() -> None:
    """The console script ``bayes-wake`` (and ``python -m bayes_wake.cli``): :func:`main` in a
    process of its own.

    xarray imports ``dask.array`` when it builds a Dataset and ``dask.distributed`` when it
    writes netCDF, whenever dask is installed (it is, for the scale-out of ``sensitivity``),
    only to ask whether an array is a dask array. For a command that holds none the answer is
    always no, so its process marks dask absent and xarray skips the question: 0.5 s of the
    2.4 s of ``bayes-wake mwa`` at the paper's size. Only here, in a process the command owns;
    :func:`main` called in-process (tests, notebooks) leaves the interpreter's modules alone.
    """
    if sys.argv[1:2] and sys.argv[1] in _WITHOUT_DASK:
        for name in ("dask", "distributed"):
            sys.modules.setdefault(name, None)
    signal.signal(signal.SIGTERM, _interrupt)
    main(prog_name="bayes-wake")


def _interrupt(signum, _frame) -> None:
    """SIGTERM (``kill PID``, a scheduler's time limit) as Ctrl-C: the run unwinds, so a
    folder that ``--overwrite`` set aside is put back and staging folders are removed
    (Python's default would end the process where it stands)."""
    raise KeyboardInterrupt(f"signal {signum}")
