"""Distances on the earth and the place nearest a fix: enough for stops a few hundred
metres apart (haversine on a sphere; the error is far below a GPS fix's)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from iotmon_alerts.bus.fleet import Place

EARTH_RADIUS_M = 6_371_008.8


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def nearest_place(lat: float, lon: float, places: Iterable[Place], radius_m: float) -> Place | None:
    """The place nearest (lat, lon) within ``radius_m``; ties go to the first listed."""
    best: Place | None = None
    best_distance = radius_m
    for place in places:
        d = distance_m(lat, lon, place.lat, place.lon)
        if d <= best_distance and (best is None or d < best_distance):
            best, best_distance = place, d
    return best
