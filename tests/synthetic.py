"""Small made-up study files for the adapter and workflow tests.

ACLED's terms forbid republishing its rows, so no real row is ever copied here: every value
below is invented (actors, places, dates and coordinates are drawn from a seeded generator).
The region boxes are rough rectangles over Mali's real extent, named with the spellings the
adapters must normalise (accents, English names).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

ACLED_MONADIC_HEADER = [
    "data_id", "iso", "event_id_cnty", "event_id_no_cnty", "event_date", "year",
    "time_precision", "event_type", "sub_event_type", "actor1", "assoc_actor_1", "inter1",
    "interaction", "region", "country", "admin1", "admin2", "admin3", "location", "latitude",
    "longitude", "geo_precision", "source", "source_scale", "notes", "fatalities", "timestamp",
    "iso3",
]
ACLED_DYADIC_HEADER = [
    "data_id", "iso", "event_id_cnty", "event_id_no_cnty", "event_date", "year",
    "time_precision", "event_type", "sub_event_type", "actor1", "assoc_actor_1", "inter1",
    "actor2", "assoc_actor_2", "inter2", "interaction", "region", "country", "admin1", "admin2",
    "admin3", "location", "latitude", "longitude", "geo_precision", "source", "source_scale",
    "notes", "fatalities", "timestamp", "iso3",
]

# (name as written in the file, lon_min, lat_min, lon_max, lat_max): made-up rectangles that
# tile a box over central and northern Mali; "Kayes" lies outside the study area.
REGION_BOXES = [
    ("Ségou", -7.0, 12.5, -4.8, 15.0),
    ("Mopti", -4.8, 12.5, -1.5, 15.0),
    ("Timbuktu", -7.0, 15.0, -1.5, 22.0),
    ("Gao", -1.5, 14.5, 1.2, 17.5),
    ("Ménaka", 1.2, 14.5, 4.3, 17.5),
    ("Kidal", -1.5, 17.5, 4.3, 22.0),
    ("Kayes", -12.0, 12.5, -7.0, 16.0),
]
STUDY_BOX = (-7.0, 12.5, 4.3, 22.0)

_TYPES = [("Violence against civilians", "Attack", (2, 3, 4), 7),
          ("Battles", "Armed clash", (1, 2, 3), 2),
          ("Battles", "Armed clash", (1,), 1),
          ("Protests", "Peaceful protest", (6,), 0),
          ("Explosions/Remote violence", "Remote explosive/landmine/IED", (2,), 1)]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]


def made_up_events(n: int = 300, seed: int = 1, *, box=STUDY_BOX,
                   start: str = "2017-01-01", days: int = 1461) -> list[dict]:
    """Invented ACLED-like events (one dict per event, dyadic fields)."""
    rng = np.random.default_rng(seed)
    # a few made-up "towns" so that events cluster as real ones do
    height = min(5.0, box[3] - box[1] - 0.6)
    towns = np.column_stack([rng.uniform(box[0] + 0.3, box[2] - 0.3, 12),
                             rng.uniform(box[1] + 0.3, box[1] + 0.3 + height, 12)])
    first = np.datetime64(start)
    events = []
    for i in range(n):
        kind, sub, inter_a, inter_b = _TYPES[rng.integers(len(_TYPES))]
        town = towns[rng.integers(len(towns))]
        lon, lat = town + rng.normal(0, 0.05, 2)
        day = first + np.timedelta64(int(rng.integers(days)), "D")
        a = int(rng.choice(inter_a))
        b = int(inter_b)
        events.append({
            "event_id_cnty": f"XYZ{1000 + i}", "date": str(day),
            "event_type": kind, "sub_event_type": sub,
            "actor1": f"Made-up actor {a}", "inter1": a,
            "actor2": f"Made-up actor {b}" if b else "", "inter2": b,
            "interaction": 10 * a if b == 0 else 10 * min(a, b) + max(a, b),
            "latitude": round(float(lat), 4), "longitude": round(float(lon), 4),
            "admin1": "Mopti", "location": f"Place {i % 17}", "fatalities": int(rng.integers(4)),
        })
    return events


def export_date(iso: str) -> str:
    """'2020-12-31' as the ACLED Export Tool writes it: '31 December 2020'."""
    year, month, day = iso.split("-")
    return f"{int(day)} {_MONTHS[int(month) - 1]} {year}"


def write_monadic(path: Path, events: list[dict]) -> Path:
    """The Export Tool's layout: one row per actor, no actor2/inter2 columns."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(ACLED_MONADIC_HEADER)
        for k, e in enumerate(events):
            actors = [(e["actor1"], e["inter1"])]
            if e["inter2"]:
                actors.append((e["actor2"], e["inter2"]))
            for actor, inter in actors:
                writer.writerow([
                    9000 + k, 466, e["event_id_cnty"], e["event_id_cnty"][3:],
                    export_date(e["date"]), e["date"][:4], 1, e["event_type"],
                    e["sub_event_type"], actor, "", inter, e["interaction"], "Western Africa",
                    "Mali", e["admin1"], "Made-up cercle", "Made-up commune", e["location"],
                    e["latitude"], e["longitude"], 1, "Made-up source", "Local",
                    "Made-up note, with a comma.", e["fatalities"], 1600000000, "MLI"])
    return path


def write_dyadic(path: Path, events: list[dict], *, iso_dates: bool = True) -> Path:
    """ACLED's usual layout: one row per event."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(ACLED_DYADIC_HEADER)
        for k, e in enumerate(events):
            writer.writerow([
                9000 + k, 466, e["event_id_cnty"], e["event_id_cnty"][3:],
                e["date"] if iso_dates else export_date(e["date"]), e["date"][:4], 1,
                e["event_type"], e["sub_event_type"], e["actor1"], "", e["inter1"],
                e["actor2"], "", e["inter2"] if e["inter2"] else 0, e["interaction"],
                "Western Africa", "Mali", e["admin1"], "Made-up cercle", "Made-up commune",
                e["location"], e["latitude"], e["longitude"], 1, "Made-up source", "Local",
                "Made-up note.", e["fatalities"], 1600000000, "MLI"])
    return path


def write_regions(path: Path, boxes=REGION_BOXES, name_field: str = "ADM1_FR") -> Path:
    """A GeoJSON of rectangular admin-1 regions."""
    features = []
    for name, x0, y0, x1, y1 in boxes:
        ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
        features.append({"type": "Feature", "properties": {name_field: name, "code": "X"},
                         "geometry": {"type": "Polygon", "coordinates": [ring]}})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}),
                    encoding="utf-8")
    return path


def write_bases(path: Path) -> Path:
    """Six made-up base points (not the real coordinates)."""
    rows = [("Alpha", 14.4, -4.1), ("Bravo", 16.3, -0.1), ("Charlie", 18.4, 1.4),
            ("Delta", 15.9, 2.4), ("Echo", 16.8, -3.0), ("Foxtrot", 13.5, -6.2)]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["base", "latitude", "longitude"])
        writer.writerows(rows)
    return path


def write_projects(path: Path, n: int, seed: int, *, kind: str = "qip") -> Path:
    """Made-up projects: QIP-style (start_date, longitude, latitude, budget, activity_type) or
    IATI-style (iati_identifier, activity_date_start_actual, location_point_pos, budget_value,
    sector_narrative)."""
    rng = np.random.default_rng(seed)
    first = np.datetime64("2017-01-01")
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if kind == "qip":
            writer.writerow(["project_id", "start_date", "longitude", "latitude", "budget_usd",
                             "activity_type", "title"])
        else:
            writer.writerow(["iati_identifier", "activity_date_start_actual",
                             "location_point_pos", "budget_value", "sector_narrative",
                             "title_narrative"])
        for i in range(n):
            lon = float(rng.uniform(-6.5, 3.5))
            lat = float(rng.uniform(14.6, 17.0))
            day = str(first + np.timedelta64(int(rng.integers(1461)), "D"))
            budget = int(rng.integers(5, 100)) * 1000
            if kind == "qip":
                activity = ["Infrastructure & equipment", "Training/workshops",
                            "Sport & cultural events"][i % 3]
                writer.writerow([f"QIP-{i:03d}", day, f"{lon:.4f}", f"{lat:.4f}",
                                 f"US$ {budget:,}", activity, f"Made-up project {i}"])
            else:
                writer.writerow([f"XX-TEST-{i:04d}", day, f"{lat:.4f} {lon:.4f}", budget,
                                 "Made-up sector", f"Made-up aid {i}"])
    return path


def write_one_treated_wake(path: Path) -> Path:
    """A made-up mwa-layout file whose one treated anchor (with 30 controls and outcome events
    around every anchor) has leverage 1 in any cell's regression without matching: HC3 and
    CR2 by location are undefined there, R's lm is not."""
    rng = np.random.default_rng(11)
    rows = [("treatment", 0.0, 0.0, 100)] + [
        ("control", float(rng.uniform(-1, 1)), float(rng.uniform(-1, 1)), int(d))
        for d in rng.integers(20, 180, 30)]
    rows += [("dependent", r[1] + rng.normal(0, 0.02), r[2] + rng.normal(0, 0.02),
              r[3] + int(rng.integers(-8, 9)))
             for r in rows for _ in range(int(rng.integers(0, 4)))]
    rows += [("dependent", 5.0, 5.0, 0), ("dependent", 5.0, 5.0, 400)]  # bound the record
    start = np.datetime64("2000-01-01T00:00:00")
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["type", "lon", "lat", "timestamp"])
        for kind, lon, lat, day in rows:
            stamp = str(start + np.timedelta64(int(day), "D")).replace("T", " ")
            writer.writerow([kind, lon, lat, stamp])
    return path
