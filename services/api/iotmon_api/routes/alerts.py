"""Alerts and notices: list and filter within the token's scope, acknowledge with a reason.

An acknowledgement is an action row the alert service applies (see
``iotmon_alerts.service``): the answer is 202 with the action, whose state
turns ``done`` (or ``failed``, with why) within about a second.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from iotmon_alerts.adapters.database import AlertsDatabase, StoredAlert
from iotmon_api import alerts_crud
from iotmon_api.deps import (
    AlertsDep,
    ClockDep,
    CurrentPrincipal,
    LimitQuery,
    Rfc3339Query,
    ScopeDep,
    TenantPath,
    TenantQuery,
    parse_rfc3339,
)
from iotmon_api.problems import Conflict, Forbidden, NotFound
from iotmon_api.schemas import (
    AcknowledgeCreate,
    ActionPublic,
    AlertPublic,
    AlertsPublic,
    NoticesPublic,
)
from iotmon_api.scope import AlertScope
from iotmon_contract import AlertSeverity, AlertState
from iotmon_contract.topics import IDENTIFIER_PATTERN
from iotmon_registry import PrincipalKind

router = APIRouter(tags=["alerts"])

IdQuery = Annotated[str | None, Query(pattern=IDENTIFIER_PATTERN)]
AlertIdPath = Annotated[int, Path(ge=1, le=2**62, description="Alert id.")]


@router.get("/alerts", summary="Alerts within the token's scope, newest change first")
def list_alerts(
    alerts: AlertsDep,
    scope: ScopeDep,
    tenant: TenantQuery = None,
    state: Annotated[AlertState | None, Query(description="Only in this state.")] = None,
    active: Annotated[bool | None, Query(description="Only active (or only resolved).")] = None,
    severity: AlertSeverity | None = None,
    rule: IdQuery = None,
    device: IdQuery = None,
    bus: IdQuery = None,
    child: IdQuery = None,
    since: Annotated[Rfc3339Query, Query(description="Changed at or after (RFC 3339).")] = None,
    until: Annotated[Rfc3339Query, Query(description="Changed before (RFC 3339).")] = None,
    limit: LimitQuery = 100,
) -> AlertsPublic:
    visible = scope.alerts(tenant)
    found = alerts.alerts(
        alerts_crud.query(
            visible,
            state=state,
            active=active,
            severity=severity,
            rule=rule,
            device=device,
            bus=bus,
            child=child,
            since=parse_rfc3339("since", since),
            until=parse_rfc3339("until", until),
            limit=limit,
        )
    )
    data = [alerts_crud.alert_public(stored, visible) for stored in found]
    return AlertsPublic(data=data, count=len(data))


def _visible_alert(
    alerts: AlertsDatabase, visible: AlertScope, tenant: str, alert_id: int
) -> StoredAlert:
    stored = alerts.alert(alert_id)
    # Missing and outside a facility's or guardian's scope read the same: 404.
    if stored is None or not alerts_crud.in_scope(alerts, stored, visible):
        raise NotFound(f"no alert {alert_id} of tenant {tenant} in this token's scope")
    return stored


@router.get(
    "/alerts/{tenant}/{alert_id}",
    summary="One alert",
    responses={status.HTTP_404_NOT_FOUND: {"description": "No such alert in the scope."}},
)
def read_alert(
    alerts: AlertsDep, scope: ScopeDep, tenant: TenantPath, alert_id: AlertIdPath
) -> AlertPublic:
    visible = scope.alerts(tenant)
    return alerts_crud.alert_public(_visible_alert(alerts, visible, tenant, alert_id), visible)


@router.post(
    "/alerts/{tenant}/{alert_id}/acknowledge",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Acknowledge an active alert with a reason (applied by the alert service)",
    responses={
        status.HTTP_404_NOT_FOUND: {"description": "No such alert in the scope."},
        status.HTTP_409_CONFLICT: {"description": "The alert is resolved already."},
    },
)
def acknowledge(
    alerts: AlertsDep,
    scope: ScopeDep,
    principal: CurrentPrincipal,
    clock: ClockDep,
    tenant: TenantPath,
    alert_id: AlertIdPath,
    body: AcknowledgeCreate,
) -> ActionPublic:
    scope.writer(tenant, "acknowledge alerts")
    if principal.kind is PrincipalKind.GUARDIAN:
        raise Forbidden("a guardian token cannot acknowledge alerts; the operator does")
    visible = scope.alerts(tenant)
    stored = _visible_alert(alerts, visible, tenant, alert_id)
    if not stored.alert.active:
        raise Conflict(f"alert {alert_id} is resolved: nothing to acknowledge")
    by = f"{principal.kind.value}:{principal.name or principal.token_id or '?'}"
    action = alerts.add_action(
        tenant, "acknowledge", stored.alert.fingerprint, by, body.reason, clock()
    )
    return alerts_crud.action_public(action)


@router.get(
    "/alerts/{tenant}/actions/{action_id}",
    summary="An acknowledgement's progress",
    responses={status.HTTP_404_NOT_FOUND: {"description": "No such action."}},
)
def read_action(
    alerts: AlertsDep,
    scope: ScopeDep,
    tenant: TenantPath,
    action_id: Annotated[int, Path(ge=1, le=2**62)],
) -> ActionPublic:
    scope.writer(tenant, "read actions")
    action = alerts.action(action_id)
    if action is None or action.tenant != tenant:
        raise NotFound(f"no action {action_id} of tenant {tenant}")
    return alerts_crud.action_public(action)


@router.get("/notices", summary="Notices (boarded, alighted…) within the token's scope")
def list_notices(
    alerts: AlertsDep,
    scope: ScopeDep,
    tenant: TenantQuery = None,
    kind: IdQuery = None,
    limit: LimitQuery = 100,
) -> NoticesPublic:
    visible = scope.alerts(tenant)
    found = alerts.notices(
        tenant=visible.tenant,
        guardian=visible.guardian,
        sites=visible.sites,
        kind=kind,
        limit=limit,
    )
    data = [alerts_crud.notice_public(n, visible) for n in found]
    return NoticesPublic(data=data, count=len(data))
