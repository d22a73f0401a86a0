"""Routers of the API, one module per resource."""

from fastapi import APIRouter, Depends

from iotmon_api.deps import require_token
from iotmon_api.routes import dead_letters, devices, health


def api_router() -> APIRouter:
    """Everything under ``/api/v1``: token-protected when a token is configured."""
    router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)])
    router.include_router(devices.router)
    router.include_router(dead_letters.router)
    return router


__all__ = ["api_router", "health"]
