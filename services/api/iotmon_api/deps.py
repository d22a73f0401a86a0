"""FastAPI dependencies and their ``Annotated`` aliases: settings, store, registry, auth, inputs."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, cast

from fastapi import Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import TypeAdapter, ValidationError

from iotmon_alerts.adapters.database import AlertsDatabase
from iotmon_api.auth import authenticate
from iotmon_api.config import Settings
from iotmon_api.problems import AlertsUnavailable
from iotmon_api.scope import Scope
from iotmon_api.window import (
    MAX_BUCKET_SECONDS,
    SeriesWindow,
    WindowError,
    resolve_window,
)
from iotmon_contract.payloads import METRIC_PATTERN, TIMESTAMP_PATTERN, Timestamp
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


def get_alerts(request: Request) -> AlertsDatabase:
    alerts = request.state.alerts
    if alerts is None:
        raise AlertsUnavailable(
            "alerts are not configured in this API: set IOTMON_API_ALERTS__URL to the alert "
            "service's database"
        )
    return cast(AlertsDatabase, alerts)


def get_clock(request: Request) -> Clock:
    return cast(Clock, request.state.clock)


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[TimeSeriesStore, Depends(get_store)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
PrincipalsDep = Annotated[Principals, Depends(get_principals)]
ClockDep = Annotated[Clock, Depends(get_clock)]
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


_TIMESTAMP: TypeAdapter[datetime] = TypeAdapter(Timestamp)


def _invalid(field: str, message: str, value: object) -> RequestValidationError:
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
        raise _invalid(field, exc.errors(include_url=False)[0]["msg"], value) from None


Rfc3339Query = Annotated[
    str | None,
    # The pattern is published, and checked by parse_rfc3339 with the contract's message.
    Query(
        json_schema_extra={"format": "date-time", "pattern": TIMESTAMP_PATTERN},
        examples=["2026-11-25T10:00:00Z"],
    ),
]


def series_window(
    settings: SettingsDep,
    clock: ClockDep,
    start: Annotated[
        Rfc3339Query,
        Query(description="Start (inclusive), RFC 3339 with offset; default end - 1 h."),
    ] = None,
    end: Annotated[
        Rfc3339Query,
        Query(description="End (exclusive), RFC 3339 with offset; default now."),
    ] = None,
    bucket: Annotated[
        int, Query(ge=1, le=MAX_BUCKET_SECONDS, description="Bucket width in seconds.")
    ] = 60,
    agg: Annotated[Aggregate, Query(description="Aggregate over each bucket.")] = Aggregate.MEAN,
) -> SeriesWindow:
    begin, finish = parse_rfc3339("start", start), parse_rfc3339("end", end)
    try:
        return resolve_window(
            begin, finish, bucket, agg, now=clock(), max_buckets=settings.max_buckets
        )
    except WindowError as exc:
        raise _invalid(exc.field, str(exc), exc.value) from None


SeriesWindowDep = Annotated[SeriesWindow, Depends(series_window)]
