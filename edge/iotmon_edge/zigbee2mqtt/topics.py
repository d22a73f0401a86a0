"""What a topic under Zigbee2MQTT's base topic carries.

Friendly names may contain ``/`` ("kitchen/sink leak"), so a topic cannot be split
on it: the longest known friendly name the topic starts with decides, and what
follows it says what the message is (``/availability``, ``/set``, ``/get``, the Home
Assistant device trigger ``/action``, attribute output ``/<property>``). Zigbee2MQTT
refuses friendly names ending in ``/<digits>`` and starting or ending in ``/``;
``bridge/...`` is always the bridge's own traffic.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from enum import Enum

_COMMANDS = frozenset({"set", "get"})


class Route(Enum):
    BRIDGE_DEVICES = "bridge/devices"
    BRIDGE_GROUPS = "bridge/groups"
    BRIDGE_STATE = "bridge/state"
    BRIDGE_OTHER = "bridge/*"
    """info, log, logging, event, config, definitions, extensions, health, request, response."""
    STATE = "state"
    AVAILABILITY = "availability"
    DEVICE_OTHER = "device/*"
    """A known device's /set, /get, /action, attribute output or endpoint topic."""
    GROUP = "group"
    COMMAND = "command"
    """/set or /get of a name not known (yet): never state."""
    UNKNOWN_STATE = "unknown state"
    UNKNOWN_AVAILABILITY = "unknown availability"
    OUTSIDE = "outside"
    """Not under the base topic."""


@dataclass(frozen=True, slots=True)
class Routed:
    route: Route
    name: str | None = None
    """The friendly name (device or group) the topic belongs to, where there is one."""


def _longest_known(rest: str, names: Container[str]) -> tuple[str, str | None] | None:
    """(name, suffix) for the longest known name ``rest`` is or starts with (plus '/')."""
    if rest in names:
        return rest, None
    cut = rest.rfind("/")
    while cut > 0:
        prefix = rest[:cut]
        if prefix in names:
            return prefix, rest[cut + 1 :]
        cut = rest.rfind("/", 0, cut)
    return None


def route(topic: str, base: str, devices: Container[str], groups: Container[str]) -> Routed:
    """Classify ``topic`` given the friendly names of known devices and groups."""
    if not topic.startswith(base + "/"):
        return Routed(Route.OUTSIDE)
    rest = topic[len(base) + 1 :]
    if rest == "bridge" or rest.startswith("bridge/"):
        kind = {
            "bridge/devices": Route.BRIDGE_DEVICES,
            "bridge/groups": Route.BRIDGE_GROUPS,
            "bridge/state": Route.BRIDGE_STATE,
        }.get(rest, Route.BRIDGE_OTHER)
        return Routed(kind)
    device = _longest_known(rest, devices)
    if device is not None:
        name, suffix = device
        if suffix is None:
            return Routed(Route.STATE, name)
        if suffix == "availability":
            return Routed(Route.AVAILABILITY, name)
        return Routed(Route.DEVICE_OTHER, name)
    group = _longest_known(rest, groups)
    if group is not None:
        return Routed(Route.GROUP, group[0])
    levels = rest.split("/")
    if levels[-1] in _COMMANDS or (len(levels) > 1 and levels[-2] in _COMMANDS):
        return Routed(Route.COMMAND)
    if len(levels) > 1 and levels[-1] == "availability":
        return Routed(Route.UNKNOWN_AVAILABILITY, rest[: -len("/availability")])
    return Routed(Route.UNKNOWN_STATE, rest)


__all__ = ["Route", "Routed", "route"]
