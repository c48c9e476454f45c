"""Simulated Mali-like studies with a planted, exactly known treatment effect (stage 2).

:func:`simulate_study` (``draw``) draws treatments, controls and dependent events, with the
offspring of each treatment hidden among the baseline, into a :class:`SimulatedStudy`
(``study``) whose ``true_effect`` gives the planted truth on any wake grid; the effect and its
kernels are :class:`PlantedEffect` (``effects``, beside a recovery battery's :class:`Scenario`
and :func:`plant`, which plants one into a real event table; both spawn with
:func:`spawn_offspring`), the geography and the calibrated settings of
the simulated Mali live in ``mali`` and the gazetteer, the placing of points and the
covariates in ``places``; ``placements`` places QIPs and aid projects the same way for users
without project files (:func:`simulate_project_placement`, filling a study area). Imports:
:mod:`bayes_wake.errors`, :mod:`bayes_wake.options` and :mod:`bayes_wake.core` only.
"""

from __future__ import annotations

from bayes_wake.simulate.draw import simulate_study
from bayes_wake.simulate.effects import (
    NULL_EFFECT,
    DelayKernel,
    DistanceKernel,
    PlantedEffect,
    Scenario,
    plant,
    spawn_offspring,
)
from bayes_wake.simulate.mali import BASES, MALI_BOUNDS, NIGER_RIVER
from bayes_wake.simulate.placements import DESIGNS, simulate_project_placement
from bayes_wake.simulate.places import COVARIATES
from bayes_wake.simulate.study import SimulatedStudy

__all__ = [
    "BASES",
    "COVARIATES",
    "DESIGNS",
    "MALI_BOUNDS",
    "NIGER_RIVER",
    "NULL_EFFECT",
    "DelayKernel",
    "DistanceKernel",
    "PlantedEffect",
    "Scenario",
    "SimulatedStudy",
    "plant",
    "simulate_project_placement",
    "simulate_study",
    "spawn_offspring",
]
