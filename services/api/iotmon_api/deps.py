"""FastAPI dependencies and their ``Annotated`` aliases: settings, store, registry, auth, inputs.

Those that only read request state or parse parameters are ``async def``: FastAPI
runs a plain ``def`` dependency in its thread pool, and a hop there and back per
dependency cost more than everything else a cached request does. Those that
block (the registry's token lookup) stay plain functions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, cast

from fastapi import Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from iotmon_alerts.adapters.database import AlertsDatabase
from iotmon_api.auth import authenticate_until
from iotmon_api.catalog import MetricCatalog
from iotmon_api.config import Settings
from iotmon_api.latest_cache import LatestCache
from iotmon_api.principal_cache import PrincipalCache
from iotmon_api.problems import AlertsUnavailable
from iotmon_api.scope import Scope
from iotmon_contract.payloads import METRIC_PATTERN, TIMESTAMP_PATTERN, Timestamp
from iotmon_contract.topics import IDENTIFIER_PATTERN
from iotmon_registry import Principal, Principals, Registry
from iotmon_storage import TimeSeriesStore

Clock = Callable[[], datetime]


async def get_settings(request: Request) -> Settings:
    return cast(Settings, request.state.settings)


async def get_store(request: Request) -> TimeSeriesStore:
    return cast(TimeSeriesStore, request.state.store)


async def get_registry(request: Request) -> Registry:
    return cast(Registry, request.state.registry)


async def get_principals(request: Request) -> Principals:
    return cast(Principals, request.state.principals)


async def get_alerts(request: Request) -> AlertsDatabase:
    alerts = request.state.alerts
    if alerts is None:
        raise AlertsUnavailable(
            "alerts are not configured in this API: set IOTMON_API_ALERTS__URL to the alert "
            "service's database"
        )
    return cast(AlertsDatabase, alerts)


async def get_clock(request: Request) -> Clock:
    return cast(Clock, request.state.clock)


async def get_catalog(request: Request) -> MetricCatalog:
    return cast(MetricCatalog, request.state.catalog)


async def get_latest_cache(request: Request) -> LatestCache:
    return cast(LatestCache, request.state.latest_cache)


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[TimeSeriesStore, Depends(get_store)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
PrincipalsDep = Annotated[Principals, Depends(get_principals)]
ClockDep = Annotated[Clock, Depends(get_clock)]
CatalogDep = Annotated[MetricCatalog, Depends(get_catalog)]
LatestCacheDep = Annotated[LatestCache, Depends(get_latest_cache)]
AlertsDep = Annotated[AlertsDatabase, Depends(get_alerts)]

BearerCredentials = Annotated[
    HTTPAuthorizationCredentials | None,
    Depends(
        HTTPBearer(
            auto_error=False,
            description="A token from `iotmon tokens create` (or the static IOTMON_API_TOKEN).",
        )
    ),
]


async def current_principal(
    request: Request,
    settings: SettingsDep,
    principals: PrincipalsDep,
    credentials: BearerCredentials,
) -> Principal:
    """The request's principal, or 401 (missing, unknown, expired or revoked token).

    A token found valid within the last ``auth_cache_s`` is taken without asking the
    registry again (iotmon_api.principal_cache); otherwise the lookup runs in a thread.
    """
    token = credentials.credentials if credentials else None
    cache = cast(PrincipalCache, request.state.principal_cache)

    async def load() -> tuple[Principal, datetime | None]:
        return await run_in_threadpool(authenticate_until, settings, principals, token)

    if token is None:
        return (await load())[0]  # raises: no token
    return await cache.get_or_load(token, load)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def current_scope(principal: CurrentPrincipal, registry: RegistryDep) -> Scope:
    return Scope(principal, registry)


ScopeDep = Annotated[Scope, Depends(current_scope)]

TenantPath = Annotated[
    str, Path(pattern=IDENTIFIER_PATTERN, description="Tenant id.", examples=["acme"])
]
DevicePath = Annotated[
    str, Path(pattern=IDENTIFIER_PATTERN, description="Device id.", examples=["env-1"])
]
ChildPath = Annotated[
    str, Path(pattern=IDENTIFIER_PATTERN, description="Child id.", examples=["kid-1"])
]
MetricPath = Annotated[
    str, Path(pattern=METRIC_PATTERN, description="Metric name.", examples=["temperature"])
]
TenantQuery = Annotated[
    str | None,
    Query(pattern=IDENTIFIER_PATTERN, description="Only this tenant (within the token's scope)."),
]
LimitQuery = Annotated[int, Query(ge=1, le=1000, description="How many, newest first.")]


_TIMESTAMP: TypeAdapter[datetime] = TypeAdapter(Timestamp)


def invalid(field: str, message: str, value: object) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", field), "msg": message, "input": value}]
    )


def parse_rfc3339(field: str, value: str | None) -> datetime | None:
    """A query time, strictly RFC 3339 as the contract's timestamps (``end=0.5`` is refused,
    not read as 1970)."""
    if value is None:
        return None
    try:
        return _TIMESTAMP.validate_json(json.dumps(value))
    except ValidationError as exc:
        raise invalid(field, exc.errors(include_url=False)[0]["msg"], value) from None


Rfc3339Query = Annotated[
    str | None,
    # The pattern is published, and checked by parse_rfc3339 with the contract's message.
    Query(
        json_schema_extra={"format": "date-time", "pattern": TIMESTAMP_PATTERN},
        examples=["2026-11-25T10:00:00Z"],
    ),
]
