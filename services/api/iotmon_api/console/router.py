"""``console_router()``: the page and its data routes, for ``create_app`` to include."""

from __future__ import annotations

from fastapi import APIRouter

from iotmon_api.console.page import console_page_router
from iotmon_api.console.routes import console_api_router


def console_router() -> APIRouter:
    router = APIRouter()
    router.include_router(console_page_router())
    router.include_router(console_api_router())
    return router
