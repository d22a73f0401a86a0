"""Who may publish and read what: Mosquitto dynamic-security roles built per identity.

Pure data, no I/O. Every role grants a topic's read side twice, at subscribe time
(``subscribePattern``/``subscribeLiteral``) and at delivery (``publishClientReceive``),
and the default access refuses all three of publish, subscribe and receive: a
subscription a role may not read is refused with SUBACK 0x87 instead of being
accepted and then silently fed messages it never gets (which, for a shared
subscription, takes them from the group's real members).

Mosquitto 2.0's dynamic-security plugin does not expand ``%u`` or ``%c`` in ACL
topics (a test shows it), so a device or gateway gets a role of its own that
names its topics literally.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from iotmon_contract import (
    MessageKind,
    alert_filter,
    dead_letter_topic,
    device_acl,
    event_filter,
    event_topic,
    notice_filter,
    request_filter,
    response_filter,
    service_status_filter,
    service_status_topic,
    shared_subscription,
    status_filter,
    telemetry_filter,
)

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
"""Where the plugin takes commands; its answers come on ``CONTROL_RESPONSE_TOPIC``."""
CONTROL_RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
UPTIME_TOPIC = "$SYS/broker/uptime"

DEFAULT_ACCESS: Mapping[str, bool] = {
    "publishClientSend": False,
    "publishClientReceive": False,
    "subscribe": False,
    "unsubscribe": True,
}
"""What a client may do that no role of it mentions: nothing but unsubscribe."""


class AclType(StrEnum):
    PUBLISH = "publishClientSend"
    RECEIVE = "publishClientReceive"
    """Checked at each delivery against the message's topic."""
    SUBSCRIBE_LITERAL = "subscribeLiteral"
    """The subscription's exact text, ``$share/<group>/`` included."""
    SUBSCRIBE_PATTERN = "subscribePattern"
    """A filter the subscription must fall within; ``$share/<group>/`` is part of the
    text mosquitto 2.0 compares, so a plain pattern never grants a shared subscription."""


@dataclass(frozen=True, slots=True)
class Acl:
    type: AclType
    topic: str
    allow: bool = True

    def as_json(self) -> dict[str, Any]:
        return {"acltype": self.type.value, "topic": self.topic, "allow": self.allow}


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    description: str
    acls: tuple[Acl, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "rolename": self.name,
            "textdescription": self.description,
            "acls": [acl.as_json() for acl in self.acls],
        }


def publishes(*topics: str) -> list[Acl]:
    return [Acl(AclType.PUBLISH, topic) for topic in topics]


def reads(*filters: str) -> list[Acl]:
    """Subscribe (within the filter) and receive what matches it."""
    acls = []
    for topic_filter in filters:
        acls.append(Acl(AclType.SUBSCRIBE_PATTERN, topic_filter))
        acls.append(Acl(AclType.RECEIVE, topic_filter))
    return acls


def reads_shared(group: str, *filters: str) -> list[Acl]:
    """A shared subscription of ``group`` to each filter, and delivery of what matches."""
    acls = []
    for topic_filter in filters:
        acls.append(Acl(AclType.SUBSCRIBE_PATTERN, shared_subscription(group, topic_filter)))
        acls.append(Acl(AclType.RECEIVE, topic_filter))
    return acls


def device_acls(tenant: str, device: str, children: Iterable[str] = ()) -> list[Acl]:
    """The contract's device rights (``device_acl``): publish its own telemetry, status,
    events and command responses, read the requests addressed to it; a gateway gets
    the same for each child. Ids are validated."""
    rights = device_acl(tenant, device, children)
    return [*publishes(*rights.publish), *reads(*rights.subscribe)]


def devices_of(acls: Iterable[Acl]) -> list[str]:
    """The device ids whose telemetry a role may publish, in role order."""
    found = []
    for acl in acls:
        parts = acl.topic.split("/")
        if (
            acl.type is AclType.PUBLISH
            and len(parts) == 5
            and parts[4] == MessageKind.TELEMETRY.value
            and parts[3] not in found
        ):
            found.append(parts[3])
    return found


def device_role(name: str, tenant: str, device: str) -> Role:
    return Role(name, f"device {tenant}/{device}", tuple(device_acls(tenant, device)))


def gateway_role(
    name: str,
    tenant: str,
    gateway: str,
    children: Iterable[str],
    *,
    service: str | None = None,
    vehicles: Iterable[str] = (),
) -> Role:
    """An edge agent: its own topics and those of its registered children, nothing else.

    A platform service that speaks for devices of one tenant (the video service and its
    cameras) is such a gateway, plus exactly what it needs beyond that: with ``service``
    it publishes that service's availability for the instance named like the gateway
    (``iotmon/v1/_sys/status/<service>/<gateway>``, its will and ``online``); with
    ``vehicles`` it reads those devices' events (a cabin camera follows its bus's run).
    """
    acls = device_acls(tenant, gateway, children)
    if service is not None:
        acls.extend(publishes(service_status_topic(service, gateway)))
    acls.extend(reads(*(event_topic(tenant, vehicle) for vehicle in vehicles)))
    return Role(name, f"gateway {tenant}/{gateway}", tuple(acls))


def service_filters(commands: bool) -> list[str]:
    filters = [telemetry_filter(), status_filter(), event_filter()]
    if commands:
        filters.append(response_filter())
    return filters


def service_role(
    name: str,
    service: str,
    share_group: str,
    commands: bool,
    discovery_prefix: str | None = None,
) -> Role:
    """A back-end service: reads every tenant's device topics, plainly or in its own
    share group (never another's); writes its own dead letters, availability, alerts
    and notices, so it cannot speak for another service either. With ``commands`` it
    may also send device requests. With ``discovery_prefix`` (the Home Assistant
    bridge) it writes under that prefix and reads the sensor configs there back."""
    filters = service_filters(commands)
    acls = [
        *reads(*filters),
        *reads_shared(share_group, *filters),
        *publishes(
            dead_letter_topic(service),
            service_status_filter(service),
            alert_filter(service=service),
            notice_filter(service=service),
        ),
    ]
    if commands:
        acls.extend(publishes(request_filter()))
    if discovery_prefix is not None:
        acls.extend(publishes(f"{discovery_prefix}/#"))
        acls.extend(reads(f"{discovery_prefix}/sensor/+/+/config"))
    return Role(name, f"service {service} (share group {share_group})", tuple(acls))


def health_role(name: str) -> Role:
    """Container health checks: one retained broker statistic, nothing else."""
    acls = (Acl(AclType.SUBSCRIBE_LITERAL, UPTIME_TOPIC), Acl(AclType.RECEIVE, UPTIME_TOPIC))
    return Role(name, "health checks: read $SYS/broker/uptime", acls)


def admin_role(name: str) -> Role:
    """Administers the dynamic-security plugin; reads and writes no device topic."""
    acls = (
        Acl(AclType.PUBLISH, CONTROL_TOPIC),
        Acl(AclType.SUBSCRIBE_LITERAL, CONTROL_RESPONSE_TOPIC),
        Acl(AclType.RECEIVE, CONTROL_RESPONSE_TOPIC),
    )
    return Role(name, "administers broker identities over $CONTROL/dynamic-security", acls)
