"""The command line, ``bayes-wake``: one module per command over the stages' public names.

``commands`` (the group, ``mwa``, ``fit``, ``demo``), ``sauter``, ``sensitivity``,
``recovery``, and ``common`` (the options, loaders and printers the commands share; its
private helpers are for this subpackage only). Imports: every stage.
"""

from bayes_wake.cli.commands import main

__all__ = ["main"]
