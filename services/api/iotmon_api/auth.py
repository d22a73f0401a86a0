"""Who a request speaks for: a bearer token, looked up in the registry or the static one.

Start-up rule: some principal must exist. ``IOTMON_API_TOKEN`` (a static
service principal) or an active registry token; without either the API refuses
to start, except in ``dev``, where it mints a service token and logs it once.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from iotmon_api.config import Settings
from iotmon_api.problems import Unauthorized
from iotmon_registry import Principal, PrincipalKind, Principals, TokenFailure
from iotmon_runtime.settings import Environment

logger = logging.getLogger(__name__)

STATIC_PRINCIPAL = Principal(PrincipalKind.SERVICE, "static token (IOTMON_API_TOKEN)")
BOOTSTRAP_NAME = "dev bootstrap"


class NoPrincipal(RuntimeError):
    """Nobody could use the API: refuse to start (outside dev)."""


def principal_configured(settings: Settings, principals: Principals) -> bool:
    return settings.token is not None or principals.any_active()


def refusal(settings: Settings, where: str) -> str:
    return (
        f"no API principal is configured (environment {settings.environment.value!r}): set "
        "IOTMON_API_TOKEN (a static service token) or create one in the registry "
        f"{where}: iotmon tokens create --kind operator --tenant <tenant>"
    )


def ensure_principal(
    settings: Settings, principals: Principals, where: str, now: Callable[[], datetime]
) -> str | None:
    """Check the start-up rule; in dev with no principal, mint one and return its token."""
    if principal_configured(settings, principals):
        return None
    if settings.environment is not Environment.DEV:
        raise NoPrincipal(refusal(settings, where))
    issued = principals.create(
        PrincipalKind.SERVICE,
        name=BOOTSTRAP_NAME,
        expires_in=timedelta(seconds=settings.bootstrap_token_ttl_s),
    )
    expires = issued.info.expires_at.isoformat() if issued.info.expires_at else "never"
    # Once, and only in dev: the one way in to a fresh development stack.
    logger.warning(
        "dev: no API principal configured; minted a service token (reads every tenant) "
        "valid until %s. Use it as 'Authorization: Bearer %s'. It is not shown again.",
        expires,
        issued.token,
    )
    return issued.token


def authenticate(settings: Settings, principals: Principals, token: str | None) -> Principal:
    """The principal of ``token``, or Unauthorized saying why not."""
    return authenticate_until(settings, principals, token)[0]


def authenticate_until(
    settings: Settings, principals: Principals, token: str | None
) -> tuple[Principal, datetime | None]:
    """The principal of ``token`` and when the token expires (None: never), or
    Unauthorized saying why not."""
    if token is None:
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    static = settings.token
    if static is not None and secrets.compare_digest(
        token.encode(), static.get_secret_value().encode()
    ):
        return STATIC_PRINCIPAL, None
    check = principals.authenticate(token)
    if check.principal is not None:
        return check.principal, check.expires_at
    if check.failure is TokenFailure.EXPIRED:
        when = check.expired_at.isoformat() if check.expired_at else "earlier"
        raise Unauthorized(f"the token expired at {when}")
    if check.failure is TokenFailure.REVOKED:
        raise Unauthorized("the token was revoked")
    raise Unauthorized("unknown token")
