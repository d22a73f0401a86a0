"""Who may use the demo's mosquitto: the production trust model (broker/README.md) on loopback.

Every client logs in as it would in production, with a password made for this run:
each edge agent as the gateway of the children the registry gives it, ingest and the
alert service as services, the video service as the gateway of its cameras, and a
watcher with a service's read rights for the ``mosquitto_sub`` line the demo prints.
So a demo agent that published for a device it does not own, or subscribed beyond its
role, would be refused as in production. Zigbee2MQTT talks to the school's own broker,
as it does on the school's Pi, not to this one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from iotmon_registry import Registry
from iotmon_tools.broker.dynsec_file import Provisioned
from iotmon_tools.broker.identities import gateway_identity, service_identity
from iotmon_tools.broker.passwords import generate_password

INGEST = "ingest"
ALERTS = "alerts"
WATCH = "watch"
VIDEO_SERVICE = "video"


@dataclass(frozen=True, slots=True)
class Login:
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class DemoIdentities:
    """The broker's clients and the login each part of the demo uses."""

    by_part: Mapping[str, Provisioned]
    """By part: ``ingest``, ``alerts``, ``watch``, each gateway's id, the video gateway's id."""

    @property
    def provisioned(self) -> tuple[Provisioned, ...]:
        return tuple(self.by_part.values())

    def login(self, part: str) -> Login:
        try:
            found = self.by_part[part]
        except KeyError:
            raise LookupError(f"the demo broker has no identity for {part!r}") from None
        return Login(found.identity.username, found.password)


def registry_gateways(registry: Registry, tenant: str) -> dict[str, list[str]]:
    """Each gateway of ``tenant`` and its children, as ingest reads them."""
    children: dict[str, list[str]] = defaultdict(list)
    for (child_tenant, child), gateway in registry.gateway_map().gateways.items():
        if child_tenant == tenant:
            children[gateway].append(child)
    return {gateway: sorted(found) for gateway, found in sorted(children.items())}


def demo_identities(
    tenant: str,
    gateways: Mapping[str, Iterable[str]],
    *,
    video_gateway: str | None = None,
    cameras: Iterable[str] = (),
) -> DemoIdentities:
    """Services, watcher, gateways (and the video service's gateway), fresh passwords."""
    identities = {service: service_identity(service) for service in (INGEST, ALERTS, WATCH)}
    for gateway, children in gateways.items():
        identities[gateway] = gateway_identity(tenant, gateway, list(children))
    if video_gateway is not None:
        identities[video_gateway] = gateway_identity(
            tenant, video_gateway, list(cameras), service=VIDEO_SERVICE
        )
    return DemoIdentities(
        {part: Provisioned(identity, generate_password()) for part, identity in identities.items()}
    )


__all__ = [
    "ALERTS",
    "INGEST",
    "WATCH",
    "DemoIdentities",
    "Login",
    "demo_identities",
    "registry_gateways",
]
