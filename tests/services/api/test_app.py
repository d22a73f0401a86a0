"""The API's wiring: the static token, store failures as 503, settings, the in-process server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from iotmon_api import ApiServer, Settings, create_app
from iotmon_storage import StoreSettings, TimeSeriesStore, open_store
from iotmon_tools.localstack import InfluxdProcess, free_port
from tests.services.api.conftest import bearer, registry_settings

STATIC = "s3cret-token-for-tests"
AUTH = bearer(STATIC)


def sqlite_settings(tmp_path: Path, **extra: object) -> Settings:
    values: dict[str, object] = {
        "store": StoreSettings(backend="sqlite", sqlite_path=tmp_path / "s.db"),
        "registry": registry_settings(tmp_path),
        "token": SecretStr(STATIC),
        **extra,
    }
    return Settings(**values)  # type: ignore[arg-type]


def test_static_token_guards_every_api_route_but_not_health(tmp_path: Path) -> None:
    with TestClient(create_app(sqlite_settings(tmp_path))) as client:
        for path in ("/api/v1/devices", "/api/v1/dead-letters", "/api/v1/devices/a/b/latest"):
            missing = client.get(path)
            assert missing.status_code == 401, path
            assert missing.headers["www-authenticate"] == 'Bearer error="invalid_token"'
            assert missing.json()["detail"].startswith("missing bearer token")
            wrong = client.get(path, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            assert wrong.json()["detail"] == "unknown token"
            basic = client.get(path, headers={"Authorization": "Basic czNjcmV0"})
            assert basic.status_code == 401
        assert client.get("/api/v1/devices", headers=AUTH).json() == {
            "data": [],
            "count": 0,
            "next_cursor": None,
        }
        assert client.get("/api/v1/devices/a/b/latest", headers=AUTH).status_code == 404
        me = client.get("/api/v1/me", headers=AUTH).json()
        assert (me["kind"], me["tenant"], me["token_id"]) == ("service", None, None)
        assert client.get("/health").status_code == 200
        assert client.get("/openapi.json").status_code == 200


def test_unreachable_influxdb_gives_503_not_500(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    settings = sqlite_settings(tmp_path, store=StoreSettings(url=closed), startup_wait_s=0)
    with TestClient(create_app(settings), raise_server_exceptions=False, headers=AUTH) as client:
        health = client.get("/health")
        assert health.status_code == 503
        assert health.json()["status"] == "unavailable"
        for path in (
            "/api/v1/devices",
            "/api/v1/devices/acme/env-1/latest",
            "/api/v1/devices/acme/env-1/metrics/temperature",
            "/api/v1/devices/acme/env-1/series",
            "/api/v1/devices/acme/env-1/export",
            "/api/v1/devices/acme/env-1/series",
            "/api/v1/devices/acme/env-1/export",
            "/api/v1/dead-letters",
        ):
            response = client.get(path)
            assert response.status_code == 503, path
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["type"] == "urn:iotmon:problem:store-unavailable"
            assert response.json()["detail"].startswith("time-series store unavailable:")
            assert response.headers["retry-after"] == "5"


def test_store_refusing_a_query_gives_503_with_its_reason(
    influxd: InfluxdProcess, tmp_path: Path
) -> None:
    # A database nobody created: InfluxDB answers the query with an error.
    store = open_store(StoreSettings(url=influxd.url, database=f"missing_{uuid.uuid4().hex}"))
    try:
        app = create_app(sqlite_settings(tmp_path), store)
        with TestClient(app, raise_server_exceptions=False, headers=AUTH) as client:
            response = client.get("/api/v1/devices")
        assert response.status_code == 503
        assert "database not found" in response.json()["detail"]
    finally:
        store.close()


def test_app_opens_and_prepares_its_own_store(tmp_path: Path, influxd: InfluxdProcess) -> None:
    database = f"own_{uuid.uuid4().hex[:12]}"
    settings = sqlite_settings(tmp_path, store=StoreSettings(url=influxd.url, database=database))
    with TestClient(create_app(settings), headers=AUTH) as client:
        # The database did not exist: start-up created it, so this is an empty list.
        assert client.get("/api/v1/devices").json() == {"data": [], "count": 0, "next_cursor": None}
    with TestClient(create_app(sqlite_settings(tmp_path)), headers=AUTH) as client:
        assert client.get("/api/v1/dead-letters").status_code == 200


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IOTMON_API_PORT", "9001")
    monkeypatch.setenv("IOTMON_API_TOKEN", "")
    monkeypatch.setenv("IOTMON_API_STORE__BACKEND", "sqlite")
    monkeypatch.setenv("IOTMON_API_STORE__SQLITE_PATH", str(tmp_path / "x.db"))
    monkeypatch.setenv("IOTMON_API_REGISTRY__URL", f"sqlite:///{tmp_path / 'r.db'}")
    settings = Settings()
    assert settings.port == 9001
    assert settings.token is None  # set but empty: no static principal, not an empty token
    assert settings.registry.url.get_secret_value() == f"sqlite:///{tmp_path / 'r.db'}"
    assert settings.store.backend == "sqlite"
    assert settings.store.sqlite_path == tmp_path / "x.db"


@pytest.mark.parametrize(
    "secrets",
    [
        {"token": "changeme"},
        {"token": "CHANGEME-please"},
        {"store": {"password": "password"}},
        {"store": {"token": "secret"}},
    ],
)
def test_placeholder_secrets_refused_outside_dev(secrets: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="placeholder secret"):
        Settings(environment="prod", **secrets)  # type: ignore[arg-type]
    Settings(environment="dev", **secrets)  # type: ignore[arg-type]


def test_real_secrets_accepted_in_production() -> None:
    settings = Settings(
        environment="prod",
        token=SecretStr("a-long-random-token-1f9c"),
        store=StoreSettings(password=SecretStr("influx-password-77a1")),
    )
    assert "a-long-random" not in repr(settings)


def test_api_server_runs_in_a_thread(tmp_path: Path) -> None:
    settings = sqlite_settings(tmp_path, port=0)
    store: TimeSeriesStore = open_store(settings.store)
    store.ensure_schema()
    server = ApiServer(settings, store)
    server.start()
    url = server.url
    try:
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/health").json()["status"] == "ok"
        assert httpx.get(f"{url}/api/v1/devices", headers=AUTH).json()["count"] == 0
    finally:
        server.stop()
        store.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=1)


@pytest.mark.parametrize("workers", [1, 2])
def test_iotmon_api_command_serves(tmp_path: Path, workers: int) -> None:
    port = free_port()
    env = {
        **os.environ,
        "IOTMON_API_STORE__BACKEND": "sqlite",
        "IOTMON_API_STORE__SQLITE_PATH": str(tmp_path / "cli.db"),
        "IOTMON_API_REGISTRY__URL": f"sqlite:///{tmp_path / 'registry.db'}",
        "IOTMON_API_TOKEN": STATIC,
    }
    iotmon = Path(sys.executable).with_name("iotmon")
    process = subprocess.Popen(
        [str(iotmon), "api", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "iotmon api did not start"
                time.sleep(0.1)
        assert response.json() == {"status": "ok", "store": "sqlite", "detail": None}
        # Every worker answers with the same settings: the static token, the store.
        for _ in range(4 * workers):
            devices = httpx.get(f"http://127.0.0.1:{port}/api/v1/devices", headers=AUTH)
            assert devices.json() == {"data": [], "count": 0, "next_cursor": None}
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_iotmon_api_command_refuses_bad_settings() -> None:
    env = {**os.environ, "IOTMON_API_ENVIRONMENT": "prod", "IOTMON_API_TOKEN": "changeme"}
    iotmon = Path(sys.executable).with_name("iotmon")
    done = subprocess.run(
        [str(iotmon), "api"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert "IOTMON_API_TOKEN: placeholder secret refused" in done.stderr
    assert "changeme" not in done.stderr


def test_api_server_start_fails_loudly_when_the_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = sqlite_settings(tmp_path, port=taken.getsockname()[1])
        server = ApiServer(settings)
        with pytest.raises(RuntimeError, match="exited on start"):
            server.start(timeout=10)
        server.stop()
