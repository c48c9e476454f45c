"""Make R's outputs for the standard errors' parity test, once: ``tests/data/r_vcov_*.csv``.

    cd benchmarks && python r_vcov_reference.py [--simulated] [--keep DIR]

For each case of ``tests/r_vcov_cases.py`` it exports the rows of every cell's regression
(the matched wakes with positive weight, their CEM weights and the cluster label of each
cluster choice) to CSV, runs ``r_vcov_reference.R`` on them (R with sandwich and
clubSandwich; on Debian ``apt-get install r-base-core r-cran-sandwich r-cran-clubsandwich``)
and writes R's estimate, standard error, t-test df and p-value per cell, choice and term to
``tests/data/r_vcov_<case>.csv``. ``--simulated`` first rewrites
``tests/data/simulated_sites.csv`` from the package's simulator. R is needed only here.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from r_vcov_cases import CASES, SIMULATED, case_cells, simulated_sites_frame  # noqa: E402


def export_rows(case) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of every cell's regression and the choices, as the R script reads them."""
    from bayes_wake.core.regression import parse_vcov

    clustered = [c for c in case.choices if parse_vcov(c).clustered]
    columns = {c: f"cluster{i}" for i, c in enumerate(dict.fromkeys(
        c.split(":", 1)[1] for c in clustered))}
    frames = []
    for cell, clusters in case_cells(case):
        keep = cell.weights > 0
        frame = pd.DataFrame({
            "cell": f"{cell.window:g}_{cell.radius:g}", "t_window": cell.window,
            "spat_window": cell.radius, "y": cell.y[keep], "pre": cell.design[keep, 1],
            "treatment": cell.design[keep, -1], "w": cell.weights[keep]})
        for choice in clustered:
            name = columns[choice.split(":", 1)[1]]
            frame[name] = [f"g{v:g}" for v in clusters[choice][keep]]
        frames.append(frame)
    choices = pd.DataFrame({
        "vcov": list(case.choices),
        "kind": [parse_vcov(c).kind for c in case.choices],
        "column": [columns.get(c.split(":", 1)[1], "") if ":" in c else "" for c in
                   case.choices]})
    return pd.concat(frames, ignore_index=True), choices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--simulated", action="store_true",
                        help="rewrite tests/data/simulated_sites.csv first")
    parser.add_argument("--keep", type=Path, help="keep the exported rows in this folder")
    args = parser.parse_args()
    if args.simulated or not SIMULATED.exists():
        simulated_sites_frame().to_csv(SIMULATED, index=False)
        print(f"wrote {SIMULATED}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for case in CASES.values():
            rows, choices = export_rows(case)
            rows.to_csv(folder / f"rows_{case.name}.csv", index=False, float_format="%.17g")
            choices.to_csv(folder / f"choices_{case.name}.csv", index=False)
            subprocess.run(["Rscript", str(HERE / "r_vcov_reference.R"),
                            str(folder / f"rows_{case.name}.csv"),
                            str(folder / f"choices_{case.name}.csv"), str(case.reference)],
                           check=True)
            print(f"wrote {case.reference} ({rows['cell'].nunique()} cells, "
                  f"{len(rows)} rows)")


if __name__ == "__main__":
    main()
