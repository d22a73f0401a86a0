"""The iotmon wire contract: the one place that defines topics and payloads.

Every producer (edge agents, simulators) and consumer (ingest, API, alerts)
imports topics and models from here; nobody builds a topic string by hand.
"""

from iotmon_contract.fields import PRINTABLE_PATTERN, to_printable
from iotmon_contract.payloads import (
    MAX_BATCH_READINGS,
    MAX_PAYLOAD_BYTES,
    DeadLetter,
    DeadLetterReason,
    DeviceState,
    DeviceStatus,
    Reading,
    ReadingBatch,
    SingleReading,
    TelemetryMessage,
    parse_telemetry,
)
from iotmon_contract.topics import (
    CONTRACT_VERSION,
    TOPIC_ROOT,
    MessageKind,
    TopicError,
    TopicInfo,
    TopicRule,
    dead_letter_topic,
    parse_topic,
    shared_subscription,
    status_filter,
    status_topic,
    telemetry_filter,
    telemetry_topic,
    topic_rule,
)
from iotmon_contract.validation import ContractViolation, TelemetryValidator, ValidatedReading

__all__ = [
    "CONTRACT_VERSION",
    "MAX_BATCH_READINGS",
    "MAX_PAYLOAD_BYTES",
    "PRINTABLE_PATTERN",
    "TOPIC_ROOT",
    "ContractViolation",
    "DeadLetter",
    "DeadLetterReason",
    "DeviceState",
    "DeviceStatus",
    "MessageKind",
    "Reading",
    "ReadingBatch",
    "SingleReading",
    "TelemetryMessage",
    "TelemetryValidator",
    "TopicError",
    "TopicInfo",
    "TopicRule",
    "ValidatedReading",
    "dead_letter_topic",
    "parse_telemetry",
    "parse_topic",
    "shared_subscription",
    "status_filter",
    "status_topic",
    "telemetry_filter",
    "telemetry_topic",
    "to_printable",
    "topic_rule",
]
