"""The Bayesian reanalysis: model specs, the models and the fit.

``spec`` (the YAML model specs of ``models/``), ``did_surface`` (the count-scale DiD surface:
per-cell OLS estimates with their joint robust covariance), ``model`` (the paired count
models) and ``fit`` (:func:`~bayes_wake.bayes.fit.fit_surface`, the posterior surface, its
diagnostics and files). PyMC is imported only when a model is built. Imports: errors, core,
io, wakes, plotting, mwa.
"""
