"""Run the API in-process on a background thread (``iotmon demo``, tests)."""

from __future__ import annotations

import threading
import time

import uvicorn

from iotmon_alerts.adapters.database import AlertsDatabase
from iotmon_api.app import create_app
from iotmon_api.config import Settings
from iotmon_registry import Registry
from iotmon_storage import TimeSeriesStore


class ApiServer:
    """uvicorn serving ``create_app(settings, store)`` on a daemon thread.

    ``settings.port = 0`` binds a free port; ``url`` tells which once started.
    """

    def __init__(
        self,
        settings: Settings,
        store: TimeSeriesStore | None = None,
        *,
        registry: Registry | None = None,
        alerts: AlertsDatabase | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._registry = registry
        self._alerts = alerts
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._exit_code: int | str | None = None

    def _serve(self, server: uvicorn.Server) -> None:
        try:
            server.run()
        except SystemExit as exc:  # uvicorn exits when it cannot bind; keep it in this thread
            self._exit_code = exc.code

    def start(self, timeout: float = 30.0) -> None:
        config = uvicorn.Config(
            create_app(self._settings, self._store, registry=self._registry, alerts=self._alerts),
            host=self._settings.host,
            port=self._settings.port,
            log_level=self._settings.log_level.lower(),
            # In-process (demo): one line per request would drown the demo's own output.
            access_log=self._settings.access_log,
            # The process's logging is configured once (iotmon_runtime.log), not by uvicorn.
            log_config=None,
            lifespan="on",
            timeout_graceful_shutdown=self._settings.shutdown_grace_s,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=self._serve, args=(server,), name="iotmon-api", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(
                    f"the API server exited on start (code {self._exit_code}; see the log: "
                    f"is {self._settings.host}:{self._settings.port} free?)"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the API server did not start within {timeout}s")
            time.sleep(0.02)

    @property
    def port(self) -> int:
        if self._server is None or not self._server.servers:
            raise RuntimeError("the API server is not running")
        sockets = self._server.servers[0].sockets
        return int(sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        host = self._settings.host
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._server = self._thread = None
