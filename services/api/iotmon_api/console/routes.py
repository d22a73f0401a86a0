"""The console's data routes under ``/api/v1/console``: every one takes the bearer token
and answers within its scope (an operator: the tenant; a facility: its sites' devices
and their buses; a guardian: its own alerts only, no buses or cameras)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse

from iotmon_api.console.buses import bus_views, visible_buses
from iotmon_api.console.events import CAMERA_EVENT_TYPES, device_event
from iotmon_api.console.fleets import tenant_fleet
from iotmon_api.console.schemas import BusViewsPublic, CameraEventPublic, CameraEventsPublic
from iotmon_api.console.stream import StreamStart, alert_stream
from iotmon_api.deps import (
    AlertsDep,
    ClockDep,
    LimitQuery,
    ScopeDep,
    SettingsDep,
    StoreDep,
    TenantQuery,
    current_principal,
)
from iotmon_api.scope import Scope
from iotmon_contract.topics import IDENTIFIER_PATTERN

STREAM_MEDIA_TYPE = "text/event-stream"
CAMERA_WINDOW = timedelta(days=1)

Cursor = Annotated[int, Query(ge=0, le=2**62)]


def _scoped_tenant(scope: Scope, tenant: str | None) -> str:
    """The one tenant a console view is about: the token's, or (a service token) the one
    named; a service token that names none is a bad request."""
    own = scope.devices(tenant).tenant
    if own is None:
        raise RequestValidationError(
            [
                {
                    "type": "missing",
                    "loc": ("query", "tenant"),
                    "msg": "a service token must name the tenant",
                    "input": None,
                }
            ]
        )
    return own


def console_api_router() -> APIRouter:
    router = APIRouter(
        prefix="/api/v1/console", tags=["console"], dependencies=[Depends(current_principal)]
    )

    @router.get(
        "/alerts/stream",
        summary="Alert changes as server-sent events (text/event-stream)",
        response_class=StreamingResponse,
        responses={200: {"content": {STREAM_MEDIA_TYPE: {}}}},
    )
    def stream_alerts(
        request: Request,
        alerts: AlertsDep,
        scope: ScopeDep,
        settings: SettingsDep,
        tenant: TenantQuery = None,
        after: Annotated[
            Cursor | None,
            Query(description="Send changes after this event id (default: a snapshot first)."),
        ] = None,
        last_event_id: Annotated[
            str | None, Header(pattern=r"^[0-9]{1,19}$", description="As `after`.")
        ] = None,
    ) -> StreamingResponse:
        # Scope and cursor are settled before the first byte: errors are problems, not
        # a broken stream.
        visible = scope.alerts(tenant)
        resume = (
            after
            if after is not None
            else (int(last_event_id) if last_event_id is not None else None)
        )
        start = (
            StreamStart(resume, snapshot=False)
            if resume is not None
            else StreamStart(alerts.last_change(), snapshot=True)
        )
        return StreamingResponse(
            alert_stream(request, alerts, visible, start, settings.console),
            media_type=STREAM_MEDIA_TYPE,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.get("/buses", summary="Buses: their run, children counted aboard, last sweep")
    def list_buses(
        store: StoreDep,
        scope: ScopeDep,
        settings: SettingsDep,
        clock: ClockDep,
        tenant: TenantQuery = None,
    ) -> BusViewsPublic:
        own = _scoped_tenant(scope, tenant)
        found = tenant_fleet(settings.console.rules_dir, own)
        if found is None:
            return BusViewsPublic(data=[], count=0)
        buses = visible_buses(found, scope.devices(own).devices)
        data = bus_views(store, settings.console, found, buses, clock())
        return BusViewsPublic(data=data, count=len(data))

    @router.get("/cameras", summary="Camera events with their snapshots, newest first")
    def list_camera_events(
        store: StoreDep,
        scope: ScopeDep,
        clock: ClockDep,
        tenant: TenantQuery = None,
        device: Annotated[str | None, Query(pattern=IDENTIFIER_PATTERN)] = None,
        limit: LimitQuery = 50,
    ) -> CameraEventsPublic:
        own = _scoped_tenant(scope, tenant)
        if device is not None:
            scope.device(own, device)
        allowed = scope.devices(own).devices
        now = clock()
        # A facility's devices are filtered after reading: read enough to fill the page.
        stored = store.events(
            own,
            device,
            now - CAMERA_WINDOW,
            now + timedelta(seconds=1),
            types=CAMERA_EVENT_TYPES,
            limit=limit if allowed is None else limit * 10,
            newest_first=True,
        )
        data = []
        for item in stored:
            if allowed is not None and item.device not in allowed:
                continue
            event = device_event(item)
            if event is None:
                continue
            data.append(
                CameraEventPublic(
                    tenant=item.tenant,
                    device=item.device,
                    type=item.type,
                    seq=item.seq,
                    ts=event.ts,
                    snapshot_url=getattr(event, "snapshot_url", None),
                    clip_url=getattr(event, "clip_url", None),
                    data=dict(item.data),
                )
            )
            if len(data) == limit:
                break
        return CameraEventsPublic(data=data, count=len(data))

    return router
