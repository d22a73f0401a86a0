"""Routing under the base topic: friendly names with '/', bridge traffic, commands."""

from __future__ import annotations

import pytest

from iotmon_edge.zigbee2mqtt.topics import Route, Routed, route

BASE = "zigbee2mqtt"
DEVICES = {"kitchen", "kitchen/sink leak", "classroom 3", "classroom 3/voc", "Cellar TH"}
GROUPS = {"living/lights"}


@pytest.mark.parametrize(
    ("rest", "expected"),
    [
        ("kitchen", Routed(Route.STATE, "kitchen")),
        ("kitchen/sink leak", Routed(Route.STATE, "kitchen/sink leak")),
        ("kitchen/sink leak/availability", Routed(Route.AVAILABILITY, "kitchen/sink leak")),
        ("kitchen/availability", Routed(Route.AVAILABILITY, "kitchen")),
        ("classroom 3/voc", Routed(Route.STATE, "classroom 3/voc")),
        ("classroom 3/availability", Routed(Route.AVAILABILITY, "classroom 3")),
        ("kitchen/set", Routed(Route.DEVICE_OTHER, "kitchen")),
        ("kitchen/sink leak/set/state", Routed(Route.DEVICE_OTHER, "kitchen/sink leak")),
        ("kitchen/get", Routed(Route.DEVICE_OTHER, "kitchen")),
        ("kitchen/action", Routed(Route.DEVICE_OTHER, "kitchen")),
        ("kitchen/temperature", Routed(Route.DEVICE_OTHER, "kitchen")),
        ("bridge/devices", Routed(Route.BRIDGE_DEVICES)),
        ("bridge/groups", Routed(Route.BRIDGE_GROUPS)),
        ("bridge/state", Routed(Route.BRIDGE_STATE)),
        ("bridge/request/device/rename", Routed(Route.BRIDGE_OTHER)),
        ("bridge/response/device/rename", Routed(Route.BRIDGE_OTHER)),
        ("bridge/log", Routed(Route.BRIDGE_OTHER)),
        ("bridge", Routed(Route.BRIDGE_OTHER)),
        ("living/lights", Routed(Route.GROUP, "living/lights")),
        ("living/lights/set", Routed(Route.GROUP, "living/lights")),
        ("new/device", Routed(Route.UNKNOWN_STATE, "new/device")),
        ("new/device/availability", Routed(Route.UNKNOWN_AVAILABILITY, "new/device")),
        ("new/device/set", Routed(Route.COMMAND)),
        ("new/device/set/state", Routed(Route.COMMAND)),
        ("new/device/get", Routed(Route.COMMAND)),
        ("availability", Routed(Route.UNKNOWN_STATE, "availability")),
        ("cellar th", Routed(Route.UNKNOWN_STATE, "cellar th")),
    ],
)
def test_route(rest: str, expected: Routed) -> None:
    assert route(f"{BASE}/{rest}", BASE, DEVICES, GROUPS) == expected


def test_other_base_topics_are_outside() -> None:
    assert route("zigbee2mqtt-2/kitchen", BASE, DEVICES, GROUPS).route is Route.OUTSIDE
    assert route("home/zigbee/kitchen", "home/zigbee", DEVICES, GROUPS) == Routed(
        Route.STATE, "kitchen"
    )
