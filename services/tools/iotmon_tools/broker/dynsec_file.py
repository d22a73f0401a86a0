"""The dynamic-security plugin's JSON file, written before the broker's first start.

Once the broker runs, the plugin owns the file (it rewrites it on every change
made over ``$CONTROL``), so this module only creates it; later changes go
through ``iotmon broker`` commands against the running broker.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iotmon_tools.broker.identities import Identity, IdentityError, IdentityKind
from iotmon_tools.broker.passwords import hash_password
from iotmon_tools.broker.roles import DEFAULT_ACCESS


@dataclass(frozen=True, slots=True)
class Provisioned:
    """An identity and the password it logs in with."""

    identity: Identity
    password: str


class DynsecFileError(RuntimeError):
    """The file cannot be written (it exists, or the folder is not writable)."""


def build_config(admin: Provisioned, clients: Sequence[Provisioned]) -> dict[str, Any]:
    """The plugin's configuration: default access, every role once, every client."""
    if admin.identity.kind is not IdentityKind.ADMIN:
        raise IdentityError(f"{admin.identity.username} is not an admin identity")
    everyone = [admin, *clients]
    roles: dict[str, dict[str, Any]] = {}
    entries = []
    seen: set[str] = set()
    for provisioned in everyone:
        identity = provisioned.identity
        if identity.username in seen:
            raise IdentityError(f"client {identity.username!r} is listed twice")
        seen.add(identity.username)
        role = identity.role.as_json()
        if roles.setdefault(identity.role.name, role) != role:
            raise IdentityError(f"two different roles are named {identity.role.name!r}")
        hashed = hash_password(provisioned.password)
        entries.append(
            {
                "username": identity.username,
                "textdescription": f"iotmon {identity.kind.value}",
                "password": hashed.hash,
                "salt": hashed.salt,
                "iterations": hashed.iterations,
                "roles": [{"rolename": identity.role.name}],
            }
        )
    return {
        "defaultACLAccess": dict(DEFAULT_ACCESS),
        "clients": entries,
        "groups": [],
        "roles": list(roles.values()),
    }


def write_config(path: Path, config: dict[str, Any], *, overwrite: bool = False) -> None:
    """Write owner-only (it holds password hashes), whole or not at all."""
    if path.exists() and not overwrite:
        raise DynsecFileError(
            f"{path} exists: the broker owns it once started; manage identities with "
            "`iotmon broker` commands, or pass --force to replace it (every identity in it "
            "is lost)"
        )
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(config, file, indent=2)
            file.write("\n")
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise DynsecFileError(f"cannot write {path}: {exc.strerror or exc}") from None
