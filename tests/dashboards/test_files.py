"""Shape of the Grafana files: provisioning YAML and dashboard JSON agree with each other,
and each dashboard is importable as it is (Grafana's "Import dashboard" asks for the
datasource its ``__inputs`` name) while provisioning from disk still works."""

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
    # The password is the compose secret Grafana mounts, never an environment variable.
    assert datasource["secureJsonData"]["password"].startswith("$__file{/run/secrets/")
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


def _datasource_variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard["templating"]["list"] if v["type"] == "datasource"}


def _references(dashboard: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every datasource reference: panels, their targets, query variables."""
    found = []
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        found.append((panel["title"], panel["datasource"]))
        found.extend((f"{panel['title']}/{t['refId']}", t["datasource"]) for t in panel["targets"])
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            found.append((f"${variable['name']}", variable["datasource"]))
    return found


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
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]
            if panel["datasource"]["type"] == "influxdb":
                assert target["rawQuery"] is True
            else:
                assert target["expr"], panel["title"]


@pytest.mark.parametrize("path", DASHBOARD_PATHS)
def test_datasources_are_chosen_by_variable_not_hard_coded(path: Any) -> None:
    """Provisioned, a datasource variable picks the default InfluxDB datasource; imported,
    it starts on the one the import asked for. No panel names a datasource's uid, which
    differs between Grafana instances."""
    dashboard = load(path)
    variables = _datasource_variables(dashboard)
    assert variables, "no datasource variable"
    for where, reference in _references(dashboard):
        name = reference["uid"].removeprefix("${").removesuffix("}")
        assert reference["uid"] == f"${{{name}}}", f"{where}: {reference} is hard-coded"
        assert name in variables, f"{where}: ${name} is not a datasource variable"
        assert reference["type"] == variables[name]["query"], where
    for uid in (DATASOURCE_UID, PROMETHEUS_UID):
        assert uid not in path.read_text(), f"a datasource uid ({uid}) is written in the file"


@pytest.mark.parametrize("path", DASHBOARD_PATHS)
def test_inputs_ask_for_each_datasource_on_import(path: Any) -> None:
    dashboard = load(path)
    inputs = {i["name"]: i for i in dashboard["__inputs"]}
    assert inputs, "Grafana's import would not ask for a datasource"
    used = set()
    for variable in _datasource_variables(dashboard).values():
        # Import replaces ${DS_…} everywhere: the variable then starts on that datasource.
        (name,) = re.fullmatch(r"\$\{(DS_\w+)\}", variable["current"]["value"]).groups()  # type: ignore[union-attr]
        assert variable["current"]["text"] == variable["current"]["value"]
        assert inputs[name]["type"] == "datasource"
        assert inputs[name]["pluginId"] == variable["query"]
        assert inputs[name]["label"]
        used.add(name)
    assert used == set(inputs), f"inputs nothing uses: {set(inputs) - used}"
    text = path.read_text()
    assert set(re.findall(r"\$\{(DS_\w+)\}", text)) == set(inputs)
    required = {(r["type"], r["id"]) for r in dashboard["__requires"]}
    assert ("grafana", "grafana") in required
    assert {("datasource", i["pluginId"]) for i in inputs.values()} <= required
    assert {("panel", p["type"]) for p in panels(dashboard) if p["type"] != "row"} <= required


@pytest.mark.parametrize("path", DASHBOARD_PATHS)
def test_all_has_an_all_value_and_repeats_use_multi_variables(path: Any) -> None:
    dashboard = load(path)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    for variable in variables.values():
        if variable.get("includeAll"):
            # Without it "All" expands to (every|value|listed), which grows with the fleet.
            assert variable.get("allValue"), f"${variable['name']} offers All without allValue"
    for panel in panels(dashboard):
        if "repeat" in panel:
            repeated = variables[panel["repeat"]]
            assert repeated["multi"], panel["title"]
            assert repeated["includeAll"], panel["title"]
            assert f"${panel['repeat']}" in panel["title"], "repeated panels need their own titles"


@pytest.mark.parametrize("path", DASHBOARD_PATHS)
def test_variables_are_defined_and_used_as_anchored_regexes(path: Any) -> None:
    dashboard = load(path)
    names = [v["name"] for v in dashboard["templating"]["list"]]
    query_variables = [v for v in dashboard["templating"]["list"] if v["type"] == "query"]
    for variable in query_variables:
        assert variable["query"].startswith(("SHOW TAG VALUES", "SHOW MEASUREMENTS"))
    queries = [v["query"] for v in query_variables] + [
        t.get("query") or t["expr"] for p in panels(dashboard) for t in p.get("targets", [])
    ]
    for query in queries:
        used = set(re.findall(r"\$(?!__|timeFilter)(\w+)", query))
        assert used <= set(names), f"undefined variable in {query}"
        for name in used:
            # Multi-value and "All" selections become (a|b): only valid inside a regex.
            assert f"/^${name}$/" in query, f"${name} must be used as =~ /^${name}$/: {query}"
