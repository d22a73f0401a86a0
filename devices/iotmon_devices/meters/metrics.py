"""What meters publish: one cumulative and one per-interval metric per medium.

``<quantity>_total`` is the register as the meter shows it (a gauge that only
grows, until the meter wraps or is replaced); ``<quantity>`` is what was used since
the previous reading, which is what sums over a day or a month. The interval
metric is left out when it is unknown (first read, an unconfirmed jump): never a
guessed zero, never negative.

=============  =====================  ===============  =====
medium         cumulative             interval         unit
=============  =====================  ===============  =====
electricity    ``energy_kwh_total``   ``energy_kwh``   kWh
water          ``water_m3_total``     ``water_m3``     m3
gas            ``gas_m3_total``       ``gas_m3``       m3
=============  =====================  ===============  =====
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from iotmon_devices.base import DeviceReading
from iotmon_devices.meters.accounting import MeterStep, StepKind


class Medium(StrEnum):
    ELECTRICITY = "electricity"
    WATER = "water"
    GAS = "gas"


@dataclass(frozen=True, slots=True)
class MeterMetrics:
    total: str
    interval: str
    unit: str


METER_METRICS = {
    Medium.ELECTRICITY: MeterMetrics("energy_kwh_total", "energy_kwh", "kWh"),
    Medium.WATER: MeterMetrics("water_m3_total", "water_m3", "m3"),
    Medium.GAS: MeterMetrics("gas_m3_total", "gas_m3", "m3"),
}


def meter_readings(
    device: str, medium: Medium, step: MeterStep, now: datetime, decimals: int = 6
) -> list[DeviceReading]:
    """The total, and the interval's consumption when it is known; nothing while a jump
    waits for confirmation (a glitch must not reach the total's series either)."""
    if step.kind is StepKind.UNCONFIRMED:
        return []
    metrics = METER_METRICS[medium]
    readings = [
        DeviceReading(device, metrics.total, round(step.total, decimals), metrics.unit, now)
    ]
    if step.consumption is not None:
        readings.append(
            DeviceReading(
                device, metrics.interval, round(step.consumption, decimals), metrics.unit, now
            )
        )
    return readings
