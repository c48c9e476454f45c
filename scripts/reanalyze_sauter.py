"""Reanalyse Sauter (2022) on the shared data: the script form of ``bayes-wake sauter``.

Runs :func:`bayes_wake.studies.sauter.workflow.reanalyze_sauter` (the function behind the
command) on the data in ``../shared/data`` beside the repository: the ACLED Mali 2017-2020
export, the OCHA admin-1 boundaries with Ménaka split out, the six MINUSMA bases of Geo-PKO,
and the GSHHG/WDBII rivers and lakes. Projects come from ``--qips``/``--aid`` or are
simulated (and the report says so).

    .venv/bin/python scripts/reanalyze_sauter.py --out sauter-report
    .venv/bin/python scripts/reanalyze_sauter.py --out sauter-report --qips qips.csv --aid aid.csv
    .venv/bin/python scripts/reanalyze_sauter.py --out sauter-report --mwa-only   # seconds

Wrap runs with the Bayesian part in ``flock /tmp/bayes_wake_mcmc.lock`` on shared machines.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bayes_wake.errors import BayesWakeError
from bayes_wake.studies.sauter.settings import SauterSettings
from bayes_wake.studies.sauter.workflow import reanalyze_sauter

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ACLED = DATA / "acled_mali_2017_2020" / "2017-01-01-2020-12-31-Mali.csv"
BOUNDARIES = DATA / "ocha_cod_ab_mali_2015" / "mli_adm1_with_menaka_derived.geojson"
BASES = DATA / "geopko_minusma" / "minusma_bases_sauter2022_from_geopko.csv"
WATER = [DATA / "gshhg_wdbii_mali" / "mali_bbox_rivers_wdbii_full.geojson",
         DATA / "gshhg_wdbii_mali" / "mali_bbox_lakes_gshhs_full.geojson"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="sauter-report", help="output folder")
    parser.add_argument("--acled", default=str(ACLED))
    parser.add_argument("--boundaries", default=str(BOUNDARIES))
    parser.add_argument("--bases", default=str(BASES))
    parser.add_argument("--qips", default=None, help="QIP file (else simulated)")
    parser.add_argument("--aid", default=None, help="aid-project file (else simulated)")
    parser.add_argument("--no-water", action="store_true",
                        help="leave out the distance to rivers and lakes")
    parser.add_argument("--mwa-only", action="store_true", help="skip the Bayesian fits")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated placement")
    args = parser.parse_args(argv)
    try:
        settings = SauterSettings(
            args.acled, args.boundaries, args.bases, qips=args.qips, aid=args.aid,
            rivers=[] if args.no_water else [str(p) for p in WATER], seed=args.seed,
            bayes=not args.mwa_only)
        # the record names the command this script is the form of
        result = reanalyze_sauter(settings, args.out, log=print,
                                  extra={"settings": {"command": "sauter"}})
    except BayesWakeError as exc:
        print(f"reanalyze_sauter: error: {exc}", file=sys.stderr)
        return 2
    if result.any_simulated:
        print("NOTE: projects were SIMULATED; the effects are a placebo, not findings.")
    print(f"Open {result.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
