"""Devices: who reported, their availability, latest readings, time series and CSV export."""

from __future__ import annotations

import itertools
from typing import Any

from fastapi import APIRouter, status
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from iotmon_api import crud
from iotmon_api.deps import (
    CatalogDep,
    DevicePath,
    LatestCacheDep,
    MetricPath,
    ScopeDep,
    SettingsDep,
    StoreDep,
    TenantPath,
    TenantQuery,
)
from iotmon_api.schemas import DevicesPublic, LatestPublic, MultiSeriesPublic, SeriesPublic
from iotmon_api.series_params import (
    DevicePageDep,
    ExportRequestDep,
    KeysQuery,
    SeriesRequestDep,
    SeriesWindowDep,
    parse_keys,
)
from iotmon_registry import PrincipalKind

router = APIRouter(prefix="/devices", tags=["devices"])

_UNKNOWN: dict[int | str, dict[str, Any]] = {
    status.HTTP_404_NOT_FOUND: {
        "description": "The device has no readings, or no readings of a metric asked for."
    }
}

_CSV_EXAMPLE = (
    "ts,metric,value\r\n"
    "2026-11-25T10:00:00Z,humidity,40.0\r\n"
    "2026-11-25T10:00:00Z,temperature,20.0\r\n"
    "2026-11-25T10:01:00Z,temperature,21.0\r\n"
)


@router.get("", summary="Devices seen, with availability (within the token's scope), paged")
def list_devices(
    store: StoreDep, scope: ScopeDep, page: DevicePageDep, tenant: TenantQuery = None
) -> DevicesPublic:
    limit, after = page
    return crud.list_devices(store, scope.devices(tenant), limit, after)


@router.get(
    "/{tenant}/{device}/latest", summary="Newest reading of each metric", responses=_UNKNOWN
)
async def latest(
    cache: LatestCacheDep,
    scope: ScopeDep,
    tenant: TenantPath,
    device: DevicePath,
    keys: KeysQuery = None,
) -> LatestPublic:
    # On the event loop: a cached answer needs no thread (see iotmon_api.latest_cache).
    if scope.principal.kind is PrincipalKind.FACILITY:
        await run_in_threadpool(scope.device, tenant, device)  # asks the registry
    else:
        scope.device(tenant, device)
    found = await cache.get(tenant, device)
    return crud.latest_readings(found, tenant, device, parse_keys(keys))


@router.get(
    "/{tenant}/{device}/metrics/{metric}",
    summary="Time-bucketed series of one metric",
    responses=_UNKNOWN,
)
def series(
    store: StoreDep,
    catalog: CatalogDep,
    scope: ScopeDep,
    tenant: TenantPath,
    device: DevicePath,
    metric: MetricPath,
    window: SeriesWindowDep,
) -> SeriesPublic:
    scope.device(tenant, device)
    return crud.read_series(store, catalog, tenant, device, metric, window)


@router.get(
    "/{tenant}/{device}/series",
    summary="Several metrics: aggregated buckets with fill, or raw points paged by cursor",
    responses=_UNKNOWN,
)
def multi_series(
    store: StoreDep,
    catalog: CatalogDep,
    settings: SettingsDep,
    scope: ScopeDep,
    tenant: TenantPath,
    device: DevicePath,
    request: SeriesRequestDep,
) -> MultiSeriesPublic:
    scope.device(tenant, device)
    return crud.read_multi_series(store, catalog, tenant, device, request, settings.max_buckets)


@router.get(
    "/{tenant}/{device}/export",
    summary="CSV of a range: raw points (default) or buckets, streamed",
    response_class=StreamingResponse,
    responses={
        status.HTTP_200_OK: {
            "description": "RFC 4180 CSV with a header row, ordered by time, then metric: "
            "`ts,metric,value` for raw points (agg=none, the default here), "
            "`ts,metric,value,count` for buckets (value empty where null). Streamed: "
            "a store failure after the first rows ends the response early, without the "
            "final chunk.",
            "content": {"text/csv": {"schema": {"type": "string"}, "example": _CSV_EXAMPLE}},
        },
        **_UNKNOWN,
    },
)
def export(
    store: StoreDep,
    catalog: CatalogDep,
    settings: SettingsDep,
    scope: ScopeDep,
    tenant: TenantPath,
    device: DevicePath,
    request: ExportRequestDep,
) -> StreamingResponse:
    scope.device(tenant, device)
    chunks = crud.export_csv(store, catalog, tenant, device, request, settings.max_buckets)
    # The first chunk now: a 404 or a store outage is still a problem response here.
    first = next(chunks)
    return StreamingResponse(
        itertools.chain([first], chunks),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{tenant}_{device}.csv"'},
    )
