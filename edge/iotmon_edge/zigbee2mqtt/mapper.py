"""Zigbee2MQTT messages in, contract readings, actions and availability out (pure: no I/O).

``Zigbee2MqttMapper.handle(topic, payload, received)`` takes one message from
Zigbee2MQTT's base topic and returns what the agent publishes for it:

* device state JSON → one ``DeviceReading`` per numeric or binary property (JSON
  true/false as 1/0, so ``contact`` 1 is a closed contact; a binary the exposes give
  as text, like a plug's ``state`` ON/OFF, as 1 for ``value_on``), units converted
  per ``units``; timestamped with ``last_seen`` when readable and plausible, else the
  time of receipt. Enums, text, objects and the ``null`` placeholders of Home
  Assistant mode are not readings and are skipped.
* a non-empty ``action`` → an ``ActionRecord`` (the contract's ``action`` event).
* availability (``online``/``offline`` as 1.x text or 2.x JSON) and the bridge's own
  ``bridge/state`` → an ``AvailabilityRecord`` when a device's availability changes.

Devices are keyed on their IEEE address; the friendly name only routes topics.
Messages for a name ``bridge/devices`` does not describe (yet) wait, bounded in
number and age, and are handled when it does; a device gone from ``bridge/devices``
is marked offline and forgotten. A bad payload is counted and logged and costs only
itself.
"""

from __future__ import annotations

import json
import logging
import re
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from iotmon_contract import PRINTABLE_PATTERN, DeviceState
from iotmon_devices import DeviceReading
from iotmon_edge.zigbee2mqtt.config import Zigbee2MqttConfig
from iotmon_edge.zigbee2mqtt.devices import ExposeKind, ZigbeeDevice, parse_devices
from iotmon_edge.zigbee2mqtt.timestamps import TimestampSource, reading_time
from iotmon_edge.zigbee2mqtt.topics import Route, route
from iotmon_edge.zigbee2mqtt.units import PROPERTY_ALIASES, convert, metric_name

logger = logging.getLogger(__name__)

_PRINTABLE = re.compile(PRINTABLE_PATTERN)
_MAX_ACTION_CHARS = 64
_NOT_READINGS = frozenset({"last_seen", "elapsed", "device", "action", "click"})
"""Properties that are not measurements: timestamps, Zigbee2MQTT's include_device_information
block, and actions (``action`` is an event; ``click`` is its 1.x legacy duplicate)."""
_EXCERPT = 200


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """A button or remote action of a device: the contract's ``action`` event."""

    device: str
    action: str
    ts: datetime


@dataclass(frozen=True, slots=True)
class AvailabilityRecord:
    device: str
    state: DeviceState
    ts: datetime


BridgeOutput = DeviceReading | ActionRecord | AvailabilityRecord


@dataclass(frozen=True, slots=True)
class BridgeStats:
    messages: int
    """Messages received under the base topic."""
    states: int
    """Device state messages mapped."""
    readings: int
    actions: int
    statuses: int
    """Availability changes emitted."""
    ignored: int
    """Not device state: bridge traffic, /set, /get, groups, retained clears, triggers."""
    pending: int
    """Messages waiting for bridge/devices to describe their device (now)."""
    unmapped: int
    """Messages dropped because no device ever matched their topic in time."""
    bad_payloads: int
    bad_values: int
    """Properties skipped: a binary value matching neither value_on nor value_off, an
    action that is not printable text, a number that is not finite."""
    repeated: int
    """State messages with the same last_seen and content as the previous one (Home
    Assistant's action clearing, a /get): no new readings."""
    timestamp_fallbacks: int
    """Readings stamped with the receive time although the message had a last_seen."""
    devices: int
    renames: int
    model_changes: int
    removals: int


class _Pending(NamedTuple):
    topic: str
    payload: bytes
    received: datetime


class _LastState(NamedTuple):
    last_seen: object
    content: dict[str, Any]


class Zigbee2MqttMapper:
    """The bridge's state: known devices, their availability, what waits for bridge/devices."""

    def __init__(self, config: Zigbee2MqttConfig) -> None:
        self._config = config
        self._base = config.base_topic
        self._max_age = timedelta(seconds=config.last_seen_max_age_s)
        self._max_ahead = timedelta(seconds=config.last_seen_max_ahead_s)
        self._pending_age = timedelta(seconds=config.pending_max_age_s)
        self._devices: dict[str, ZigbeeDevice] = {}
        self._names: dict[str, str] = {}
        self._groups: set[str] = set()
        self._bridge_online: bool | None = None
        self._availability: dict[str, DeviceState] = {}
        self._heard: set[str] = set()
        self._published: dict[str, DeviceState] = {}
        self._last_state: dict[str, _LastState] = {}
        self._pending: deque[_Pending] = deque()
        self._counts = dict.fromkeys(
            (f for f in BridgeStats.__slots__ if f not in ("pending", "devices")), 0
        )

    # -- what the agent asks -----------------------------------------------------------

    def stats(self) -> BridgeStats:
        return BridgeStats(
            **self._counts, pending=len(self._pending), devices=len(self._devices)
        )  # fmt: skip

    @property
    def device_ids(self) -> list[str]:
        return [self._config.device_id(ieee) for ieee in self._devices]

    def statuses(self, now: datetime) -> list[AvailabilityRecord]:
        """Every device's current availability, as last emitted (for a re-announce)."""
        return [AvailabilityRecord(device, state, now) for device, state in self._published.items()]

    def shutdown(self, now: datetime) -> list[AvailabilityRecord]:
        """Offline for every device published online: nobody relays them any more."""
        records = [
            AvailabilityRecord(device, DeviceState.OFFLINE, now)
            for device, state in self._published.items()
            if state is DeviceState.ONLINE
        ]
        for record in records:
            self._published[record.device] = DeviceState.OFFLINE
        return records

    def expire(self, now: datetime) -> None:
        """Drop waiting messages older than pending_max_age_s."""
        while self._pending and now - self._pending[0].received > self._pending_age:
            self._drop_pending(self._pending.popleft(), "no device with that name appeared")

    # -- one message -------------------------------------------------------------------

    def handle(self, topic: str, payload: bytes, received: datetime) -> list[BridgeOutput]:
        """What to publish for one message from Zigbee2MQTT (never raises for bad input)."""
        self._count(messages=1)
        out: list[BridgeOutput] = []
        if len(payload) > self._config.max_payload_bytes:
            self._bad(topic, payload, f"payload over {self._config.max_payload_bytes} bytes")
            return out
        self.expire(received)
        self._dispatch(topic, payload, received, out)
        return out

    def _dispatch(
        self, topic: str, payload: bytes, received: datetime, out: list[BridgeOutput]
    ) -> None:
        routed = route(topic, self._base, self._names, self._groups)
        kind = routed.route
        if kind is Route.BRIDGE_DEVICES:
            self._bridge_devices(topic, payload, received, out)
        elif kind is Route.BRIDGE_GROUPS:
            self._bridge_groups(topic, payload)
        elif kind is Route.BRIDGE_STATE:
            self._bridge_state(topic, payload, received, out)
        elif kind is Route.STATE and routed.name is not None:
            self._state(self._names[routed.name], topic, payload, received, out)
        elif kind is Route.AVAILABILITY and routed.name is not None:
            self._device_availability(self._names[routed.name], topic, payload, received, out)
        elif kind in (Route.UNKNOWN_STATE, Route.UNKNOWN_AVAILABILITY):
            self._wait(topic, payload, received, kind)
        else:
            self._count(ignored=1)

    # -- bridge topics -------------------------------------------------------------------

    def _bridge_devices(
        self, topic: str, payload: bytes, received: datetime, out: list[BridgeOutput]
    ) -> None:
        if not payload:
            # A cleared retained message (a bridge taken down, a test rig tidying up):
            # no news about the devices, so the ones known are kept.
            self._count(ignored=1)
            return
        try:
            listed = parse_devices(json.loads(payload))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            self._bad(topic, payload, str(exc))
            return
        for reason in listed.skipped:
            self._count(bad_values=1)
            logger.warning("zigbee2mqtt: bridge/devices entry skipped: %s", reason)
        current = {device.ieee: device for device in listed.devices}
        for ieee, old in self._devices.items():
            new = current.get(ieee)
            if new is None:
                self._count(removals=1)
                logger.info(
                    "zigbee2mqtt: %s (0x%s) left bridge/devices", old.friendly_name, ieee
                )  # fmt: skip
                self._forget(ieee, received, out)
                continue
            if new.friendly_name != old.friendly_name:
                self._count(renames=1)
                logger.info(
                    "zigbee2mqtt: 0x%s renamed %r -> %r", ieee, old.friendly_name, new.friendly_name
                )
            if new.model != old.model:
                self._count(model_changes=1)
                logger.info("zigbee2mqtt: 0x%s model %s -> %s", ieee, old.model, new.model)
        self._devices = current
        self._names = {device.friendly_name: device.ieee for device in listed.devices}
        self._replay_pending(out)

    def _forget(self, ieee: str, now: datetime, out: list[BridgeOutput]) -> None:
        device = self._config.device_id(ieee)
        if self._published.get(device) is DeviceState.ONLINE:
            out.append(AvailabilityRecord(device, DeviceState.OFFLINE, now))
            self._count(statuses=1)
        self._published.pop(device, None)
        self._availability.pop(ieee, None)
        self._heard.discard(ieee)
        self._last_state.pop(ieee, None)

    def _bridge_groups(self, topic: str, payload: bytes) -> None:
        if not payload:
            self._count(ignored=1)  # cleared, as bridge/devices above
            return
        try:
            document = json.loads(payload)
            if not isinstance(document, list):
                raise ValueError(f"bridge/groups is a {type(document).__name__}, not a list")
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            self._bad(topic, payload, str(exc))
            return
        self._groups = {
            group["friendly_name"]
            for group in document
            if isinstance(group, dict) and isinstance(group.get("friendly_name"), str)
        }

    def _bridge_state(
        self, topic: str, payload: bytes, received: datetime, out: list[BridgeOutput]
    ) -> None:
        if not payload:
            self._count(ignored=1)
            return
        state = self._availability_state(topic, payload)
        if state is None:
            return
        self._bridge_online = state is DeviceState.ONLINE
        for ieee in self._devices:
            self._update_status(ieee, received, out)

    # -- device topics -------------------------------------------------------------------

    def _device_availability(
        self, ieee: str, topic: str, payload: bytes, received: datetime, out: list[BridgeOutput]
    ) -> None:
        if not payload:
            # A cleared retained message (rename, remove): no news about the device.
            self._count(ignored=1)
            return
        state = self._availability_state(topic, payload)
        if state is None:
            return
        self._availability[ieee] = state
        self._update_status(ieee, received, out)

    def _availability_state(self, topic: str, payload: bytes) -> DeviceState | None:
        """``online``/``offline`` as 1.x plain text or 2.x ``{"state": ...}``."""
        text = payload.strip()
        if text in (b"online", b"offline"):
            return DeviceState(text.decode())
        try:
            document = json.loads(text)
        except (ValueError, UnicodeDecodeError, RecursionError):
            document = None
        state = document.get("state") if isinstance(document, dict) else None
        if state in ("online", "offline"):
            return DeviceState(state)
        self._bad(topic, payload, 'availability is neither online/offline nor {"state": ...}')
        return None

    def _update_status(self, ieee: str, now: datetime, out: list[BridgeOutput]) -> None:
        state = self._effective(ieee)
        device = self._config.device_id(ieee)
        if state is None or self._published.get(device) is state:
            return
        self._published[device] = state
        out.append(AvailabilityRecord(device, state, now))
        self._count(statuses=1)

    def _effective(self, ieee: str) -> DeviceState | None:
        """Offline with the bridge; else what Zigbee2MQTT says; else online once heard.

        Zigbee2MQTT 2.x publishes no availability unless ``availability.enabled``: a
        device it has relayed state for counts as online then."""
        if self._bridge_online is False:
            return DeviceState.OFFLINE
        known = self._availability.get(ieee)
        if known is not None:
            return known
        return DeviceState.ONLINE if ieee in self._heard else None

    def _state(
        self, ieee: str, topic: str, payload: bytes, received: datetime, out: list[BridgeOutput]
    ) -> None:
        if not payload:
            self._count(ignored=1)  # a cleared retained state (rename, remove)
            return
        try:
            document = json.loads(payload)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            self._bad(topic, payload, f"state is not JSON: {exc}")
            return
        if not isinstance(document, dict):
            self._bad(topic, payload, f"state is a {type(document).__name__}, not an object")
            return
        device = self._devices[ieee]
        device_id = self._config.device_id(ieee)
        self._count(states=1)
        when = reading_time(
            document.get("last_seen"), received, max_age=self._max_age, max_ahead=self._max_ahead
        )
        if when.source in (TimestampSource.UNREADABLE, TimestampSource.IMPLAUSIBLE):
            self._count(timestamp_fallbacks=1)
        action = document.get("action")
        if action is not None and action != "":
            self._action(device_id, action, when.ts, topic, out)
        self._heard.add(ieee)
        self._update_status(ieee, received, out)
        if self._repeats(ieee, document):
            self._count(repeated=1)
            return
        for prop, value in document.items():
            if prop in _NOT_READINGS or prop.startswith("action_") or value is None:
                continue
            reading = self._reading(device, device_id, prop, value, when.ts)
            if reading is not None:
                out.append(reading)
                self._count(readings=1)

    def _repeats(self, ieee: str, document: dict[str, Any]) -> bool:
        """Same last_seen and content as the previous message (actions aside)."""
        content = {
            key: value
            for key, value in document.items()
            if key not in ("action", "click") and not key.startswith("action_")
        }
        last_seen = document.get("last_seen")
        previous = self._last_state.get(ieee)
        self._last_state[ieee] = _LastState(last_seen, content)
        return (
            last_seen is not None
            and previous is not None
            and previous.last_seen == last_seen
            and previous.content == content
        )

    def _action(
        self, device: str, action: object, ts: datetime, topic: str, out: list[BridgeOutput]
    ) -> None:
        if isinstance(action, int | float) and not isinstance(action, bool):
            action = str(action)
        if (
            not isinstance(action, str)
            or len(action) > _MAX_ACTION_CHARS
            or not _PRINTABLE.match(action)
        ):
            self._count(bad_values=1)
            logger.warning("zigbee2mqtt: action %.80r on %s is not printable text", action, topic)
            return
        out.append(ActionRecord(device, action, ts))
        self._count(actions=1)

    def _reading(
        self, device: ZigbeeDevice, device_id: str, prop: str, value: object, ts: datetime
    ) -> DeviceReading | None:
        expose = device.exposes.get(prop)
        if isinstance(value, bool):
            # The payload's truth value, whatever the exposes call "on": contact 1 is
            # contact: true, a closed door (Zigbee2MQTT's value_on for contact is false).
            return self._binary(device_id, prop, float(value), ts)
        if expose is not None and expose.kind is ExposeKind.BINARY:
            if value == expose.value_on:
                return self._binary(device_id, prop, 1.0, ts)
            if value == expose.value_off:
                return self._binary(device_id, prop, 0.0, ts)
            self._count(bad_values=1)
            return None
        if not isinstance(value, int | float):
            return None  # enums, text, objects: not readings
        unit = expose.unit if expose is not None and expose.kind is ExposeKind.NUMERIC else None
        try:
            converted = convert(prop, float(value), unit)
        except OverflowError:  # an integer too large for a float
            converted = None
        if converted is None:
            self._count(bad_values=1)
            return None
        return DeviceReading(device_id, converted.metric, converted.value, converted.unit, ts)

    def _binary(self, device: str, prop: str, value: float, ts: datetime) -> DeviceReading | None:
        metric = metric_name(PROPERTY_ALIASES.get(prop, prop))
        if metric is None:
            self._count(bad_values=1)
            return None
        return DeviceReading(device, metric, value, None, ts)

    # -- waiting for bridge/devices --------------------------------------------------

    def _wait(self, topic: str, payload: bytes, received: datetime, kind: Route) -> None:
        if kind is Route.UNKNOWN_STATE and payload and not payload.lstrip().startswith(b"{"):
            # Attribute output or a device trigger of a device not known yet: not state.
            self._count(ignored=1)
            return
        if len(self._pending) >= self._config.pending_max_messages:
            self._drop_pending(self._pending.popleft(), "too many messages waiting")
        self._pending.append(_Pending(topic, payload, received))

    def _replay_pending(self, out: list[BridgeOutput]) -> None:
        waiting, self._pending = self._pending, deque()
        for message in waiting:
            # Still unknown: it goes back in the queue, in order, with its first receipt.
            self._dispatch(message.topic, message.payload, message.received, out)

    def _drop_pending(self, message: _Pending, why: str) -> None:
        self._count(unmapped=1)
        logger.warning(
            "zigbee2mqtt: dropped a message on %s: %s (bridge/devices must be retained, "
            "Zigbee2MQTT's default, for the bridge to map devices)",
            message.topic[:_EXCERPT],
            why,
        )

    # -- counting ------------------------------------------------------------------------

    def _bad(self, topic: str, payload: bytes, why: str) -> None:
        self._count(bad_payloads=1)
        logger.warning(
            "zigbee2mqtt: bad payload on %s (%s): %r",
            topic[:_EXCERPT],
            why[:_EXCERPT],
            payload[:_EXCERPT],
        )

    def _count(self, **increments: int) -> None:
        for name, value in increments.items():
            self._counts[name] += value


__all__ = [
    "ActionRecord",
    "AvailabilityRecord",
    "BridgeOutput",
    "BridgeStats",
    "Zigbee2MqttMapper",
]
