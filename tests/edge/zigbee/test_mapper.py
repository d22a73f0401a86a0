"""The mapper on what Zigbee2MQTT 1.x and 2.x publish (fixtures from the real converters)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iotmon_contract import ActionEvent, DeviceState, SingleReading
from iotmon_devices import DeviceReading
from iotmon_edge.zigbee2mqtt import (
    ActionRecord,
    AvailabilityRecord,
    BridgeOutput,
    Zigbee2MqttConfig,
    Zigbee2MqttMapper,
)
from iotmon_edge.zigbee2mqtt.timestamps import parse_last_seen
from tests.edge.zigbee.fixtures import GENERATIONS, Fixture, Message, load

NOT_READINGS = {"last_seen", "action", "click", "device", "elapsed"}
BEFORE_RENAME = (
    "startup",
    "last_seen",
    "homeassistant",
    "state_before_devices",
    "noise",
    "bridge_restart",
)
"""The generator's scenarios in the order it made them, up to the rename."""


def _mapper(**overrides: Any) -> Zigbee2MqttMapper:
    return Zigbee2MqttMapper(Zigbee2MqttConfig(**overrides))


def _replay(mapper: Zigbee2MqttMapper, messages: Iterable[Message]) -> list[BridgeOutput]:
    out: list[BridgeOutput] = []
    for message in messages:
        out += mapper.handle(message.topic, message.payload, message.received)
    return out


def _per_message(
    mapper: Zigbee2MqttMapper, messages: Iterable[Message]
) -> list[tuple[Message, list[BridgeOutput]]]:
    return [(m, mapper.handle(m.topic, m.payload, m.received)) for m in messages]


def _readings(outputs: Iterable[BridgeOutput], device: str | None = None) -> list[DeviceReading]:
    return [
        o for o in outputs if isinstance(o, DeviceReading) and device in (None, o.device)
    ]  # fmt: skip


def _statuses(outputs: Iterable[BridgeOutput]) -> list[AvailabilityRecord]:
    return [o for o in outputs if isinstance(o, AvailabilityRecord)]


def _actions(outputs: Iterable[BridgeOutput]) -> list[ActionRecord]:
    return [o for o in outputs if isinstance(o, ActionRecord)]


def _one(readings: Sequence[DeviceReading], metric: str) -> DeviceReading:
    (reading,) = [r for r in readings if r.metric == metric]
    return reading


def _is_reading_value(fixture: Fixture, key: str, prop: str, value: object) -> bool:
    """What the tests count as a reading: a bool, a number, or either value of a binary
    expose (a plug's state ON/OFF)."""
    if isinstance(value, bool | int | float):
        return True
    expose = fixture.expose(key, prop) or {}
    return expose.get("type") == "binary" and value in (expose["value_on"], expose["value_off"])


def _last_state(fixture: Fixture, key: str) -> tuple[Message, dict[str, Any]]:
    *_, message = fixture.state_messages(key, "startup")
    return message, message.document()


@pytest.mark.parametrize("generation", GENERATIONS)
def test_every_numeric_and_binary_property_of_every_state_message_is_a_reading(
    generation: str,
) -> None:
    fixture = load(generation)
    mapper = _mapper()
    names = {e.friendly_name: e for e in fixture.devices.values()}
    states = 0
    for message, outputs in _per_message(mapper, fixture.scenario("startup")):
        entry = names.get(message.topic.removeprefix("zigbee2mqtt/"))
        if entry is None:
            assert _readings(outputs) == []
            continue
        states += 1
        document = message.document()
        expected = {
            p
            for p, v in document.items()
            if p not in NOT_READINGS and _is_reading_value(fixture, entry.key, p, v)
        }
        readings = _readings(outputs)
        assert len(readings) == len(expected), (message.topic, document)
        assert {r.device for r in readings} <= {entry.device_id}
        # Zigbee2MQTT stamps last_seen when the message came in: it is the reading's time.
        assert {r.ts for r in readings} <= {parse_last_seen(document["last_seen"])}
        for reading in readings:
            SingleReading(
                metric=reading.metric, value=reading.value, unit=reading.unit, ts=reading.ts
            )
    assert states > 50
    stats = mapper.stats()
    assert (stats.bad_payloads, stats.bad_values, stats.unmapped) == (0, 0, 0)


@pytest.mark.parametrize("generation", GENERATIONS)
def test_each_category_maps_to_its_metrics_and_units(generation: str) -> None:
    fixture = load(generation)
    readings = _readings(_replay(_mapper(), fixture.scenario("startup")))

    def last(key: str) -> tuple[list[DeviceReading], dict[str, Any]]:
        _message, document = _last_state(fixture, key)
        ts = parse_last_seen(document["last_seen"])
        device = fixture.device(key).device_id
        return [r for r in readings if r.device == device and r.ts == ts], document

    # Contact: the payload's truth value (true: closed).
    for key in ("contact_aqara", "contact_sonoff"):
        got, doc = last(key)
        assert _one(got, "contact").value == float(doc["contact"])
        assert _one(got, "contact").unit is None
    # Occupancy and mmWave presence.
    got, doc = last("motion_hue")
    assert _one(got, "occupancy").value == float(doc["occupancy"])
    lux = doc["illuminance_lux"] if generation == "z2m1" else doc["illuminance"]
    assert (_one(got, "illuminance").value, _one(got, "illuminance").unit) == (lux, "lx")
    if generation == "z2m1":  # 1.x's unitless illuminance is the raw measured value
        assert _one(got, "illuminance_raw").value == doc["illuminance"]
    got, doc = last("radar_aqara_fp1")
    assert _one(got, "presence").value == float(doc["presence"])
    assert not [r for r in got if r.metric == "presence_event"]  # an enum, not a reading
    got, doc = last("radar_tuya")
    assert _one(got, "presence").value == float(doc["presence"])
    assert fixture.exposes_unit("radar_tuya", "target_distance") == "m"
    assert _one(got, "target_distance").value == doc["target_distance"]
    # Temperature, humidity, pressure; battery voltage in mV becomes V.
    got, doc = last("climate_aqara")
    assert fixture.exposes_unit("climate_aqara", "voltage") == "mV"
    assert _one(got, "voltage").value == doc["voltage"] / 1000
    assert _one(got, "voltage").unit == "V"
    assert _one(got, "temperature").unit == "degC"
    assert _one(got, "temperature").value == doc["temperature"]
    assert (_one(got, "humidity").value, _one(got, "humidity").unit) == (doc["humidity"], "%")
    assert fixture.exposes_unit("climate_aqara", "pressure") == "hPa"
    assert (_one(got, "pressure").value, _one(got, "pressure").unit) == (doc["pressure"], "hPa")
    if generation == "z2m2":  # the same property in kPa: stored in hPa
        got, doc = last("climate_yandex")
        assert fixture.exposes_unit("climate_yandex", "pressure") == "kPa"
        assert _one(got, "pressure").value == pytest.approx(doc["pressure"] * 10)
        assert _one(got, "pressure").unit == "hPa"
        assert _one(got, "temperature").value == doc["temperature"] < 0
    # CO2 and air quality.
    got, doc = last("co2_heiman")
    assert (_one(got, "co2").value, _one(got, "co2").unit) == (doc["co2"], "ppm")
    got, doc = last("voc_aqara")
    assert (_one(got, "voc").value, _one(got, "voc").unit) == (doc["voc"], "ppb")
    # Water leak and smoke.
    for key in ("leak_aqara", "leak_bosch"):
        got, doc = last(key)
        assert _one(got, "water_leak").value == float(doc["water_leak"])
    got, doc = last("smoke_heiman")
    assert _one(got, "smoke").value == float(doc["smoke"])
    # Plugs with metering: state ON/OFF as 1/0, power W, energy kWh, current A, voltage V.
    for key in ("plug_tuya", "plug_innr"):
        got, doc = last(key)
        assert _one(got, "state").value == (1.0 if doc["state"] == "ON" else 0.0)
        for metric, unit in (("power", "W"), ("energy", "kWh"), ("current", "A"), ("voltage", "V")):
            assert fixture.exposes_unit(key, metric) == unit
            assert (_one(got, metric).value, _one(got, metric).unit) == (doc[metric], unit)
    # A device no definition knows: the generated definition's exposes give the units.
    got, doc = last("unsupported_generated")
    assert (_one(got, "temperature").value, _one(got, "temperature").unit) == (
        doc["temperature"],
        "degC",
    )


@pytest.mark.parametrize("generation", GENERATIONS)
def test_actions_become_action_events_once(generation: str) -> None:
    """One event per press: not for Home Assistant's action clearing, nor for the device
    trigger republished on <name>/action (and 1.x's <name>/click)."""
    fixture = load(generation)
    mapper = _mapper()
    pressed = []
    actions = []
    for message, outputs in _per_message(mapper, fixture.scenario("startup", "homeassistant")):
        actions += _actions(outputs)
        if message.topic.endswith(("/action", "/click")):
            assert outputs == []
            continue
        try:
            document = message.document()
        except ValueError:
            continue
        if isinstance(document, dict) and document.get("action"):
            pressed.append((document["action"], parse_last_seen(document["last_seen"])))
    assert [(a.action, a.ts) for a in actions] == pressed
    assert {a.action for a in actions} == {"single", "double", "on", "off"}
    for action in actions:
        ActionEvent(type="action", ts=action.ts, seq=0, action=action.action)
    assert mapper.stats().repeated >= 4  # the clearing messages repeated the state


@pytest.mark.parametrize("generation", GENERATIONS)
def test_home_assistant_null_placeholders_are_not_readings(generation: str) -> None:
    fixture = load(generation)
    mapper = _mapper()
    _replay(mapper, fixture.scenario("startup"))
    plug = list(fixture.state_messages("plug_tuya", "homeassistant"))
    nulls = [p for m in plug for p, v in m.document().items() if v is None]
    assert "child_lock" in nulls  # Home Assistant mode filled them in
    outputs = _replay(mapper, plug)
    assert not {r.metric for r in _readings(outputs)} & set(nulls)
    assert mapper.stats().bad_values == 0


@pytest.mark.parametrize("generation", GENERATIONS)
def test_availability_text_and_json(generation: str) -> None:
    """1.x: plain online/offline (legacy_availability_payload); 2.x: {"state": ...}."""
    fixture = load(generation)
    availability = [m for m in fixture.scenarios["startup"] if m.topic.endswith("/availability")]
    payloads = {m.payload for m in availability}
    assert payloads == ({b"online"} if generation == "z2m1" else {b'{"state":"online"}'})
    statuses = _statuses(_replay(_mapper(), fixture.scenario("startup")))
    expected = {e.device_id for e in fixture.devices.values() if e.key != "climate_sonoff"}
    assert {s.device for s in statuses} == expected
    assert len(statuses) == len(expected)  # once each: later state does not repeat it
    assert {s.state for s in statuses} == {DeviceState.ONLINE}


@pytest.mark.parametrize("generation", GENERATIONS)
def test_bridge_offline_takes_every_device_offline_until_it_is_back(generation: str) -> None:
    fixture = load(generation)
    mapper = _mapper()
    _replay(mapper, fixture.scenario("startup", "state_before_devices"))
    offline, *back = fixture.scenarios["bridge_restart"]
    assert offline.payload in (b"offline", b'{"state":"offline"}')
    down = _statuses(mapper.handle(offline.topic, offline.payload, offline.received))
    known = {e.device_id for e in fixture.devices.values()}
    assert {s.device for s in down} == known
    assert {s.state for s in down} == {DeviceState.OFFLINE}
    up = _statuses(_replay(mapper, back))
    final = {s.device: s.state for s in up}
    cellar = fixture.device("climate_sonoff").device_id
    assert final.pop(cellar) is DeviceState.OFFLINE  # its availability says offline
    assert set(final) == known - {cellar}
    assert set(final.values()) == {DeviceState.ONLINE}


@pytest.mark.parametrize("generation", GENERATIONS)
def test_rename_keeps_the_device_id(generation: str) -> None:
    fixture = load(generation)
    mapper = _mapper()
    _replay(mapper, fixture.scenario(*BEFORE_RENAME))
    contact = fixture.device("contact_aqara")
    outputs = _replay(mapper, fixture.scenarios["rename"])
    readings = _readings(outputs)
    assert readings
    assert {r.device for r in readings} == {contact.device_id}
    # Only the new state: the republished one under the new name repeats the last.
    *_, new_state = fixture.state_messages("contact_aqara", "rename")
    assert {r.ts for r in readings} == {parse_last_seen(new_state.document()["last_seen"])}
    assert _statuses(outputs) == []  # the old name's cleared availability is no news
    stats = mapper.stats()
    assert (stats.renames, stats.bad_payloads, stats.pending) == (1, 0, 0)
    # The old name means nothing now: its state waits for a device of that name.
    old = f"zigbee2mqtt/{contact.friendly_name}"
    assert mapper.handle(old, new_state.payload, new_state.received) == []
    assert mapper.stats().pending == 1


@pytest.mark.parametrize("generation", GENERATIONS)
def test_cleared_bridge_topics_are_no_news(generation: str) -> None:
    """An empty retained bridge/devices or bridge/groups (the broker clearing it) is
    neither a bad payload nor a removal of every device."""
    fixture = load(generation)
    mapper = _mapper()
    _replay(mapper, fixture.scenario(*BEFORE_RENAME))
    before = mapper.stats()
    received = fixture.scenarios["rename"][0].received
    for topic in ("zigbee2mqtt/bridge/devices", "zigbee2mqtt/bridge/groups"):
        assert mapper.handle(topic, b"", received) == []
    after = mapper.stats()
    assert (after.bad_payloads, after.removals) == (before.bad_payloads, before.removals)
    assert after.ignored == before.ignored + 2
    assert after.devices == before.devices > 0
    # Still mapped: the rename that follows finds its device, nothing waits.
    assert _readings(_replay(mapper, fixture.scenarios["rename"]))
    assert (mapper.stats().renames, mapper.stats().pending) == (1, 0)


@pytest.mark.parametrize("generation", GENERATIONS)
def test_removed_device_goes_offline_and_is_forgotten(generation: str) -> None:
    fixture = load(generation)
    mapper = _mapper(pending_max_age_s=30)
    _replay(mapper, fixture.scenario("startup"))
    smoke = fixture.device("smoke_heiman")
    outputs = _replay(mapper, fixture.scenarios["remove"])
    assert outputs == [AvailabilityRecord(smoke.device_id, DeviceState.OFFLINE, outputs[0].ts)]
    assert smoke.device_id not in mapper.device_ids
    assert mapper.stats().removals == 1
    *_, last = fixture.state_messages("smoke_heiman", "startup")
    late = last.received + timedelta(seconds=1)
    assert mapper.handle(last.topic, last.payload, late) == []
    mapper.expire(late + timedelta(seconds=31))
    stats = mapper.stats()
    assert (stats.pending, stats.unmapped) == (0, 1)


@pytest.mark.parametrize("generation", GENERATIONS)
def test_state_before_bridge_devices_is_mapped_when_it_arrives(generation: str) -> None:
    fixture = load(generation)
    mapper = _mapper()
    _replay(mapper, fixture.scenario("startup"))
    messages = fixture.scenarios["state_before_devices"]
    *before, devices = messages
    assert devices.topic.endswith("bridge/devices")
    assert not devices.retain
    assert _replay(mapper, before) == []
    assert mapper.stats().pending == 3
    outputs = mapper.handle(devices.topic, devices.payload, devices.received)
    cellar = fixture.device("climate_sonoff")
    readings = _readings(outputs, cellar.device_id)
    states = [m for m in before if m.topic.endswith(cellar.friendly_name)]
    assert {r.ts for r in readings} == {parse_last_seen(m.document()["last_seen"]) for m in states}
    assert _one(readings[-4:], "humidity").value == states[-1].document()["humidity"]
    assert _statuses(outputs) == [
        AvailabilityRecord(cellar.device_id, DeviceState.ONLINE, states[0].received)
    ]
    assert mapper.stats().pending == 0


@pytest.mark.parametrize("generation", GENERATIONS)
def test_bridge_requests_responses_commands_and_groups_are_not_state(generation: str) -> None:
    fixture = load(generation)
    mapper = _mapper()
    _replay(mapper, fixture.scenario("startup"))
    before = mapper.stats()
    noise = fixture.scenarios["noise"]
    assert _replay(mapper, noise) == []
    after = mapper.stats()
    assert after.ignored - before.ignored == len(noise)
    assert (after.pending, after.bad_payloads) == (0, 0)


def test_upgrade_from_1x_to_2x_keeps_every_device() -> None:
    """The same network under Zigbee2MQTT 1.42 and then 2.x: same IEEE addresses, so the
    same device ids, although models were renamed (Bosch BWA-1 → BSEN-W, RFPR-ZB-SH-EU →
    BSEN-M), availability turned JSON and illuminance_lux became illuminance."""
    old, new = load("z2m1"), load("z2m2")
    mapper = _mapper()
    first = _replay(mapper, old.scenario("startup"))
    second = _replay(mapper, new.scenario("startup"))
    renamed = [k for k, e in old.devices.items() if new.devices[k].model != e.model]
    assert sorted(renamed) == ["leak_bosch", "motion_bosch"]
    assert mapper.stats().model_changes == len(renamed)
    old_ids = {r.device for r in _readings(first)}
    assert old_ids <= {r.device for r in _readings(second)}
    # Availability did not flap: only the device new in 2.x's network came online.
    (yandex,) = _statuses(second)
    assert yandex.device == new.device("climate_yandex").device_id
    hue = new.device("motion_hue").device_id
    units = {(r.metric, r.unit) for r in _readings(first + second, hue) if "illum" in r.metric}
    assert units == {("illuminance", "lx"), ("illuminance_raw", None)}


def test_availability_disabled_devices_count_as_online_once_heard() -> None:
    """Zigbee2MQTT 2.x publishes no availability unless availability.enabled."""
    fixture = load("z2m2")
    messages = [m for m in fixture.scenarios["startup"] if not m.topic.endswith("/availability")]
    statuses = _statuses(_replay(_mapper(), messages))
    heard = {
        e.device_id
        for e in fixture.devices.values()
        if any(True for _ in fixture.state_messages(e.key, "startup"))
    }
    assert {s.device for s in statuses} == heard
    assert {s.state for s in statuses} == {DeviceState.ONLINE}


def test_waiting_messages_are_bounded() -> None:
    mapper = _mapper(pending_max_messages=5)
    start = load("z2m2").start
    for n in range(12):
        assert mapper.handle(f"zigbee2mqtt/new {n}", b'{"temperature": 1}', start) == []
    stats = mapper.stats()
    assert (stats.pending, stats.unmapped) == (5, 7)


BAD = [
    b"not json",
    b"[1, 2]",
    b'"text"',
    b"\xff\xfe{}",
    b"[" * 100_000 + b"]" * 100_000,
    b'{"temperature": "warm", "humidity": [1]}',
]


@pytest.mark.parametrize("generation", GENERATIONS)
def test_bad_payloads_are_counted_and_cost_only_themselves(generation: str) -> None:
    fixture = load(generation)
    mapper = _mapper(max_payload_bytes=300_000)
    _replay(mapper, fixture.scenario("startup"))
    devices_before = sorted(mapper.device_ids)
    message, document = _last_state(fixture, "climate_aqara")
    at = message.received
    availability = f"{message.topic}/availability"
    for payload in BAD:
        assert mapper.handle(message.topic, payload, at) == []
    assert mapper.handle(message.topic, b"{" + b" " * 300_000 + b"}", at) == []
    assert mapper.handle(message.topic, b'{"temperature": 1e400, "humidity": 50}', at)
    assert mapper.handle(availability, b"maybe", at) == []
    assert mapper.handle(availability, b'{"state": "sleeping"}', at) == []
    assert mapper.handle("zigbee2mqtt/bridge/devices", b"{not json", at) == []
    assert mapper.handle("zigbee2mqtt/bridge/devices", b'{"devices": []}', at) == []
    assert mapper.handle("zigbee2mqtt/bridge/state", b"dunno", at) == []
    assert mapper.handle("zigbee2mqtt/bridge/groups", b"7", at) == []
    stats = mapper.stats()
    # Five of BAD (the last is an object, only without readings), the oversized one, two
    # availabilities, two bridge/devices, bridge/state, bridge/groups.
    assert stats.bad_payloads == 5 + 1 + 2 + 2 + 1 + 1
    assert stats.bad_values == 1  # the infinite temperature
    assert sorted(mapper.device_ids) == devices_before
    # The next good message maps as if nothing had happened.
    good = mapper.handle(message.topic, message.payload, at)
    assert _one(_readings(good), "temperature").value == document["temperature"]


def test_include_device_information_and_elapsed_are_not_readings() -> None:
    """mqtt.include_device_information adds a device block; advanced.elapsed a number."""
    fixture = load("z2m2")
    mapper = _mapper()
    _replay(mapper, fixture.scenario("startup"))
    message, document = _last_state(fixture, "climate_aqara")
    extended = {
        **document,
        "elapsed": 2171,
        "device": {"ieeeAddr": fixture.device("climate_aqara").ieee_address, "model": "x"},
    }
    outputs = mapper.handle(message.topic, json.dumps(extended).encode(), message.received)
    metrics = {r.metric for r in _readings(outputs)}
    assert metrics == {
        r.metric
        for r in _readings(_replay(_mapper(), fixture.scenario("startup")))
        if r.device == fixture.device("climate_aqara").device_id
    }
    assert not metrics & {"elapsed", "device"}


def test_binary_values_that_match_neither_state_are_counted() -> None:
    fixture = load("z2m2")
    mapper = _mapper()
    _replay(mapper, fixture.scenario("startup"))
    message, _ = _last_state(fixture, "plug_tuya")
    outputs = mapper.handle(message.topic, b'{"state": "TOGGLE", "power": 5}', message.received)
    assert [(r.metric, r.value) for r in _readings(outputs)] == [("power", 5.0)]
    assert mapper.stats().bad_values == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.text(max_size=30), json_values, max_size=12))
def test_any_json_object_gives_contract_valid_output_or_nothing(document: dict[str, Any]) -> None:
    fixture = load("z2m2")
    mapper = _mapper()
    _replay(mapper, fixture.scenario("startup")[:3])  # bridge/devices
    message, _ = _last_state(fixture, "plug_tuya")
    payload = json.dumps(document, allow_nan=True).encode()
    for output in mapper.handle(message.topic, payload, message.received):
        if isinstance(output, DeviceReading):
            SingleReading(metric=output.metric, value=output.value, unit=output.unit, ts=output.ts)
        elif isinstance(output, ActionRecord):
            ActionEvent(type="action", ts=output.ts, seq=0, action=output.action)
