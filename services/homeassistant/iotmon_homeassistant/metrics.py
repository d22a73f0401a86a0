"""The bridge's Prometheus metrics, read from its snapshot and its MQTT client."""

from __future__ import annotations

from prometheus_client.metrics_core import Metric

from iotmon_contract import DeadLetterReason
from iotmon_homeassistant.counters import BridgeSnapshot
from iotmon_runtime.metrics import counter, gauge, labelled_counter


def bridge_families(snapshot: BridgeSnapshot) -> list[Metric]:
    return [
        counter(
            "iotmon_homeassistant_readings",
            "Readings of registered devices the bridge received.",
            snapshot.readings,
        ),
        counter(
            "iotmon_homeassistant_states_published",
            "States published to Home Assistant (the newest reading per entity and message).",
            snapshot.states_published,
        ),
        counter(
            "iotmon_homeassistant_stale_readings",
            "Readings not forwarded: older than one already sent (a drained backlog), or "
            "superseded within their message.",
            snapshot.stale_readings,
        ),
        counter(
            "iotmon_homeassistant_configs_published",
            "Discovery configs published (new entities, or changed ones).",
            snapshot.configs_published,
        ),
        counter(
            "iotmon_homeassistant_configs_removed",
            "Entities removed (empty retained config) because their device left the registry.",
            snapshot.configs_removed,
        ),
        labelled_counter(
            "iotmon_homeassistant_messages_refused",
            "Telemetry messages not forwarded, by contract reason (ingest dead-letters them).",
            "reason",
            {reason.value: 0 for reason in DeadLetterReason} | snapshot.refused,
        ),
        counter(
            "iotmon_homeassistant_registry_errors",
            "Registry reads that failed (the bridge kept the devices it knew).",
            snapshot.registry_errors,
        ),
        gauge(
            "iotmon_homeassistant_entities",
            "Entities announced to Home Assistant.",
            snapshot.entities,
        ),
        gauge(
            "iotmon_homeassistant_devices",
            "Registered devices the bridge follows.",
            snapshot.devices,
        ),
    ]
