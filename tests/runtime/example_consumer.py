"""A small consumer of the MQTT stream, written the way every new one should be.

It registers handlers on the shared client (no paho here), validates with the
contract, and keeps the newest value of each (tenant, device, metric). Refused
messages are counted with their reason; one never stops the others.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import NamedTuple

from iotmon_contract import (
    ContractViolation,
    DeviceState,
    StatusEvent,
    TelemetryValidator,
    parse_status,
    status_filter,
    telemetry_filter,
)
from iotmon_runtime.mqtt import InboundMessage, MqttClient


class Latest(NamedTuple):
    value: float
    ts_ns: int


class LatestValues:
    """Newest reading per (tenant, device, metric) and each device's availability."""

    def __init__(self, client: MqttClient, tenant: str = "+") -> None:
        self._client = client
        self._tenant = tenant
        self._validator = TelemetryValidator()
        self._lock = threading.Lock()
        self.latest: dict[tuple[str, str, str], Latest] = {}
        self.states: dict[tuple[str, str], DeviceState] = {}
        self.refused: Counter[str] = Counter()

    def register(self) -> None:
        """Handlers run on the client's dispatcher thread, acknowledged after they return."""
        self._client.subscribe(telemetry_filter(self._tenant), self._on_telemetry)
        self._client.subscribe(status_filter(self._tenant), self._on_status)

    def _on_telemetry(self, message: InboundMessage) -> None:
        try:
            readings = self._validator.validate(message.topic, message.payload)
        except ContractViolation as violation:
            with self._lock:
                self.refused[violation.reason.value] += 1
            return
        with self._lock:
            for reading in readings:
                key = (reading.tenant, reading.device, reading.metric)
                current = self.latest.get(key)
                if current is None or reading.ts_ns >= current.ts_ns:
                    self.latest[key] = Latest(reading.value, reading.ts_ns)

    def _on_status(self, message: InboundMessage) -> None:
        status: StatusEvent | None = parse_status(message.topic, message.payload, 0)
        if status is not None:
            with self._lock:
                self.states[(status.tenant, status.device)] = status.state
