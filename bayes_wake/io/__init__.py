"""Everything that reads or writes files: the one table-reading stack and the artefacts.

``tables`` (text tables: CSV with BOM or Windows-1252, Parquet, point files), ``events`` (the
event table of the data contract), ``covariates`` (distances to layers), ``artefacts`` (atomic
writes, staged folders, provenance) and ``html`` (the self-contained report). The Sauter
study's readers (ACLED, project files, admin regions) live in :mod:`bayes_wake.studies.sauter`.
Imports: :mod:`bayes_wake.errors` and :mod:`bayes_wake.core`.
"""
