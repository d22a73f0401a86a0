"""Routers of the API, one module per resource."""

from fastapi import APIRouter, Depends

from iotmon_api.deps import current_principal
from iotmon_api.routes import (
    alerts,
    children,
    dead_letters,
    devices,
    health,
    me,
    silences,
    subscriptions,
)


def api_router() -> APIRouter:
    """Everything under ``/api/v1``: every route needs a token, and checks its scope."""
    router = APIRouter(prefix="/api/v1", dependencies=[Depends(current_principal)])
    router.include_router(me.router)
    router.include_router(devices.router)
    router.include_router(children.router)
    router.include_router(dead_letters.router)
    router.include_router(alerts.router)
    router.include_router(silences.router)
    router.include_router(subscriptions.router)
    return router


__all__ = ["api_router", "health"]
