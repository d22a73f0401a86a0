"""Devices: who reported, their availability, latest readings and time series."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from iotmon_api import crud
from iotmon_api.deps import (
    DevicePath,
    MetricPath,
    SeriesWindowDep,
    StoreDep,
    TenantPath,
    TenantQuery,
)
from iotmon_api.schemas import DevicesPublic, LatestPublic, SeriesPublic

router = APIRouter(prefix="/devices", tags=["devices"])


@router.get("", summary="Devices seen, with availability")
def list_devices(store: StoreDep, tenant: TenantQuery = None) -> DevicesPublic:
    return crud.list_devices(store, tenant)


@router.get(
    "/{tenant}/{device}/latest",
    summary="Newest reading of each metric",
    responses={status.HTTP_404_NOT_FOUND: {"description": "The device has no readings."}},
)
def latest(store: StoreDep, tenant: TenantPath, device: DevicePath) -> LatestPublic:
    found = crud.latest_readings(store, tenant, device)
    if not found.count:
        raise HTTPException(
            status_code=status.HTTP_404_NOT_FOUND,
            detail=f"device {tenant}/{device} has no readings",
        )
    return found


@router.get("/{tenant}/{device}/metrics/{metric}", summary="Time-bucketed series of one metric")
def series(
    store: StoreDep,
    tenant: TenantPath,
    device: DevicePath,
    metric: MetricPath,
    window: SeriesWindowDep,
) -> SeriesPublic:
    return crud.read_series(store, tenant, device, metric, window)
