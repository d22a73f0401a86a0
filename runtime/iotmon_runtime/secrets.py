"""Secret hygiene shared by every iotmon service: placeholder detection.

Outside development a secret that is still a placeholder (``changeme``,
docker-compose's ``dev-…`` defaults) is refused, naming where it was set and
never showing its value.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import SecretStr

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


TOKEN_SCHEME_PREFIXES = ("apiv3_",)
"""Prefixes a token format requires (InfluxDB 3 tokens begin with ``apiv3_``): what
follows is what makes it a placeholder or not (``apiv3_dev-…`` is one)."""


def is_placeholder_secret(secret: SecretStr | str | None) -> bool:
    """True when ``secret`` is set but to a placeholder (an unset secret is not one)."""
    if secret is None:
        return False
    value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    value = value.strip().lower()
    for prefix in TOKEN_SCHEME_PREFIXES:
        value = value.removeprefix(prefix)
    return value in PLACEHOLDER_SECRETS or value.startswith(PLACEHOLDER_PREFIXES)


def refuse_placeholder_secrets(
    secrets: Mapping[str, SecretStr | str | None], environment: str
) -> None:
    """Raise ValueError naming (never showing) each of ``secrets`` that is a placeholder.

    ``secrets`` maps what the user sets (an environment variable name) to its value.
    """
    bad = [name for name, value in secrets.items() if is_placeholder_secret(value)]
    if bad:
        raise ValueError(
            f"{', '.join(bad)}: placeholder secret refused when environment is "
            f"{environment!r}; set a real value"
        )
