"""Sauter (2022), MINUSMA's Quick Impact Projects and violence in Mali.

``workflow`` (:func:`~bayes_wake.studies.sauter.workflow.reanalyze_sauter`: read, filter,
place or read the projects, measure the covariates, fit, report; and the recovery battery's
studies on the real ACLED outcomes).
"""
