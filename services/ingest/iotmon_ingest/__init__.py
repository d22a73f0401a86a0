"""Ingest: MQTT telemetry → contract validation → time-series store, ack after write."""

from iotmon_ingest.config import IngestMqttSettings, IngestSettings
from iotmon_ingest.counters import CounterSnapshot
from iotmon_ingest.main import run_ingest
from iotmon_ingest.service import IngestService

__all__ = [
    "CounterSnapshot",
    "IngestMqttSettings",
    "IngestService",
    "IngestSettings",
    "run_ingest",
]
