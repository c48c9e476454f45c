"""Write a simulated Mali-like study as an event file with an admin-1 region per event.

    .venv/bin/python scripts/simulated_study_csv.py --seed 0 --out simulated_study.csv

The events are `bayes_wake.simulate.simulate_study(seed)` (planted effect, known truth) in
R's mwa column layout (``type``, ``lon``, ``lat``, ``timestamp``, covariates) plus ``region``:
the admin-1 region (OCHA COD 2015, Ménaka split out) holding the event, or the nearest one
for a point just outside every polygon. Without the boundary file in ../shared/data the
region is the nearest of the six MINUSMA bases. ``true_effect.csv`` beside the output holds
the planted effect on the paper's grid (R's mwa distance convention). Then, for example::

    .venv/bin/bayes-wake sensitivity --data simulated_study.csv \\
        --t-window 10 60 10 --spat-window 3 15 3 \\
        --match dist_base_km,dist_river_km,pop_density --weighted \\
        --region-column region --grid-region "t>=20, s<=9" --out sensitivity-simulated
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

BOUNDARIES = (Path(__file__).resolve().parents[2] / "shared" / "data" / "ocha_cod_ab_mali_2015"
              / "mli_adm1_with_menaka_derived.geojson")


def regions(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Admin-1 region of each point (nearest polygon outside all), else the nearest base."""
    if BOUNDARIES.is_file():
        import geopandas as gpd

        polygons = gpd.read_file(BOUNDARIES)[["admin1_2017", "geometry"]]
        points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
        # nearest in a metric CRS (UTM 30N covers Mali well enough for a tie-break)
        joined = gpd.sjoin_nearest(points.to_crs(32630), polygons.to_crs(32630), how="left")
        joined = joined[~joined.index.duplicated(keep="first")]
        return joined["admin1_2017"].to_numpy(dtype=object)
    from bayes_wake.simulate import BASES

    names = list(BASES)
    xy = np.array([BASES[n] for n in names])
    d2 = (lon[:, None] - xy[None, :, 0]) ** 2 + (lat[:, None] - xy[None, :, 1]) ** 2
    return np.array([f"near {names[i]}" for i in d2.argmin(axis=1)], dtype=object)


def main() -> None:
    from bayes_wake.simulate import simulate_study

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("simulated_study.csv"))
    args = parser.parse_args()
    study = simulate_study(args.seed)
    events = study.events
    table = events.rename(columns={"role": "type"}).drop(columns=["event_id"])
    table["timestamp"] = events["time"].dt.strftime("%Y-%m-%d %H:%M:%S")
    table = table.drop(columns=["time"])
    table["region"] = regions(events["lon"].to_numpy(), events["lat"].to_numpy())
    columns = ["type", "lon", "lat", "timestamp", *events.attrs["covariates"], "region"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table[columns].to_csv(args.out, index=False, float_format="%.17g")
    truth = study.true_effect(np.arange(10, 61, 10), np.arange(3.0, 15.1, 3.0),
                              convention="mwa")
    truth.to_dataframe(name="true_effect").reset_index().rename(
        columns={"window": "t_window", "radius": "spat_window"}).to_csv(
        args.out.with_name("true_effect.csv"), index=False)
    counts = table.loc[table["type"] != "dependent", "region"].value_counts()
    print(f"wrote {args.out} ({len(table)} events); anchors per region: "
          + ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
