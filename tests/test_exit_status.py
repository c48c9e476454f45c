"""Non-convergence is an exit status (issue 9, item 5), without MCMC: the converged column of
the surface table, a returned status that keeps the written outputs, and the documented codes.
The real fits that do not converge are in test_bayes.py (slow)."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from bayes_wake.bayes.fit import SURFACE_COLUMNS, effect_surface_table
from bayes_wake.cli import main
from bayes_wake.cli.common import (
    EXIT_NOT_CONVERGED,
    _console,
    _convergence_status,
    _fail_cleanly,
    _guard_output,
    overwrite_option,
)


def _posterior(shift: float) -> xr.Dataset:
    """4 chains x 500 draws over a 2 x 3 grid; ``shift`` moves each chain's mean apart."""
    rng = np.random.default_rng(0)
    draws = rng.normal(size=(4, 500, 2, 3)) + shift * np.arange(4)[:, None, None, None]
    dims = ("chain", "draw", "window", "radius")
    coords = {"window": [10, 20], "radius": [3.0, 6.0, 9.0]}
    return xr.Dataset({"additive_effect": (dims, draws),
                       "rate_ratio": (dims, np.exp(draws / 10))}, coords=coords)


def test_the_surface_table_says_whether_the_fit_converged_in_every_row():
    mixed, stuck = _posterior(0.0), _posterior(3.0)
    assert "converged" in SURFACE_COLUMNS
    for posterior, flag in ((mixed, True), (mixed, False), (stuck, False)):
        table = effect_surface_table(posterior, converged=flag)
        assert (table["converged"] == int(flag)).all()
        assert table["converged"].dims == ("window", "radius")
    # without the fit's diagnostics the table's own R-hat and ESS decide
    assert (effect_surface_table(mixed)["converged"] == 1).all()
    assert (effect_surface_table(stuck)["converged"] == 0).all()


def test_the_convergence_status_is_3_unless_allowed():
    console = _console()
    assert _convergence_status(console, [True, True], False) == 0
    assert _convergence_status(console, [True, False], False) == EXIT_NOT_CONVERGED
    assert _convergence_status(console, [False], True) == 0
    assert _convergence_status(console, [], False) == 0


@pytest.mark.parametrize("status", [0, EXIT_NOT_CONVERGED])
def test_a_returned_status_exits_after_the_outputs_are_in_place(tmp_path, status):
    from bayes_wake.io.artefacts import staged_directory

    @click.command()
    @click.option("--out", type=click.Path(path_type=Path))
    @overwrite_option
    @_fail_cleanly
    @_guard_output
    def command(out):
        with staged_directory(out) as stage:
            (stage / "table.csv").write_text("a\n1\n")
        return status

    out = tmp_path / "out"
    assert CliRunner().invoke(command, ["--out", str(out)]).exit_code == status
    # --overwrite sets the old folder aside and puts it back on failure: a status is no
    # failure, so the new outputs stay
    (out / "table.csv").write_text("old\n")
    again = CliRunner().invoke(command, ["--out", str(out), "--overwrite"])
    assert again.exit_code == status
    assert (out / "table.csv").read_text() == "a\n1\n"


@pytest.mark.parametrize("command", ["fit", "sauter"])
def test_the_exit_codes_are_in_the_help(command):
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "--allow-unconverged" in text
    assert "Exit status: 0 done; 2 bad input or settings" in text
    assert "3 a Bayesian fit did not converge" in text
