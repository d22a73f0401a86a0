"""A service's own ``CollectorRegistry``: never prometheus-client's module-level default.

Each service builds one in its start-up and passes it down, so two services in one
process (the demo, the tests) never mix their metrics.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from iotmon_runtime.metrics.families import SnapshotCollector
from iotmon_runtime.version import distribution_version


def _build_info(service: str, version: str) -> list[Metric]:
    family = GaugeMetricFamily(
        "iotmon_build_info", "Always 1; labels name the service and its version.",
        labels=["service", "version"],
    )  # fmt: skip
    family.add_metric([service, version], 1)
    return [family]


def service_registry(service: str, distribution: str) -> CollectorRegistry:
    """A registry with the process's standard metrics (``process_*``, ``python_*``) and
    ``iotmon_build_info{service, version}``; the service registers its own collectors."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    version = distribution_version(distribution)
    registry.register(SnapshotCollector(lambda: _build_info(service, version)))
    return registry
