"""Serves stored snapshots and clips over HTTP: ``GET /media/<camera>/<file>``.

The video service serves its own media (rather than the API): the files live on its
disk, and the API stays free of a shared volume. Read-only, names checked against
the one shape media files have, so no path can leave the media folder.
"""

from __future__ import annotations

import logging
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from iotmon_contract.topics import IDENTIFIER_PATTERN
from iotmon_video.media import CONTENT_TYPES, MEDIA_NAME

logger = logging.getLogger(__name__)

_CAMERA = re.compile(IDENTIFIER_PATTERN)


class _Handler(BaseHTTPRequestHandler):
    server: _MediaHttpServer
    server_version = "iotmon-video"
    sys_version = ""

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _serve(self, body: bool) -> None:
        if self.path == "/healthz":
            self._send(HTTPStatus.OK, b"ok\n", "text/plain", body)
            return
        parts = self.path.split("?", 1)[0].split("/")
        if len(parts) != 4 or parts[:2] != ["", "media"]:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain", body)
            return
        camera, name = parts[2], parts[3]
        if not _CAMERA.match(camera) or not MEDIA_NAME.match(name):
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain", body)
            return
        path = self.server.root / camera / name
        try:
            data = path.read_bytes()
        except OSError:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain", body)
            return
        self._send(HTTPStatus.OK, data, CONTENT_TYPES[name.rsplit(".", 1)[1]], body)

    def _send(self, status: HTTPStatus, data: bytes, content_type: str, body: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "private, max-age=3600")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("media http: " + format, *args)  # noqa: G003


class _MediaHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], root: Path) -> None:
        super().__init__(address, _Handler)
        self.root = root


class MediaServer:
    """Worker: ``start`` binds and serves on a thread, ``stop`` shuts it down."""

    def __init__(self, host: str, port: int, root: Path) -> None:
        self._host = host
        self._port = port
        self._root = root
        self._server: _MediaHttpServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("media server not started")
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._root.mkdir(parents=True, exist_ok=True)
        self._server = _MediaHttpServer((self._host, self._port), self._root)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="media-http", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
