"""How far to trust the per-window claims: every check beside the estimates.

``result`` (``CheckResult``, the one result type of every sensitivity check: sentence,
table, figures), ``standard_errors`` (robust standard errors and multiplicity over the grid),
``randomisation`` (label permutations and date-shift placebos), ``bayesian`` (posterior,
prior and likelihood checks and refits), ``calibration`` (placebo-placement size of every
standard-error choice), ``recovery`` (planted-effect batteries), ``sensitivity`` (one run, one
report) and ``tasks`` (keyed, resumable tasks on Dask). Imports: every stage below
(errors, core, simulate, io, wakes, plotting, mwa, bayes).
"""
