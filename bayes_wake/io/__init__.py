"""Everything that reads or writes files: the one table-reading stack and the artefacts.

``tables`` (text tables: CSV with BOM or Windows-1252, Parquet, point files), ``events`` (the
event table of the data contract), ``acled``, ``projects`` (QIP and aid-project files),
``study_area`` (admin boundaries and the regions filter), ``covariates`` (distances to layers),
``artefacts`` (atomic writes, staged folders, provenance) and ``html`` (the self-contained
report). Imports: :mod:`bayes_wake.errors`, :mod:`bayes_wake.core`, :mod:`bayes_wake.simulate`
(simulated project placements).
"""
