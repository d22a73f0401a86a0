"""Simulated indoor environment sensors: temperature, humidity and CO2 with faults.

Every value is a pure function of (seed, device, metric, time): a read at an
instant gives the same readings whatever was read before, which makes the
simulator deterministic under an injected clock and lets tests jump across
months of simulated time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from functools import cached_property
from zoneinfo import ZoneInfo

from iotmon_devices.base import DeviceReading, Driver
from iotmon_devices.simulators.environment_config import SimulatedEnvironmentConfig
from iotmon_devices.simulators.noise import derive, gaussian, text_key, uniform
from iotmon_devices.simulators.patterns import co2_load, diurnal, hour_of_day

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


class Metric(IntEnum):
    TEMPERATURE = 0
    HUMIDITY = 1
    CO2 = 2


_NAMES = {Metric.TEMPERATURE: "temperature", Metric.HUMIDITY: "humidity", Metric.CO2: "co2"}
_UNITS = {Metric.TEMPERATURE: "degC", Metric.HUMIDITY: "%", Metric.CO2: "ppm"}


class _Purpose(IntEnum):
    """Separates the random streams drawn from one key."""

    DEVICE = 1
    OFFSET = 2
    OCCUPANCY = 3
    STUCK_PHASE = 4
    STUCK = 5
    DROPOUT = 6
    SPIKE = 7
    SPIKE_SIGN = 8
    NOISE = 9


@dataclass(frozen=True, slots=True)
class _Device:
    id: str
    key: int
    offsets: tuple[float, float, float]  # per Metric
    occupancy: float
    stuck_keys: tuple[int, int, int]  # per Metric
    stuck_phase_ms: int


@dataclass(frozen=True, slots=True)
class _Frame:
    """What all devices share at one instant: the site's local time of day."""

    cycle: float  # diurnal(): +1 at the temperature peak
    load: float  # co2_load()


class SimulatedEnvironmentDriver(Driver):
    def __init__(self, config: SimulatedEnvironmentConfig) -> None:
        self._config = config

    @property
    def config(self) -> SimulatedEnvironmentConfig:
        return self._config

    @property
    def device_ids(self) -> Sequence[str]:
        return [device.id for device in self._devices]

    def start(self) -> None:
        # Precompute the fleet now rather than on the first read's deadline.
        _ = self._devices

    def read(self, now: datetime) -> list[DeviceReading]:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        faults = self._config.faults
        t_ms = (now - _EPOCH) // _MS
        frame = self._frame(t_ms)
        readings: list[DeviceReading] = []
        for device in self._devices:
            cycle_key = derive(device.key, t_ms)
            if (
                faults.dropout_rate
                and uniform(derive(cycle_key, _Purpose.DROPOUT)) < faults.dropout_rate
            ):
                continue
            for metric in Metric:
                value = self._stuck_value(device, metric, t_ms)
                if value is None:
                    metric_key = derive(cycle_key, metric + 1)
                    value = self._value(device, metric, frame, metric_key)
                    if (
                        faults.spike_rate
                        and uniform(derive(metric_key, _Purpose.SPIKE)) < faults.spike_rate
                    ):
                        value = self._spiked(metric, value, metric_key)
                readings.append(
                    DeviceReading(device.id, _NAMES[metric], value, _UNITS[metric], now)
                )
        return readings

    @cached_property
    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self._config.timezone)

    @cached_property
    def _devices(self) -> list[_Device]:
        config = self._config
        sds = (
            config.temperature.device_offset_sd_c,
            config.humidity.device_offset_sd_pct,
            config.co2.device_offset_sd_ppm,
        )
        stuck_window_ms = round(config.faults.stuck_duration_s * 1000)
        devices = []
        for index in range(config.first_index, config.first_index + config.count):
            device_id = config.device_id(index)
            key = derive(config.seed, _Purpose.DEVICE, text_key(device_id))
            offsets = tuple(gaussian(derive(key, _Purpose.OFFSET, m)) * sds[m] for m in Metric)
            occupancy = 1.0 + config.co2.occupancy_spread * (
                2.0 * uniform(derive(key, _Purpose.OCCUPANCY)) - 1.0
            )
            stuck_keys = tuple(derive(key, _Purpose.STUCK, m) for m in Metric)
            # Each device's stuck windows start at its own phase, so faults do not line up.
            phase = int(uniform(derive(key, _Purpose.STUCK_PHASE)) * stuck_window_ms)
            devices.append(
                _Device(
                    device_id,
                    key,
                    (offsets[0], offsets[1], offsets[2]),
                    occupancy,
                    (stuck_keys[0], stuck_keys[1], stuck_keys[2]),
                    phase,
                )
            )
        return devices

    def _frame(self, t_ms: int) -> _Frame:
        local = (_EPOCH + t_ms * _MS).astimezone(self._zone)
        hour = hour_of_day(local.hour, local.minute, local.second, local.microsecond)
        co2 = self._config.co2
        return _Frame(
            cycle=diurnal(hour, self._config.temperature.peak_hour),
            load=co2_load(hour, local.weekday() in co2.workdays, co2),
        )

    def _value(self, device: _Device, metric: Metric, frame: _Frame, key: int) -> float:
        config = self._config
        noise = gaussian(derive(key, _Purpose.NOISE))
        offset = device.offsets[metric]
        if metric is Metric.TEMPERATURE:
            t = config.temperature
            value = t.mean_c + t.amplitude_c * frame.cycle + offset + t.noise_sd_c * noise
            return round(value, t.decimals)
        if metric is Metric.HUMIDITY:
            h = config.humidity
            # Inverse of temperature: warm air holds more water, so relative humidity falls.
            value = h.mean_pct - h.amplitude_pct * frame.cycle + offset + h.noise_sd_pct * noise
            return round(min(100.0, max(0.0, value)), h.decimals)
        c = config.co2
        rise = c.occupied_rise_ppm * device.occupancy * frame.load
        value = c.outdoor_ppm + rise + offset + c.noise_sd_ppm * noise
        return round(max(0.0, value), c.decimals)

    def _stuck_value(self, device: _Device, metric: Metric, t_ms: int) -> float | None:
        """The value a stuck sensor repeats: what it read when its stuck window began."""
        faults = self._config.faults
        if not faults.stuck_rate:
            return None
        window_ms = round(faults.stuck_duration_s * 1000)
        window = (t_ms + device.stuck_phase_ms) // window_ms
        if uniform(derive(device.stuck_keys[metric], window)) >= faults.stuck_rate:
            return None
        start_ms = window * window_ms - device.stuck_phase_ms
        key = derive(derive(device.key, start_ms), metric + 1)
        return self._value(device, metric, self._frame(start_ms), key)

    def _spiked(self, metric: Metric, value: float, key: int) -> float:
        config = self._config
        sign = 1.0 if uniform(derive(key, _Purpose.SPIKE_SIGN)) < 0.5 else -1.0
        if metric is Metric.TEMPERATURE:
            return round(value + sign * config.temperature.spike_c, config.temperature.decimals)
        if metric is Metric.HUMIDITY:
            spiked = min(100.0, max(0.0, value + sign * config.humidity.spike_pct))
            return round(spiked, config.humidity.decimals)
        # CO2 sensors glitch upwards (a breath on the sensor, a self-calibration jump).
        return round(value + config.co2.spike_ppm, config.co2.decimals)


__all__ = ["Metric", "SimulatedEnvironmentConfig", "SimulatedEnvironmentDriver"]
