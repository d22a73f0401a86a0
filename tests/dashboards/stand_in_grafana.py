"""A stand-in for Grafana's HTTP API, because Grafana cannot run here: a mock, named as one.

A real HTTP server on loopback that records each request and answers the few
endpoints ``iotmon dashboards push`` and its tests use the way Grafana's HTTP API
documentation says (status codes and the fields clients read): datasources by uid,
folders, ``POST /api/dashboards/db`` (one dashboard per uid, its ``id`` kept and its
``version`` raised on every save; 412 ``version-mismatch`` or ``name-exists`` without
``overwrite``), ``GET /api/dashboards/uid/<uid>`` and ``GET /api/search``. Not modelled:
permissions, provisioned (read-only) dashboards, and what Grafana does when
``overwrite`` meets another uid's dashboard of the same title.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    authorization: str | None
    body: Any


@dataclass
class GrafanaState:
    token: str | None = None
    basic: tuple[str, str] | None = None
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    """uid -> the last save's request body, its dashboard as stored (id, version)."""
    requests: list[Recorded] = field(default_factory=list)
    next_dashboard_id: int = 1


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self, header: str | None) -> bool:
        state = self.server.state
        if state.token is not None and header == f"Bearer {state.token}":
            return True
        if state.basic is not None and header:
            expected = base64.b64encode(":".join(state.basic).encode()).decode()
            return header == f"Basic {expected}"
        return False

    def _handle(self, method: str) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        body: Any = json.loads(self.rfile.read(length)) if length else {}
        auth = self.headers.get("Authorization")
        state.requests.append(Recorded(method, self.path, auth, body))
        if not self._authorized(auth):
            self._reply(401, {"message": "Unauthorized"})
            return
        query = parse_qs(urlsplit(self.path).query)
        path = urlsplit(self.path).path
        route = (method, path)
        if match := re.fullmatch(r"/api/datasources/uid/([\w-]+)", self.path):
            uid = match.group(1)
            if uid not in state.datasources:
                self._reply(404, {"message": "Data source not found"})
            elif method == "GET":
                self._reply(200, state.datasources[uid])
            elif method == "PUT":
                state.datasources[uid] = {**body, "id": state.datasources[uid]["id"]}
                self._reply(200, {"message": "Datasource updated", "id": 1, "name": body["name"]})
            else:
                self._reply(405, {"message": "Method not allowed"})
        elif route == ("POST", "/api/datasources"):
            if any(d["name"] == body["name"] for d in state.datasources.values()):
                self._reply(409, {"message": "data source with the same name already exists"})
                return
            state.datasources[body["uid"]] = {**body, "id": len(state.datasources) + 1}
            self._reply(200, {"message": "Datasource added", "id": 1, "name": body["name"]})
        elif match := re.fullmatch(r"/api/folders/([\w-]+)", self.path):
            if method == "GET" and match.group(1) in state.folders:
                self._reply(200, state.folders[match.group(1)])
            else:
                self._reply(404, {"message": "folder not found"})
        elif route == ("POST", "/api/folders"):
            state.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"], "id": 1}
            self._reply(200, state.folders[body["uid"]])
        elif route == ("POST", "/api/dashboards/db"):
            self._save_dashboard(body)
        elif match := re.fullmatch(r"/api/dashboards/uid/([\w-]+)", path):
            saved = state.dashboards.get(match.group(1))
            if method != "GET" or saved is None:
                self._reply(404, {"message": "Dashboard not found"})
            else:
                meta = {
                    "folderUid": saved.get("folderUid", ""),
                    "version": saved["dashboard"]["version"],
                }
                self._reply(200, {"dashboard": saved["dashboard"], "meta": meta})
        elif route == ("GET", "/api/search"):
            kinds = query.get("type", ["dash-db"])
            found = [
                {
                    "id": saved["dashboard"]["id"],
                    "uid": uid,
                    "title": saved["dashboard"]["title"],
                    "type": "dash-db",
                    "folderUid": saved.get("folderUid", ""),
                }
                for uid, saved in state.dashboards.items()
                if "dash-db" in kinds
            ]
            self._reply(200, found)
        else:
            self._reply(404, {"message": "Not found"})

    def _save_dashboard(self, body: dict[str, Any]) -> None:
        state = self.server.state
        dashboard = dict(body["dashboard"])
        uid, folder = dashboard["uid"], body.get("folderUid", "")
        existing = state.dashboards.get(uid)
        if folder and folder not in state.folders:
            self._reply(400, {"message": "folder not found"})
            return
        if not body.get("overwrite"):
            if existing and dashboard.get("version") != existing["dashboard"]["version"]:
                message = "The dashboard has been changed by someone else"
                self._reply(412, {"status": "version-mismatch", "message": message})
                return
            same_title = [
                other
                for other, saved in state.dashboards.items()
                if other != uid
                and saved["dashboard"]["title"] == dashboard["title"]
                and saved.get("folderUid", "") == folder
            ]
            if same_title:
                message = "A dashboard with the same name in the folder already exists"
                self._reply(412, {"status": "name-exists", "message": message})
                return
        if existing:
            dashboard["id"] = existing["dashboard"]["id"]
            dashboard["version"] = existing["dashboard"]["version"] + 1
        else:
            dashboard["id"] = state.next_dashboard_id
            state.next_dashboard_id += 1
            dashboard["version"] = 1
        state.dashboards[uid] = {**body, "dashboard": dashboard}
        self._reply(
            200,
            {
                "id": dashboard["id"],
                "uid": uid,
                "url": f"/d/{uid}/{dashboard['title'].lower().replace(' ', '-')}",
                "status": "success",
                "version": dashboard["version"],
                "slug": dashboard["title"].lower().replace(" ", "-"),
            },
        )

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")


class _Server(ThreadingHTTPServer):
    state: GrafanaState


class StandInGrafana:
    """``with StandInGrafana(token=...) as grafana:`` serves on ``grafana.url``."""

    def __init__(self, *, token: str | None = None, basic: tuple[str, str] | None = None) -> None:
        self.state = GrafanaState(token=token, basic=basic)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = self.state
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> StandInGrafana:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
