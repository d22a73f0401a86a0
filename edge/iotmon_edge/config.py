"""Edge agent configuration: process ``Settings`` from the environment, ``AgentConfig`` from YAML.

Settings say how to reach the broker (and hold its secrets); the YAML says what
this agent is and which drivers it runs. Bad YAML fails with the file and the
key path, e.g. ``edge.yaml: drivers.0.count: Input should be greater than 0``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from iotmon_contract import MAX_BATCH_READINGS
from iotmon_contract.topics import IDENTIFIER_PATTERN
from iotmon_devices import DriverConfig
from iotmon_edge.mqtt import MqttOptions, MqttProtocol
from iotmon_edge.secrets import refuse_placeholder_secrets


class ConfigError(ValueError):
    """Configuration that cannot be used; the message names the file and key path."""


class PublishMode(StrEnum):
    SINGLE = "single"
    """One message per reading, on each device's telemetry topic."""
    BATCH = "batch"
    """One ``ReadingBatch`` per interval on the agent's own telemetry topic."""


class Settings(BaseSettings):
    """Process settings from ``IOTMON_EDGE_*`` environment variables (or a .env file)."""

    model_config = SettingsConfigDict(env_prefix="IOTMON_EDGE_", env_file=None, extra="ignore")

    environment: Literal["dev", "prod"] = Field(
        "dev", description="Outside dev, placeholder MQTT passwords are refused."
    )
    config_file: Path = Field(Path("edge.yaml"), description="Agent YAML (AgentConfig).")
    mqtt_host: str = Field("localhost", min_length=1, description="Broker host name or IP.")
    mqtt_port: int = Field(1883, ge=1, le=65535, description="Broker port.")
    mqtt_username: str | None = Field(None, description="Broker user; none for anonymous.")
    mqtt_password: SecretStr | None = Field(None, description="Broker password.")
    mqtt_tls: bool = Field(False, description="Connect with TLS (usually port 8883).")
    mqtt_tls_ca_file: Path | None = Field(
        None, description="CA bundle for TLS; the system's trust store when unset."
    )
    mqtt_client_id: str | None = Field(
        None,
        max_length=128,
        description="MQTT client id; iotmon-edge-<tenant>-<agent_id> if unset.",
    )
    mqtt_protocol: MqttProtocol = Field(MqttProtocol.V5, description="MQTT 5 or 3.1.1.")
    mqtt_keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keepalive, seconds.")
    mqtt_reconnect_min_s: int = Field(1, ge=1, le=300, description="First reconnect delay.")
    mqtt_reconnect_max_s: int = Field(60, ge=1, le=3600, description="Longest reconnect delay.")
    mqtt_max_queued: int = Field(
        100_000,
        ge=0,
        description="Messages held in memory while the broker is away (0 = no limit).",
    )
    log_level: str = Field("INFO", description="Python logging level: DEBUG, INFO, WARNING...")

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in logging.getLevelNamesMapping():
            raise ValueError(f"unknown log level {value!r}")
        return value.upper()

    @model_validator(mode="after")
    def _no_placeholder_secret(self) -> Settings:
        if self.environment != "dev":
            refuse_placeholder_secrets(
                {"IOTMON_EDGE_MQTT_PASSWORD": self.mqtt_password}, self.environment
            )
        return self

    def mqtt_options(self, default_client_id: str) -> MqttOptions:
        password = self.mqtt_password.get_secret_value() if self.mqtt_password else None
        return MqttOptions(
            host=self.mqtt_host,
            port=self.mqtt_port,
            client_id=self.mqtt_client_id or default_client_id,
            protocol=self.mqtt_protocol,
            username=self.mqtt_username,
            password=password,
            tls=self.mqtt_tls,
            tls_ca_file=self.mqtt_tls_ca_file,
            keepalive_s=self.mqtt_keepalive_s,
            reconnect_min_s=self.mqtt_reconnect_min_s,
            reconnect_max_s=max(self.mqtt_reconnect_min_s, self.mqtt_reconnect_max_s),
            max_queued=self.mqtt_max_queued,
        )


class AgentConfig(BaseModel):
    """What one edge agent is and runs: the YAML file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant: str = Field("demo", pattern=IDENTIFIER_PATTERN, description="Tenant id in topics.")
    agent_id: str = Field(
        "edge-0001",
        pattern=IDENTIFIER_PATTERN,
        description="This agent's id: its status topic, and its telemetry topic in batch mode.",
    )
    publish_interval_s: float = Field(
        10.0, ge=0.05, le=86400, description="Seconds between driver reads."
    )
    mode: PublishMode = Field(PublishMode.SINGLE, description="single or batch, see PublishMode.")
    batch_max_readings: int = Field(
        1000,
        ge=1,
        le=MAX_BATCH_READINGS,
        description="Most readings in one batch message; larger cycles are split.",
    )
    drivers: list[DriverConfig] = Field(
        default_factory=list, description="Device drivers, each with a `type`."
    )

    @model_validator(mode="after")
    def _unique_devices(self) -> AgentConfig:
        seen: dict[str, int] = {}
        for index, driver in enumerate(self.drivers):
            for device in driver.declared_device_ids():
                if device == self.agent_id:
                    raise ValueError(f"drivers.{index} device {device!r} reuses the agent_id")
                if device in seen:
                    raise ValueError(
                        f"drivers.{index} device {device!r} is also in drivers.{seen[device]}"
                    )
                seen[device] = index
        return self

    def device_count(self) -> int:
        return sum(len(driver.declared_device_ids()) for driver in self.drivers)


def load_agent_config(path: Path) -> AgentConfig:
    """Read and validate an agent YAML file; raises ConfigError naming file and key path."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_agent_config(text, source=str(path))


def parse_agent_config(text: str, source: str = "<config>") -> AgentConfig:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys")
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, data, root, source)) from None


def _describe(error: ValidationError, data: Any, root: yaml.Node | None, source: str) -> str:
    lines = []
    for item in error.errors(include_url=False):
        path = _user_path(item["loc"], data)
        message = item["msg"]
        if item["type"] in {"union_tag_not_found", "union_tag_invalid"}:
            path = [*path, "type"]
            if item["type"] == "union_tag_not_found":
                message = "Field required (the driver type)"
        where = ".".join(str(part) for part in path) or "<top level>"
        line = _line_of(root, path)
        suffix = f" (line {line})" if line is not None else ""
        lines.append(f"{source}: {where}: {message}{suffix}")
    return "\n".join(lines)


def _user_path(loc: Sequence[int | str], data: Any) -> list[int | str]:
    """The key path as the user wrote it: drop the union tags pydantic inserts.

    pydantic reports ``drivers.0.simulated_environment.count``; the YAML says
    ``drivers.0.count``. A segment that does not exist in the input (and is not
    the last, which may be a missing key) is such a tag.
    """
    path: list[int | str] = []
    node = data
    for position, part in enumerate(loc):
        last = position == len(loc) - 1
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            node = node[part]
        elif not last:
            continue
        path.append(part)
    return path


def _line_of(root: yaml.Node | None, path: Sequence[int | str]) -> int | None:
    """1-based line of the deepest YAML node on ``path`` (best effort)."""
    node = root
    line = None
    for part in path:
        if node is None:
            break
        if isinstance(node, yaml.MappingNode):
            pair = next(
                (kv for kv in node.value if getattr(kv[0], "value", None) == str(part)), None
            )
            if pair is None:
                break
            line = pair[0].start_mark.line + 1
            node = pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
