"""FastAPI dependencies and their ``Annotated`` aliases: settings, store, registry, auth, inputs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, cast

from fastapi import Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from iotmon_api.auth import authenticate
from iotmon_api.config import Settings
from iotmon_api.rfc3339 import NotRfc3339, parse_rfc3339
from iotmon_api.scope import Scope
from iotmon_api.window import (
    MAX_BUCKET_SECONDS,
    SeriesWindow,
    WindowError,
    resolve_window,
)
from iotmon_contract.payloads import METRIC_PATTERN
from iotmon_contract.topics import IDENTIFIER_PATTERN
from iotmon_registry import Principal, Principals, Registry
from iotmon_storage import Aggregate, TimeSeriesStore

Clock = Callable[[], datetime]


def get_settings(request: Request) -> Settings:
    return cast(Settings, request.state.settings)


def get_store(request: Request) -> TimeSeriesStore:
    return cast(TimeSeriesStore, request.state.store)


def get_registry(request: Request) -> Registry:
    return cast(Registry, request.state.registry)


def get_principals(request: Request) -> Principals:
    return cast(Principals, request.state.principals)


def get_clock(request: Request) -> Clock:
    return cast(Clock, request.state.clock)


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[TimeSeriesStore, Depends(get_store)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
PrincipalsDep = Annotated[Principals, Depends(get_principals)]
ClockDep = Annotated[Clock, Depends(get_clock)]

BearerCredentials = Annotated[
    HTTPAuthorizationCredentials | None,
    Depends(
        HTTPBearer(
            auto_error=False,
            description="A token from `iotmon tokens create` (or the static IOTMON_API_TOKEN).",
        )
    ),
]


def current_principal(
    settings: SettingsDep, principals: PrincipalsDep, credentials: BearerCredentials
) -> Principal:
    """The request's principal, or 401 (missing, unknown, expired or revoked token)."""
    return authenticate(settings, principals, credentials.credentials if credentials else None)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def current_scope(principal: CurrentPrincipal, registry: RegistryDep) -> Scope:
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


def _time_query(description: str) -> object:
    # Text, checked by parse_rfc3339: a datetime parameter would also take numbers.
    return Query(
        description=f"{description}. RFC 3339 with an offset, e.g. 2026-11-25T10:00:00Z.",
        json_schema_extra={"format": "date-time"},
        examples=["2026-11-25T10:00:00Z"],
    )


def _invalid(field: str, message: str, value: object) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", field), "msg": message, "input": value}]
    )


def _instant(field: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_rfc3339(text)
    except NotRfc3339 as exc:
        raise _invalid(field, f"{field} {exc}", text) from None


def series_window(
    settings: SettingsDep,
    clock: ClockDep,
    start: Annotated[str | None, _time_query("Start (inclusive); default end - 1 h")] = None,
    end: Annotated[str | None, _time_query("End (exclusive); default now")] = None,
    bucket: Annotated[
        int, Query(ge=1, le=MAX_BUCKET_SECONDS, description="Bucket width in seconds.")
    ] = 60,
    agg: Annotated[Aggregate, Query(description="Aggregate over each bucket.")] = Aggregate.MEAN,
) -> SeriesWindow:
    begin, finish = _instant("start", start), _instant("end", end)
    try:
        return resolve_window(
            begin, finish, bucket, agg, now=clock(), max_buckets=settings.max_buckets
        )
    except WindowError as exc:
        raise _invalid(exc.field, str(exc), exc.value) from None


SeriesWindowDep = Annotated[SeriesWindow, Depends(series_window)]
