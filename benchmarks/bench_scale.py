"""Global scale (issue 26): counting, matching + OLS and the default Bayesian fit on
clustered synthetic studies far beyond one country: ``run.py scale``.

The generator draws what real data look like at that scale: outcome events around a few
thousand conflict hotspots over a continent-sized box (hotspot weights heavy-tailed, each
hotspot active in bursts over a 10-year record, events scattered 2-40 km around it) and
anchors (treatments and controls) at towns, several projects per town at identical
coordinates (geocoded to the town), many towns near hotspots. Each case runs in a child
process, so its peak memory (max RSS, after each stage) is its own. The cost of counting is
the number of (anchor, outcome) pairs within the largest window (radius and time, pre and
post): the table prints pairs per second beside the time.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

PAPER = (list(range(10, 61, 10)), [3.0, 6.0, 9.0, 12.0, 15.0])
#: A 20 x 20 grid: 3 to 60 days by 3, 1 to 20 km by 1.
FINE = (list(range(3, 61, 3)), [float(r) for r in range(1, 21)])
#: The box (degrees): lon, lat ranges of a continent (Africa's extent).
BOX = ((-18.0, 50.0), (-35.0, 37.0))
START, YEARS = pd.Timestamp("2011-01-01", tz="UTC"), 10


def clustered_events(n_anchor: int, n_outcome: int, seed: int = 0, *, n_hotspots: int = 3000,
                     n_towns: int | None = None) -> pd.DataFrame:
    """A synthetic global study (the module's docstring says how it is drawn).

    Returns
    -------
    pandas.DataFrame
        The event table (``event_id``, ``role``, ``time``, ``lon``, ``lat``, ``cov``), a
        fifth of the anchors treatments; ``cov`` a matching covariate (the distance to the
        nearest hotspot's centre in degrees, with noise).
    """
    rng = np.random.default_rng(seed)
    n_towns = n_towns or max(n_anchor // 4, 1)
    span = YEARS * 365 * 86_400
    hot_lon = rng.uniform(*BOX[0], n_hotspots)
    hot_lat = rng.uniform(*BOX[1], n_hotspots)
    weight = rng.pareto(1.2, n_hotspots) + 1.0
    which = rng.choice(n_hotspots, n_outcome, p=weight / weight.sum())
    spread_km = rng.uniform(2.0, 40.0, n_hotspots)[which]
    km = spread_km * np.sqrt(rng.exponential(1.0, n_outcome))
    angle = rng.uniform(0, 2 * np.pi, n_outcome)
    out_lat = hot_lat[which] + km * np.sin(angle) / 111.32
    out_lon = hot_lon[which] + km * np.cos(angle) / (111.32 * np.cos(np.radians(out_lat)))
    # bursts: each hotspot is active around a few centres in time
    centres = rng.uniform(0, span, (n_hotspots, 4))
    out_t = centres[which, rng.integers(0, 4, n_outcome)] + rng.normal(0, 60 * 86_400,
                                                                       n_outcome)
    # towns: 60% near a hotspot (within about 30 km), the rest anywhere in the box
    near = rng.random(n_towns) < 0.6
    home = rng.choice(n_hotspots, n_towns, p=weight / weight.sum())
    town_lat = np.where(near, hot_lat[home] + rng.normal(0, 0.25, n_towns),
                        rng.uniform(*BOX[1], n_towns))
    town_lon = np.where(near, hot_lon[home] + rng.normal(0, 0.25, n_towns),
                        rng.uniform(*BOX[0], n_towns))
    town = rng.integers(0, n_towns, n_anchor)  # several projects per town, one coordinate
    roles = np.array(["dependent"] * n_outcome + ["treatment"] * (n_anchor // 5)
                     + ["control"] * (n_anchor - n_anchor // 5))
    seconds = np.concatenate([np.mod(out_t, span), rng.uniform(0, span, n_anchor)])
    lat = np.concatenate([out_lat, town_lat[town]])
    frame = pd.DataFrame({
        "event_id": np.arange(1, n_anchor + n_outcome + 1), "role": roles,
        "time": START + pd.to_timedelta(seconds.astype(np.int64), unit="s"),
        "lon": np.concatenate([out_lon, town_lon[town]]), "lat": np.clip(lat, -89.0, 89.0),
        "cov": np.concatenate([rng.normal(size=n_outcome),
                               near[town] + rng.normal(0, 0.5, n_anchor)]),
    })
    frame.attrs["covariates"] = ["cov"]
    return frame


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scale_case(n_anchor: int, n_outcome: int, grid: str = "paper", fit: bool = True) -> dict:
    """Count, match + OLS and (``fit``) the default model on one clustered study; seconds
    and peak memory after each stage, pairs within the largest window and pairs per
    second of counting."""
    from bayes_wake.bayes.matched_fit import fit_matched
    from bayes_wake.bayes.spec import load_spec
    from bayes_wake.mwa.analysis import MWASettings, matched_wake_analysis
    from bayes_wake.options import DEFAULT_SPEC
    from bayes_wake.wakes import count_wakes

    windows, radii = PAPER if grid == "paper" else FINE
    events = clustered_events(n_anchor, n_outcome)
    row = {"case": f"{n_anchor:,} anchors x {n_outcome:,} outcomes, {grid} grid "
                   f"({len(windows)} x {len(radii)})", "events_mb": round(_peak_mb())}
    start = time.perf_counter()
    cube = count_wakes(events, windows, radii, covariates=["cov"])
    row["count_s"] = time.perf_counter() - start
    largest = cube["dependent"].isel(window=-1, radius=-1)
    pairs = float(largest.sum())
    row["pairs_largest_window"] = f"{pairs:,.0f}"
    row["pairs_per_s"] = f"{pairs / row['count_s']:,.0f}"
    row["peak_mb_count"] = round(_peak_mb())
    del events
    settings = MWASettings(match_on=("cov",), weighted=True)
    start = time.perf_counter()
    matched_wake_analysis(cube, settings)
    row["match_ols_s"] = time.perf_counter() - start
    row["peak_mb_match"] = round(_peak_mb())
    if fit:
        spec = load_spec(DEFAULT_SPEC)
        start = time.perf_counter()
        result = fit_matched(cube, spec, settings)
        row["fit_s"] = time.perf_counter() - start
        row["fit_converged"] = bool(result.diagnostics.converged)
        row["peak_mb_fit"] = round(_peak_mb())
    return row


def scale_case_in_child(n_anchor: int, n_outcome: int, grid: str = "paper",
                        fit: bool = True) -> dict:
    """:func:`scale_case` in a child process (its peak memory its own)."""
    code = (f"import json, sys; sys.path.insert(0, {str(__file__.rsplit('/', 1)[0])!r}); "
            f"import bench_scale; print(json.dumps(bench_scale.scale_case({n_anchor}, "
            f"{n_outcome}, {grid!r}, {fit!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode:
        return {"case": f"{n_anchor:,} x {n_outcome:,}, {grid}",
                "error": (out.stderr.strip().splitlines() or ["?"])[-1][:120]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> list[dict]:
    if quick:
        return [scale_case_in_child(30_000, 300_000)]
    return [scale_case_in_child(300_000, 3_000_000),
            scale_case_in_child(300_000, 3_000_000, "fine", fit=False),
            scale_case_in_child(1_000_000, 10_000_000)]
