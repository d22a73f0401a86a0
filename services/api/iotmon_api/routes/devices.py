"""Devices: who reported, their availability, latest readings and time series."""

from __future__ import annotations

from fastapi import APIRouter, status

from iotmon_api import crud
from iotmon_api.deps import (
    DevicePath,
    MetricPath,
    ScopeDep,
    SeriesWindowDep,
    StoreDep,
    TenantPath,
    TenantQuery,
)
from iotmon_api.problems import NotFound
from iotmon_api.schemas import DevicesPublic, LatestPublic, SeriesPublic

router = APIRouter(prefix="/devices", tags=["devices"])


@router.get("", summary="Devices seen, with availability (within the token's scope)")
def list_devices(store: StoreDep, scope: ScopeDep, tenant: TenantQuery = None) -> DevicesPublic:
    return crud.list_devices(store, scope.devices(tenant))


@router.get(
    "/{tenant}/{device}/latest",
    summary="Newest reading of each metric",
    responses={status.HTTP_404_NOT_FOUND: {"description": "The device has no readings."}},
)
def latest(
    store: StoreDep, scope: ScopeDep, tenant: TenantPath, device: DevicePath
) -> LatestPublic:
    scope.device(tenant, device)
    found = crud.latest_readings(store, tenant, device)
    if not found.count:
        raise NotFound(f"device {tenant}/{device} has no readings")
    return found


@router.get("/{tenant}/{device}/metrics/{metric}", summary="Time-bucketed series of one metric")
def series(
    store: StoreDep,
    scope: ScopeDep,
    tenant: TenantPath,
    device: DevicePath,
    metric: MetricPath,
    window: SeriesWindowDep,
) -> SeriesPublic:
    scope.device(tenant, device)
    return crud.read_series(store, tenant, device, metric, window)
