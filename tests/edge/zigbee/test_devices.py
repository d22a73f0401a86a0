"""bridge/devices of Zigbee2MQTT 1.x and 2.x, as the real exposes describe the devices."""

from __future__ import annotations

import copy

import pytest

from iotmon_edge.zigbee2mqtt.devices import ExposeKind, ieee_of, parse_devices
from tests.edge.zigbee.fixtures import GENERATIONS, load


@pytest.mark.parametrize("generation", GENERATIONS)
def test_devices_of_both_generations(generation: str) -> None:
    fixture = load(generation)
    listed = parse_devices(fixture.bridge_devices())
    assert listed.skipped == []
    by_ieee = {device.ieee: device for device in listed.devices}
    catalogue = {entry.ieee: entry for entry in fixture.devices.values()}
    # Everything but the coordinator (and the device that joins later).
    assert set(by_ieee) == set(catalogue) - {fixture.device("climate_sonoff").ieee}
    for ieee, device in by_ieee.items():
        assert device.friendly_name == catalogue[ieee].friendly_name
        assert device.model == catalogue[ieee].model
        assert device.supported is catalogue[ieee].supported
    contact = by_ieee[fixture.device("contact_aqara").ieee]
    assert contact.exposes["contact"].kind is ExposeKind.BINARY
    # Zigbee2MQTT's "on" for a contact sensor is contact: false (open).
    assert (contact.exposes["contact"].value_on, contact.exposes["contact"].value_off) == (
        False,
        True,
    )
    assert contact.exposes["voltage"].unit == "mV"
    plug = by_ieee[fixture.device("plug_tuya").ieee]
    assert (plug.exposes["state"].value_on, plug.exposes["state"].value_off) == ("ON", "OFF")
    assert plug.exposes["power"].unit == "W"
    assert plug.exposes["power_outage_memory"].kind is ExposeKind.OTHER


@pytest.mark.parametrize("generation", GENERATIONS)
def test_unsupported_and_failed_interview(generation: str) -> None:
    fixture = load(generation)
    by_ieee = {d.ieee: d for d in parse_devices(fixture.bridge_devices()).devices}
    generated = by_ieee[fixture.device("unsupported_generated").ieee]
    assert generated.supported is False
    assert generated.exposes["temperature"].unit == "°C"  # the generated definition's
    failed = by_ieee[fixture.device("interview_failed").ieee]
    assert (failed.supported, failed.model, dict(failed.exposes)) == (False, None, {})


def test_definition_null_of_older_1x() -> None:
    """Zigbee2MQTT 1.17 to 1.34 wrote "definition": null where 1.42 and 2.x leave it out."""
    document = load("z2m1").bridge_devices_definition_null
    assert document is not None
    assert any(e["definition"] is None and e["type"] != "Coordinator" for e in document)
    by_ieee = {d.ieee: d for d in parse_devices(document).devices}
    failed = by_ieee[load("z2m1").device("interview_failed").ieee]
    assert failed.model is None
    assert not failed.exposes


def test_composite_features_are_not_top_level_properties() -> None:
    """The FP1's region_upsert composite publishes one object, not its region_id."""
    fixture = load("z2m2")
    by_ieee = {d.ieee: d for d in parse_devices(fixture.bridge_devices()).devices}
    fp1 = by_ieee[fixture.device("radar_aqara_fp1").ieee]
    assert fp1.exposes["presence"].kind is ExposeKind.BINARY
    assert fp1.exposes["region_upsert"].kind is ExposeKind.OTHER
    assert "region_id" not in fp1.exposes


def test_bad_entries_are_skipped_and_the_rest_kept() -> None:
    document = copy.deepcopy(load("z2m2").bridge_devices())
    good = len(parse_devices(document).devices)
    document[1]["ieee_address"] = "0xnothex"
    document[2]["friendly_name"] = 42
    document[3]["definition"] = "oops"
    document.append("not an object")
    document.append(copy.deepcopy(document[5]))  # the same IEEE address twice
    listed = parse_devices(document)
    assert len(listed.devices) == good - 3
    assert len(listed.skipped) == 5
    assert any("listed twice" in reason for reason in listed.skipped)


def test_not_a_list() -> None:
    with pytest.raises(ValueError, match="not a list"):
        parse_devices({"devices": []})


def test_ieee_of() -> None:
    assert ieee_of("0x00158D0001A2B3C4") == "00158d0001a2b3c4"
    assert ieee_of("00158d0001a2b3c4") is None
    assert ieee_of("0x00158d0001a2b3") is None
    assert ieee_of(1) is None
