"""The school-bus fleet from YAML: depots, schools, routes with stops, buses and their
devices, children with tags, guardians.

The file stands alone (the safety core needs nothing else); ``iotmon bus import`` copies
its children and guardians into the registry for the API's guardian scopes. Errors name
the file, the key path and the line, including broken cross-references.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from iotmon_contract.events import TAG_PATTERN
from iotmon_contract.topics import IDENTIFIER_PATTERN
from iotmon_runtime.config_files import ConfigError, describe_config_error, parse_yaml_model

Id = Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]
Tag = Annotated[str, Field(pattern=TAG_PATTERN)]
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]


class _FleetModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlaceSpec(_FleetModel):
    id: Id = Field(description="Unique among the fleet's depots, schools and stops.")
    name: str = Field(default="", max_length=200, description="For people.")
    lat: Latitude = Field(description="Latitude, WGS 84 degrees.")
    lon: Longitude = Field(description="Longitude, WGS 84 degrees.")


class DepotSpec(PlaceSpec):
    radius_m: float = Field(
        default=150.0,
        gt=0,
        le=5000,
        description="Ignition off within this distance of the depot ends a run.",
    )


class RouteSpec(_FleetModel):
    id: Id = Field(description="Route id.")
    school: Id = Field(description="The school the route serves (a schools[] id).")
    stops: list[PlaceSpec] = Field(
        min_length=1, max_length=200, description="Stops in the order the bus calls at them."
    )


class BusDevicesSpec(_FleetModel):
    telematics: Id = Field(
        description="Sends ignition, position, run_start/run_end and the walk-through check."
    )
    door_reader: Id = Field(description="Reads tags passing the door (tag_read).")
    cabin_scanner: Id | None = Field(
        default=None, description="Sweeps the cabin for tags (sweep_read, sweep_complete)."
    )
    presence: list[Id] = Field(
        default_factory=list,
        max_length=8,
        description="Cabin cameras or presence radars reporting occupancy.",
    )
    gateway: Id | None = Field(
        default=None,
        description="The bus's edge agent: while it is offline, so are the readers behind it.",
    )


class BusSpec(_FleetModel):
    id: Id = Field(description="Bus (vehicle) id.")
    depot: Id = Field(description="Where the bus parks (a depots[] id).")
    driver: Id = Field(description="The driver's id, for the driver's notifications.")
    route: Id = Field(description="The route the bus drives (a routes[] id).")
    devices: BusDevicesSpec = Field(description="The bus's devices by role.")


class ChildSpec(_FleetModel):
    id: Id = Field(description="Child id.")
    name: str = Field(default="", max_length=200, description="For people.")
    tags: list[Tag] = Field(min_length=1, max_length=8, description="Tags the child carries.")
    school: Id = Field(description="The child's school (a schools[] id).")
    bus: Id | None = Field(default=None, description="The bus the child is assigned to.")
    stop: Id | None = Field(default=None, description="The child's stop on that bus's route.")


class GuardianSpec(_FleetModel):
    id: Id = Field(description="Guardian id.")
    name: str = Field(default="", max_length=200, description="For people.")
    children: list[Id] = Field(
        min_length=1, max_length=50, description="Children this guardian is told about."
    )


class FleetDocument(_FleetModel):
    """The fleet file as written."""

    version: Literal[1] = Field(default=1, description="Fleet file format version.")
    tenant: Id = Field(description="Tenant the fleet's devices publish under.")
    operator: Id = Field(default="operator", description="The operator's (dispatch's) id.")
    timezone: str = Field(default="UTC", description="IANA zone for times shown to people.")
    depots: list[DepotSpec] = Field(min_length=1, description="Depots.")
    schools: list[PlaceSpec] = Field(min_length=1, description="Schools.")
    routes: list[RouteSpec] = Field(min_length=1, description="Routes.")
    buses: list[BusSpec] = Field(min_length=1, description="Buses.")
    children: list[ChildSpec] = Field(default_factory=list, description="Children.")
    guardians: list[GuardianSpec] = Field(default_factory=list, description="Guardians.")


# -- the fleet as the core reads it ------------------------------------------------


class PlaceKind(StrEnum):
    DEPOT = "depot"
    SCHOOL = "school"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class Place:
    id: str
    kind: PlaceKind
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Depot:
    place: Place
    radius_m: float


class DeviceRole(StrEnum):
    TELEMATICS = "telematics"
    DOOR_READER = "door_reader"
    CABIN_SCANNER = "cabin_scanner"
    PRESENCE = "presence"
    GATEWAY = "gateway"


READER_ROLES = frozenset({DeviceRole.DOOR_READER, DeviceRole.CABIN_SCANNER, DeviceRole.GATEWAY})
"""Devices whose outage leaves the bus's occupancy unknown."""


@dataclass(frozen=True, slots=True)
class Bus:
    id: str
    driver: str
    route: str
    school: str
    depot: Depot
    places: tuple[Place, ...]
    """Where a passage can happen: the route's stops, its school and the depot."""
    door_reader: str
    cabin_scanner: str | None
    telematics: str
    presence: frozenset[str]
    gateway: str | None

    @property
    def readers(self) -> tuple[str, ...]:
        """Devices whose availability decides whether occupancy is known."""
        found = [self.door_reader]
        if self.cabin_scanner is not None:
            found.append(self.cabin_scanner)
        if self.gateway is not None:
            found.append(self.gateway)
        return tuple(found)


@dataclass(frozen=True, slots=True)
class BusDevice:
    bus: str
    roles: frozenset[DeviceRole]


@dataclass(frozen=True, slots=True)
class Child:
    id: str
    school: str
    tags: tuple[str, ...]
    guardians: tuple[str, ...]
    """Every guardian of the child, sorted: all of them are told, and nobody else."""
    bus: str | None
    stop: str | None


@dataclass(frozen=True, slots=True)
class Fleet:
    """Indexes over a validated fleet document; build with ``Fleet.from_document``."""

    tenant: str
    operator: str
    timezone: str
    buses: dict[str, Bus]
    devices: dict[str, BusDevice]
    children: dict[str, Child]
    tags: dict[str, Child]
    document: FleetDocument

    @classmethod
    def from_document(cls, document: FleetDocument) -> Fleet:
        problems = list(_reference_problems(document))
        if problems:
            raise FleetError([f"{'.'.join(map(str, path))}: {text}" for path, text in problems])
        depots = {
            d.id: Depot(Place(d.id, PlaceKind.DEPOT, d.lat, d.lon), d.radius_m)
            for d in document.depots
        }
        schools = {s.id: Place(s.id, PlaceKind.SCHOOL, s.lat, s.lon) for s in document.schools}
        routes = {r.id: r for r in document.routes}
        buses: dict[str, Bus] = {}
        devices: dict[str, BusDevice] = {}
        for spec in document.buses:
            route = routes[spec.route]
            depot = depots[spec.depot]
            places = (
                *(Place(s.id, PlaceKind.STOP, s.lat, s.lon) for s in route.stops),
                schools[route.school],
                depot.place,
            )
            d = spec.devices
            buses[spec.id] = Bus(
                id=spec.id,
                driver=spec.driver,
                route=route.id,
                school=route.school,
                depot=depot,
                places=places,
                door_reader=d.door_reader,
                cabin_scanner=d.cabin_scanner,
                telematics=d.telematics,
                presence=frozenset(d.presence),
                gateway=d.gateway,
            )
            for device, roles in _device_roles(d).items():
                devices[device] = BusDevice(spec.id, frozenset(roles))
        guardians_of: dict[str, list[str]] = {}
        for guardian in document.guardians:
            for child_id in guardian.children:
                guardians_of.setdefault(child_id, []).append(guardian.id)
        children = {
            c.id: Child(
                id=c.id,
                school=c.school,
                tags=tuple(c.tags),
                guardians=tuple(sorted(set(guardians_of.get(c.id, [])))),
                bus=c.bus,
                stop=c.stop,
            )
            for c in document.children
        }
        tags = {tag: child for child in children.values() for tag in child.tags}
        return cls(
            tenant=document.tenant,
            operator=document.operator,
            timezone=document.timezone,
            buses=buses,
            devices=devices,
            children=children,
            tags=tags,
            document=document,
        )


class FleetError(ValueError):
    """A fleet whose parts do not fit together; one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _device_roles(devices: BusDevicesSpec) -> dict[str, set[DeviceRole]]:
    roles: dict[str, set[DeviceRole]] = {}
    roles.setdefault(devices.telematics, set()).add(DeviceRole.TELEMATICS)
    roles.setdefault(devices.door_reader, set()).add(DeviceRole.DOOR_READER)
    if devices.cabin_scanner is not None:
        roles.setdefault(devices.cabin_scanner, set()).add(DeviceRole.CABIN_SCANNER)
    for device in devices.presence:
        roles.setdefault(device, set()).add(DeviceRole.PRESENCE)
    if devices.gateway is not None:
        roles.setdefault(devices.gateway, set()).add(DeviceRole.GATEWAY)
    return roles


KeyPath = tuple[str | int, ...]


def _reference_problems(doc: FleetDocument) -> Iterator[tuple[KeyPath, str]]:
    """Duplicate ids and references to nothing, each with the key path where it was written."""
    places: dict[str, KeyPath] = {}

    def place(path: KeyPath, place_id: str) -> Iterator[tuple[KeyPath, str]]:
        if place_id in places:
            where = ".".join(map(str, places[place_id]))
            yield path, f"place id {place_id!r} is already used at {where}"
        else:
            places[place_id] = path

    for i, depot in enumerate(doc.depots):
        yield from place(("depots", i, "id"), depot.id)
    for i, school in enumerate(doc.schools):
        yield from place(("schools", i, "id"), school.id)
    school_ids = {s.id for s in doc.schools}
    route_ids: set[str] = set()
    route_stops: dict[str, set[str]] = {}
    for i, route in enumerate(doc.routes):
        if route.id in route_ids:
            yield ("routes", i, "id"), f"route id {route.id!r} is defined twice"
        route_ids.add(route.id)
        if route.school not in school_ids:
            yield ("routes", i, "school"), f"no school {route.school!r} in schools"
        for j, stop in enumerate(route.stops):
            yield from place(("routes", i, "stops", j, "id"), stop.id)
        route_stops[route.id] = {s.id for s in route.stops}
    depot_ids = {d.id for d in doc.depots}
    bus_ids: set[str] = set()
    device_owner: dict[str, tuple[str, KeyPath]] = {}
    bus_route: dict[str, str] = {}
    for i, bus in enumerate(doc.buses):
        if bus.id in bus_ids:
            yield ("buses", i, "id"), f"bus id {bus.id!r} is defined twice"
        bus_ids.add(bus.id)
        bus_route[bus.id] = bus.route
        if bus.depot not in depot_ids:
            yield ("buses", i, "depot"), f"no depot {bus.depot!r} in depots"
        if bus.route not in route_ids:
            yield ("buses", i, "route"), f"no route {bus.route!r} in routes"
        for device in _device_roles(bus.devices):
            owner = device_owner.get(device)
            if owner is not None and owner[0] != bus.id:
                where = ".".join(map(str, owner[1]))
                yield (
                    ("buses", i, "devices"),
                    f"device {device!r} is already bus {owner[0]!r}'s ({where})",
                )
            else:
                device_owner[device] = (bus.id, ("buses", i, "devices"))
    child_ids: set[str] = set()
    tag_owner: dict[str, str] = {}
    for i, child in enumerate(doc.children):
        if child.id in child_ids:
            yield ("children", i, "id"), f"child id {child.id!r} is defined twice"
        child_ids.add(child.id)
        if child.school not in school_ids:
            yield ("children", i, "school"), f"no school {child.school!r} in schools"
        if child.bus is not None and child.bus not in bus_ids:
            yield ("children", i, "bus"), f"no bus {child.bus!r} in buses"
        if child.stop is not None:
            route_id = bus_route.get(child.bus or "")
            stops = route_stops.get(route_id or "")
            if child.bus is None:
                yield ("children", i, "stop"), "a stop needs the child's bus"
            elif stops is not None and child.stop not in stops:
                yield (
                    ("children", i, "stop"),
                    f"no stop {child.stop!r} on bus {child.bus!r}'s route",
                )
        for j, tag in enumerate(child.tags):
            if tag in tag_owner:
                yield (
                    ("children", i, "tags", j),
                    f"tag {tag!r} already belongs to child {tag_owner[tag]!r}",
                )
            else:
                tag_owner[tag] = child.id
    guardian_ids: set[str] = set()
    for i, guardian in enumerate(doc.guardians):
        if guardian.id in guardian_ids:
            yield ("guardians", i, "id"), f"guardian id {guardian.id!r} is defined twice"
        guardian_ids.add(guardian.id)
        for j, child_id in enumerate(guardian.children):
            if child_id not in child_ids:
                yield ("guardians", i, "children", j), f"no child {child_id!r} in children"
    try:
        ZoneInfo(doc.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        yield ("timezone",), f"unknown time zone {doc.timezone!r}"


def parse_fleet(text: str, source: str = "<fleet>") -> Fleet:
    """A fleet from YAML text; ConfigError naming ``source``, key path and line."""
    document = parse_yaml_model(text, FleetDocument, source=source)
    problems = list(_reference_problems(document))
    if not problems:
        return Fleet.from_document(document)
    details = [
        InitErrorDetails(type=PydanticCustomError("fleet_reference", text), loc=path, input=None)
        for path, text in problems
    ]
    error = ValidationError.from_exception_data("FleetDocument", details)
    data = yaml.safe_load(text)
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    raise ConfigError("\n".join(describe_config_error(error, data, root, source)))


def load_fleet(path: Path) -> Fleet:
    """A fleet from a YAML file; ConfigError naming file, key path and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_fleet(text, source=str(path))
