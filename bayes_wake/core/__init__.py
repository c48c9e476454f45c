"""The numerical core: NumPy and SciPy only, no pandas I/O, no PyMC.

``geo`` (the distance constants of both conventions), ``regression`` (weighted least squares
as R's ``lm`` reports it, with the robust and spatial standard errors), ``matching``
(coarsened exact matching as R's ``cem``), ``rcompat`` (R's rounding, ``cut`` and ``hist``
breaks, where exactness needs them) and ``windows`` (the window grids, and the paper's).
Imports: :mod:`bayes_wake.errors` only.
"""
