"""bayes_wake: matched wake analysis of point events (an exact port of R's ``mwa``) and its
Bayesian reanalysis.

The pipeline, its stages as subpackages (see ``docs/ARCHITECTURE.md``)::

    read_events -> count_wakes -> matched_wake_analysis -> fit_surface -> plots and reports

The names below are imported lazily, so ``import bayes_wake`` stays fast and PyMC is loaded
only when a model is built.
"""

from __future__ import annotations

import sys

if sys.version_info < (3, 12):  # before anything that needs 3.12, so this is what users see
    raise ImportError(f"bayes_wake needs Python >= 3.12 (this is {sys.version_info[0]}."
                      f"{sys.version_info[1]})")

import importlib  # noqa: E402
from importlib.metadata import PackageNotFoundError, version  # noqa: E402

try:
    __version__ = version("bayes_wake")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "unknown"

_PUBLIC = {
    "read_events": "bayes_wake.io.events",
    "simulate_study": "bayes_wake.simulate",
    "expand_windows": "bayes_wake.core.windows",
    "count_wakes": "bayes_wake.wakes",
    "save_cube": "bayes_wake.wakes",
    "load_cube": "bayes_wake.wakes",
    "MWASettings": "bayes_wake.mwa.analysis",
    "matched_wake_analysis": "bayes_wake.mwa.analysis",
    "load_spec": "bayes_wake.bayes.spec",
    "fit_surface": "bayes_wake.bayes.fit",
    "load_posterior": "bayes_wake.bayes.fit",
    "plot_effect_surface": "bayes_wake.plotting",
    "plot_surfaces_side_by_side": "bayes_wake.plotting",
    "SurfaceStyle": "bayes_wake.plotting",
    "run_sensitivity": "bayes_wake.checks.sensitivity",
    "Scenario": "bayes_wake.simulate.effects",
    "RecoverySettings": "bayes_wake.checks.recovery",
    "Battery": "bayes_wake.checks.recovery",
    "load_battery": "bayes_wake.checks.recovery",
    "run_recovery": "bayes_wake.checks.recovery",
    "score_recovery": "bayes_wake.checks.recovery",
    "write_recovery": "bayes_wake.checks.recovery",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'bayes_wake' has no attribute {name!r}")
