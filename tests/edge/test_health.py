"""The agent's health readings: what they are made of, and the CPU temperature on a Pi."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from iotmon_contract import TelemetryValidator
from iotmon_edge.health import (
    UNITS,
    HealthProbe,
    HealthSnapshot,
    Metric,
    health_readings,
    read_cpu_temperature,
)
from iotmon_edge.messages import TelemetryEncoder
from iotmon_edge.outbox import OutboxStats
from iotmon_runtime.mqtt import ClientStats

NOW = datetime(2026, 11, 25, 10, tzinfo=UTC)


def _outbox(delivered: int, *, depth: int = 7, oldest: float | None = 12.5) -> OutboxStats:
    return OutboxStats(
        durable=True, depth=depth, bytes=1234, oldest_age_s=oldest, in_flight=2,
        delivered=delivered, rejected=0, refused=0, dropped=3, dropped_bytes=300, errors=0,
    )  # fmt: skip


def _client(connects: int) -> ClientStats:
    return ClientStats(
        accepted=0, refused=0, completed=0, rejected=0, connects=connects, held=0, received=0,
        unrouted=0, handler_errors=0, acks=0,
    )  # fmt: skip


def test_the_cpu_temperature_is_read_in_millidegrees(tmp_path: Path) -> None:
    zone = tmp_path / "temp"
    zone.write_text("48312\n")
    assert read_cpu_temperature(zone) == 48.312
    assert read_cpu_temperature(tmp_path / "absent") is None
    zone.write_text("garbage")
    assert read_cpu_temperature(zone) is None
    assert read_cpu_temperature(None) is None


def test_a_probe_turns_counters_into_rates_and_shares(tmp_path: Path) -> None:
    zone = tmp_path / "temp"
    zone.write_text("51000")
    state = {"at": 100.0, "cpu": 2.0, "delivered": 0}
    probe = HealthProbe(
        lambda: _outbox(state["delivered"]),  # type: ignore[arg-type]
        lambda: _client(3),
        thermal_zone=zone,
        monotonic=lambda: state["at"],
        cpu_seconds=lambda: state["cpu"],
        rss_bytes=lambda: 30_000_000,
    )
    first = probe.snapshot()
    assert (first.publish_rate, first.cpu_percent) == (0.0, 0.0)  # nothing to compare with yet
    state.update(at=110.0, cpu=2.5, delivered=600)
    second = probe.snapshot()
    assert second.publish_rate == 60.0
    assert second.cpu_percent == 5.0
    assert second.reconnects_total == 2
    assert (second.queue_depth, second.queue_bytes, second.queue_oldest_age_s) == (7, 1234, 12.5)
    assert second.queue_dropped_total == 3
    assert second.cpu_temperature_c == 51.0
    assert second.rss_bytes == 30_000_000


def test_health_readings_are_valid_telemetry_of_the_agent() -> None:
    snapshot = HealthSnapshot(
        queue_depth=7, queue_bytes=1234, queue_oldest_age_s=12.5, queue_dropped_total=3,
        reconnects_total=2, publish_rate=60.0, rss_bytes=30_000_000, cpu_percent=1.25,
        cpu_temperature_c=None,
    )  # fmt: skip
    readings = health_readings("gw-1", snapshot, NOW)
    assert {r.metric for r in readings} == set(UNITS) - {Metric.CPU_TEMPERATURE}
    assert all(r.device == "gw-1" and r.ts == NOW for r in readings)
    validator = TelemetryValidator(clock=lambda: int(NOW.timestamp()) * 1_000_000_000)
    encoded = TelemetryEncoder("acme", "gw-1", 100).singles(readings)
    assert encoded.invalid == 0
    values = {
        v.metric: (v.value, v.unit)
        for m in encoded.messages
        for v in validator.validate(m.topic, m.payload)
    }
    assert values[Metric.QUEUE_DEPTH] == (7.0, "msg")
    assert values[Metric.QUEUE_OLDEST_AGE] == (12.5, "s")
    assert values[Metric.PUBLISH_RATE] == (60.0, "msg/s")
