"""What a device may publish and subscribe to, as MQTT topic filters.

The broker's access control is generated from these, so a device's rights follow
the contract: its own telemetry, status, events and command responses out, its own
command requests in, nothing of any other device or tenant.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from iotmon_contract.topics import (
    TOPIC_ROOT,
    event_topic,
    request_filter,
    response_filter,
    status_topic,
    telemetry_topic,
    validate_identifier,
)


@dataclass(frozen=True, slots=True)
class TopicAcl:
    """Topic filters a client may publish to (write) and subscribe to (read)."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


def device_acl(tenant: str, device: str, children: Iterable[str] = ()) -> TopicAcl:
    """Rights of a device, or of a gateway and the child devices it speaks for.

    A gateway publishes its children's readings on their own topics (one reading per
    message) or in a batch on its own topic, and answers requests addressed to them,
    so each child listed gets the rights the gateway has for itself.
    """
    publish: list[str] = []
    subscribe: list[str] = []
    validate_identifier(tenant, "tenant")
    for name in dict.fromkeys([device, *children]):  # in order, each once
        # Checked here, not left to the builders: "+" is a valid filter segment.
        validate_identifier(name, "device")
        publish += [
            telemetry_topic(tenant, name),
            status_topic(tenant, name),
            event_topic(tenant, name),
            response_filter(tenant, name),
        ]
        subscribe.append(request_filter(tenant, name))
    return TopicAcl(publish=tuple(publish), subscribe=tuple(subscribe))


_SAMPLE_TENANT, _SAMPLE_DEVICE = "tenant", "device"


def device_acl_pattern(username: str = "%u") -> TopicAcl:
    """``device_acl`` for a pattern ACL where a device's username is ``<tenant>/<device>``.

    For brokers that expand ``%u`` to the username in pattern ACLs (mosquitto's
    ``acl_file``), one set of lines confines every device to its own topics. Mosquitto
    2.0's dynamic security plugin does not expand it, so iotmon's broker setup gives
    each device a role of its own from ``device_acl``. Built from ``device_acl`` so
    that the two cannot drift apart.
    """
    own = f"{TOPIC_ROOT}/{_SAMPLE_TENANT}/{_SAMPLE_DEVICE}/"
    mine = f"{TOPIC_ROOT}/{username}/"
    sample = device_acl(_SAMPLE_TENANT, _SAMPLE_DEVICE)

    def substitute(filters: tuple[str, ...]) -> tuple[str, ...]:
        assert all(f.startswith(own) for f in filters), filters
        return tuple(mine + f.removeprefix(own) for f in filters)

    return TopicAcl(publish=substitute(sample.publish), subscribe=substitute(sample.subscribe))
