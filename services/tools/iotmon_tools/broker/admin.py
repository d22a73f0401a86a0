"""Identity management on a running broker: add, re-child, rotate, revoke, list.

Each operation is a few dynamic-security commands over a ``DynsecSession``.
Passwords travel in the command (the plugin hashes them); nothing here logs them.
Changing a client's role or password makes mosquitto disconnect its sessions,
so a revoked or re-keyed client is out at once, not at its next login.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from iotmon_tools.broker.control import CommandFailed, DynsecSession
from iotmon_tools.broker.identities import (
    SHARED_ROLE_KINDS,
    Identity,
    IdentityError,
    IdentityKind,
    device_username,
    gateway_identity,
    kind_of_role,
)
from iotmon_tools.broker.roles import Acl, AclType, devices_of

_NOT_FOUND = "Client not found"
_ROLE_EXISTS = "Role already exists"


class UnknownClient(LookupError):
    def __init__(self, username: str) -> None:
        super().__init__(f"no client {username!r} on the broker (see `iotmon broker list`)")
        self.username = username


class ClientExists(ValueError):
    def __init__(self, username: str) -> None:
        super().__init__(
            f"client {username!r} exists already; use rotate-password, set-children or revoke"
        )
        self.username = username


@dataclass(frozen=True, slots=True)
class ClientInfo:
    username: str
    kind: IdentityKind | None
    """None: a client iotmon did not create."""
    disabled: bool
    roles: tuple[str, ...]
    devices: tuple[str, ...]
    """Devices a device or gateway may publish for (a gateway's own id first)."""


def _rolenames(client: Mapping[str, Any]) -> tuple[str, ...]:
    roles = client.get("roles") or []
    return tuple(str(r["rolename"]) for r in roles if isinstance(r, dict) and "rolename" in r)


def _acls(role: Mapping[str, Any]) -> list[Acl]:
    acls = []
    for entry in role.get("acls") or []:
        try:
            acls.append(Acl(AclType(entry["acltype"]), str(entry["topic"]), bool(entry["allow"])))
        except (KeyError, ValueError, TypeError):
            continue  # an ACL type iotmon does not use (unsubscribe…)
    return acls


class BrokerAdmin:
    """Operations on the broker behind an open ``DynsecSession``."""

    def __init__(self, session: DynsecSession) -> None:
        self._session = session

    def client(self, username: str) -> Mapping[str, Any]:
        try:
            data = self._session.run({"command": "getClient", "username": username})
        except CommandFailed as exc:
            if exc.error == _NOT_FOUND:
                raise UnknownClient(username) from None
            raise
        client = data.get("client")
        if not isinstance(client, dict):
            raise UnknownClient(username)
        return client

    def exists(self, username: str) -> bool:
        try:
            self.client(username)
        except UnknownClient:
            return False
        return True

    def add(self, identity: Identity, password: str) -> None:
        """Create the identity's role (or reset a leftover one) and the client."""
        if self.exists(identity.username):
            raise ClientExists(identity.username)
        role = identity.role.as_json()
        result = self._session.execute([{"command": "createRole", **role}])[0]
        if result.error == _ROLE_EXISTS:
            if identity.kind not in SHARED_ROLE_KINDS:
                # Left by a client deleted without its role: make it say what it should.
                self._session.run({"command": "modifyRole", **role})
        elif result.error is not None:
            raise CommandFailed(result.command, result.error)
        self._session.run(
            {
                "command": "createClient",
                "username": identity.username,
                "password": password,
                "textdescription": f"iotmon {identity.kind.value}",
                "roles": [{"rolename": identity.role.name}],
            }
        )

    def set_children(self, tenant: str, gateway: str, children: Sequence[str]) -> Identity:
        """Replace a gateway's children (one role change: its sessions reconnect once)."""
        username = device_username(tenant, gateway)
        identity = gateway_identity(tenant, gateway, children)
        if identity.role.name not in _rolenames(self.client(username)):
            raise IdentityError(f"{username} is not a gateway (add it with add-gateway)")
        self._session.run({"command": "modifyRole", **identity.role.as_json()})
        return identity

    def rotate_password(self, username: str, password: str) -> None:
        self.client(username)
        self._session.run(
            {"command": "setClientPassword", "username": username, "password": password}
        )

    def revoke(self, username: str, *, delete: bool = False) -> None:
        """Disable the client (``enable`` undoes it) or delete it with its own role."""
        if username == self._session.username:
            raise IdentityError(f"refusing to revoke {username}, the admin this session uses")
        client = self.client(username)
        if not delete:
            self._session.run({"command": "disableClient", "username": username})
            return
        self._session.run({"command": "deleteClient", "username": username})
        for role in _rolenames(client):
            kind = kind_of_role(role)
            if kind is not None and kind not in SHARED_ROLE_KINDS:
                self._session.run({"command": "deleteRole", "rolename": role})

    def enable(self, username: str) -> None:
        self.client(username)
        self._session.run({"command": "enableClient", "username": username})

    def list(self) -> list[ClientInfo]:
        clients = self._session.run({"command": "listClients", "verbose": True}).get("clients")
        roles = self._session.run({"command": "listRoles", "verbose": True}).get("roles")
        acls_by_role = {
            str(role.get("rolename")): _acls(role) for role in roles or [] if isinstance(role, dict)
        }
        found = []
        for client in clients or []:
            if not isinstance(client, dict):
                continue
            names = _rolenames(client)
            kinds = [kind for kind in map(kind_of_role, names) if kind is not None]
            devices = [d for name in names for d in devices_of(acls_by_role.get(name, []))]
            found.append(
                ClientInfo(
                    username=str(client.get("username")),
                    kind=kinds[0] if kinds else None,
                    disabled=bool(client.get("disabled", False)),
                    roles=names,
                    devices=tuple(devices),
                )
            )
        return sorted(found, key=lambda info: info.username)
