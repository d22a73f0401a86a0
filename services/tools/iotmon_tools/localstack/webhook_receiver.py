"""A real loopback HTTP server that receives webhooks and verifies their signatures.

For tests, the demo and ``iotmon bench alerts``: every endpoint path has its
secret; each request is verified with the ``standardwebhooks`` library (the
signature and the timestamp's freshness), recorded with its arrival time, and
de-duplicated on ``webhook-id`` as the spec asks receivers to. It can answer
with errors, or be stopped and started again on the same port (an endpoint
that is down).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

from iotmon_tools.localstack.processes import free_port


@dataclass(frozen=True, slots=True)
class ReceivedWebhook:
    path: str
    webhook_id: str
    timestamp: str
    payload: dict[str, Any]
    arrived: float
    """time.time() when the request was read."""
    arrived_perf: float
    """time.perf_counter() when the request was read (for latency, same process)."""
    body: str = ""
    """The request body as sent: with ``signature`` a reader can verify it again."""
    signature: str = ""
    """The ``webhook-signature`` header."""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class _State:
    secrets: dict[str, str] = field(default_factory=dict)
    received: list[ReceivedWebhook] = field(default_factory=list)
    seen: dict[str, set[str]] = field(default_factory=dict)
    duplicates: int = 0
    bad_signatures: int = 0
    unknown_paths: int = 0
    fail_with: dict[str, int] = field(default_factory=dict)
    delay_s: dict[str, float] = field(default_factory=dict)
    requests: int = 0


class WebhookReceiver:
    """``on_received`` is called (on the request's thread) with each new webhook; a GET of
    ``/received`` answers what arrived as JSON (the demo's page of what people got)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        on_received: Callable[[ReceivedWebhook], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._on_received = on_received
        self._state = _State()
        self._lock = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def add_endpoint(self, path: str, secret: str) -> str:
        """Accept webhooks on ``path`` signed with ``secret``; returns its URL."""
        with self._lock:
            self._state.secrets[path] = secret
            self._state.seen.setdefault(path, set())
        return self.url(path)

    def fail(self, path: str, status: int | None) -> None:
        """Answer requests to ``path`` with ``status`` (None: accept again)."""
        with self._lock:
            if status is None:
                self._state.fail_with.pop(path, None)
            else:
                self._state.fail_with[path] = status

    def delay(self, path: str, seconds: float) -> None:
        with self._lock:
            self._state.delay_s[path] = seconds

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            # One request per connection: stop() then really closes the endpoint (a
            # kept-alive connection would go on being served by its handler thread).
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: tests read what arrived, not an access log."""

            def do_POST(self) -> None:
                arrived, arrived_perf = time.time(), time.perf_counter()
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                status = receiver._handle(
                    self.path, dict(self.headers), body, arrived, arrived_perf
                )
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                if self.path.split("?")[0].rstrip("/") not in ("", "/received"):
                    self.send_response(404)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                body = json.dumps([r.as_json() for r in receiver.received()]).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        server = ThreadingHTTPServer((self.host, self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="webhook-receiver")
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        """Close the port: deliveries now fail with connection refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = self._thread = None

    # -- receiving -------------------------------------------------------------------

    def _handle(
        self, path: str, headers: dict[str, str], body: bytes, arrived: float, perf: float
    ) -> int:
        with self._lock:
            state = self._state
            state.requests += 1
            secret = state.secrets.get(path)
            fail = state.fail_with.get(path)
            delay = state.delay_s.get(path, 0.0)
        if delay:
            time.sleep(delay)
        if secret is None:
            with self._lock:
                state.unknown_paths += 1
            return 404
        try:
            payload = Webhook(secret).verify(body, headers)
        except (WebhookVerificationError, ValueError, json.JSONDecodeError):
            with self._lock:
                state.bad_signatures += 1
            return 401
        if fail is not None:
            return fail
        lowered = {k.lower(): v for k, v in headers.items()}
        webhook_id = lowered["webhook-id"]
        new: ReceivedWebhook | None = None
        with self._lock:
            seen = state.seen.setdefault(path, set())
            if webhook_id in seen:
                state.duplicates += 1
            else:
                seen.add(webhook_id)
                new = ReceivedWebhook(
                    path,
                    webhook_id,
                    lowered["webhook-timestamp"],
                    payload,
                    arrived,
                    perf,
                    body.decode(errors="replace"),
                    lowered.get("webhook-signature", ""),
                )
                state.received.append(new)
            self._lock.notify_all()
        if new is not None and self._on_received is not None:
            self._on_received(new)
        return 204

    # -- reading ---------------------------------------------------------------------

    def received(self, path: str | None = None) -> list[ReceivedWebhook]:
        """Each webhook once (de-duplicated on its id per endpoint), in arrival order."""
        with self._lock:
            return [r for r in self._state.received if path is None or r.path == path]

    def wait_for(
        self, count: int, timeout: float, path: str | None = None
    ) -> list[ReceivedWebhook]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [r for r in self._state.received if path is None or r.path == path]
                remaining = deadline - time.monotonic()
                if len(found) >= count or remaining <= 0:
                    return found
                self._lock.wait(min(remaining, 0.2))

    @property
    def duplicates(self) -> int:
        with self._lock:
            return self._state.duplicates

    @property
    def bad_signatures(self) -> int:
        with self._lock:
            return self._state.bad_signatures

    @property
    def requests(self) -> int:
        with self._lock:
            return self._state.requests
