"""The video service on the wire: events, camera availability, faults and metrics.

Every message is a contract model published through the shared MQTT client. Metrics
go as telemetry of the camera (device = camera id): ingest validates and writes them
to InfluxDB like any reading, so the video service holds no database credentials and
its metrics get ingest's durability (acknowledged after the write).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Protocol

from iotmon_contract import (
    DeviceState,
    DeviceStatus,
    FaultEvent,
    FaultSeverity,
    Reading,
    ReadingBatch,
    event_topic,
    status_topic,
    telemetry_topic,
    to_printable,
)
from iotmon_contract.events import EventEnvelope
from iotmon_runtime.mqtt import MqttClient
from iotmon_runtime.version import distribution_version

AGENT = f"iotmon-video/{distribution_version('iotmon-video')}"


class EventSink(Protocol):
    """Where a pipeline's events, camera state and faults go."""

    def next_seq(self, camera: str) -> int: ...

    def event(self, camera: str, event: EventEnvelope) -> bool: ...

    def camera_state(self, camera: str, up: bool) -> None: ...

    def fault(self, camera: str, code: str, detail: str | None, cleared: bool = False) -> None: ...


class Outputs:
    """Publishes for all cameras of one tenant; thread-safe (pipelines share it)."""

    def __init__(self, client: MqttClient, tenant: str) -> None:
        self._client = client
        self._tenant = tenant
        # Per-camera event sequence, started from the clock so a restart keeps it rising.
        self._seq: dict[str, itertools.count[int]] = {}
        self._lock = threading.Lock()

    @property
    def tenant(self) -> str:
        return self._tenant

    def next_seq(self, camera: str) -> int:
        with self._lock:
            counter = self._seq.setdefault(camera, itertools.count(time.time_ns() // 1_000_000))
            return next(counter)

    def event(self, camera: str, event: EventEnvelope) -> bool:
        return self._client.publish(
            event_topic(self._tenant, camera), event.model_dump_json(exclude_none=True), qos=1
        )

    def camera_state(self, camera: str, up: bool) -> None:
        status = DeviceStatus(
            state=DeviceState.ONLINE if up else DeviceState.OFFLINE,
            ts=datetime.now(UTC),
            agent=AGENT,
        )
        self._client.publish(
            status_topic(self._tenant, camera),
            status.model_dump_json(exclude_none=True),
            qos=1,
            retain=True,
        )

    def fault(self, camera: str, code: str, detail: str | None, cleared: bool = False) -> None:
        event = FaultEvent(
            type="fault",
            ts=datetime.now(UTC),
            seq=self.next_seq(camera),
            component=camera,
            code=code,
            detail=None if detail is None else to_printable(detail, 500),
            severity=FaultSeverity.ERROR,
            cleared=cleared,
        )
        self.event(camera, event)

    def metrics(self, camera: str, values: Mapping[str, float], at: datetime) -> bool:
        batch = ReadingBatch(
            readings=[
                Reading(metric=name, value=float(value), ts=at, unit=UNITS.get(name))
                for name, value in values.items()
            ]
        )
        return self._client.publish(
            telemetry_topic(self._tenant, camera), batch.model_dump_json(exclude_none=True), qos=1
        )


UNITS = {
    "video_input_fps": "fps",
    "video_processed_fps": "fps",
    "video_detect_fps": "fps",
    "video_inference_ms": "ms",
    "video_detect_latency_ms": "ms",
    "video_detect_skipped": "frames",
    "video_dropped_frames": "frames",
    "video_motion_ratio": "ratio",
    "video_tracked_objects": "objects",
    "video_source_up": "bool",
}
