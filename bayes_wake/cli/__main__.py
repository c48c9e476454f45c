"""``python -m bayes_wake.cli``: the ``bayes-wake`` command."""

from bayes_wake.cli import run

run()
