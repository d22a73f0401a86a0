"""The agent's own health as telemetry: queue, connection, publish rate, process, CPU temperature.

Published like any device's readings, on the agent's telemetry topic (device =
the agent id), so they land in InfluxDB as ``agent_*`` measurements and the
"Edge agents" dashboard reads them like any telemetry.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from iotmon_devices import DeviceReading
from iotmon_edge.outbox import OutboxStats
from iotmon_runtime.mqtt import ClientStats

logger = logging.getLogger(__name__)

THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")
"""The SoC temperature on a Raspberry Pi, in millidegrees Celsius."""

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class Metric:
    """Metric names and units of the agent's health readings (the dashboard uses them)."""

    QUEUE_DEPTH = "agent_queue_depth"
    QUEUE_BYTES = "agent_queue_bytes"
    QUEUE_OLDEST_AGE = "agent_queue_oldest_age_s"
    QUEUE_DROPPED = "agent_queue_dropped_total"
    RECONNECTS = "agent_mqtt_reconnects_total"
    PUBLISH_RATE = "agent_publish_rate"
    CPU_TEMPERATURE = "agent_cpu_temperature"
    RSS = "agent_rss_bytes"
    CPU = "agent_cpu_percent"


UNITS = {
    Metric.QUEUE_DEPTH: "msg",
    Metric.QUEUE_BYTES: "B",
    Metric.QUEUE_OLDEST_AGE: "s",
    Metric.QUEUE_DROPPED: "msg",
    Metric.RECONNECTS: "count",
    Metric.PUBLISH_RATE: "msg/s",
    Metric.CPU_TEMPERATURE: "degC",
    Metric.RSS: "B",
    Metric.CPU: "%",
}


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    """What the health readings of one moment are made of."""

    queue_depth: int
    queue_bytes: int
    queue_oldest_age_s: float
    queue_dropped_total: int
    reconnects_total: int
    publish_rate: float
    rss_bytes: int
    cpu_percent: float
    cpu_temperature_c: float | None


def health_readings(agent_id: str, snapshot: HealthSnapshot, ts: datetime) -> list[DeviceReading]:
    """The snapshot as readings of the agent itself (pure)."""
    values: list[tuple[str, float | None]] = [
        (Metric.QUEUE_DEPTH, snapshot.queue_depth),
        (Metric.QUEUE_BYTES, snapshot.queue_bytes),
        (Metric.QUEUE_OLDEST_AGE, round(snapshot.queue_oldest_age_s, 3)),
        (Metric.QUEUE_DROPPED, snapshot.queue_dropped_total),
        (Metric.RECONNECTS, snapshot.reconnects_total),
        (Metric.PUBLISH_RATE, round(snapshot.publish_rate, 3)),
        (Metric.RSS, snapshot.rss_bytes),
        (Metric.CPU, round(snapshot.cpu_percent, 3)),
        (Metric.CPU_TEMPERATURE, snapshot.cpu_temperature_c),
    ]
    return [
        DeviceReading(agent_id, metric, float(value), UNITS[metric], ts)
        for metric, value in values
        if value is not None
    ]


def read_cpu_temperature(path: Path | None) -> float | None:
    """Degrees Celsius from a sysfs thermal zone, or None where there is none."""
    if path is None:
        return None
    try:
        return int(path.read_text().strip()) / 1000
    except (OSError, ValueError):
        return None


def process_rss_bytes() -> int:
    try:
        resident = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return resident * _PAGE_SIZE


def process_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


class HealthProbe:
    """Turns the outbox's and the client's counters into a ``HealthSnapshot``.

    Rates and CPU share are over the time since the previous ``snapshot``.
    """

    def __init__(
        self,
        outbox_stats: Callable[[], OutboxStats],
        client_stats: Callable[[], ClientStats],
        *,
        thermal_zone: Path | None = THERMAL_ZONE,
        monotonic: Callable[[], float],
        cpu_seconds: Callable[[], float] = process_cpu_seconds,
        rss_bytes: Callable[[], int] = process_rss_bytes,
    ) -> None:
        self._outbox_stats = outbox_stats
        self._client_stats = client_stats
        self._thermal_zone = thermal_zone
        self._monotonic = monotonic
        self._cpu_seconds = cpu_seconds
        self._rss_bytes = rss_bytes
        self._last_at: float | None = None
        self._last_delivered = 0
        self._last_cpu = 0.0

    def snapshot(self) -> HealthSnapshot:
        outbox = self._outbox_stats()
        client = self._client_stats()
        now = self._monotonic()
        cpu = self._cpu_seconds()
        elapsed = now - self._last_at if self._last_at is not None else 0.0
        rate = (outbox.delivered - self._last_delivered) / elapsed if elapsed > 0 else 0.0
        share = 100 * (cpu - self._last_cpu) / elapsed if elapsed > 0 else 0.0
        self._last_at, self._last_delivered, self._last_cpu = now, outbox.delivered, cpu
        return HealthSnapshot(
            queue_depth=outbox.depth,
            queue_bytes=outbox.bytes,
            queue_oldest_age_s=outbox.oldest_age_s or 0.0,
            queue_dropped_total=outbox.dropped,
            reconnects_total=max(0, client.connects - 1),
            publish_rate=max(0.0, rate),
            rss_bytes=self._rss_bytes(),
            cpu_percent=max(0.0, share),
            cpu_temperature_c=read_cpu_temperature(self._thermal_zone),
        )
