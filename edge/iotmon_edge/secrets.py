"""Secret hygiene shared by every iotmon service: placeholder detection and safe error text.

It lives in the edge package because everything else depends on it (services
install iotmon-edge; the Raspberry Pi install has nothing but edge).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings

PLACEHOLDER_SECRETS = frozenset(
    {
        "",
        "admin",
        "change-me",
        "changeme",
        "changethis",
        "dev",
        "mqtt",
        "password",
        "secret",
        "token",
    }
)
"""Values that mean "nobody set this yet": refused as secrets outside development."""

PLACEHOLDER_PREFIXES = ("changeme", "change-me", "dev-")
"""Prefixes of the same: docker-compose.yml's defaults are all ``dev-…-password``."""


def is_placeholder_secret(secret: SecretStr | str | None) -> bool:
    """True when ``secret`` is set but to a placeholder (an unset secret is not one)."""
    if secret is None:
        return False
    value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    value = value.strip().lower()
    return value in PLACEHOLDER_SECRETS or value.startswith(PLACEHOLDER_PREFIXES)


def refuse_placeholder_secrets(
    secrets: Mapping[str, SecretStr | str | None], environment: str
) -> None:
    """Raise ValueError naming (never showing) each of ``secrets`` that is a placeholder.

    ``secrets`` maps what the user sets (an environment variable name) to its value;
    call it from a settings validator when ``environment`` is not a development one.
    """
    bad = [name for name, value in secrets.items() if is_placeholder_secret(value)]
    if bad:
        raise ValueError(
            f"{', '.join(bad)}: placeholder secret refused when environment is "
            f"{environment!r}; set a real value"
        )


def describe_settings_error(error: ValidationError, settings: type[BaseSettings]) -> str:
    """One line per problem naming the environment variable, never echoing an input.

    ``str(error)`` shows each failing input, and for a whole-model check (such as
    the placeholder one) every value read from the environment, passwords included.
    """
    config = settings.model_config
    prefix = (config.get("env_prefix") or "").upper()
    delimiter = config.get("env_nested_delimiter") or "_"
    lines = []
    for item in error.errors(include_input=False, include_url=False, include_context=False):
        where = delimiter.join(str(part) for part in item["loc"]).upper()
        lines.append(f"  {prefix}{where}: {item['msg']}" if where else f"  {item['msg']}")
    return "\n".join(lines)
