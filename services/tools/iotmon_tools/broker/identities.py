"""Broker identities: who a client is (device, gateway, service…), its username and its role.

A device or gateway logs in as ``<tenant>/<id>``, the ``<tenant>/<device>`` part of
its topics; a service as ``iotmon-<name>``. Each identity carries the role that
says what it may publish and read (``roles``); the role's name also records the
identity's kind, which is how ``list`` tells them apart on a running broker.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from iotmon_contract.topics import TopicError, validate_identifier, validate_service
from iotmon_tools.broker.roles import (
    Role,
    admin_role,
    device_role,
    gateway_role,
    health_role,
    service_role,
)

_DISCOVERY_PREFIX = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
SERVICE_USER_PREFIX = "iotmon-"
DEFAULT_ADMIN_USER = "iotmon-admin"
DEFAULT_HEALTH_USER = "iotmon-health"
ROLE_PREFIX = "iotmon-"


class IdentityError(ValueError):
    """An identity that cannot exist: a bad id, a gateway that is its own child…"""


class IdentityKind(StrEnum):
    DEVICE = "device"
    GATEWAY = "gateway"
    SERVICE = "service"
    HEALTH = "health"
    ADMIN = "admin"


SHARED_ROLE_KINDS = frozenset({IdentityKind.HEALTH, IdentityKind.ADMIN})
"""Kinds whose clients share one role; every other client has a role of its own."""


@dataclass(frozen=True, slots=True)
class Identity:
    kind: IdentityKind
    username: str
    role: Role


def role_name(kind: IdentityKind, subject: str = "") -> str:
    """``iotmon-device:acme/env-1``, ``iotmon-service:ingest``, ``iotmon-admin``."""
    name = f"{ROLE_PREFIX}{kind.value}"
    return f"{name}:{subject}" if subject else name


def kind_of_role(name: str) -> IdentityKind | None:
    """The kind a role name records, or None for a role iotmon did not make."""
    if not name.startswith(ROLE_PREFIX):
        return None
    try:
        return IdentityKind(name[len(ROLE_PREFIX) :].split(":", 1)[0])
    except ValueError:
        return None


def _identifier(value: str, what: str) -> str:
    try:
        return validate_identifier(value, what)
    except TopicError as exc:
        raise IdentityError(str(exc)) from None


def device_username(tenant: str, device: str) -> str:
    return f"{_identifier(tenant, 'tenant')}/{_identifier(device, 'device')}"


def device_identity(tenant: str, device: str) -> Identity:
    username = device_username(tenant, device)
    role = device_role(role_name(IdentityKind.DEVICE, username), tenant, device)
    return Identity(IdentityKind.DEVICE, username, role)


def check_children(gateway: str, children: Iterable[str]) -> list[str]:
    """Children validated, in order, each once; a gateway is never its own child."""
    checked: list[str] = []
    for child in children:
        _identifier(child, "child device")
        if child == gateway:
            raise IdentityError(f"gateway {gateway!r} cannot be its own child")
        if child in checked:
            raise IdentityError(f"child device {child!r} is listed twice")
        checked.append(child)
    return checked


def gateway_identity(
    tenant: str,
    gateway: str,
    children: Sequence[str],
    *,
    service: str | None = None,
    vehicles: Sequence[str] = (),
) -> Identity:
    """``service`` and ``vehicles``: a service speaking for cameras (``gateway_role``)."""
    username = device_username(tenant, gateway)
    if service is not None:
        try:
            validate_service(service)
        except TopicError as exc:
            raise IdentityError(str(exc)) from None
    role = gateway_role(
        role_name(IdentityKind.GATEWAY, username),
        tenant,
        gateway,
        check_children(gateway, children),
        service=service,
        vehicles=[_identifier(vehicle, "vehicle") for vehicle in vehicles],
    )
    return Identity(IdentityKind.GATEWAY, username, role)


def service_username(service: str) -> str:
    try:
        return SERVICE_USER_PREFIX + validate_service(service)
    except TopicError as exc:
        raise IdentityError(str(exc)) from None


def service_identity(
    service: str,
    *,
    share_group: str | None = None,
    commands: bool = False,
    discovery_prefix: str | None = None,
) -> Identity:
    """``share_group`` defaults to the username, which is what ingest uses (iotmon-ingest);
    ``discovery_prefix`` lets the Home Assistant bridge write its discovery topics."""
    username = service_username(service)
    group = _identifier(share_group or username, "share group")
    if discovery_prefix is not None and not _DISCOVERY_PREFIX.match(discovery_prefix):
        raise IdentityError(
            f"discovery prefix {discovery_prefix!r} must be topic levels of letters, digits, "
            "'_' and '-' (no wildcards)"
        )
    role = service_role(
        role_name(IdentityKind.SERVICE, service), service, group, commands, discovery_prefix
    )
    return Identity(IdentityKind.SERVICE, username, role)


def health_identity(username: str = DEFAULT_HEALTH_USER) -> Identity:
    _identifier(username, "health user")
    return Identity(IdentityKind.HEALTH, username, health_role(role_name(IdentityKind.HEALTH)))


def admin_identity(username: str = DEFAULT_ADMIN_USER) -> Identity:
    _identifier(username, "admin user")
    return Identity(IdentityKind.ADMIN, username, admin_role(role_name(IdentityKind.ADMIN)))
