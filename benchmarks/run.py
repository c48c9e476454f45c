"""Run the benchmarks and print their tables: ``.venv/bin/python benchmarks/run.py``.

Suites: ``mwa`` (counting + matching + OLS), ``bayes`` (the Bayesian fit per sampler),
``sensitivity`` (batched permutations vs a statsmodels loop; Dask with 1 and 2 workers).
``recovery`` (the planted-effect battery of battery.yaml on the real ACLED outcomes),
``holdout`` (the same on holdout.yaml: scenarios the default model was not chosen on).
``spillover`` (spillover.yaml: clumped QIPs, OLS with and without --spillover, scored on
the direct effect).
``calibration`` (size of per-window p-values per standard-error choice over placebo
placements on the real ACLED outcomes). ``scale`` (clustered continent-sized studies up to
1M anchors x 10M outcomes: count, match + OLS and the default fit, with peak memory and
pairs per second). ``cli`` (whole-process times of ``bayes-wake --help``
and ``bayes-wake mwa``, imports included). ``--quick`` runs smaller cases.
Speed targets live here, never in tests.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

SUITES = {}


def _table(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    def cell(v):
        return f"{v:.3f}" if isinstance(v, float) else f"{v}"
    widths = {c: max(len(c), *(len(cell(r.get(c, ""))) for r in rows)) for c in columns}
    lines = ["| " + " | ".join(c.ljust(widths[c]) for c in columns) + " |",
             "|" + "|".join("-" * (widths[c] + 2) for c in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(cell(row.get(c, "")).ljust(widths[c])
                                       for c in columns) + " |")
    return "\n".join(lines)


def main() -> None:
    import bench_bayes
    import bench_calibration
    import bench_cli
    import bench_mwa
    import bench_recovery
    import bench_scale
    import bench_sensitivity
    import bench_simulator

    SUITES["mwa"] = bench_mwa.run
    SUITES["bayes"] = bench_bayes.run
    SUITES["sensitivity"] = bench_sensitivity.run
    SUITES["recovery"] = bench_recovery.run
    SUITES["holdout"] = lambda quick: bench_recovery.run(quick, bench_recovery.HERE
                                                         / "holdout.yaml")
    SUITES["spillover"] = bench_recovery.run_spillover
    SUITES["calibration"] = bench_calibration.run
    SUITES["simulator"] = bench_simulator.run
    SUITES["cli"] = bench_cli.run
    SUITES["scale"] = bench_scale.run
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("suites", nargs="*", default=list(SUITES), choices=list(SUITES))
    parser.add_argument("--quick", action="store_true", help="smaller cases")
    args = parser.parse_args()
    for name in args.suites:
        print(f"\n## {name}\n")
        print(_table(SUITES[name](quick=args.quick)), flush=True)


if __name__ == "__main__":
    main()
