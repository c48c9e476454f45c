"""The options several stages share: their ``Literal`` types and one validator.

Each choice is written once here; :func:`check_choice` turns a bad value into a
:class:`~bayes_wake.errors.SettingsError` that lists the valid ones, in the same words
wherever the option is given (Python API, command line, YAML).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from bayes_wake.errors import SettingsError

__all__ = ["Convention", "Formula", "Estimation", "TimeUnit", "Sampler", "PAPER_WINDOWS",
           "PAPER_RADII",
           "MAX_SEED", "DEFAULT_SPEC", "check_choice"]

#: Wake counting: R's ``mwa`` (111.111 km per degree, edge wakes dropped) or ``exact``.
Convention = Literal["mwa", "exact"]
#: The OLS formula: ``lag`` (post ~ pre + treatment, the paper's) or ``diff``
#: (post - pre ~ treatment).
Formula = Literal["lag", "diff"]
#: R's ``estimation``: ``lm`` (the regression) or ``att`` (cem's att, same estimate).
Estimation = Literal["lm", "att"]
#: The unit of the temporal windows (R's ``t_unit``; :mod:`bayes_wake.core.windows` also
#: accepts R's spellings ``mins``, ``secs``, ...).
TimeUnit = Literal["days", "hours", "minutes", "seconds"]
#: The MCMC sampler backend of a model spec (``--sampler``).
Sampler = Literal["nutpie", "pymc", "numpyro"]

#: The default Bayesian model: the shipped spec ``models/smooth_did.yaml`` (the count-scale
#: surface with a smooth prior). ``adaptive_did`` follows sharp effects better but its sampler
#: still diverges on a third of the battery's fits (docs/bayesian_model.md).
DEFAULT_SPEC = "smooth_did"

#: Sauter's (2022) grid as (min, max, step): t = 10..60 days by 10, s = 3..15 km by 3, the
#: default of every command that follows the paper.
PAPER_WINDOWS: tuple[int, int, int] = (10, 60, 10)
PAPER_RADII: tuple[float, float, float] = (3.0, 15.0, 3.0)


#: The largest random seed: every sampler and generator takes an unsigned 32-bit seed
#: (nutpie and PyMC refuse, with a traceback, a negative one or one past 64 bits).
MAX_SEED = 2**32 - 1


def check_choice(name: str, value: Any, kind: Any) -> None:
    """Raise :class:`SettingsError` unless ``value`` is one of the ``Literal`` ``kind``'s
    values: ``unknown convention 'x'; use 'mwa' or 'exact'``."""
    choices = get_args(kind)
    if value in choices:
        return
    quoted = [repr(c) for c in choices]
    listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    raise SettingsError(f"unknown {name} {value!r}; use {listed}")
