"""docs/metrics.md lists exactly the iotmon_* metrics the services expose: each service's
families are built from empty snapshots (no I/O) and compared with the doc's tables."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from prometheus_client.metrics_core import Metric

from iotmon_alerts.adapters.webhooks import DispatchCounters
from iotmon_alerts.metrics import AlertsGauges, alerts_families
from iotmon_api.metrics import ApiMetrics
from iotmon_homeassistant.counters import BridgeSnapshot
from iotmon_homeassistant.metrics import bridge_families
from iotmon_ingest.counters import CounterSnapshot
from iotmon_ingest.metrics import IngestGauges, ingest_families
from iotmon_runtime.metrics import mqtt_client_families, service_registry
from iotmon_runtime.mqtt import MqttClient, MqttSettings
from iotmon_video.metrics import video_families
from iotmon_video.pipeline import CameraTotals

DOC = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"


def exposed_names(families: Iterable[Metric]) -> set[str]:
    """Names as scraped: counters with ``_total``."""
    return {f"{f.name}_total" if f.type == "counter" else f.name for f in families}


def documented() -> set[str]:
    names = set()
    for line in DOC.read_text().splitlines():
        match = re.match(r"^\| `(iotmon_[a-z0-9_]+)` \|", line)
        if match:
            names.add(match.group(1))
    return names


def test_the_doc_lists_every_metric_and_no_other() -> None:
    gauges = IngestGauges(0, 0, 0, 0, 0, False, 0, True)
    client = MqttClient(MqttSettings(), client_id="doc")
    exposed = (
        exposed_names(ingest_families(CounterSnapshot(), gauges))
        | exposed_names(mqtt_client_families([client]))
        | exposed_names(bridge_families(BridgeSnapshot()))
        | exposed_names(alerts_families({}, DispatchCounters(), AlertsGauges(0, 0, 0)))
        | exposed_names(video_families({"cam": CameraTotals(0, 0, 0, 0, 0, 0.0, 0, False)}))
        | exposed_names(
            f for f in ApiMetrics.create().registry.collect() if f.name.startswith("iotmon_")
        )
        | exposed_names(
            f
            for f in service_registry("doc", "iotmon-runtime").collect()
            if f.name.startswith("iotmon_")
        )
    )
    doc = documented()
    assert len(doc) > 40, "the doc's tables were not read"
    assert exposed - doc == set(), "exposed but not in docs/metrics.md"
    assert doc - exposed == set(), "in docs/metrics.md but not exposed"
