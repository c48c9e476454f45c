"""The matched wake analysis as R's ``mwa::matchedwake`` computes it.

``analysis`` (the one per-cell matcher :func:`~bayes_wake.mwa.analysis.matched_cells`, the
OLS tables, the standard-error tables) and ``multiplicity`` (Holm and Benjamini-Hochberg over
the window grid). Imports: errors, core, io, wakes, plotting.
"""
