"""Speed and memory of counting + matching + OLS (the frequentist MWA path).

Cases:
- ``paper``: a simulated study of the paper's size (400 treatments, 1,500 controls, 1,100
  outcome events), 6 x 5 grid (t = 10..60 days by 10, s = 3..15 km by 3). R's mwa needs about
  13-17 s for this on this machine.
- ``large``: 100,000 anchors x 1,000,000 outcome events over four years in a Mali-sized box,
  same grid; run in a child process so its peak memory (max RSS) is its own.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

WINDOWS = [10, 20, 30, 40, 50, 60]
RADII = [3.0, 6.0, 9.0, 12.0, 15.0]


def _best_of(fn, repeat: int) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def paper_case(repeat: int = 5) -> dict:
    from bayes_wake.mwa.analysis import MWASettings, matched_wake_analysis
    from bayes_wake.simulate import simulate_study
    from bayes_wake.wakes import count_wakes

    events = simulate_study(0).events
    covariates = list(events.attrs["covariates"])
    count_wakes(events, WINDOWS, RADII)  # warm-up (imports, caches)
    t_count, cube = _best_of(lambda: count_wakes(events, WINDOWS, RADII), repeat)
    t_match, _ = _best_of(
        lambda: matched_wake_analysis(cube, MWASettings(match_on=covariates, weighted=True)),
        repeat)
    return {"case": "paper size (1,900 anchors x 1,100 outcomes)", "count_s": t_count,
            "match_ols_s": t_match, "total_s": t_count + t_match,
            "wakes": int(cube.sizes["event"]), "cells": len(WINDOWS) * len(RADII)}


def _large_events(n_anchor: int, n_outcome: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_anchor + n_outcome
    start = pd.Timestamp("2017-01-01", tz="UTC")
    seconds = rng.integers(0, 4 * 365 * 86_400, n)
    roles = np.array(["dependent"] * n_outcome + ["treatment"] * (n_anchor // 5)
                     + ["control"] * (n_anchor - n_anchor // 5))
    frame = pd.DataFrame({
        "event_id": np.arange(1, n + 1),
        "role": roles,
        "time": start + pd.to_timedelta(seconds, unit="s"),
        "lon": rng.uniform(-5.0, 4.0, n),
        "lat": rng.uniform(12.0, 20.0, n),
        "cov": rng.normal(size=n),
    })
    frame.attrs["covariates"] = ["cov"]
    return frame


def large_case_in_child(n_anchor: int = 100_000, n_outcome: int = 1_000_000) -> dict:
    code = (f"import json, sys; sys.path.insert(0, {str(__file__.rsplit('/', 1)[0])!r}); "
            f"import bench_mwa; print(json.dumps(bench_mwa._large_case({n_anchor}, "
            f"{n_outcome})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _large_case(n_anchor: int, n_outcome: int) -> dict:
    from bayes_wake.mwa.analysis import MWASettings, matched_wake_analysis
    from bayes_wake.wakes import count_wakes

    events = _large_events(n_anchor, n_outcome)
    start = time.perf_counter()
    cube = count_wakes(events, WINDOWS, RADII)
    t_count = time.perf_counter() - start
    start = time.perf_counter()
    matched_wake_analysis(cube, MWASettings(match_on=["cov"], weighted=True))
    t_match = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"case": f"{n_anchor:,} anchors x {n_outcome:,} outcomes", "count_s": t_count,
            "match_ols_s": t_match, "total_s": t_count + t_match, "wakes": n_anchor,
            "cells": len(WINDOWS) * len(RADII), "peak_rss_mb": peak_mb}


def run(quick: bool = False) -> list[dict]:
    rows = [paper_case()]
    rows.append(large_case_in_child(10_000, 100_000) if quick else large_case_in_child())
    return rows
