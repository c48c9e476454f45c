"""The simulated Mali: its geography and the calibrated settings of the simulated world.

Public: the study box (:data:`MALI_BOUNDS`), the six MINUSMA bases of the paper
(:data:`BASES`) and a coarse Niger (:data:`NIGER_RIVER`). Private, for the other modules of
:mod:`bayes_wake.simulate`: the project towns and their weights, the towns outside the study
area, the violence hotspots, and the settings of the gazetteer, the project placement, the
baseline violence and the population density, each tuned to the data named beside it. Data
only: no code, no imports.
"""

from __future__ import annotations

__all__ = ["BASES", "MALI_BOUNDS", "NIGER_RIVER"]


MALI_BOUNDS = (-12.0, 4.5, 10.0, 25.0)
"""Rough bounding box of Mali as (lon_min, lon_max, lat_min, lat_max), WGS84 degrees."""

# Baseline events and projects are drawn this far inside MALI_BOUNDS, so that offspring,
# which are never moved or rejected (that would bias the planted truth), stay inside the
# box too: at the default 5 km Rayleigh scale, leaving it needs a ~55 km jump (p ~ 1e-26).
_BOX_MARGIN_DEG = 0.5

BASES: dict[str, tuple[float, float]] = {
    # (lon, lat) as Geo-PKO v2.3 codes the six bases named by Sauter (2022); see
    # ../shared/data/geopko_minusma. "Mopti" is the Mopti/Sévaré camp by Sévaré airport.
    "Bamako": (-8.0, 12.65),
    "Gao": (-0.04472, 16.27167),
    "Kidal": (1.40778, 18.44111),
    "Menaka": (2.4022, 15.9182),
    "Mopti": (-4.09344, 14.52742),
    "Timbuktu": (-3.00742, 16.77348),
}
"""The six major MINUSMA bases of the paper, name -> (lon, lat) in WGS84 degrees."""

NIGER_RIVER: tuple[tuple[float, float], ...] = (
    # A coarse Niger: Bamako, Ségou, the inner delta past Mopti and Lake Débo, the Timbuktu
    # bend, Gao, Ansongo, to the Niger border. Good enough for a covariate with a shape.
    (-8.00, 12.63),
    (-7.56, 12.86),
    (-6.27, 13.45),
    (-5.36, 13.96),
    (-5.00, 14.15),
    (-4.20, 14.50),
    (-4.20, 15.28),
    (-4.00, 15.93),
    (-3.40, 16.27),
    (-3.05, 16.67),
    (-1.93, 16.88),
    (-0.35, 16.95),
    (-0.04, 16.27),
    (0.50, 15.66),
    (0.85, 14.95),
)
"""Vertices (lon, lat) of the simulated river polyline, WGS84 degrees, joined by great circles."""

# Towns of the paper's study area (regions Ségou, Mopti, Tombouctou, Gao, Kidal, Ménaka):
# name, lon, lat, population in thousands (rounded census-era figures), QIP weight, aid weight.
# QIPs go where the mission is (the base towns and its smaller camps); aid follows people.
# The weights were tuned so that the mean distance to the nearest base comes out near the
# paper's Table 2 (aid projects 95 km, QIPs 59 km).
_PROJECT_TOWNS: tuple[tuple[str, float, float, float, float, float], ...] = (
    ("Ségou", -6.27, 13.45, 130.0, 0.5, 5.0),
    ("San", -4.90, 13.30, 66.0, 0.5, 5.0),
    ("Niono", -5.99, 14.25, 35.0, 0.5, 4.0),
    ("Macina", -5.36, 13.96, 12.0, 0.5, 2.0),
    ("Mopti", -4.19, 14.49, 120.0, 7.0, 10.0),
    ("Djenné", -4.55, 13.91, 33.0, 1.0, 3.0),
    ("Bandiagara", -3.61, 14.35, 17.0, 2.0, 4.0),
    ("Bankass", -3.52, 14.08, 12.0, 1.0, 3.0),
    ("Koro", -3.08, 14.07, 15.0, 1.0, 4.0),
    ("Douentza", -2.95, 15.00, 25.0, 3.0, 4.0),
    ("Tenenkou", -4.92, 14.46, 12.0, 0.5, 2.0),
    ("Youwarou", -4.26, 15.37, 8.0, 0.5, 1.0),
    ("Timbuktu", -3.00, 16.77, 55.0, 7.0, 6.0),
    ("Goundam", -3.67, 16.42, 15.0, 2.0, 2.0),
    ("Niafunké", -4.00, 15.93, 10.0, 1.0, 2.0),
    ("Diré", -3.40, 16.27, 22.0, 1.0, 2.0),
    ("Gourma-Rharous", -1.93, 16.88, 8.0, 1.0, 1.5),
    ("Gao", -0.04, 16.27, 87.0, 7.0, 7.0),
    ("Ansongo", 0.50, 15.66, 30.0, 2.0, 3.0),
    ("Bourem", -0.35, 16.95, 27.0, 1.5, 2.0),
    ("Ménaka", 2.40, 15.92, 20.0, 3.75, 2.0),
    ("Kidal", 1.41, 18.44, 26.0, 4.5, 2.0),
    ("Tessalit", 1.01, 20.20, 6.0, 1.0, 0.5),
    ("Aguelhok", 0.86, 19.46, 6.0, 1.0, 0.5),
)

# Large towns outside the study area: they hold no projects but shape population density.
_OTHER_TOWNS: tuple[tuple[str, float, float, float], ...] = (
    ("Bamako", -8.00, 12.64, 2500.0),
    ("Sikasso", -5.67, 11.32, 225.0),
    ("Koutiala", -5.46, 12.39, 140.0),
    ("Kayes", -11.43, 14.45, 127.0),
)

# Violence hotspots: lon, lat, weight. Weights follow the 2017-2020 ACLED "violence against
# civilians" counts by cercle (Koro, Douentza, Bandiagara and Bankass lead; the Gao-Ansongo-
# Ménaka belt next; a little everywhere else).
_HOTSPOTS: tuple[tuple[float, float, float], ...] = (
    (-3.08, 14.07, 370.0),  # Koro
    (-2.95, 15.00, 276.0),  # Douentza
    (-3.61, 14.35, 202.0),  # Bandiagara
    (-3.52, 14.08, 184.0),  # Bankass
    (0.50, 15.66, 176.0),  # Ansongo
    (-0.04, 16.27, 150.0),  # Gao
    (-4.19, 14.49, 100.0),  # Mopti
    (-5.99, 14.25, 94.0),  # Niono
    (2.40, 15.92, 90.0),  # Ménaka
    (-4.92, 14.46, 86.0),  # Tenenkou
    (-4.55, 13.91, 72.0),  # Djenné
    (-1.93, 16.88, 72.0),  # Gourma-Rharous
    (-3.00, 16.77, 52.0),  # Timbuktu
    (-5.36, 13.96, 52.0),  # Macina
    (1.41, 18.44, 36.0),  # Kidal
    (-4.00, 15.93, 28.0),  # Niafunké
    (-8.00, 12.64, 26.0),  # Bamako
    (-7.45, 13.55, 26.0),  # Banamba (Koulikoro)
    (3.03, 15.42, 24.0),  # Anderamboukane
    (-4.26, 15.37, 24.0),  # Youwarou
    (-3.67, 16.42, 22.0),  # Goundam
    (-0.35, 16.95, 22.0),  # Bourem
    (-5.67, 11.32, 16.0),  # Sikasso
)

# Events and projects are geocoded to places, as ACLED and project databases geocode them:
# the 2017-2020 ACLED "violence against civilians" events of Mali sit on about 290 distinct
# points, and Gao, Ménaka and Timbuktu alone hold a tenth of them. A gazetteer of named towns
# plus villages drawn around the hotspots and the project towns stands in for the real one.
# This is what makes wake counts lumpy (a wake on a town centroid catches every event
# reported "in" the town, its neighbour at 5 km none), as in the paper, where the 3 km and
# 6 km estimates coincide.
_N_VILLAGES_NEAR_HOTSPOTS = 250
_N_VILLAGES_NEAR_TOWNS = 150
_VILLAGE_SCATTER_KM = 35.0

# Projects: the share geocoded to their town's centroid, and the Rayleigh scale (km) of the
# others around the town before they are snapped to the nearest place. QIPs sit in and next
# to the town or camp, aid projects reach out into the villages.
_TREATMENT_CENTROID_SHARE = 0.5
_TREATMENT_SCATTER_KM = 15.0
_CONTROL_CENTROID_SHARE = 0.4
_CONTROL_SCATTER_KM = 30.0

# Baseline events: the share reported at the nearest named town ("near Koro", ACLED's
# geo_precision 2) and the share at the nearest place of any kind (precision 1); the rest
# keep their exact point.
_EVENT_TOWN_SHARE = 0.35
_EVENT_PLACE_SHARE = 0.55

# Baseline violence: episodes (a raid, a string of reprisals) fall near a hotspot and emit a
# few events close in space and time. This clustering is what makes wake counts
# overdispersed, as in the real data.
_HOTSPOT_SCATTER_KM = 25.0  # Rayleigh scale of an episode around its hotspot
_EPISODE_SCATTER_KM = 4.0  # Rayleigh scale of an event around its episode
_EPISODE_MEAN_SIZE = 2.5  # events per episode (1 + Poisson)
_EPISODE_DELAY_DAYS = 6.0  # mean delay (exponential) of an event after its episode starts
_TREND_END_TO_START = 3.0  # intensity at the end / at the start (ACLED VAC: 260 -> 876)

# Population density, persons per km^2: a rural floor plus a Gaussian bump per town holding
# its population, times log-normal noise.
_RURAL_DENSITY = 4.0
_TOWN_SPREAD_KM = 15.0
_DENSITY_LOG_SD = 0.5
