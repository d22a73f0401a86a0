"""The alert service's Prometheus metrics, read from the counters it keeps anyway.

``alerts_families`` is pure: a counters snapshot, the webhook dispatcher's counters and a
look at the queues in, metric families out. The service registers it with the shared MQTT
client's families on its own registry (``AlertService.start``); docs/metrics.md lists them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.metrics_core import CounterMetricFamily, Metric

from iotmon_alerts.adapters.webhooks import DispatchCounters
from iotmon_contract import DeadLetterReason
from iotmon_runtime.metrics import counter, gauge, labelled_counter

REFUSALS_BEYOND_MESSAGES = ("rule_file", "action")
"""What else is refused besides messages (whose reasons are the dead-letter reasons)."""


@dataclass(frozen=True, slots=True)
class AlertsGauges:
    """The service's state at one moment."""

    inbound_messages: int
    """Received from the broker, not yet taken into a round."""
    active_alerts: int
    webhook_endpoints_busy: int
    """Endpoints with a delivery worker running."""


def _count(snapshot: Mapping[str, object], name: str) -> int:
    value = snapshot.get(name, 0)
    return value if isinstance(value, int) else 0


def alerts_families(
    snapshot: Mapping[str, object], webhooks: DispatchCounters, gauges: AlertsGauges
) -> list[Metric]:
    messages = CounterMetricFamily(
        "iotmon_alerts_messages", "Messages taken from the broker, by kind.", labels=["kind"]
    )
    for kind, name in (("telemetry", "telemetry"), ("event", "events"), ("status", "statuses")):
        messages.add_metric([kind], _count(snapshot, name))
    refused_counts = snapshot.get("refused", {})
    refused = {reason.value: 0 for reason in DeadLetterReason} | dict.fromkeys(
        REFUSALS_BEYOND_MESSAGES, 0
    )
    if isinstance(refused_counts, Mapping):
        refused |= {str(k): int(v) for k, v in refused_counts.items()}
    return [
        messages,
        labelled_counter(
            "iotmon_alerts_refused",
            "Messages (by dead-letter reason), rule files and API actions refused.",
            "reason",
            refused,
        ),
        counter(
            "iotmon_alerts_alert_changes",
            "Alert state changes recorded (firing, escalated, acknowledged, resolved).",
            _count(snapshot, "alert_changes"),
        ),
        counter(
            "iotmon_alerts_notices",
            "One-off notices recorded (boarded, alighted, bus empty…).",
            _count(snapshot, "notices"),
        ),
        counter(
            "iotmon_alerts_webhooks_queued",
            "Webhooks put in the durable outbox.",
            _count(snapshot, "webhooks_queued"),
        ),
        counter("iotmon_alerts_webhook_attempts", "Webhook requests sent.", webhooks.attempts),
        counter(
            "iotmon_alerts_webhooks_delivered",
            "Webhooks the endpoint accepted (2xx).",
            webhooks.delivered,
        ),
        counter(
            "iotmon_alerts_webhook_failed_attempts",
            "Webhook requests that failed (retried with backoff).",
            webhooks.failed_attempts,
        ),
        counter(
            "iotmon_alerts_webhooks_dead",
            "Webhooks moved to the dead-letter state after their last try.",
            webhooks.dead,
        ),
        labelled_counter(
            "iotmon_alerts_webhook_errors",
            "Failed webhook requests by kind (http_<status>, timeout, the exception's class).",
            "kind",
            dict(webhooks.errors),
        ),
        counter(
            "iotmon_alerts_events_written",
            "Alert and notice events written to the time-series store (_alert).",
            _count(snapshot, "events_written"),
        ),
        counter(
            "iotmon_alerts_events_unwritten",
            "Alert and notice events the time-series store did not take.",
            _count(snapshot, "events_unwritten"),
        ),
        counter(
            "iotmon_alerts_rule_reloads",
            "Rule files (re)loaded without a restart.",
            _count(snapshot, "rule_reloads"),
        ),
        counter(
            "iotmon_alerts_actions_applied",
            "API actions (acknowledgements, silences) applied.",
            _count(snapshot, "actions_applied"),
        ),
        counter(
            "iotmon_alerts_database_failures",
            "Alert database writes that failed and were retried.",
            _count(snapshot, "database_failures"),
        ),
        counter(
            "iotmon_alerts_round_errors",
            "Engine rounds that failed (their messages come back unacknowledged).",
            _count(snapshot, "round_errors"),
        ),
        counter(
            "iotmon_alerts_journal_rebuilt",
            "Bus journal lines the bus rules were rebuilt from (start, reload).",
            _count(snapshot, "journal_rebuilt"),
        ),
        counter(
            "iotmon_alerts_journal_unreadable",
            "Bus journal lines that could not be read while rebuilding.",
            _count(snapshot, "journal_unreadable"),
        ),
        gauge(
            "iotmon_alerts_inbound_messages",
            "Messages received, not yet taken into a round.",
            gauges.inbound_messages,
        ),
        gauge("iotmon_alerts_active_alerts", "Alerts not resolved.", gauges.active_alerts),
        gauge(
            "iotmon_alerts_webhook_endpoints_busy",
            "Webhook endpoints with deliveries in progress.",
            gauges.webhook_endpoints_busy,
        ),
    ]
