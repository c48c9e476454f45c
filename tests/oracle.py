"""Brute-force oracles for the wake counter: slow, literal, obviously right.

``walk_counts`` is a line-by-line port of the counting walk in R mwa's WakeCounter.java: for
each anchor it walks back through the time-sorted rows and then forward, one row at a time.
``pairwise_counts`` checks every pair for the ``exact`` convention.
"""

from __future__ import annotations

import math

import numpy as np


def java_distance_km(lat_a, lon_a, lat_b, lon_b):
    a, b = math.radians(lat_a), math.radians(lat_b)
    dl = math.radians(lon_a) - math.radians(lon_b)
    d = math.sqrt((math.cos(b) * math.sin(dl)) ** 2
                  + (math.cos(a) * math.sin(b) - math.sin(a) * math.cos(b) * math.cos(dl)) ** 2)
    d = math.atan2(d, math.sin(a) * math.sin(b) + math.cos(a) * math.cos(b) * math.cos(dl))
    return math.degrees(d) * 111.111


def walk_counts(time_s, lat, lon, role, windows, radii, unit_s):
    """R's walk. Rows must already be sorted by time (stably). Returns {(row, T, S): dict}."""
    n = len(time_s)
    out = {}
    for w in range(n):
        if role[w] not in ("treatment", "control"):
            continue
        own = role[w]
        other = "control" if own == "treatment" else "treatment"
        for S in radii:
            for T in windows:
                rec = dict(dep_pre=0, dep_post=0, so_pre=0, so_post=0, mo_pre=0, mo_post=0)
                trend = [0] * (T + 1)
                remove = False
                k = w - 1
                while True:
                    if k < 0:
                        remove = True
                        break
                    dd = math.floor((time_s[w] - time_s[k]) / unit_s)
                    d = java_distance_km(lat[w], lon[w], lat[k], lon[k])
                    if 0 <= dd <= T and d <= S:
                        if role[k] == "dependent":
                            rec["dep_pre"] += 1
                            trend[dd] += 1
                        rec["so_pre"] += role[k] == own
                        rec["mo_pre"] += role[k] == other
                    if dd > T:
                        break
                    k -= 1
                if not remove:
                    k = w + 1
                    while True:
                        if k > n - 1:
                            remove = True
                            break
                        dd = math.floor((time_s[k] - time_s[w]) / unit_s)
                        d = java_distance_km(lat[w], lon[w], lat[k], lon[k])
                        if 1 <= dd <= T and d <= S:
                            rec["dep_post"] += role[k] == "dependent"
                            rec["so_post"] += role[k] == own
                            rec["mo_post"] += role[k] == other
                        if dd > T:
                            break
                        k += 1
                if T % 2 == 0:
                    split = T // 2
                    rec["trend"] = sum(trend[:split]) - sum(trend[split:])
                else:
                    split = math.ceil((T + 1) / 2)
                    q = split // (split - 1)
                    first = sum(trend[:split]) - q * sum(trend[split:])
                    second = q * sum(trend[:split - 1]) - sum(trend[split - 1:])
                    rec["trend"] = 0.5 * (first + second)
                rec["complete"] = not remove
                out[(w, T, S)] = rec
    return out


def haversine_km(lat_a, lon_a, lat_b, lon_b, radius_km=6371.0088):
    a, b = np.radians(lat_a), np.radians(lat_b)
    dlat, dlon = b - a, np.radians(lon_b) - np.radians(lon_a)
    h = np.sin(dlat / 2) ** 2 + np.cos(a) * np.cos(b) * np.sin(dlon / 2) ** 2
    return 2 * radius_km * np.arcsin(np.sqrt(np.clip(h, 0, 1)))
