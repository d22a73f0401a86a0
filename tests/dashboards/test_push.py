"""`iotmon dashboards push` against a stand-in for Grafana (Grafana cannot run here)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from grafana_client.api import GrafanaApi
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
            ("GET", "/api/datasources/uid/iotmon-prometheus"),
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
        prometheus = grafana.state.datasources["iotmon-prometheus"]
        assert prometheus["url"] == "http://prometheus:9090"
        assert "secureJsonData" not in prometheus, "the InfluxDB password is InfluxDB's only"
        pushed = grafana.state.requests[-DASHBOARD_COUNT:]
        environment = next(
            r.body for r in pushed if r.body["dashboard"]["uid"] == "iotmon-environment"
        )
        assert environment["overwrite"] is True
        assert environment["folderUid"] == "iotmon"
        on_disk = json.loads((DASHBOARDS / "json" / "environment.json").read_text())
        # As Grafana's import makes it: the datasource input filled in, __inputs gone.
        assert environment["dashboard"] == imported(on_disk, UIDS)
        health = next(
            r.body for r in pushed if r.body["dashboard"]["uid"] == "iotmon-platform-health"
        )
        on_disk = json.loads((DASHBOARDS / "json" / "platform-health.json").read_text())
        assert health["dashboard"] == imported(on_disk, UIDS)
        for request in pushed:
            assert "${DS_" not in json.dumps(request.body)
            assert "__inputs" not in request.body["dashboard"]
        assert "(version 1)" in output


UIDS = {"influxdb": "iotmon-influxdb", "prometheus": "iotmon-prometheus"}
"""The datasource a person importing would pick for each plugin: the ones pushed."""


def imported(dashboard: dict[str, Any], uids: dict[str, str]) -> dict[str, Any]:
    """What Grafana's import does when each datasource input is answered with ``uids``."""
    text = json.dumps({k: v for k, v in dashboard.items() if k != "__inputs"})
    for entry in dashboard["__inputs"]:
        text = text.replace("${" + entry["name"] + "}", uids[entry["pluginId"]])
    return {**json.loads(text), "id": None}


def test_pushing_twice_leaves_one_dashboard_per_uid_with_the_new_version(
    tmp_path: Path,
) -> None:
    """Idempotent: the second push of an edited dashboard updates it in place (same uid,
    same id, version 2, the new title), and nothing is duplicated."""
    folder = tmp_path / "dashboards"
    shutil.copytree(DASHBOARDS, folder)
    with StandInGrafana(token=TOKEN) as grafana:
        assert run("--url", grafana.url, "--token", TOKEN, "--dashboards-dir", str(folder))[0] == 0
        api = GrafanaApi.from_url(grafana.url, credential=TOKEN)
        first = api.dashboard.get_dashboard("iotmon-environment")
        assert first["dashboard"]["version"] == 1
        edited = folder / "json" / "environment.json"
        document = json.loads(edited.read_text())
        document["title"] = "iotmon / Telemetry (edited)"
        edited.write_text(json.dumps(document))
        code, output = run("--url", grafana.url, "--token", TOKEN, "--dashboards-dir", str(folder))
        assert code == 0, output
        assert "iotmon-environment (version 2)" in output
        second = api.dashboard.get_dashboard("iotmon-environment")
        assert second["dashboard"]["version"] == 2
        assert second["meta"]["version"] == 2
        assert second["dashboard"]["id"] == first["dashboard"]["id"]
        assert second["dashboard"]["title"] == "iotmon / Telemetry (edited)"
        found = api.search.search_dashboards(type_="dash-db")
        uids = [d["uid"] for d in found]
        assert sorted(uids) == sorted({load["uid"] for load in map(_load, dashboard_files())})
        assert len(uids) == DASHBOARD_COUNT


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def test_the_stand_in_refuses_a_stale_save_without_overwrite() -> None:
    """What makes overwrite necessary, as Grafana documents it: 412 version-mismatch."""
    with StandInGrafana(token=TOKEN) as grafana:
        api = GrafanaApi.from_url(grafana.url, credential=TOKEN)
        body = {"dashboard": {"uid": "d1", "title": "D", "id": None}, "overwrite": False}
        assert api.dashboard.update_dashboard(body)["version"] == 1
        stale = {"dashboard": {"uid": "d1", "title": "D", "id": None, "version": 0}}
        with pytest.raises(Exception, match="412"):
            api.dashboard.update_dashboard(stale)
        other = {"dashboard": {"uid": "d2", "title": "D", "id": None}}
        with pytest.raises(Exception, match="412"):
            api.dashboard.update_dashboard(other)
        assert api.dashboard.update_dashboard({**stale, "overwrite": True})["version"] == 2


def test_password_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "influx-password"
    secret.write_text("reader-pw-from-file\n")
    with StandInGrafana(token=TOKEN) as grafana:
        args = ["--url", grafana.url, "--token", TOKEN]
        code, output = run(*args, "--influx-password-file", str(secret))
        assert code == 0, output
        datasource = grafana.state.datasources["iotmon-influxdb"]
        assert datasource["secureJsonData"] == {"password": "reader-pw-from-file"}
        both = run(*args, "--influx-password-file", str(secret), "--influx-password", "x")
        assert both[0] == 2


@pytest.mark.parametrize("count", [0, 2])
def test_an_input_without_exactly_one_datasource_of_its_plugin_fails(
    tmp_path: Path, count: int
) -> None:
    folder = tmp_path / "dashboards"
    shutil.copytree(DASHBOARDS, folder)
    path = folder / "provisioning" / "datasources" / "influxdb.yaml"
    document = yaml.safe_load(path.read_text())
    (datasource,) = document["datasources"]
    document["datasources"] = [
        {**datasource, "uid": f"influx-{i}", "name": f"influx {i}"} for i in range(count)
    ] or [{**datasource, "type": "prometheus"}]
    path.write_text(yaml.safe_dump(document))
    with StandInGrafana(token=TOKEN) as grafana:
        code, output = run("--url", grafana.url, "--token", TOKEN, "--dashboards-dir", str(folder))
        assert code == 2
        want = 2 if count == 2 else 0
        assert "input DS_IOTMON_INFLUXDB wants one influxdb datasource" in output
        assert f"the provisioning files have {want}" in output
        assert grafana.state.requests == [], "nothing is sent when a file cannot be pushed"


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
            ("GET", "/api/datasources/uid/iotmon-prometheus"),
            ("PUT", "/api/datasources/uid/iotmon-prometheus"),
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
