"""`iotmon dashboards push` against a stand-in for Grafana (Grafana cannot run here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from iotmon_tools.cli import dashboards
from iotmon_tools.localstack import free_port
from tests.dashboards.grafana import DASHBOARDS, dashboard_files
from tests.dashboards.stand_in_grafana import StandInGrafana

TOKEN = "glsa_test_token"
INFLUX = [
    "--influx-url",
    "http://influxdb:8086",
    "--influx-database",
    "iotmon",
    "--influx-user",
    "grafana",
    "--influx-password",
    "reader-pw",
]

DASHBOARD_COUNT = len(dashboard_files())


def run(*args: str) -> tuple[int, str]:
    app = typer.Typer()
    dashboards.register(app)
    result = CliRunner().invoke(app, ["dashboards", "push", *args], env={})
    return result.exit_code, result.output


def test_first_push_creates_datasource_folder_and_dashboards() -> None:
    with StandInGrafana(token=TOKEN) as grafana:
        code, output = run("--url", grafana.url, "--token", TOKEN, *INFLUX)
        assert code == 0, output
        assert "iotmon-influxdb" in output
        assert "iotmon-environment" in output
        assert "iotmon-edge-agents" in output
        assert "iotmon-video" in output
        calls = [(r.method, r.path) for r in grafana.state.requests]
        assert calls == [
            ("GET", "/api/datasources/uid/iotmon-influxdb"),
            ("POST", "/api/datasources"),
            ("GET", "/api/folders/iotmon"),
            ("POST", "/api/folders"),
            *[("POST", "/api/dashboards/db")] * DASHBOARD_COUNT,
        ]
        assert {r.authorization for r in grafana.state.requests} == {f"Bearer {TOKEN}"}
        datasource = grafana.state.datasources["iotmon-influxdb"]
        assert datasource["type"] == "influxdb"
        assert datasource["url"] == "http://influxdb:8086"
        assert datasource["user"] == "grafana"
        assert datasource["jsonData"]["dbName"] == "iotmon"
        assert datasource["secureJsonData"] == {"password": "reader-pw"}
        assert "editable" not in datasource
        pushed = grafana.state.dashboards["iotmon-environment"]
        assert pushed["overwrite"] is True
        assert pushed["folderUid"] == "iotmon"
        on_disk = json.loads((DASHBOARDS / "json" / "environment.json").read_text())
        assert pushed["dashboard"] == {**on_disk, "id": None}


def test_second_push_updates_in_place() -> None:
    with StandInGrafana(basic=("admin", "admin-pw")) as grafana:
        assert run("--url", grafana.url, "--user", "admin", "--password", "admin-pw")[0] == 0
        grafana.state.requests.clear()
        code, output = run("--url", grafana.url, "--user", "admin", "--password", "admin-pw")
        assert code == 0, output
        calls = [(r.method, r.path) for r in grafana.state.requests]
        assert calls == [
            ("GET", "/api/datasources/uid/iotmon-influxdb"),
            ("PUT", "/api/datasources/uid/iotmon-influxdb"),
            ("GET", "/api/folders/iotmon"),
            *[("POST", "/api/dashboards/db")] * DASHBOARD_COUNT,
        ]
        assert grafana.state.requests[0].authorization == "Basic YWRtaW46YWRtaW4tcHc="
        # No InfluxDB credentials given: none sent (Grafana keeps what it had).
        assert "secureJsonData" not in grafana.state.requests[1].body
        assert "user" not in grafana.state.requests[1].body


def test_refused_credentials_fail_with_a_message() -> None:
    with StandInGrafana(token=TOKEN) as grafana:
        code, output = run("--url", grafana.url, "--token", "wrong")
    assert code == 1
    assert "refused the push" in output
    assert "Unauthorized" in output


def test_unreachable_grafana_fails_with_a_message() -> None:
    code, output = run("--url", f"http://127.0.0.1:{free_port()}", "--token", TOKEN)
    assert code == 1
    assert "refused the push" in output


@pytest.mark.parametrize(
    "args",
    [["--token", TOKEN, "--user", "admin", "--password", "x"], ["--user", "admin"]],
)
def test_conflicting_credentials_are_refused(args: list[str]) -> None:
    code, _ = run("--url", "http://127.0.0.1:1", *args)
    assert code == 2


def test_bad_dashboard_folder_fails_before_any_request(tmp_path: Path) -> None:
    (tmp_path / "provisioning" / "datasources").mkdir(parents=True)
    source = DASHBOARDS / "provisioning" / "datasources" / "influxdb.yaml"
    (tmp_path / "provisioning" / "datasources" / "influxdb.yaml").write_text(
        source.read_text().replace("${IOTMON_INFLUXDB_URL}", "${NOBODY_SETS_THIS}")
    )
    with StandInGrafana(token=TOKEN) as grafana:
        code, output = run(
            "--url", grafana.url, "--token", TOKEN, "--dashboards-dir", str(tmp_path)
        )
        assert code == 2
        assert "${NOBODY_SETS_THIS} has no value" in output
        assert grafana.state.requests == []
