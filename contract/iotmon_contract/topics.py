"""MQTT topic scheme, QoS and retain rules of the iotmon contract.

Scheme: ``iotmon/v1/<tenant>/<device>/<kind>`` where kind is ``telemetry`` or
``status``. Service-level topics live under ``iotmon/v1/_sys/`` so they can
never collide with a tenant (tenant ids cannot start with ``_``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

CONTRACT_VERSION = "1.0.0"
"""Semantic version of the contract; the major version is part of every topic."""

TOPIC_ROOT = f"iotmon/v{CONTRACT_VERSION.split('.')[0]}"
SYSTEM_SEGMENT = "_sys"

IDENTIFIER_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
"""Tenant and device ids: lowercase, no MQTT wildcards or separators, 64 chars max."""

_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)


class MessageKind(StrEnum):
    TELEMETRY = "telemetry"
    STATUS = "status"


@dataclass(frozen=True, slots=True)
class TopicRule:
    """How a kind of message is published: the contract fixes QoS and retain."""

    qos: int
    retain: bool


_RULES: dict[MessageKind, TopicRule] = {
    # Every reading matters (guardians, billing): at-least-once, never retained.
    MessageKind.TELEMETRY: TopicRule(qos=1, retain=False),
    # Availability is state, not an event: retained so late subscribers see it.
    MessageKind.STATUS: TopicRule(qos=1, retain=True),
}

DEAD_LETTER_RULE = TopicRule(qos=1, retain=False)


class TopicError(ValueError):
    """A topic or identifier that does not follow the contract."""


@dataclass(frozen=True, slots=True)
class TopicInfo:
    tenant: str
    device: str
    kind: MessageKind


def topic_rule(kind: MessageKind) -> TopicRule:
    return _RULES[kind]


def validate_identifier(value: str, what: str) -> str:
    if not _IDENTIFIER.match(value):
        raise TopicError(f"{what} {value!r} must match {IDENTIFIER_PATTERN}")
    return value


def _device_topic(tenant: str, device: str, kind: MessageKind) -> str:
    validate_identifier(tenant, "tenant")
    validate_identifier(device, "device")
    return f"{TOPIC_ROOT}/{tenant}/{device}/{kind.value}"


def telemetry_topic(tenant: str, device: str) -> str:
    return _device_topic(tenant, device, MessageKind.TELEMETRY)


def status_topic(tenant: str, device: str) -> str:
    return _device_topic(tenant, device, MessageKind.STATUS)


def telemetry_filter(tenant: str = "+") -> str:
    """Subscription filter for telemetry of one tenant, or all with ``+``."""
    return f"{TOPIC_ROOT}/{tenant}/+/{MessageKind.TELEMETRY.value}"


def status_filter(tenant: str = "+") -> str:
    return f"{TOPIC_ROOT}/{tenant}/+/{MessageKind.STATUS.value}"


def topic_prefix(tenant: str, device: str | None = None) -> str:
    """The start every topic of a tenant (or of one of its devices) has, ending in ``/``.

    For matching topics already received (dead letters, logs), not for subscribing.
    """
    validate_identifier(tenant, "tenant")
    if device is None:
        return f"{TOPIC_ROOT}/{tenant}/"
    validate_identifier(device, "device")
    return f"{TOPIC_ROOT}/{tenant}/{device}/"


def dead_letter_topic(service: str) -> str:
    """Where a service republishes what it could not accept, with the reason."""
    validate_identifier(service, "service")
    return f"{TOPIC_ROOT}/{SYSTEM_SEGMENT}/dead-letter/{service}"


def shared_subscription(group: str, topic_filter: str) -> str:
    """MQTT v5 shared subscription: replicas in one group split the messages."""
    validate_identifier(group, "share group")
    return f"$share/{group}/{topic_filter}"


def parse_topic(topic: str) -> TopicInfo:
    """Split a device topic into its parts, or raise TopicError saying why."""
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != TOPIC_ROOT:
        raise TopicError(f"topic {topic!r} is not {TOPIC_ROOT}/<tenant>/<device>/<kind>")
    _, _, tenant, device, kind = parts
    try:
        message_kind = MessageKind(kind)
    except ValueError:
        raise TopicError(f"topic {topic!r} has unknown kind {kind!r}") from None
    validate_identifier(tenant, "tenant")
    validate_identifier(device, "device")
    return TopicInfo(tenant=tenant, device=device, kind=message_kind)
