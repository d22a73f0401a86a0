"""``GET /health``: whether the API can reach its store (for load balancers and compose)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from iotmon_api.deps import SettingsDep, StoreDep
from iotmon_api.schemas import HealthPublic

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    responses={status.HTTP_503_SERVICE_UNAVAILABLE: {"model": HealthPublic}},
    summary="Service health",
)
def health(store: StoreDep, settings: SettingsDep, response: Response) -> HealthPublic:
    backend = settings.store.backend
    if store.ping():
        return HealthPublic(status="ok", store=backend)
    response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return HealthPublic(status="unavailable", store=backend, detail=f"{backend} is not reachable")
