"""Ingest's Prometheus metrics, read from the counters and queues it keeps anyway.

``ingest_families`` is pure: a counters snapshot and a look at the queues in,
metric families out. The service registers it with the shared MQTT client's
families on its own registry (``IngestService.start``); docs/metrics.md lists them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.metrics_core import CounterMetricFamily, Metric

from iotmon_contract import DeadLetterReason
from iotmon_ingest.counters import CounterSnapshot
from iotmon_runtime.metrics import counter, gauge, histogram, labelled_counter


@dataclass(frozen=True, slots=True)
class IngestGauges:
    """How full ingest's queues are at one moment."""

    inbound_messages: int
    """Received from the broker, not yet taken into a batch."""
    inbound_bytes: int
    handoff_batches: int
    """Validated batches waiting for the store stage."""
    spool_batches: int
    spool_bytes: int
    intake_paused: bool
    held_messages: int
    """Messages held unacknowledged while neither the store nor the spool takes them."""
    store_up: bool


def every_reason(counts: Mapping[str, int]) -> dict[str, int]:
    """Every dead-letter reason, 0 where none happened yet: a series that appears with its
    first increment already counted loses that increment to rate() and increase()."""
    return {reason.value: 0 for reason in DeadLetterReason} | dict(counts)


def ingest_families(snapshot: CounterSnapshot, gauges: IngestGauges) -> list[Metric]:
    stored = CounterMetricFamily(
        "iotmon_ingest_readings_stored",
        "Readings written to the store: straight from a batch, or replayed from the spool.",
        labels=["path"],
    )
    stored.add_metric(["direct"], snapshot.readings_written)
    stored.add_metric(["replay"], snapshot.replayed_readings)
    refused = CounterMetricFamily(
        "iotmon_ingest_store_refused",
        "Points the store refused (each also a store_rejected dead letter).",
        labels=["kind"],
    )
    refused.add_metric(["reading"], snapshot.refused_readings)
    refused.add_metric(["status"], snapshot.refused_statuses)
    refused.add_metric(["event"], snapshot.refused_events)
    return [
        counter(
            "iotmon_ingest_messages_received",
            "Messages taken from the broker into a batch (telemetry, status and events).",
            snapshot.received,
        ),
        counter(
            "iotmon_ingest_batches", "Batches made durable and acknowledged.", snapshot.batches
        ),
        stored,
        counter(
            "iotmon_ingest_events_stored",
            "Device events (faults, tag reads, detections…) written to the store.",
            snapshot.events_written,
        ),
        counter(
            "iotmon_ingest_statuses_stored",
            "Device availability changes written to the store.",
            snapshot.statuses_written,
        ),
        labelled_counter(
            "iotmon_ingest_dead_letters",
            "Messages refused, by reason; each is published on the dead-letter topic.",
            "reason",
            every_reason(snapshot.dead_letters),
        ),
        counter(
            "iotmon_ingest_messages_ignored",
            "Messages read and deliberately not stored (e.g. a cleared retained status).",
            snapshot.ignored,
        ),
        counter(
            "iotmon_ingest_messages_acked",
            "Messages acknowledged to the broker after their batch was durable.",
            snapshot.acked,
        ),
        counter(
            "iotmon_ingest_spooled_batches",
            "Batches put in the spool while the store was unavailable.",
            snapshot.spooled_batches,
        ),
        counter(
            "iotmon_ingest_spooled_readings",
            "Readings put in the spool while the store was unavailable.",
            snapshot.spooled_readings,
        ),
        counter(
            "iotmon_ingest_replayed_batches",
            "Spooled batches written to the store once it was back.",
            snapshot.replayed_batches,
        ),
        counter(
            "iotmon_ingest_store_failures",
            "Store writes that failed for the store's sake (unreachable, timed out).",
            snapshot.store_failures,
        ),
        refused,
        counter(
            "iotmon_ingest_dead_letters_unstored",
            "Dead letters the store refused (published on the dead-letter topic all the same).",
            snapshot.unstored_dead_letters,
        ),
        counter(
            "iotmon_ingest_spool_failures",
            "Batches the spool could not take (full or not writable): intake paused meanwhile.",
            snapshot.spool_failures,
        ),
        counter(
            "iotmon_ingest_spool_quarantined_files",
            "Spool files that could not be read back, moved to the spool's rejected/ folder.",
            snapshot.quarantined_files,
        ),
        histogram(
            "iotmon_ingest_store_write_seconds",
            "Duration of successful store writes (a batch, or a replayed spool file).",
            snapshot.write_latency,
        ),
        gauge(
            "iotmon_ingest_inbound_messages",
            "Messages received and not yet taken into a batch.",
            gauges.inbound_messages,
        ),
        gauge(
            "iotmon_ingest_inbound_bytes",
            "Payload bytes received and not yet taken into a batch (intake pauses past "
            "buffer_bytes).",
            gauges.inbound_bytes,
        ),
        gauge(
            "iotmon_ingest_handoff_batches",
            "Validated batches waiting for the store stage.",
            gauges.handoff_batches,
        ),
        gauge("iotmon_ingest_spool_batches", "Batches in the spool.", gauges.spool_batches),
        gauge("iotmon_ingest_spool_bytes", "Bytes of the spool's batch files.", gauges.spool_bytes),
        gauge(
            "iotmon_ingest_intake_paused",
            "1 while ingest stopped reading from the broker (neither store nor spool takes "
            "a batch), else 0.",
            1 if gauges.intake_paused else 0,
        ),
        gauge(
            "iotmon_ingest_held_messages",
            "Messages held unacknowledged while intake is paused.",
            gauges.held_messages,
        ),
        gauge(
            "iotmon_ingest_store_up",
            "1 while the store takes writes, 0 while ingest retries it (and spools).",
            1 if gauges.store_up else 0,
        ),
    ]
