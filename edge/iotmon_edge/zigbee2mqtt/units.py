"""One unit per metric: Zigbee2MQTT property values converted to the units iotmon stores.

Zigbee2MQTT's converters report the same property in different units (``voltage`` in
mV on battery sensors and V on plugs, ``pressure`` in hPa or kPa, ``target_distance``
in m or cm) and spell units many ways (``°C``, ``ºC``, ``℃``; ``s``, ``sec``,
``seconds``). ``convert`` maps a property and the unit its device's exposes give to
the contract's metric, value and unit:

* A unit is first read as a symbol (``SYMBOLS``), then as a quantity with a factor to
  that quantity's base unit (``QUANTITIES``).
* A metric the table knows (``METRICS``) is always stored in its one unit: a value in
  another unit of the same quantity is converted; a value in a unit of another
  quantity, or without a unit where none can be assumed, keeps its own unit under a
  metric of its own (``illuminance`` in % becomes ``illuminance_pct``, the unitless
  1.x raw ``illuminance`` becomes ``illuminance_raw``), so one metric never mixes units.
* Any other property keeps its name and is stored in its quantity's base unit, or in
  its own unit when the quantity is not known.

``docs/zigbee2mqtt.md`` has the table as prose.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType

from iotmon_contract.fields import UNIT_PATTERN

_UNIT_RE = re.compile(UNIT_PATTERN)
_MAX_UNIT_CHARS = 16
_METRIC_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True, slots=True)
class Quantity:
    """A physical quantity: its base unit and, per unit, ``base = value * scale + offset``.

    Exact fractions, rounded once: 3005 mV is 3.005 V, not 3.0050000000000003.
    """

    name: str
    base: str
    units: MappingProxyType[str, tuple[Fraction, Fraction]]

    def to(self, value: float, unit: str, target: str) -> float:
        if unit == target:
            return value
        scale, offset = self.units[unit]
        target_scale, target_offset = self.units[target]
        exact = (Fraction(value) * scale + offset - target_offset) / target_scale
        try:
            return float(exact)
        except OverflowError:  # beyond a float: not a reading (convert() drops it)
            return math.inf if exact > 0 else -math.inf


def _quantity(name: str, base: str, **units: tuple[int | str, int | str]) -> Quantity:
    table = {base: (Fraction(1), Fraction(0))}
    table.update({unit: (Fraction(s), Fraction(o)) for unit, (s, o) in units.items()})
    return Quantity(name, base, MappingProxyType(table))


TEMPERATURE = _quantity("temperature", "degC", degF=("5/9", "-160/9"), K=(1, "-273.15"))
PRESSURE = _quantity(
    "pressure", "hPa", kPa=(10, 0), Pa=("1/100", 0), mbar=(1, 0), bar=(1000, 0),
    psi=("68.9475729316836", 0),
)  # fmt: skip
POWER = _quantity("power", "W", kW=(1000, 0), mW=("1/1000", 0))
ENERGY = _quantity("energy", "kWh", Wh=("1/1000", 0), MWh=(1000, 0))
VOLTAGE = _quantity("voltage", "V", mV=("1/1000", 0))
CURRENT = _quantity("current", "A", mA=("1/1000", 0))
LENGTH = _quantity("length", "m", cm=("1/100", 0), mm=("1/1000", 0))
DURATION = _quantity(
    "duration", "s", ms=("1/1000", 0), min=(60, 0), h=(3600, 0), d=(86400, 0)
)  # fmt: skip
MIXING_RATIO = _quantity("mixing_ratio", "ppm", ppb=("1/1000", 0))
MASS_CONCENTRATION = _quantity("mass_concentration", "ug/m3", **{"mg/m3": (1000, 0)})
VOLUME = _quantity("volume", "m3", L=("1/1000", 0))
ILLUMINANCE = _quantity("illuminance", "lx")
FRACTION = _quantity("fraction", "%")
LINK_QUALITY = _quantity("link_quality", "lqi")

QUANTITIES: tuple[Quantity, ...] = (
    TEMPERATURE, PRESSURE, POWER, ENERGY, VOLTAGE, CURRENT, LENGTH, DURATION, MIXING_RATIO,
    MASS_CONCENTRATION, VOLUME, ILLUMINANCE, FRACTION, LINK_QUALITY,
)  # fmt: skip

_SPELLINGS: dict[str, tuple[str, ...]] = {
    # Every spelling found in zigbee-herdsman-converters' exposes, by symbol.
    "degC": ("°C", "ºC", "℃", "C", "*C", "degC"),
    "degF": ("°F", "℉", "degF"),
    "K": ("K",),
    "hPa": ("hPa",), "kPa": ("kPa",), "Pa": ("Pa",), "mbar": ("mbar",), "bar": ("bar",),
    "psi": ("psi",),
    "W": ("W", "w"), "kW": ("kW",), "mW": ("mW",),
    "kWh": ("kWh",), "Wh": ("Wh", "W*h"), "MWh": ("MWh",),
    "V": ("V", "Volt", "volt"), "mV": ("mV",),
    "A": ("A",), "mA": ("mA",),
    "m": ("m", "meters"), "cm": ("cm",), "mm": ("mm",),
    "s": ("s", "sec", "sec.", "Sec", "seconds", "Seconds"), "ms": ("ms",),
    "min": ("min", "min.", "minute", "minutes"),
    "h": ("h", "H", "Hr", "hour", "hours", "Hours"),
    "d": ("d", "day", "days", "Day"),
    "ppm": ("ppm",), "ppb": ("ppb",),
    "ug/m3": ("µg/m³", "μg/m³", "ug/m3"), "mg/m3": ("mg/m³", "mg/m3"),
    "m3": ("m³", "m3"), "L": ("L", "liter"),
    "lx": ("lx", "lux", "Lx"),
    "%": ("%",),
    "lqi": ("lqi",),
}  # fmt: skip

SYMBOLS: MappingProxyType[str, str] = MappingProxyType(
    {spelling: unit for unit, spellings in _SPELLINGS.items() for spelling in spellings}
)
"""Unit spellings → symbols. ``C`` is Celsius here: no Zigbee2MQTT converter reports
charge. A spelling not listed is kept as it is (when the contract allows it)."""

_QUANTITY_OF: dict[str, Quantity] = {unit: q for q in QUANTITIES for unit in q.units}


@dataclass(frozen=True, slots=True)
class MetricRule:
    """A metric the table knows: its quantity, the unit it is stored in, and whether a
    value without a unit may be taken to be in that unit."""

    quantity: Quantity
    unit: str
    assume_unitless: bool = False


def _rule(quantity: Quantity, unit: str | None = None, *, assume: bool = False) -> MetricRule:
    return MetricRule(quantity, unit or quantity.base, assume)


METRICS: MappingProxyType[str, MetricRule] = MappingProxyType(
    {
        "temperature": _rule(TEMPERATURE, assume=True),
        "device_temperature": _rule(TEMPERATURE, assume=True),
        "local_temperature": _rule(TEMPERATURE, assume=True),
        "humidity": _rule(FRACTION, assume=True),
        "soil_moisture": _rule(FRACTION, assume=True),
        "battery": _rule(FRACTION, assume=True),
        "linkquality": _rule(LINK_QUALITY, assume=True),
        "pressure": _rule(PRESSURE),
        "co2": _rule(MIXING_RATIO, "ppm", assume=True),
        "eco2": _rule(MIXING_RATIO, "ppm"),
        "voc": _rule(MIXING_RATIO, "ppb"),
        "tvoc": _rule(MIXING_RATIO, "ppb"),
        "formaldehyde": _rule(MIXING_RATIO, "ppb"),
        "co": _rule(MIXING_RATIO, "ppm"),
        "pm25": _rule(MASS_CONCENTRATION),
        "pm10": _rule(MASS_CONCENTRATION),
        "power": _rule(POWER),
        "energy": _rule(ENERGY),
        "produced_energy": _rule(ENERGY),
        "voltage": _rule(VOLTAGE),
        "current": _rule(CURRENT),
        "illuminance": _rule(ILLUMINANCE),
        "target_distance": _rule(LENGTH),
        "distance": _rule(LENGTH),
    }
)
"""Metrics stored in one known unit. Voltage, pressure and illuminance are not assumed
when a device gives no unit: each has converters in two units (or a raw reading)."""

PROPERTY_ALIASES: MappingProxyType[str, str] = MappingProxyType({"illuminance_lux": "illuminance"})
"""Zigbee2MQTT 1.x properties renamed in 2.0: a 1.x ``illuminance_lux`` (lx) is 2.x's
``illuminance`` (lx); the 1.x ``illuminance`` is a raw value without a unit and
becomes ``illuminance_raw``. The series stays the same across the upgrade."""

_SLUGS = {"%": "pct", "ug/m3": "ugm3", "mg/m3": "mgm3", "degC": "degc", "degF": "degf"}


@dataclass(frozen=True, slots=True)
class Converted:
    metric: str
    value: float
    unit: str | None


def symbol(unit: str | None) -> str | None:
    """The unit as iotmon writes it: a known spelling's symbol, else the unit itself when
    the contract can carry it (printable, no backslash, 16 characters), else None."""
    if unit is None:
        return None
    unit = unit.strip()
    if not unit:
        return None
    known = SYMBOLS.get(unit)
    if known is not None:
        return known
    if len(unit) > _MAX_UNIT_CHARS or not _UNIT_RE.match(unit):
        return None
    return unit


def metric_name(name: str) -> str | None:
    """A Zigbee2MQTT property as a contract metric (snake_case), or None if it cannot be."""
    metric = re.sub(r"[^a-z0-9_]+", "_", name.strip().lower()).strip("_")
    metric = re.sub(r"_+", "_", metric)
    if not metric:
        return None
    if not metric[0].isalpha():
        metric = f"p_{metric}"
    metric = metric[:64].rstrip("_")
    return metric if _METRIC_RE.match(metric) else None


def _slug(unit: str | None) -> str:
    if unit is None:
        return "raw"
    return _SLUGS.get(unit) or re.sub(r"[^a-z0-9]+", "_", unit.lower()).strip("_") or "other"


def _suffixed(metric: str, unit: str | None) -> str:
    return f"{metric}_{_slug(unit)}"[:64].rstrip("_")


def convert(prop: str, value: float, unit: str | None) -> Converted | None:
    """``value`` of property ``prop`` in ``unit`` (as exposes give it) as a reading, or None
    when it is no finite number or the property cannot be a metric name."""
    if not math.isfinite(value):
        return None
    aliased = PROPERTY_ALIASES.get(prop, prop)
    metric = metric_name(aliased)
    if metric is None:
        return None
    written = symbol(unit)
    rule = METRICS.get(metric)
    if rule is not None:
        if written is None:
            if rule.assume_unitless:
                return Converted(metric, value, rule.unit)
            return Converted(_suffixed(metric, None), value, None)
        if written in rule.quantity.units:
            return _finite(metric, rule.quantity.to(value, written, rule.unit), rule.unit)
        return Converted(_suffixed(metric, written), value, written)
    quantity = _QUANTITY_OF.get(written) if written is not None else None
    if quantity is not None and written is not None:
        return _finite(metric, quantity.to(value, written, quantity.base), quantity.base)
    return Converted(metric, value, written)


def _finite(metric: str, value: float, unit: str) -> Converted | None:
    # A huge value times a factor can overflow to infinity.
    return Converted(metric, value, unit) if math.isfinite(value) else None


__all__ = [
    "METRICS",
    "PROPERTY_ALIASES",
    "QUANTITIES",
    "SYMBOLS",
    "Converted",
    "MetricRule",
    "Quantity",
    "convert",
    "metric_name",
    "symbol",
]
