"""Ingest: MQTT telemetry → contract validation → time-series store, ack after write."""

from iotmon_services.ingest.config import IngestSettings, MqttProtocol, MqttSettings
from iotmon_services.ingest.counters import CounterSnapshot
from iotmon_services.ingest.service import IngestService, run_ingest

__all__ = [
    "CounterSnapshot",
    "IngestService",
    "IngestSettings",
    "MqttProtocol",
    "MqttSettings",
    "run_ingest",
]
