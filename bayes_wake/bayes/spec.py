"""Declarative model specifications: a strict schema for the YAML files in ``models/``.

A spec says what the model is (likelihood, pooling, priors, how matching enters) and how to
sample it; the model code lives in :mod:`bayes_wake.bayes.model`. Unknown keys are rejected with the
nearest valid key suggested, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bayes_wake.core.regression import VCov, parse_vcov
from bayes_wake.errors import ModelSpecError, SettingsError
from bayes_wake.options import MAX_SEED, Sampler

__all__ = ["ModelSpec", "load_spec", "default_spec_path", "MODELS_DIR", "list_specs",
           "surface_vcov", "surface_errors", "SURFACE_VCOV_KINDS", "SURFACE_KIND_OF"]


def _models_dir() -> Path:
    """The shipped specs: ``models/`` beside the package in a checkout (the one whose code
    runs, even if another checkout is installed), else the ``bayes_wake.models`` package (the
    repository's ``models/`` folder, mapped into the wheel by ``pyproject.toml``)."""
    import importlib.util

    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "models").is_dir():
        # a checkout: its own specs, even when another checkout is the installed one
        return checkout / "models"
    found = importlib.util.find_spec("bayes_wake.models")
    if found is not None and found.submodule_search_locations:
        return Path(next(iter(found.submodule_search_locations)))
    return Path(__file__).resolve().parents[2] / "models"


#: The folder of the shipped specs (:func:`_models_dir`).
MODELS_DIR = _models_dir()


#: Poolings of the count-scale surface (:mod:`bayes_wake.bayes.did_surface`): ``adaptive``
#: (a locally adaptive Markov random field: flat where the data are, free to jump at an onset
#: or a cut-off), ``smooth`` (the Gaussian-process prior), ``none`` (each cell its own
#: estimate: the OLS table's estimates with their joint robust covariance, the reference
#: every pooled surface is judged against).
COUNT_DID_POOLING = ("adaptive", "smooth", "none")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldPrior(_Strict):
    """Prior of a grid field (intercepts, slopes or effects over window x radius cells).

    Attributes
    ----------
    pooling
        ``smooth``: a BYM2-type field on the grid graph (neighbouring windows and radii share
        strength; the mix of smooth and rough parts and the overall scale are learned);
        ``hierarchical``: exchangeable cells around a common mean; ``none``: independent
        cells with a fixed prior; ``adaptive`` (the count-scale surface's effect only): a
        locally adaptive Markov random field over the increments.
    mean_sd
        Sd of the normal prior on the grid-wide mean (log scale for count likelihoods).
    mean_mu
        Mean of that prior.
    scale_sd
        Sd of the half-normal prior on the field's scale (``smooth`` and ``hierarchical``);
        for ``none`` the fixed prior sd of each cell.
    """

    pooling: Literal["adaptive", "smooth", "hierarchical", "none"] = "hierarchical"
    mean_mu: float = 0.0
    mean_sd: float = Field(1.0, gt=0)
    scale_sd: float = Field(0.5, gt=0)


class SamplerSpec(_Strict):
    """How to sample: backend, draws, tuning, chains, target acceptance, seed."""

    backend: Sampler = "nutpie"
    draws: int = Field(500, ge=10)
    tune: int = Field(500, ge=10)
    chains: int = Field(4, ge=1)
    target_accept: float = Field(0.9, gt=0.5, lt=1.0)
    seed: int = Field(20220101, ge=0, le=MAX_SEED)


class ModelSpec(_Strict):
    """A Bayesian wake model.

    Attributes
    ----------
    name, description
        Identify the spec in outputs.
    estimand
        ``count_did``: the OLS table's estimand, a difference in differences of counts
        (extra post-period events per matched treated wake relative to the controls'
        change; parallel trends on the count scale), pooled by
        :mod:`bayes_wake.bayes.did_surface`. ``rate_ratio``: a difference in differences of log
        rates (parallel trends in ratios); its additive surface is rebuilt from the treated
        wakes' counts and differs from the OLS estimand when baselines differ.
    errors
        ``count_did`` only: the robust covariance of the cell estimates, in the standard-error
        grammar of :mod:`bayes_wake.core.regression` (the kinds of
        :data:`SURFACE_VCOV_KINDS`): ``wake`` (short for ``CR1:wake``, each wake its own
        cluster), ``location`` (``CR1:location``, anchors at identical coordinates),
        ``CR1:CLUSTERS``, ``conley:KM[:DAYS]`` or ``classical``; :attr:`vcov` parses it. A
        fit's non-classical ``--vcov`` replaces it (:func:`surface_errors`).
    formula
        ``count_did`` only: the per-cell regression whose estimates the model pools,
        ``diff`` (post - pre on the treatment: the difference in differences of counts) or
        ``lag`` (the paper's post on pre and treatment); unset, the OLS table's formula.
    likelihood
        ``negative_binomial`` or ``poisson`` (log link); ``robust_normal`` for ``count_did``
        (the cell estimates, normal with their robust variances; the draws carry their
        joint covariance, :mod:`bayes_wake.bayes.did_surface`). ``count_did``
        with ``negative_binomial`` or ``poisson`` is the count model of the wakes
        (:mod:`bayes_wake.bayes.count_model`, ``nb_did``): every matched wake's pre and post
        counts on the increments, the effect reported on the count scale by g-computation.
    pre_count
        How the pre-period count enters. ``paired`` (default): pre and post counts are two
        draws from the wake's own rate (a gamma frailty, so each is marginally negative
        binomial); the exact conditional likelihood of post given pre + post is beta-binomial
        (binomial for ``poisson``), so the wake's baseline cancels and the effect is a
        difference in differences on the log scale. ``log1p`` or ``identity``: post is
        regressed on the pre count, like the OLS table (which attenuates the adjustment,
        since one wake's pre count measures its baseline with noise).
    intercept, slope, effect
        Priors of the cell intercepts, the cell slopes on the pre count, and the cell
        treatment effects (log rate ratios for count likelihoods).
    dispersion
        Negative-binomial dispersion ``per_cell`` (hierarchical) or ``pooled``, for the
        lagged forms (``pre_count: log1p`` or ``identity``). The paired model's
        overdispersion is its beta-binomial concentration, learned and pooled.
    matching
        ``weights``: the matched wakes of each cell with their CEM weights (estimates what
        the OLS table estimates: the effect on the matched treated wakes); ``strata``: all
        wakes, with random effects for the coarsened-covariate strata; ``none``: all wakes,
        covariates only.
    nested
        Nested windows reuse the same events (a 9 km wake holds the 3 km wake's events), so
        the cell likelihoods are not independent evidence. ``increments`` (default, needs
        ``pre_count: paired``): the coherent wake model, fitted on disjoint rings x time
        intervals so every event counts once, the cumulative surface being the sum of its
        increments. ``temper``: cumulative cells, every term scaled by (events in the
        largest cell) / (events summed over cells). ``independent``: cumulative cells as if
        independent (overconfident when pooled).
    discrepancy
        ``count_did`` only: the share of the cell estimates' sampling noise by which the
        true surface may depart from the smooth prior (non-smooth detail, N(0, d^2 V)); it
        widens the intervals where the smooth structure cannot represent the truth and is
        fixed, since the data cannot tell such detail from noise. 0: trust the smooth
        structure fully.
    covariates
        Covariates in the linear predictor (standardised; one coefficient each, shared over
        cells). ``match`` stands for the matching columns.
    frailty
        The count model of ``count_did`` (``negative_binomial``): which of a wake's counts
        share one gamma frailty, integrated out exactly (a negative-multinomial margin):
        ``wake`` (all its increments, pre and post), ``ring`` (one per ring) or
        ``increment`` (one per ring x interval, its pre and post count).
    sampler
        Sampler settings.
    """

    name: str
    description: str = ""
    estimand: Literal["count_did", "rate_ratio"] = "rate_ratio"
    likelihood: Literal["negative_binomial", "poisson", "robust_normal"] = "negative_binomial"
    errors: str = "location"
    formula: Literal["diff", "lag"] | None = None
    pre_count: Literal["paired", "log1p", "identity"] = "paired"
    intercept: FieldPrior = FieldPrior(pooling="hierarchical", mean_mu=-1.0, mean_sd=2.0,
                                       scale_sd=1.0)
    slope: FieldPrior = FieldPrior(pooling="hierarchical", mean_sd=1.0, scale_sd=0.5)
    effect: FieldPrior = FieldPrior(pooling="smooth", mean_sd=0.5, scale_sd=0.5)
    covariate_sd: float = Field(0.5, gt=0)
    dispersion: Literal["per_cell", "pooled"] = "pooled"
    matching: Literal["weights", "strata", "none"] = "weights"
    nested: Literal["increments", "temper", "independent"] = "increments"
    discrepancy: float = Field(0.0, ge=0)
    covariates: tuple[str, ...] = ("match",)
    frailty: Literal["wake", "ring", "increment"] = "wake"
    sampler: SamplerSpec = SamplerSpec()

    @property
    def vcov(self) -> VCov:
        """``errors`` parsed (:func:`bayes_wake.core.regression.parse_vcov`)."""
        return parse_vcov(self.errors)

    @property
    def counts_model(self) -> bool:
        """The count-scale estimand fitted to the wake counts themselves
        (:mod:`bayes_wake.bayes.count_model`), not to the cell estimates."""
        return self.estimand == "count_did" and self.likelihood != "robust_normal"

    @property
    def cell_surface(self) -> bool:
        """The count-scale surface fitted to the OLS table's cell estimates
        (:mod:`bayes_wake.bayes.did_surface`: ``smooth_did``, ``adaptive_did``,
        ``unpooled_did``), which can also be fitted to the pre-trend placebo."""
        return self.estimand == "count_did" and not self.counts_model

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        if self.likelihood == "robust_normal" and self.estimand != "count_did":
            raise ValueError("likelihood: robust_normal goes with estimand: count_did only")
        if self.discrepancy and (self.estimand != "count_did" or self.counts_model):
            raise ValueError("discrepancy applies to estimand: count_did with likelihood: "
                             "robust_normal only")
        if self.counts_model and self.nested != "increments":
            raise ValueError("the count model of estimand: count_did is fitted on the "
                             "increments (nested: increments)")
        adaptive = [name for name in ("intercept", "slope", "effect")
                    if getattr(self, name).pooling == "adaptive"]
        if adaptive and (self.estimand != "count_did" or adaptive != ["effect"]):
            raise ValueError("pooling: adaptive is the count_did effect's only (given for "
                             f"{', '.join(adaptive)})")
        if self.estimand == "count_did":
            if not self.counts_model:
                surface_vcov(self.errors)
            if self.effect.pooling not in COUNT_DID_POOLING:
                raise ValueError(f"estimand: count_did takes effect pooling "
                                 f"{' or '.join(COUNT_DID_POOLING)}, not "
                                 f"{self.effect.pooling!r}")
            return self
        if self.nested == "increments" and self.pre_count != "paired":
            raise ValueError("nested: increments needs pre_count: paired")
        return self

    def digest(self) -> str:
        """A short hash of the spec's content, for result keys and provenance."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def with_sampler(self, **changes) -> ModelSpec:
        """A copy with sampler settings changed (``None`` values are ignored), checked as a
        spec file's are.

        Raises
        ------
        SettingsError
            A setting out of its range (a negative seed, fewer than 10 draws, ...), named.
        """
        changes = {k: v for k, v in changes.items() if v is not None}
        if not changes:
            return self
        try:
            sampler = SamplerSpec.model_validate({**self.sampler.model_dump(), **changes})
        except ValidationError as exc:
            error = exc.errors()[0]
            raise SettingsError(f"sampler {'.'.join(map(str, error['loc']))} "
                                f"{error.get('input')!r}: {error['msg'].lower()}") from None
        return self.model_copy(update={"sampler": sampler})


#: The kinds of standard errors the count-scale surface implements (with any clusters of
#: ``CR1``): the joint covariance of its cell estimates (:mod:`bayes_wake.bayes.did_surface`).
SURFACE_VCOV_KINDS = ("classical", "CR1", "conley")


#: A ``--vcov`` kind the surface has no joint version of, and the kind it takes instead: the
#: sandwich at its core. HC1 and HC3 sum each wake's own influence (``CR1:wake``); CR2's and
#: Bell-McCaffrey's small-sample adjustments are per coefficient (on the placebo placements
#: of ``benchmarks/run.py calibration``, CR1 and CR2 by site flagged the same share of cells).
SURFACE_KIND_OF = {"HC1": "CR1", "HC3": "CR1", "CR2": "CR1", "CR2-ivw": "CR1",
                   "conley-bm": "conley"}


def surface_errors(spec_errors: "str | VCov", vcov: "str | VCov") -> VCov:
    """The standard errors of the count-scale surface: the command's ``--vcov`` (its
    :data:`SURFACE_KIND_OF` core), unless that is R's ``classical`` default, which leaves the
    spec's ``errors`` (a robust choice that the model's authors measured).

    Parameters
    ----------
    spec_errors
        The spec's ``errors``.
    vcov
        The matched wake analysis' ``--vcov`` (:class:`~bayes_wake.core.regression.VCov`).
    """
    vcov = parse_vcov(vcov)
    if vcov.kind == "classical":
        return surface_vcov(spec_errors)
    if vcov.kind in ("HC1", "HC3"):
        return parse_vcov("CR1:wake")
    return surface_vcov(replace(vcov, kind=SURFACE_KIND_OF.get(vcov.kind, vcov.kind)))


def surface_vcov(errors: "str | VCov") -> VCov:
    """``errors`` parsed (:func:`bayes_wake.core.regression.parse_vcov`), if it is a
    covariance of the count-scale surface (:data:`SURFACE_VCOV_KINDS`).

    Raises
    ------
    SettingsError
        For text the grammar refuses or another kind (``HC1``, ``CR2``, ...).
    """
    vcov = parse_vcov(errors)
    if vcov.kind not in SURFACE_VCOV_KINDS:
        raise SettingsError(f"errors {str(errors)!r}: use location, wake, CR1:COLUMN or "
                            "conley:KM[:DAYS]")
    return vcov


def _near_miss(error: dict, data: dict) -> str:
    """Render one pydantic error, suggesting the nearest valid key for unknown keys."""
    location = ".".join(str(p) for p in error["loc"])
    if error["type"] == "extra_forbidden":
        parent: type[BaseModel] = ModelSpec
        for part in error["loc"][:-1]:
            annotation = parent.model_fields[str(part)].annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                parent = annotation
        valid = list(parent.model_fields)
        close = difflib.get_close_matches(str(error["loc"][-1]), valid, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(valid)}"
        return f"unknown key '{location}'{hint}"
    return f"'{location}': {error['msg']}"


def parse_spec(data: dict, source: str = "<spec>") -> ModelSpec:
    """Validate a spec given as a dict; raise :class:`ModelSpecError` naming the source."""
    if not isinstance(data, dict):
        raise ModelSpecError(f"{source}: a model spec must be a mapping of keys to values")
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_near_miss(e, data) for e in exc.errors())
        raise ModelSpecError(f"{source}: {problems}") from None


def load_spec(path_or_name: str | Path) -> ModelSpec:
    """Load a spec from a YAML file, or a shipped spec by name (``smooth_did``).

    Raises
    ------
    ModelSpecError
        If the file is missing, is not YAML, or does not follow the schema.
    """
    path = Path(path_or_name)
    if not path.suffix and not path.is_file():  # a folder named like a spec is not one
        path = MODELS_DIR / f"{path_or_name}.yaml"
    if not path.is_file():
        shipped = ", ".join(list_specs()) or "none found"
        raise ModelSpecError(f"no model spec at {path_or_name} (shipped specs: {shipped})")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ModelSpecError(f"{path}: not valid YAML ({exc})") from None
    return parse_spec(data, str(path))


def default_spec_path() -> Path:
    """The default model (:data:`bayes_wake.options.DEFAULT_SPEC`)."""
    from bayes_wake.options import DEFAULT_SPEC

    return MODELS_DIR / f"{DEFAULT_SPEC}.yaml"


def list_specs() -> list[str]:
    """Names of the shipped specs."""
    return sorted(p.stem for p in MODELS_DIR.glob("*.yaml")) if MODELS_DIR.is_dir() else []
