"""Prometheus metrics for every iotmon process: one registry per service, served on ``/metrics``.

Services keep their own counters (snapshots taken under one lock per batch); the
collectors here only read those snapshots when Prometheus scrapes, so exporting
adds nothing to a hot path. ``docs/metrics.md`` lists every metric.
"""

from iotmon_runtime.metrics.families import (
    LATENCY_BUCKETS_S,
    Histogram,
    HistogramSnapshot,
    SnapshotCollector,
    counter,
    gauge,
    histogram,
    labelled_counter,
)
from iotmon_runtime.metrics.mqtt import mqtt_client_families
from iotmon_runtime.metrics.registry import service_registry
from iotmon_runtime.metrics.server import MetricsServer, MetricsServerError
from iotmon_runtime.metrics.settings import MetricsSettings

__all__ = [
    "LATENCY_BUCKETS_S",
    "Histogram",
    "HistogramSnapshot",
    "MetricsServer",
    "MetricsServerError",
    "MetricsSettings",
    "SnapshotCollector",
    "counter",
    "gauge",
    "histogram",
    "labelled_counter",
    "mqtt_client_families",
    "service_registry",
]
