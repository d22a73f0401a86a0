"""The API's Prometheus metrics: requests by route template and status, their latency.

An ASGI middleware counts each request once it is answered, labelled with the
route *template* (``/api/v1/devices/{tenant}/{device}/latest``), never the raw
path, so a scan of made-up URLs cannot grow the number of series; anything no
route template matches counts as ``unmatched``. The templates come from the
app's OpenAPI paths and its plain routes (public API), not from FastAPI's
routing internals, whose scope entries differ between versions. ``GET /metrics``
serves the app's own registry (not prometheus-client's global one) and stays out
of the OpenAPI document.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from prometheus_client import Histogram as PrometheusHistogram
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from iotmon_runtime.metrics import LATENCY_BUCKETS_S, service_registry

METRICS_PATH = "/metrics"
UNMATCHED = "unmatched"
"""The route label of requests no route matched (404s of unknown paths)."""


class ApiMetrics:
    """The API process's registry and its request instruments (built once per app)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "iotmon_api_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = PrometheusHistogram(
            "iotmon_api_request_seconds",
            "Time from request to the end of the response, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.in_progress = Gauge(
            "iotmon_api_requests_in_progress", "HTTP requests being answered.", registry=registry
        )

    @classmethod
    def create(cls) -> ApiMetrics:
        return cls(service_registry("api", "iotmon-api"))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)


class RouteTemplates:
    """Path → the route template it matches, or ``unmatched``."""

    def __init__(self, templates: list[str]) -> None:
        # Fewer parameters first: a literal segment wins over a parameter.
        ordered = sorted(set(templates), key=lambda t: (t.count("{"), t))
        self._patterns: list[tuple[re.Pattern[str], str]] = [
            (compile_path(template)[0], template) for template in ordered
        ]

    @classmethod
    def of_app(cls, app: FastAPI) -> RouteTemplates:
        documented = list(app.openapi().get("paths", {}))
        plain = [route.path for route in app.routes if isinstance(route, Route)]
        return cls([*documented, *plain, METRICS_PATH])

    def template(self, path: str) -> str:
        for pattern, template in self._patterns:
            if pattern.match(path):
                return template
        return UNMATCHED


class MetricsMiddleware:
    """Pure ASGI (no per-request task or body copy, unlike BaseHTTPMiddleware)."""

    def __init__(
        self, app: ASGIApp, metrics: ApiMetrics, templates: Callable[[], RouteTemplates]
    ) -> None:
        self._app = app
        self._metrics = metrics
        self._templates = templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        metrics = self._metrics

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        metrics.in_progress.inc()
        try:
            await self._app(scope, receive, send_status)
        finally:
            # An exception escaping here becomes a 500 from Starlette's outer handler.
            metrics.in_progress.dec()
            route = self._templates().template(scope["path"])
            metrics.observe(scope["method"], route, status, time.perf_counter() - started)


def metrics_router(metrics: ApiMetrics) -> APIRouter:
    router = APIRouter()

    @router.get(METRICS_PATH, include_in_schema=False)
    async def serve_metrics(_request: Request) -> Response:
        # Collectors read /proc and take locks: off the event loop.
        body = await run_in_threadpool(generate_latest, metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router


def install_metrics(app: FastAPI, metrics: ApiMetrics) -> None:
    """Count every request and serve ``GET /metrics``; call once the routes are included."""
    app.include_router(metrics_router(metrics))
    built: list[RouteTemplates] = []

    def templates() -> RouteTemplates:
        # Built on the first request: by then every route and the OpenAPI document exist.
        if not built:
            built.append(RouteTemplates.of_app(app))
        return built[0]

    app.add_middleware(MetricsMiddleware, metrics=metrics, templates=templates)
