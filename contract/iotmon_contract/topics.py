"""MQTT topic scheme, QoS and retain rules of the iotmon contract.

Device topics: ``iotmon/v1/<tenant>/<device>/<kind>`` where kind is ``telemetry``,
``status`` or ``event``; commands ``iotmon/v1/<tenant>/<device>/request/<action>``
answered on ``.../response/<action>``. Services publish alerts and notices for a
tenant under ``iotmon/v1/<tenant>/_service/<service>/<kind>``, and system topics
(dead letters, service availability) live under ``iotmon/v1/_sys/``. Neither can
collide with a tenant or a device: their ids cannot start with ``_``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

CONTRACT_VERSION = "1.2.0"
"""Semantic version of the contract; the major version is part of every topic."""

TOPIC_ROOT = f"iotmon/v{CONTRACT_VERSION.split('.')[0]}"
SYSTEM_SEGMENT = "_sys"
SERVICE_SEGMENT = "_service"

IDENTIFIER_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
"""Tenant and device ids: lowercase, no MQTT wildcards or separators, 64 chars max."""

_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)


class MessageKind(StrEnum):
    """What a device topic carries: its last segment, or the one before the action."""

    TELEMETRY = "telemetry"
    STATUS = "status"
    EVENT = "event"
    REQUEST = "request"
    RESPONSE = "response"


class ServiceMessageKind(StrEnum):
    """What a service publishes under a tenant: the last segment of its topic."""

    ALERT = "alert"
    NOTICE = "notice"


COMMAND_KINDS = frozenset({MessageKind.REQUEST, MessageKind.RESPONSE})
"""Kinds whose topic ends in an ``<action>`` segment."""

RESERVED_SERVICE_NAMES = frozenset({MessageKind.REQUEST.value, MessageKind.RESPONSE.value})
"""Service ids refused under a tenant: ``iotmon/v1/<t>/_service/request/alert`` would
match the device command filter ``iotmon/v1/<t>/+/request/+``."""


@dataclass(frozen=True, slots=True)
class TopicRule:
    """How a kind of message is published: the contract fixes QoS and retain."""

    qos: int
    retain: bool


_RULES: dict[MessageKind | ServiceMessageKind, TopicRule] = {
    # Every reading matters (guardians, billing): at-least-once, never retained.
    MessageKind.TELEMETRY: TopicRule(qos=1, retain=False),
    # Availability is state, not an event: retained so late subscribers see it.
    MessageKind.STATUS: TopicRule(qos=1, retain=True),
    # Events happened once: a retained one would be delivered again to every new
    # subscriber as if it had just happened.
    MessageKind.EVENT: TopicRule(qos=1, retain=False),
    # A retained command would be executed again by a device on every reconnect.
    MessageKind.REQUEST: TopicRule(qos=1, retain=False),
    MessageKind.RESPONSE: TopicRule(qos=1, retain=False),
    # Alert state changes and notices are events; the alert service keeps the state.
    ServiceMessageKind.ALERT: TopicRule(qos=1, retain=False),
    ServiceMessageKind.NOTICE: TopicRule(qos=1, retain=False),
}

DEAD_LETTER_RULE = TopicRule(qos=1, retain=False)
SERVICE_STATUS_RULE = TopicRule(qos=1, retain=True)
"""Service availability is state, like a device's: retained, the offline form the will."""


class TopicError(ValueError):
    """A topic or identifier that does not follow the contract."""


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """The parts of a device topic; ``action`` is set for request and response topics."""

    tenant: str
    device: str
    kind: MessageKind
    action: str | None = None


@dataclass(frozen=True, slots=True)
class ServiceTopicInfo:
    """The parts of a service topic under a tenant (alerts, notices)."""

    tenant: str
    service: str
    kind: ServiceMessageKind


def topic_rule(kind: MessageKind | ServiceMessageKind) -> TopicRule:
    return _RULES[kind]


def validate_identifier(value: str, what: str) -> str:
    if not _IDENTIFIER.match(value):
        raise TopicError(f"{what} {value!r} must match {IDENTIFIER_PATTERN}")
    return value


def validate_service(service: str) -> str:
    """A service id that may appear under a tenant (not a reserved name)."""
    validate_identifier(service, "service")
    if service in RESERVED_SERVICE_NAMES:
        raise TopicError(f"service {service!r} is reserved: {sorted(RESERVED_SERVICE_NAMES)}")
    return service


def _filter_segment(value: str, what: str) -> str:
    """``+`` (any) or an id: never ``#`` or a partial wildcard, which would widen a filter."""
    return value if value == "+" else validate_identifier(value, what)


def _device_topic(tenant: str, device: str, kind: MessageKind) -> str:
    validate_identifier(tenant, "tenant")
    validate_identifier(device, "device")
    return f"{TOPIC_ROOT}/{tenant}/{device}/{kind.value}"


def telemetry_topic(tenant: str, device: str) -> str:
    return _device_topic(tenant, device, MessageKind.TELEMETRY)


def status_topic(tenant: str, device: str) -> str:
    return _device_topic(tenant, device, MessageKind.STATUS)


def event_topic(tenant: str, device: str) -> str:
    """Where a device publishes its events (faults, tag reads, positions, detections)."""
    return _device_topic(tenant, device, MessageKind.EVENT)


def _command_topic(tenant: str, device: str, kind: MessageKind, action: str) -> str:
    validate_identifier(action, "action")
    return f"{_device_topic(tenant, device, kind)}/{action}"


def request_topic(tenant: str, device: str, action: str) -> str:
    """Where a service asks a device to do ``action``."""
    return _command_topic(tenant, device, MessageKind.REQUEST, action)


def response_topic(tenant: str, device: str, action: str) -> str:
    """Where the device answers a request for ``action``."""
    return _command_topic(tenant, device, MessageKind.RESPONSE, action)


def reply_topic(request: str) -> str:
    """The response topic that answers a request topic."""
    info = parse_topic(request)
    if info.kind is not MessageKind.REQUEST or info.action is None:
        raise TopicError(f"topic {request!r} is not a request topic")
    return response_topic(info.tenant, info.device, info.action)


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


def event_filter(tenant: str = "+") -> str:
    """Subscription filter for events of one tenant, or all with ``+``."""
    return f"{TOPIC_ROOT}/{_filter_segment(tenant, 'tenant')}/+/{MessageKind.EVENT.value}"


def _command_filter(tenant: str, device: str, kind: MessageKind) -> str:
    tenant = _filter_segment(tenant, "tenant")
    device = _filter_segment(device, "device")
    return f"{TOPIC_ROOT}/{tenant}/{device}/{kind.value}/+"


def request_filter(tenant: str = "+", device: str = "+") -> str:
    """Requests of every action; a device subscribes with its own tenant and id."""
    return _command_filter(tenant, device, MessageKind.REQUEST)


def response_filter(tenant: str = "+", device: str = "+") -> str:
    """Responses of every action; what a service that sends requests subscribes to."""
    return _command_filter(tenant, device, MessageKind.RESPONSE)


def _service_topic(tenant: str, service: str, kind: ServiceMessageKind) -> str:
    validate_identifier(tenant, "tenant")
    validate_service(service)
    return f"{TOPIC_ROOT}/{tenant}/{SERVICE_SEGMENT}/{service}/{kind.value}"


def alert_topic(tenant: str, service: str) -> str:
    """Where a service publishes the alerts it raises for a tenant."""
    return _service_topic(tenant, service, ServiceMessageKind.ALERT)


def notice_topic(tenant: str, service: str) -> str:
    """Where a service publishes notices (non-alert news) for a tenant."""
    return _service_topic(tenant, service, ServiceMessageKind.NOTICE)


def _service_filter(tenant: str, service: str, kind: ServiceMessageKind) -> str:
    tenant = _filter_segment(tenant, "tenant")
    service = service if service == "+" else validate_service(service)
    return f"{TOPIC_ROOT}/{tenant}/{SERVICE_SEGMENT}/{service}/{kind.value}"


def alert_filter(tenant: str = "+", service: str = "+") -> str:
    return _service_filter(tenant, service, ServiceMessageKind.ALERT)


def notice_filter(tenant: str = "+", service: str = "+") -> str:
    return _service_filter(tenant, service, ServiceMessageKind.NOTICE)


def service_status_topic(service: str, instance: str) -> str:
    """Retained availability of one instance of a service; its last will is offline."""
    validate_identifier(service, "service")
    validate_identifier(instance, "instance")
    return f"{TOPIC_ROOT}/{SYSTEM_SEGMENT}/status/{service}/{instance}"


def service_status_filter(service: str = "+") -> str:
    """Availability of every instance of one service, or of all services with ``+``."""
    return f"{TOPIC_ROOT}/{SYSTEM_SEGMENT}/status/{_filter_segment(service, 'service')}/+"


def dead_letter_topic(service: str) -> str:
    """Where a service republishes what it could not accept, with the reason."""
    validate_identifier(service, "service")
    return f"{TOPIC_ROOT}/{SYSTEM_SEGMENT}/dead-letter/{service}"


def shared_subscription(group: str, topic_filter: str) -> str:
    """MQTT v5 shared subscription: replicas in one group split the messages."""
    validate_identifier(group, "share group")
    return f"$share/{group}/{topic_filter}"


def parse_topic(topic: str) -> TopicInfo:
    """Split a device topic into its parts, or raise TopicError saying why.

    Takes ``<root>/<tenant>/<device>/<kind>`` and, for commands,
    ``<root>/<tenant>/<device>/request|response/<action>``.
    """
    parts = topic.split("/")
    if len(parts) not in (5, 6) or f"{parts[0]}/{parts[1]}" != TOPIC_ROOT:
        raise TopicError(
            f"topic {topic!r} is not {TOPIC_ROOT}/<tenant>/<device>/<kind> "
            f"or {TOPIC_ROOT}/<tenant>/<device>/request|response/<action>"
        )
    tenant, device, kind = parts[2:5]
    try:
        message_kind = MessageKind(kind)
    except ValueError:
        raise TopicError(f"topic {topic!r} has unknown kind {kind!r}") from None
    action = parts[5] if len(parts) == 6 else None
    if (action is not None) != (message_kind in COMMAND_KINDS):
        if action is None:
            raise TopicError(f"{kind} topic {topic!r} lacks its /<action> segment")
        raise TopicError(f"{kind} topic {topic!r} takes no segment after {kind!r}")
    validate_identifier(tenant, "tenant")
    validate_identifier(device, "device")
    if action is not None:
        validate_identifier(action, "action")
    return TopicInfo(tenant=tenant, device=device, kind=message_kind, action=action)


def parse_service_topic(topic: str) -> ServiceTopicInfo:
    """Split ``<root>/<tenant>/_service/<service>/<kind>``, or raise TopicError saying why."""
    parts = topic.split("/")
    if len(parts) != 6 or f"{parts[0]}/{parts[1]}" != TOPIC_ROOT or parts[3] != SERVICE_SEGMENT:
        raise TopicError(
            f"topic {topic!r} is not {TOPIC_ROOT}/<tenant>/{SERVICE_SEGMENT}/<service>/<kind>"
        )
    tenant, _, service, kind = parts[2:6]
    try:
        message_kind = ServiceMessageKind(kind)
    except ValueError:
        raise TopicError(f"topic {topic!r} has unknown service kind {kind!r}") from None
    validate_identifier(tenant, "tenant")
    validate_service(service)
    return ServiceTopicInfo(tenant=tenant, service=service, kind=message_kind)
