"""A real loopback HTTP proxy in front of influxd that can fail or hold ingest's writes.

Tests put it between ingest and InfluxDB to inject what a real store does at
the worst moment: answer 503, or take a write and never answer (a paused or
hung influxd) while the test looks at what ingest holds. Queries always pass.
"""

from __future__ import annotations

import http.server
import threading
from dataclasses import dataclass, field
from enum import Enum

import httpx


class Mode(Enum):
    PASS = "pass"
    FAIL = "fail"
    """Answer every write 503 (InfluxDB overloaded or restarting)."""
    HOLD = "hold"
    """Keep every write without answering until released (forwarded) or dropped."""


@dataclass
class HeldWrite:
    lines: list[str]
    decided: threading.Event = field(default_factory=threading.Event)
    forward: bool = False


class StoreProxy:
    def __init__(self, upstream: str) -> None:
        self._upstream = httpx.Client(base_url=upstream, timeout=60)
        self._lock = threading.Condition()
        self.mode = Mode.PASS
        self.held: list[HeldWrite] = []
        self.forwarded_lines = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                proxy._handle(self, "GET")

            def do_POST(self) -> None:
                proxy._handle(self, "POST")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> StoreProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.drop_held()
        self._server.shutdown()
        self._server.server_close()
        self._upstream.close()

    def set_mode(self, mode: Mode) -> None:
        with self._lock:
            self.mode = mode

    def wait_held(self, count: int = 1, timeout: float = 20.0) -> list[HeldWrite]:
        """Wait until ``count`` writes are held; return them all."""
        with self._lock:
            self._lock.wait_for(lambda: len(self.held) >= count, timeout)
            return list(self.held)

    def drop_held(self) -> list[HeldWrite]:
        """Never forward what is held; its connections close without an answer."""
        return self._decide(forward=False)

    def release_held(self) -> list[HeldWrite]:
        """Forward what is held to InfluxDB and answer as it does."""
        return self._decide(forward=True)

    def _decide(self, *, forward: bool) -> list[HeldWrite]:
        with self._lock:
            held, self.held = self.held, []
        for write in held:
            write.forward = forward
            write.decided.set()
        return held

    def _handle(self, request: http.server.BaseHTTPRequestHandler, method: str) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        is_write = request.path.startswith("/write")
        if is_write:
            with self._lock:
                mode = self.mode
                held = None
                if mode is Mode.HOLD:
                    held = HeldWrite(body.decode().splitlines())
                    self.held.append(held)
                    self._lock.notify_all()
            if mode is Mode.FAIL:
                self._answer(request, 503, b'{"error":"proxy: store unavailable"}')
                return
            if held is not None:
                held.decided.wait()
                if not held.forward:
                    request.close_connection = True
                    return
        upstream = self._upstream.request(
            method,
            request.path,
            content=body,
            headers={"Content-Type": request.headers.get("Content-Type", "text/plain")},
        )
        if is_write and upstream.status_code == 204:
            with self._lock:
                self.forwarded_lines += len(body.splitlines())
        self._answer(request, upstream.status_code, upstream.content)

    @staticmethod
    def _answer(request: http.server.BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        try:
            request.send_response(status)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)
        except OSError:
            request.close_connection = True  # the client is gone (killed, or timed out)
