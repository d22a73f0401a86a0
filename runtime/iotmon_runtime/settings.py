"""The one settings base of every iotmon process: ``IOTMON_<SERVICE>_*`` environment variables.

Each service subclasses ``ServiceSettings`` with its own prefix (``IOTMON_INGEST_``),
nests structured settings with ``__`` (``IOTMON_INGEST_MQTT__HOST``) and builds it
once in ``main()`` with ``from_environment()``, which also refuses misspelled
variables: a typo such as ``IOTMON_API_TOKNE`` must fail, not leave the API open.
"""

from __future__ import annotations

import difflib
import os
import types
import typing
from collections.abc import Iterator, Mapping
from enum import StrEnum
from typing import Any, ClassVar, Self

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from iotmon_runtime.secrets import is_placeholder_secret

ROOT_PREFIX = "IOTMON_"

SERVICE_PREFIXES = (
    "IOTMON_ALERTS_",
    "IOTMON_API_",
    "IOTMON_BROKER_",
    "IOTMON_EDGE_",
    "IOTMON_HOMEASSISTANT_",
    "IOTMON_INGEST_",
    "IOTMON_VIDEO_",
)
"""Every service's prefix: a variable of another service is that service's business."""

DEPLOYMENT_PREFIXES = (
    "IOTMON_ENVIRONMENT",
    "IOTMON_GRAFANA_",
    "IOTMON_INFLUXDB_",
    "IOTMON_MQTT_",
    "IOTMON_PROMETHEUS_",
    "IOTMON_REGISTRY_",
    "IOTMON_TOKEN",
)
"""Read by docker-compose.yml, the broker's start script and the ``iotmon`` tools CLI
(``IOTMON_REGISTRY_URL``), or by people's shells (the demo prints ``export
IOTMON_TOKEN=…`` for curl), never by a service."""

_CLOSE_MATCH = 0.8


class Environment(StrEnum):
    """Where a process runs; the one meaning shared by every service."""

    DEV = "dev"
    """A developer's machine: placeholder secrets are allowed."""
    TEST = "test"
    """Automated tests and staging: like prod for secrets."""
    PROD = "prod"
    """Production: placeholder secrets are refused."""


class LogFormat(StrEnum):
    CONSOLE = "console"
    JSON = "json"
    """One JSON object per line, for containers and log shippers."""


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(ValueError):
    """Settings that cannot be used; each problem names the variable (or file and key)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class ServiceSettings(BaseSettings):
    """Process settings from the environment; subclasses set ``env_prefix``.

    Secrets are ``SecretStr``; outside ``dev`` every secret that is set to a
    placeholder is refused, wherever it is nested.
    """

    model_config = SettingsConfigDict(
        env_prefix=ROOT_PREFIX,
        env_nested_delimiter="__",
        env_file=None,
        extra="forbid",
        validate_default=True,
    )

    environment: Environment = Field(
        default=Environment.DEV,
        description="dev allows placeholder secrets; test and prod refuse them.",
    )
    log_level: str = Field(
        default="INFO", description="Logging level: DEBUG, INFO, WARNING, ERROR or CRITICAL."
    )
    log_format: LogFormat = Field(
        default=LogFormat.CONSOLE, description="console (for people) or json (for containers)."
    )

    service_name: ClassVar[str] = "iotmon"
    """Names the service in errors and logs."""

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in _LOG_LEVELS:
            raise ValueError(f"unknown log level {value!r}; use one of {', '.join(_LOG_LEVELS)}")
        return value.upper()

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Self:
        if self.environment is Environment.DEV:
            return self
        bad = [name for name, secret in self.secrets() if is_placeholder_secret(secret)]
        if bad:
            raise ValueError(
                f"{', '.join(bad)}: placeholder secret refused when environment is "
                f"{self.environment.value!r}; set a real value"
            )
        return self

    # -- introspection ---------------------------------------------------------------

    @classmethod
    def env_prefix(cls) -> str:
        return str(cls.model_config.get("env_prefix") or "").upper()

    @classmethod
    def variable(cls, *path: str) -> str:
        """The environment variable of a (nested) field: ``variable("mqtt", "host")``."""
        return cls.env_prefix() + "__".join(path).upper()

    def secrets(self) -> Iterator[tuple[str, SecretStr]]:
        """Every secret that is set, named by its environment variable."""
        yield from _secrets_of(self, (), type(self))

    @classmethod
    def known_variables(cls) -> set[str]:
        """Every variable this class reads, nested ones included."""
        return {cls.variable(*path) for path in _field_paths(cls)}

    @classmethod
    def unknown_variables(cls, environ: Mapping[str, str]) -> list[str]:
        """Problems for ``IOTMON_*`` variables that look meant for this service but are not read.

        A variable with this service's prefix that it does not read is a typo. So is one
        under no known prefix that is close to one of ours (``IOTMON_APPI_TOKEN``).
        Variables of other services and of the deployment are left alone.
        """
        prefix = cls.env_prefix()
        known = cls.known_variables()
        problems = []
        for name in sorted(environ):
            upper = name.upper()
            if not upper.startswith(ROOT_PREFIX) or upper in known:
                continue
            if upper.startswith(prefix):
                match = difflib.get_close_matches(upper, known, n=1, cutoff=0.6)
                hint = f"; did you mean {match[0]}?" if match else ""
                problems.append(f"{name}: not a setting of {cls.service_name}{hint}")
            elif not upper.startswith(SERVICE_PREFIXES + DEPLOYMENT_PREFIXES):
                match = difflib.get_close_matches(upper, known, n=1, cutoff=_CLOSE_MATCH)
                if match:
                    problems.append(f"{name}: unknown variable; did you mean {match[0]}?")
        return problems

    @classmethod
    def from_environment(cls, **overrides: Any) -> Self:
        """Build from ``os.environ`` (overrides win); raise SettingsError naming each problem."""
        problems = cls.unknown_variables(os.environ)
        settings = None
        try:
            settings = cls(**overrides)
        except ValidationError as exc:
            problems.extend(describe_settings_error(exc, cls))
        if problems or settings is None:
            raise SettingsError(problems)
        return settings


def describe_settings_error(error: ValidationError, settings: type[BaseSettings]) -> list[str]:
    """One line per problem naming the environment variable, never echoing an input.

    ``str(error)`` shows each failing input, and for a whole-model check (such as
    the placeholder one) every value read from the environment, passwords included.
    """
    config = settings.model_config
    prefix = str(config.get("env_prefix") or "").upper()
    delimiter = config.get("env_nested_delimiter") or "_"
    lines = []
    for item in error.errors(include_input=False, include_url=False, include_context=False):
        where = delimiter.join(str(part) for part in item["loc"]).upper()
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{prefix}{where}: {message}" if where else message)
    return lines


def _model_classes(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models a field's annotation can hold (``X | None`` included)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        return [m for arg in typing.get_args(annotation) for m in _model_classes(arg)]
    return []


def _field_paths(model: type[BaseModel], path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, field in model.model_fields.items():
        here = (*path, name)
        yield here
        for nested in _model_classes(field.annotation):
            yield from _field_paths(nested, here)


def _secrets_of(
    model: BaseModel, path: tuple[str, ...], root: type[ServiceSettings]
) -> Iterator[tuple[str, SecretStr]]:
    for name in type(model).model_fields:
        value = getattr(model, name)
        here = (*path, name)
        if isinstance(value, SecretStr):
            yield root.variable(*here), value
        elif isinstance(value, BaseModel):
            yield from _secrets_of(value, here, root)
