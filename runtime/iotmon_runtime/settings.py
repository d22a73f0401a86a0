"""The one settings base of every iotmon process: ``IOTMON_<SERVICE>_*`` environment variables.

Each service subclasses ``ServiceSettings`` with its own prefix (``IOTMON_INGEST_``),
nests structured settings with ``__`` (``IOTMON_INGEST_MQTT__HOST``) and builds it
once in ``main()`` with ``from_environment()``, which also refuses misspelled
variables: a typo such as ``IOTMON_API_TOKNE`` must fail, not leave the API open.

Every secret can also come from a file: ``IOTMON_INGEST_MQTT__PASSWORD_FILE=/run/secrets/x``
(Docker and Compose secrets, Kubernetes secret volumes), never both ways at once.
"""

from __future__ import annotations

import difflib
import os
import types
import typing
from collections.abc import Collection, Iterator, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from iotmon_runtime.secret_files import (
    SECRET_FILE_SUFFIX,
    FileSecret,
    SecretFileError,
    read_secret_file,
)
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

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The *_FILE variables become the secrets they name before the environment is
        # read, so a secret from a file is validated (and refused) like one set directly.
        if isinstance(env_settings, EnvSettingsSource) and issubclass(
            settings_cls, ServiceSettings
        ):
            env_settings.env_vars = settings_cls._with_secret_files(env_settings.env_vars)
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @classmethod
    def _with_secret_files(cls, env_vars: Mapping[str, str | None]) -> dict[str, Any]:
        """``env_vars`` with each secret's ``*_FILE`` variable replaced by the file's content.

        Raises SettingsError naming every variable whose file cannot be read, and every
        secret given both ways (which one wins would be a guess).
        """
        result: dict[str, Any] = dict(env_vars)
        # Keys are lower case unless the class is case sensitive: match either way.
        by_upper = {name.upper(): name for name in env_vars}
        problems = []
        for secret in sorted(cls.secret_variables()):
            file_variable = secret + SECRET_FILE_SUFFIX
            file_key = by_upper.get(file_variable)
            if file_key is None:
                continue
            path_text = result.pop(file_key)
            if not path_text:
                continue  # empty means unset, as for every other variable
            plain_key = by_upper.get(secret)
            if plain_key is not None and env_vars[plain_key]:
                problems.append(
                    f"{secret} and {file_variable} are both set: give the secret one way"
                )
                continue
            path = Path(path_text)
            try:
                value = read_secret_file(path)
            except SecretFileError as exc:
                problems.append(f"{file_variable}: {exc}")
                continue
            key = plain_key or file_key[: -len(SECRET_FILE_SUFFIX)]
            result[key] = FileSecret(value, file_variable, path)
        if problems:
            raise SettingsError(problems)
        return result

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
        """Every secret that is set, named by its environment variable (or, when it came
        from a file, by the ``*_FILE`` variable and the file)."""
        yield from _secrets_of(self, (), type(self))

    @classmethod
    def secret_variables(cls) -> set[str]:
        """The variables of every secret field; each may also be given as ``<NAME>_FILE``."""
        return {
            cls.variable(*path)
            for path, annotation in _field_paths(cls)
            if _holds_secret(annotation)
        }

    @classmethod
    def known_variables(cls) -> set[str]:
        """Every variable this class reads, nested ones and secrets' ``*_FILE`` included."""
        plain = {cls.variable(*path) for path, _ in _field_paths(cls)}
        return plain | {name + SECRET_FILE_SUFFIX for name in cls.secret_variables()}

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
        # Those already have a line with the nearest valid name: pydantic's own
        # "Extra inputs are not permitted" for a nested one would only repeat it.
        reported = {problem.split(":", 1)[0].upper() for problem in problems}
        settings = None
        try:
            settings = cls(**overrides)
        except ValidationError as exc:
            problems.extend(describe_settings_error(exc, cls, already=reported))
        except SettingsError as exc:  # a *_FILE variable that cannot be used
            problems.extend(exc.problems)
        if problems or settings is None:
            raise SettingsError(problems)
        return settings


def describe_settings_error(
    error: ValidationError, settings: type[BaseSettings], *, already: Collection[str] = ()
) -> list[str]:
    """One line per problem naming the environment variable, never echoing an input.

    ``already``: variables reported as unknown, whose "extra input" errors are left out.

    ``str(error)`` shows each failing input, and for a whole-model check (such as
    the placeholder one) every value read from the environment, passwords included.
    """
    config = settings.model_config
    prefix = str(config.get("env_prefix") or "").upper()
    delimiter = config.get("env_nested_delimiter") or "_"
    lines = []
    for item in error.errors(include_input=False, include_url=False, include_context=False):
        where = delimiter.join(str(part) for part in item["loc"]).upper()
        if item["type"] == "extra_forbidden" and f"{prefix}{where}" in already:
            continue
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


def _holds_secret(annotation: Any) -> bool:
    """True for ``SecretStr``, ``SecretStr | None`` and the like."""
    if isinstance(annotation, type):
        return issubclass(annotation, SecretStr)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        return any(_holds_secret(arg) for arg in typing.get_args(annotation))
    return False


def _field_paths(
    model: type[BaseModel], path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Each field's path with its annotation, nested models' fields included."""
    for name, field in model.model_fields.items():
        here = (*path, name)
        yield here, field.annotation
        for nested in _model_classes(field.annotation):
            yield from _field_paths(nested, here)


def _secrets_of(
    model: BaseModel, path: tuple[str, ...], root: type[ServiceSettings]
) -> Iterator[tuple[str, SecretStr]]:
    for name in type(model).model_fields:
        value = getattr(model, name)
        here = (*path, name)
        if isinstance(value, FileSecret):
            yield value.origin, value
        elif isinstance(value, SecretStr):
            yield root.variable(*here), value
        elif isinstance(value, BaseModel):
            yield from _secrets_of(value, here, root)
