"""One unit per metric, against every unit the real converters use."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iotmon_contract import SingleReading
from iotmon_edge.zigbee2mqtt.units import METRICS, SYMBOLS, convert, metric_name, symbol
from tests.edge.zigbee.fixtures import GENERATIONS, load

TS = datetime(2026, 3, 1, tzinfo=UTC)


def _valid(metric: str, value: float, unit: str | None) -> None:
    """Raises unless the contract takes the reading."""
    SingleReading(metric=metric, value=value, unit=unit, ts=TS)


@pytest.mark.parametrize(
    ("prop", "value", "unit", "expected"),
    [
        # Battery sensors report mV, plugs V: both are stored in V.
        ("voltage", 3005, "mV", ("voltage", 3.005, "V")),
        ("voltage", 231, "V", ("voltage", 231, "V")),
        # Aqara hPa, Yandex and others kPa.
        ("pressure", 1008.3, "hPa", ("pressure", 1008.3, "hPa")),
        ("pressure", 102.1, "kPa", ("pressure", 1021.0, "hPa")),
        ("temperature", 21.5, "°C", ("temperature", 21.5, "degC")),
        ("temperature", 21.5, "ºC", ("temperature", 21.5, "degC")),
        ("temperature", 70.7, "°F", ("temperature", 21.5, "degC")),
        ("local_temperature", 294.65, "K", ("local_temperature", 21.5, "degC")),
        ("current", 412, "mA", ("current", 0.412, "A")),
        ("power", 1.2, "kW", ("power", 1200.0, "W")),
        ("energy", 1500, "Wh", ("energy", 1.5, "kWh")),
        ("target_distance", 143, "cm", ("target_distance", 1.43, "m")),
        ("voc", 0.25, "ppm", ("voc", 250.0, "ppb")),
        ("co2", 842, None, ("co2", 842, "ppm")),
        ("humidity", 48.2, None, ("humidity", 48.2, "%")),
        # 1.x illuminance_lux is 2.x illuminance; 1.x's unitless illuminance is raw.
        ("illuminance_lux", 150, "lx", ("illuminance", 150, "lx")),
        ("illuminance", 21761, None, ("illuminance_raw", 21761, None)),
        # Another quantity keeps its unit under a metric of its own.
        ("illuminance", 40, "%", ("illuminance_pct", 40, "%")),
        ("voc", 12, "µg/m³", ("voc_ugm3", 12, "ug/m3")),
        # Not in the table: the quantity's base unit, or the unit as written.
        ("test_mode_timeout", 3, "seconds", ("test_mode_timeout", 3, "s")),
        ("fading_time", 2, "min", ("fading_time", 120.0, "s")),
        ("noise", 41, "dBA", ("noise", 41, "dBA")),
        ("power_outage_count", 8, None, ("power_outage_count", 8, None)),
        # Longer than the contract's 16 characters: no unit rather than a refused reading.
        ("water_consumed", 3, "minutes or litres", ("water_consumed", 3, None)),
    ],
)
def test_conversions(
    prop: str, value: float, unit: str | None, expected: tuple[str, float, str | None]
) -> None:
    converted = convert(prop, value, unit)
    assert converted is not None
    metric, number, written = expected
    assert (converted.metric, converted.unit) == (metric, written)
    assert converted.value == pytest.approx(number, rel=1e-12)
    _valid(converted.metric, converted.value, converted.unit)


def test_exact_decimal_results() -> None:
    """Exact fractions: the stored value is the decimal a person reads, not a float artefact."""
    converted = convert("voltage", 3005, "mV")
    assert converted is not None
    assert converted.value == 3.005
    converted = convert("pressure", 102.1, "kPa")
    assert converted is not None
    assert converted.value == 1021.0


@pytest.mark.parametrize("generation", GENERATIONS)
def test_every_unit_the_converters_use_for_a_table_metric_lands_in_one_unit(
    generation: str,
) -> None:
    """For each metric of the table, every unit any definition gives it either converts to
    the metric's unit or moves to a metric of its own: never two units under one name."""
    census = load(generation).unit_census
    checked = 0
    for prop, units in census.items():
        for unit, definitions in units.items():
            converted = convert(prop, 1.0, unit or None)
            if converted is None:
                continue
            _valid(converted.metric, converted.value, converted.unit)
            rule = METRICS.get(converted.metric)
            if rule is not None:
                assert converted.unit == rule.unit, (prop, unit, converted)
                checked += definitions
    assert checked > 1000  # exposes of that many definitions: the census is the real one


@pytest.mark.parametrize("generation", GENERATIONS)
def test_every_unit_spelling_the_converters_use_is_a_valid_contract_unit_or_none(
    generation: str,
) -> None:
    spellings = {unit for units in load(generation).unit_census.values() for unit in units}
    assert {"°C", "mV", "kPa", "lx", "kWh"} <= spellings
    for spelling in spellings:
        written = symbol(spelling)
        if written is not None:
            _valid("x", 1.0, written)


def test_the_census_holds_the_unit_conflicts_the_table_resolves() -> None:
    """The reason for the table, from the real definitions of Zigbee2MQTT 2.x."""
    census = load("z2m2").unit_census
    assert {"hPa", "kPa"} <= set(census["pressure"])
    assert {"V", "mV"} <= set(census["voltage"])
    assert {"m", "cm"} <= set(census["target_distance"])
    assert {"A", "mA"} <= set(census["current"])
    # Zigbee2MQTT 2.0 dropped illuminance_lux: illuminance is in lx now.
    assert "illuminance_lux" in load("z2m1").unit_census
    assert "illuminance_lux" not in census


def test_symbols_are_contract_units() -> None:
    for written in set(SYMBOLS.values()):
        _valid("x", 1.0, written)


@pytest.mark.parametrize(
    ("name", "metric"),
    [
        ("temperature", "temperature"),
        ("state_l1", "state_l1"),
        ("Power Factor", "power_factor"),
        ("pm2.5", "pm2_5"),
        ("2nd_state", "p_2nd_state"),
        ("---", None),
        ("", None),
    ],
)
def test_metric_names(name: str, metric: str | None) -> None:
    assert metric_name(name) == metric


@given(
    prop=st.text(max_size=80),
    value=st.floats(allow_nan=True, allow_infinity=True),
    unit=st.none() | st.text(max_size=30) | st.sampled_from(sorted(SYMBOLS)),
)
def test_convert_gives_a_valid_reading_or_none(prop: str, value: float, unit: str | None) -> None:
    converted = convert(prop, value, unit)
    if converted is None:
        return
    assert math.isfinite(converted.value)
    _valid(converted.metric, converted.value, converted.unit)


def test_a_conversion_beyond_a_float_is_no_reading() -> None:
    assert convert("fading_time", 2.0806633505350878e303, "Day") is None
    assert convert("power", -1.7e308, "kW") is None
