"""``GET /api/v1/me``: who the token speaks for, and its scope."""

from __future__ import annotations

from fastapi import APIRouter

from iotmon_api.deps import CurrentPrincipal
from iotmon_api.schemas import PrincipalPublic

router = APIRouter(tags=["principal"])


@router.get("/me", summary="The token's principal and scope")
def me(principal: CurrentPrincipal) -> PrincipalPublic:
    return PrincipalPublic(
        kind=principal.kind.value,
        name=principal.name,
        tenant=principal.tenant,
        sites=sorted(principal.sites),
        guardian=principal.guardian,
        token_id=principal.token_id,
    )
