"""Shape of the Grafana files: provisioning YAML and dashboard JSON agree with each other."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.dashboards.grafana import (
    DASHBOARDS,
    DATASOURCE_UID,
    PROMETHEUS_UID,
    dashboard_files,
    load,
    panels,
)

DASHBOARD_PATHS = [pytest.param(p, id=p.stem) for p in dashboard_files()]


def test_datasource_provisioning() -> None:
    document = yaml.safe_load((DASHBOARDS / "provisioning/datasources/influxdb.yaml").read_text())
    assert document["apiVersion"] == 1
    (datasource,) = document["datasources"]
    assert datasource["uid"] == DATASOURCE_UID
    assert datasource["type"] == "influxdb"
    assert datasource["access"] == "proxy"
    assert datasource["url"] == "${IOTMON_INFLUXDB_URL}"
    assert datasource["jsonData"]["dbName"] == "${IOTMON_INFLUXDB_DATABASE}"
    # InfluxQL, not Flux: no "version: Flux" in jsonData.
    assert datasource["jsonData"].get("version", "InfluxQL") == "InfluxQL"


def test_prometheus_datasource_provisioning() -> None:
    path = DASHBOARDS / "provisioning/datasources/prometheus.yaml"
    (datasource,) = yaml.safe_load(path.read_text())["datasources"]
    assert datasource["uid"] == PROMETHEUS_UID
    assert datasource["type"] == "prometheus"
    assert datasource["access"] == "proxy"
    assert datasource["url"] == "${IOTMON_PROMETHEUS_URL}"
    assert datasource.get("isDefault") is not True, "InfluxDB stays the default"


def test_dashboard_provider_points_at_the_json_folder_mount() -> None:
    document = yaml.safe_load((DASHBOARDS / "provisioning/dashboards/iotmon.yaml").read_text())
    (provider,) = document["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/etc/grafana/dashboards/iotmon"
    compose = yaml.safe_load((DASHBOARDS.parent / "docker-compose.yml").read_text())
    volumes = compose["services"]["grafana"]["volumes"]
    assert "./dashboards/json:/etc/grafana/dashboards/iotmon:ro" in volumes


@pytest.mark.parametrize("path", DASHBOARD_PATHS)
def test_dashboard_structure(path: Any) -> None:
    dashboard = load(path)
    assert dashboard["uid"]
    assert dashboard["title"]
    assert dashboard.get("id") is None, "a provisioned dashboard carries no database id"
    every = list(panels(dashboard))
    ids = [p["id"] for p in every]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in every:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        uid = panel["datasource"]["uid"]
        assert uid in (DATASOURCE_UID, PROMETHEUS_UID), panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid, panel["title"]
            if uid == DATASOURCE_UID:
                assert target["rawQuery"] is True
            else:
                assert target["expr"], panel["title"]


@pytest.mark.parametrize("path", DASHBOARD_PATHS)
def test_variables_are_defined_and_used_as_anchored_regexes(path: Any) -> None:
    dashboard = load(path)
    names = [v["name"] for v in dashboard["templating"]["list"]]
    for variable in dashboard["templating"]["list"]:
        assert variable["datasource"]["uid"] == DATASOURCE_UID
        assert variable["query"].startswith("SHOW TAG VALUES")
    queries = [v["query"] for v in dashboard["templating"]["list"]] + [
        t.get("query") or t["expr"] for p in panels(dashboard) for t in p.get("targets", [])
    ]
    for query in queries:
        used = set(re.findall(r"\$(?!__|timeFilter)(\w+)", query))
        assert used <= set(names), f"undefined variable in {query}"
        for name in used:
            # Multi-value and "All" selections become (a|b): only valid inside a regex.
            assert f"/^${name}$/" in query, f"${name} must be used as =~ /^${name}$/: {query}"
