"""The FastAPI application: ``create_app(settings, store, registry=…)`` wires routes and errors."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from iotmon_alerts.adapters.database import AlertsDatabase
from iotmon_api.auth import ensure_principal
from iotmon_api.catalog import MetricCatalog
from iotmon_api.config import Settings
from iotmon_api.console.router import console_router
from iotmon_api.latest_cache import LatestCache
from iotmon_api.metrics import ApiMetrics, install_metrics
from iotmon_api.openapi import install_openapi
from iotmon_api.principal_cache import PrincipalCache
from iotmon_api.problems import install_problem_handlers
from iotmon_api.routes import api_router, health
from iotmon_contract import CONTRACT_VERSION
from iotmon_registry import Principals, Registry
from iotmon_storage import StoreError, StoreUnavailable, TimeSeriesStore, open_store

logger = logging.getLogger(__name__)

API_VERSION = "1.1.0"


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


def create_app(
    settings: Settings,
    store: TimeSeriesStore | None = None,
    *,
    registry: Registry | None = None,
    alerts: AlertsDatabase | None = None,
    clock: Callable[[], datetime] = _utcnow,
    monotonic: Callable[[], float] = time.monotonic,
) -> FastAPI:
    """Build the API.

    ``clock`` is the API's wall clock (token expiry, alert times); ``monotonic``
    ages the caches, so that a test can step it instead of sleeping.

    With ``store`` or ``registry`` given, the caller owns it (opens, prepares and
    closes it); otherwise the app opens one from settings on start-up and closes
    it on shutdown. Start-up fails (NoPrincipal) outside dev when no principal is
    configured: see ``iotmon_api.auth``.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        opened_registry = (
            registry
            if registry is not None
            else await run_in_threadpool(Registry(settings.registry).open)
        )
        try:
            principals = Principals(opened_registry, clock=clock)
            await run_in_threadpool(
                ensure_principal, settings, principals, opened_registry.where, clock
            )
            opened = store if store is not None else open_store(settings.store)
            if store is None:
                await run_in_threadpool(prepare_store, opened, settings.startup_wait_s)
            opened_alerts = alerts
            if opened_alerts is None and settings.alerts is not None:
                opened_alerts = await run_in_threadpool(AlertsDatabase(settings.alerts).open)
            try:
                yield {
                    "settings": settings,
                    "store": opened,
                    "registry": opened_registry,
                    "principals": principals,
                    "alerts": opened_alerts,
                    "clock": clock,
                    "catalog": MetricCatalog(opened),
                    "latest_cache": LatestCache(
                        opened, ttl_s=settings.latest_cache_s, clock=monotonic
                    ),
                    "principal_cache": PrincipalCache(
                        settings.auth_cache_s, now=clock, clock=monotonic
                    ),
                }
            finally:
                if store is None:
                    opened.close()
                if alerts is None and opened_alerts is not None:
                    opened_alerts.close()
        finally:
            if registry is None:
                opened_registry.close()

    app = FastAPI(
        title="iotmon API",
        version=API_VERSION,
        description=(
            "Read access to iotmon telemetry, devices, children and dead letters; alerts, "
            "notices, silences, webhook subscriptions and deliveries (wire contract "
            f"{CONTRACT_VERSION}). Every /api route takes a bearer token and answers only "
            "within its principal's scope; errors are RFC 9457 problem details."
        ),
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.include_router(health.router)
    app.include_router(api_router())
    app.include_router(console_router())
    if settings.metrics:
        install_metrics(app, ApiMetrics.create())
    install_openapi(app)
    return app
