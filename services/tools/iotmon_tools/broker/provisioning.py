"""The identities a broker starts with, from YAML; passwords come from files or variables.

Used by ``iotmon broker init --identities FILE`` (docker-compose.yml provisions its
services and simulator this way). The file names where each password is, never a
password, so it can be committed: a secret file (compose ``secrets:``) or an
environment variable::

    clients:
      - type: service
        name: ingest
        password_file: /run/secrets/mqtt_ingest_password
      - type: gateway
        tenant: demo
        id: sim-0001
        children: [env-0000, env-0001]
        password_env: IOTMON_MQTT_SIMULATOR_PASSWORD
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from iotmon_contract.topics import IDENTIFIER_PATTERN
from iotmon_runtime.config_files import load_yaml_model
from iotmon_runtime.secret_files import SecretFileError, read_secret_file
from iotmon_runtime.secrets import refuse_placeholder_secrets
from iotmon_tools.broker.dynsec_file import Provisioned
from iotmon_tools.broker.identities import (
    DEFAULT_HEALTH_USER,
    Identity,
    IdentityError,
    device_identity,
    gateway_identity,
    health_identity,
    service_identity,
)

_VARIABLE = r"^[A-Z_][A-Z0-9_]*$"


class ProvisioningError(ValueError):
    """Identities that cannot be provisioned; names the entry or variable, never a password."""


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password_env: str | None = Field(
        default=None,
        pattern=_VARIABLE,
        description="Environment variable that holds the client's password.",
    )
    password_file: Path | None = Field(
        default=None,
        description="File that holds the client's password (a compose secret, "
        "/run/secrets/<name>); its trailing line break is not part of it.",
    )

    @model_validator(mode="after")
    def _one_password_source(self) -> Self:
        if (self.password_env is None) == (self.password_file is None):
            raise ValueError("give exactly one of password_env and password_file")
        return self

    @property
    def password_source(self) -> str:
        """Where the password is, for errors: the variable or the file."""
        return self.password_env or str(self.password_file)


class DeviceEntry(_Entry):
    type: Literal["device"] = Field(description="A device publishing on its own topics.")
    tenant: str = Field(pattern=IDENTIFIER_PATTERN, description="Tenant id.")
    id: str = Field(pattern=IDENTIFIER_PATTERN, description="Device id.")

    def identity(self) -> Identity:
        return device_identity(self.tenant, self.id)


class GatewayEntry(_Entry):
    type: Literal["gateway"] = Field(description="An edge agent speaking for child devices.")
    tenant: str = Field(pattern=IDENTIFIER_PATTERN, description="Tenant id.")
    id: str = Field(pattern=IDENTIFIER_PATTERN, description="The agent's own device id.")
    children: list[str] = Field(
        default_factory=list, description="Device ids of the tenant the agent may speak for."
    )
    service: str | None = Field(
        default=None,
        pattern=IDENTIFIER_PATTERN,
        description="A platform service running as this gateway (the video service): it "
        "may publish that service's availability for the instance named like the gateway.",
    )
    vehicles: list[str] = Field(
        default_factory=list,
        description="Device ids of the tenant whose events it may read (the buses its "
        "cabin cameras follow).",
    )

    def identity(self) -> Identity:
        return gateway_identity(
            self.tenant, self.id, self.children, service=self.service, vehicles=self.vehicles
        )


class ServiceEntry(_Entry):
    type: Literal["service"] = Field(description="A back-end service (username iotmon-<name>).")
    name: str = Field(pattern=IDENTIFIER_PATTERN, description="Service name, e.g. ingest.")
    share_group: str | None = Field(
        default=None,
        pattern=IDENTIFIER_PATTERN,
        description="Its shared-subscription group; iotmon-<name> when unset.",
    )
    commands: bool = Field(
        default=False, description="May send device requests and read their responses."
    )
    discovery_prefix: str | None = Field(
        default=None,
        description="Home Assistant's discovery prefix: the service (the Home Assistant "
        "bridge) may publish under it and read its sensor configs back.",
    )

    def identity(self) -> Identity:
        return service_identity(
            self.name,
            share_group=self.share_group,
            commands=self.commands,
            discovery_prefix=self.discovery_prefix,
        )


class HealthEntry(_Entry):
    type: Literal["health"] = Field(description="Health checks: read $SYS/broker/uptime.")
    username: str = Field(
        default=DEFAULT_HEALTH_USER, pattern=IDENTIFIER_PATTERN, description="Its username."
    )

    def identity(self) -> Identity:
        return health_identity(self.username)


Entry = Annotated[
    DeviceEntry | GatewayEntry | ServiceEntry | HealthEntry, Field(discriminator="type")
]


class IdentitiesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clients: list[Entry] = Field(
        default_factory=list, description="Broker clients to create with the admin."
    )


def load_identities(path: Path) -> IdentitiesFile:
    """Raises ``iotmon_runtime.config_files.ConfigError`` naming file, key and line."""
    return load_yaml_model(path, IdentitiesFile)


def resolve(
    identities: IdentitiesFile, environ: Mapping[str, str], *, environment: str = "dev"
) -> list[Provisioned]:
    """Each entry with its password from its file or ``environ``; outside ``dev``
    placeholders are refused. Errors name the variable or file, never a password."""
    passwords: dict[int, str] = {}
    problems = []
    for index, entry in enumerate(identities.clients):
        if entry.password_file is not None:
            try:
                password = read_secret_file(entry.password_file)
            except SecretFileError as exc:
                problems.append(f"clients.{index}.password_file: {exc}")
                continue
            if not password:
                problems.append(f"clients.{index}.password_file: {entry.password_file} is empty")
                continue
        else:
            assert entry.password_env is not None  # _one_password_source
            password = environ.get(entry.password_env, "")
            if not password:
                problems.append(f"{entry.password_env}: not set (it holds a broker password)")
                continue
        passwords[index] = password
    if problems:
        raise ProvisioningError("; ".join(sorted(set(problems))))
    if environment != "dev":
        try:
            refuse_placeholder_secrets(
                {e.password_source: passwords[i] for i, e in enumerate(identities.clients)},
                environment,
            )
        except ValueError as exc:
            raise ProvisioningError(str(exc)) from None
    provisioned = []
    for index, entry in enumerate(identities.clients):
        try:
            identity = entry.identity()
        except IdentityError as exc:
            raise ProvisioningError(f"clients.{index}: {exc}") from None
        provisioned.append(Provisioned(identity, passwords[index]))
    return provisioned
