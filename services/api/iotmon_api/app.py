"""The FastAPI application: ``create_app(settings, store)`` wires routes, store and errors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from iotmon_api.config import Settings
from iotmon_api.routes import api_router, health
from iotmon_contract import CONTRACT_VERSION
from iotmon_storage import StoreError, StoreUnavailable, TimeSeriesStore, open_store

logger = logging.getLogger(__name__)

API_VERSION = "1.0.0"
RETRY_AFTER_S = 5


def _utcnow() -> datetime:
    return datetime.now(UTC)


def prepare_store(store: TimeSeriesStore, wait_s: float) -> bool:
    """Create the schema, retrying while the store is unreachable; False if it stayed so.

    The API serves anyway (503 until the store is back) so that a health check,
    not a crash loop, tells the orchestrator what is wrong.
    """
    retrying = Retrying(
        retry=retry_if_exception_type(StoreUnavailable),
        stop=stop_after_delay(wait_s),
        wait=wait_exponential(multiplier=0.2, max=2.0),
        reraise=False,
    )
    try:
        for attempt in retrying:
            with attempt:
                store.ensure_schema()
    except RetryError as exc:
        logger.warning(
            "store unreachable after %.0fs, serving 503 until it is back: %s",
            wait_s,
            exc.last_attempt.exception(),
        )
        return False
    except StoreError:
        logger.exception("store refused to prepare its schema; queries may fail")
        return False
    return True


async def _store_error(request: Request, exc: Exception) -> JSONResponse:
    transient = isinstance(exc, StoreUnavailable)
    logger.warning("store error on %s %s: %s", request.method, request.url.path, exc)
    what = "unavailable" if transient else "error"
    return JSONResponse(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        content={"detail": f"time-series store {what}: {str(exc)[:500]}"},
        headers={"Retry-After": str(RETRY_AFTER_S)} if transient else None,
    )


def create_app(
    settings: Settings,
    store: TimeSeriesStore | None = None,
    *,
    clock: Callable[[], datetime] = _utcnow,
) -> FastAPI:
    """Build the API.

    With ``store`` given, the caller owns it (opens, prepares and closes it);
    otherwise the app opens one from ``settings.store`` on start-up and closes it
    on shutdown.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        opened = store if store is not None else open_store(settings.store)
        if store is None:
            await run_in_threadpool(prepare_store, opened, settings.startup_wait_s)
        try:
            yield {"settings": settings, "store": opened, "clock": clock}
        finally:
            if store is None:
                opened.close()

    app = FastAPI(
        title="iotmon API",
        version=API_VERSION,
        description=(
            "Read-only access to iotmon telemetry: devices, latest readings, time series and "
            f"dead letters (wire contract {CONTRACT_VERSION})."
        ),
        lifespan=lifespan,
    )
    app.add_exception_handler(StoreError, _store_error)
    app.include_router(health.router)
    app.include_router(api_router())
    return app
