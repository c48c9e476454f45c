"""The Bayesian reanalysis: model specs, the models and the fit.

``spec`` (the YAML model specs of ``models/``), ``did_surface`` (the count-scale DiD surface:
per-cell OLS estimates with their joint robust covariance), ``likelihoods`` (one object per
likelihood form: log-likelihood, predictive outcome, treated means), ``model`` (the paired
count models), ``fit`` (:func:`~bayes_wake.bayes.fit.fit_surface`, the posterior surface, its
diagnostics and files) and ``compare`` (the fit beside the OLS table it reanalyses, with the
side-by-side figure, for every command that shows both). PyMC is imported only when a model
is built. Imports: errors, options, core, io, wakes, plotting, mwa.
"""
