"""The simulated town: a depot, schools, routes with stops, buses with their devices,
children with tags in families, guardians; and the fleet file that describes it."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from iotmon_devices.simulators.school_bus.config import SchoolBusSimConfig

ORIGIN_LAT = 52.0907
ORIGIN_LON = 5.1214
_M_PER_DEG_LAT = 111_320.0
DEPOT_RADIUS_M = 150.0
MIN_PLACE_GAP_M = 350.0


def to_latlon(x: float, y: float) -> tuple[float, float]:
    """Metres east/north of the town's origin as WGS 84 degrees (flat earth is plenty)."""
    lat = ORIGIN_LAT + y / _M_PER_DEG_LAT
    lon = ORIGIN_LON + x / (_M_PER_DEG_LAT * math.cos(math.radians(ORIGIN_LAT)))
    return lat, lon


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float

    def distance(self, other: Point) -> float:
        return math.hypot(self.x - other.x, self.y - other.y)


@dataclass(frozen=True, slots=True)
class SimPlace:
    id: str
    name: str
    at: Point


@dataclass(frozen=True, slots=True)
class SimChild:
    id: str
    tag: str
    school: str
    bus: str
    stop: str
    family: int


@dataclass(frozen=True, slots=True)
class SimGuardian:
    id: str
    children: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SimBus:
    id: str
    index: int
    driver: str
    route: str
    school: SimPlace
    stops: tuple[SimPlace, ...]
    telematics: str
    door_reader: str
    cabin_scanner: str
    presence: str | None
    gateway: str
    slot: Point
    """Where it parks in the depot (buses park side by side: neighbours hear each other)."""


@dataclass(frozen=True, slots=True)
class World:
    tenant: str
    depot: SimPlace
    schools: tuple[SimPlace, ...]
    buses: tuple[SimBus, ...]
    children: tuple[SimChild, ...]
    guardians: tuple[SimGuardian, ...]
    visitor_tags: tuple[str, ...]
    """Unregistered tags (visitors, new pupils not yet enrolled)."""
    depot_tags: tuple[str, ...]
    """A box of spare, unregistered tags in the depot office."""

    def riders(self, bus: str) -> list[SimChild]:
        return [child for child in self.children if child.bus == bus]

    def neighbours(self, bus: SimBus) -> list[SimBus]:
        return [b for b in self.buses if abs(b.index - bus.index) == 1]

    def document(self) -> dict[str, Any]:
        """The fleet file (YAML-ready) for this world."""

        def place(p: SimPlace) -> dict[str, Any]:
            lat, lon = to_latlon(p.at.x, p.at.y)
            return {"id": p.id, "name": p.name, "lat": round(lat, 6), "lon": round(lon, 6)}

        return {
            "version": 1,
            "tenant": self.tenant,
            "operator": "dispatch",
            "timezone": "UTC",
            "depots": [{**place(self.depot), "radius_m": DEPOT_RADIUS_M}],
            "schools": [place(s) for s in self.schools],
            "routes": [
                {"id": b.route, "school": b.school.id, "stops": [place(s) for s in b.stops]}
                for b in self.buses
            ],
            "buses": [
                {
                    "id": b.id,
                    "depot": self.depot.id,
                    "driver": b.driver,
                    "route": b.route,
                    "devices": {
                        "telematics": b.telematics,
                        "door_reader": b.door_reader,
                        "cabin_scanner": b.cabin_scanner,
                        "presence": [b.presence] if b.presence else [],
                        "gateway": b.gateway,
                    },
                }
                for b in self.buses
            ],
            "children": [
                {"id": c.id, "tags": [c.tag], "school": c.school, "bus": c.bus, "stop": c.stop}
                for c in self.children
            ],
            "guardians": [{"id": g.id, "children": list(g.children)} for g in self.guardians],
        }


def _tag(rng: random.Random) -> str:
    return "E28011" + f"{rng.getrandbits(72):018X}"


def build_world(config: SchoolBusSimConfig) -> World:
    """The town for ``config.seed``: the same seed gives the same town."""
    rng = random.Random(f"school-bus:{config.seed}:world")
    n_buses = config.buses if config.buses is not None else rng.randint(2, 6)
    depot = SimPlace("depot-1", "Depot", Point(0.0, 0.0))
    taken: list[Point] = [depot.at]

    def free_point(radius: float, angle: float, spread: float) -> Point:
        for _ in range(200):
            r = radius * rng.uniform(0.9, 1.1)
            a = angle + rng.uniform(-spread, spread)
            p = Point(r * math.cos(a), r * math.sin(a))
            if all(p.distance(q) >= MIN_PLACE_GAP_M for q in taken):
                taken.append(p)
                return p
            radius += 40.0
        raise RuntimeError("the town is too crowded")  # not reached with these sizes

    n_schools = 1 if n_buses <= 3 else 2
    schools = tuple(
        SimPlace(
            f"school-{i + 1}",
            f"School {i + 1}",
            free_point(rng.uniform(2000, 3000), math.tau * i / n_schools + 0.4, 0.3),
        )
        for i in range(n_schools)
    )
    buses: list[SimBus] = []
    children: list[SimChild] = []
    guardians: list[SimGuardian] = []
    families: list[list[str]] = []  # guardian ids per family
    family_children: list[list[str]] = []
    for i in range(n_buses):
        bus_id = f"bus-{i + 1}"
        sector = math.tau * i / n_buses
        n_stops = rng.randint(5, 15)
        stops = tuple(
            SimPlace(
                f"{bus_id}-stop-{j + 1:02d}",
                f"Stop {j + 1} of {bus_id}",
                free_point(900 + j * rng.uniform(380, 520), sector, 0.35),
            )
            for j in range(n_stops)
        )
        school = schools[i % n_schools]
        presence = None
        if config.presence_sensors:
            presence = f"{bus_id}-cam" if i % 2 == 0 else f"{bus_id}-radar"
        buses.append(
            SimBus(
                id=bus_id,
                index=i,
                driver=f"driver-{i + 1}",
                route=f"route-{i + 1}",
                school=school,
                stops=stops,
                telematics=f"{bus_id}-gps",
                door_reader=f"{bus_id}-door",
                cabin_scanner=f"{bus_id}-cabin",
                presence=presence,
                gateway=f"{bus_id}-edge",
                slot=Point(-40.0 + 8.0 * i, 20.0),
            )
        )
        n_children = max(10, min(40, rng.randint(10, 40)))
        per_stop = [1] * min(n_stops, n_children)
        per_stop += [0] * (n_stops - len(per_stop))
        for _ in range(n_children - sum(per_stop)):
            per_stop[rng.randrange(n_stops)] += 1
        for stop, count in zip(stops, per_stop, strict=True):
            left = count
            while left > 0:
                size = min(left, rng.choice((1, 1, 1, 2, 2, 3)))
                left -= size
                family = len(families)
                ids = []
                for _ in range(size):
                    child_id = f"c-{len(children) + 1:04d}"
                    ids.append(child_id)
                    children.append(
                        SimChild(child_id, _tag(rng), school.id, bus_id, stop.id, family)
                    )
                n_parents = 2 if rng.random() < 0.7 else 1
                families.append([f"g-{family + 1:04d}-{p + 1}" for p in range(n_parents)])
                family_children.append(ids)
    # blended families: a step-parent is also a guardian of another family's children
    extra: dict[str, list[str]] = {}
    for f in range(len(families)):
        if len(families) > 1 and rng.random() < 0.05:
            other = rng.randrange(len(families) - 1)
            other += other >= f
            step = families[other][0]
            extra.setdefault(step, []).extend(family_children[f])
    for index, parents in enumerate(families):
        for guardian in parents:
            own = family_children[index]
            kids = tuple(dict.fromkeys([*own, *extra.get(guardian, [])]))
            guardians.append(SimGuardian(guardian, kids))
    visitor_tags = tuple(_tag(rng) for _ in range(20))
    depot_tags = tuple(_tag(rng) for _ in range(3))
    return World(
        tenant=config.tenant,
        depot=depot,
        schools=schools,
        buses=tuple(buses),
        children=tuple(children),
        guardians=tuple(guardians),
        visitor_tags=visitor_tags,
        depot_tags=depot_tags,
    )
