"""``/metrics`` over HTTP for services that serve no HTTP of their own (ingest, bridges).

A ``Worker``: a small threaded WSGI server on its own daemon thread, serving one
registry with prometheus-client's exposition (text or OpenMetrics, gzip when asked).
Scrapes run on the server's threads; a slow one never holds up the service.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from iotmon_runtime.metrics.settings import MetricsSettings

logger = logging.getLogger(__name__)

PATH = "/metrics"

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class MetricsServerError(OSError):
    """The metrics server could not bind its address; the message names the setting."""


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    # A restarted service takes its port back at once (TIME_WAIT sockets of scrapes).
    allow_reuse_address = True


class _IPv6Server(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    """Scrapes every few seconds would fill the log; errors still go to logging."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def only_metrics(app: WsgiApp) -> WsgiApp:
    """``/metrics`` answered by ``app``; anything else is 404 (no surprise endpoints)."""

    def route(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") != PATH:
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [f"not found; metrics are at {PATH}\n".encode()]
        return app(environ, start_response)

    return route


class MetricsServer:
    """Serves ``registry`` at ``http://<host>:<port>/metrics`` until stopped.

    ``setting`` names the port's environment variable for the error a taken port
    raises (``IOTMON_INGEST_METRICS__PORT``).
    """

    def __init__(
        self, registry: CollectorRegistry, settings: MetricsSettings, *, setting: str = ""
    ) -> None:
        self._registry = registry
        self._settings = settings
        self._setting = setting
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self._settings.enabled

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the metrics server is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self._settings.host
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}{PATH}"

    def start(self) -> None:
        """Bind and serve; raises MetricsServerError when the address cannot be bound.
        Does nothing when disabled."""
        if not self._settings.enabled or self._server is not None:
            return
        settings = self._settings
        server_class = _IPv6Server if ":" in settings.host else _Server
        try:
            server = make_server(
                settings.host,
                settings.port,
                only_metrics(make_wsgi_app(self._registry)),
                server_class,
                handler_class=_QuietHandler,
            )
        except OSError as exc:
            where = f" ({self._setting})" if self._setting else ""
            raise MetricsServerError(
                f"cannot serve metrics on {settings.address}{where}: {exc.strerror or exc}"
            ) from exc
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="metrics-http", daemon=True
        )
        self._thread.start()
        logger.info("metrics at %s", self.url)

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(5)
        self._server = self._thread = None
