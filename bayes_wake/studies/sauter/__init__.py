"""Sauter (2022), MINUSMA's Quick Impact Projects and violence in Mali.

``settings`` (:class:`~bayes_wake.studies.sauter.settings.SauterSettings`, the study's options,
checked once), ``workflow`` (:func:`~bayes_wake.studies.sauter.workflow.reanalyze_sauter`: read,
filter, place or read the projects, measure the covariates, analyse, fit, write; and the
recovery battery's studies on the real ACLED outcomes), ``report`` (the HTML report, one
function per section) and the study's readers: ``acled`` (ACLED exports and the paper's
outcomes), ``projects`` (QIP and aid-project files) and ``regions`` (Mali's admin-1 regions,
Ménaka included, and the study area). The simulated placement of projects a user does not have
is :mod:`bayes_wake.simulate.placements`.
"""
