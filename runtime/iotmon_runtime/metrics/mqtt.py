"""The shared MQTT client's statistics as metrics, one sample per client (label ``client``).

Read from ``MqttClient.stats()``, which the client keeps anyway: nothing is added to
its receive path. Every process with an ``MqttClient`` exports these the same way,
the edge agent's ``agent_mqtt_*`` health readings included (docs/metrics.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from iotmon_runtime.mqtt import MqttClient

_COUNTERS = (
    ("iotmon_mqtt_messages_received", "Messages received from the broker.", "received"),
    ("iotmon_mqtt_acks", "Acknowledgements sent for manually acknowledged messages.", "acks"),
    ("iotmon_mqtt_publishes", "Messages handed to the network layer to publish.", "accepted"),
    (
        "iotmon_mqtt_publishes_refused",
        "Publishes refused: hold queue full, or the client not started.",
        "refused",
    ),
    (
        "iotmon_mqtt_publishes_completed",
        "Publishes the broker acknowledged (QoS 1) or that were written (QoS 0).",
        "completed",
    ),
    (
        "iotmon_mqtt_publishes_rejected",
        "Publishes the broker acknowledged with a failure reason (MQTT 5).",
        "rejected",
    ),
    (
        "iotmon_mqtt_connects",
        "Successful connections to the broker, the first included.",
        "connects",
    ),
    (
        "iotmon_mqtt_unrouted",
        "Messages that matched no subscription of the client (acknowledged, dropped).",
        "unrouted",
    ),
    (
        "iotmon_mqtt_handler_errors",
        "Messages whose handler raised (logged, counted, acknowledged).",
        "handler_errors",
    ),
)


def mqtt_client_families(clients: Sequence[MqttClient]) -> list[Metric]:
    """Every client of a process in one set of families (a family may appear only once)."""
    counters = {
        name: CounterMetricFamily(name, doc, labels=["client"]) for name, doc, _ in _COUNTERS
    }
    reconnects = CounterMetricFamily(
        "iotmon_mqtt_reconnects",
        "Connections after the first: each one follows a lost connection.",
        labels=["client"],
    )
    held = GaugeMetricFamily(
        "iotmon_mqtt_held_messages", "Publishes waiting for a connection.", labels=["client"]
    )
    connected = GaugeMetricFamily(
        "iotmon_mqtt_connected", "1 while connected to the broker, else 0.", labels=["client"]
    )
    for client in clients:
        stats = client.stats()
        label = [client.client_id]
        for name, _, field in _COUNTERS:
            counters[name].add_metric(label, getattr(stats, field))
        reconnects.add_metric(label, max(0, stats.connects - 1))
        held.add_metric(label, stats.held)
        connected.add_metric(label, 1 if client.connected else 0)
    return [*counters.values(), reconnects, held, connected]
