"""Silences: hold notifications of matching alerts back for a while (operators only)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, status

from iotmon_api import alerts_crud
from iotmon_api.deps import AlertsDep, ClockDep, CurrentPrincipal, ScopeDep, TenantQuery
from iotmon_api.problems import NotFound
from iotmon_api.schemas import SilenceCreate, SilencePublic, SilencesPublic
from iotmon_registry import PrincipalKind

router = APIRouter(prefix="/silences", tags=["silences"])

SilenceIdPath = Annotated[str, Path(pattern=r"^sil_[0-9a-f]{16}$", description="Silence id.")]


@router.get("", summary="Silences of the token's tenant (expired ones included)")
def list_silences(
    alerts: AlertsDep, scope: ScopeDep, clock: ClockDep, tenant: TenantQuery = None
) -> SilencesPublic:
    visible = scope.alerts(tenant)
    if scope.principal.kind is PrincipalKind.GUARDIAN:
        return SilencesPublic(data=[], count=0)
    found = alerts.silences(tenant=visible.tenant, include_expired=True)
    now = clock()
    data = [alerts_crud.silence_public(s, now) for s in found]
    return SilencesPublic(data=data, count=len(data))


@router.post("", status_code=status.HTTP_201_CREATED, summary="Silence matching alerts")
def create_silence(
    alerts: AlertsDep,
    scope: ScopeDep,
    principal: CurrentPrincipal,
    clock: ClockDep,
    body: SilenceCreate,
) -> SilencePublic:
    scope.operator(body.tenant, "create silences")
    now = clock()
    starts = body.starts_at or now
    silence = alerts.add_silence(
        body.tenant,
        {str(k): v for k, v in body.matchers.items()},
        starts,
        starts + timedelta(seconds=body.duration_s),
        f"{principal.kind.value}:{principal.name or principal.token_id or '?'}",
        body.comment,
        now,
    )
    return alerts_crud.silence_public(silence, now)


@router.delete(
    "/{silence_id}",
    summary="Expire a silence now",
    responses={status.HTTP_404_NOT_FOUND: {"description": "No such silence in the tenant."}},
)
def expire_silence(
    alerts: AlertsDep, scope: ScopeDep, clock: ClockDep, silence_id: SilenceIdPath
) -> SilencePublic:
    found = alerts.silence(silence_id)
    if found is None:
        raise NotFound(f"no silence {silence_id}")
    scope.operator(found.tenant, "expire silences")
    now = clock()
    expired = alerts.expire_silence(silence_id, now)
    assert expired is not None
    return alerts_crud.silence_public(expired, now)
