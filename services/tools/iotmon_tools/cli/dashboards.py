"""`iotmon dashboards push`: upload the Grafana datasource and dashboards through its HTTP API.

The same files Grafana provisions from disk (dashboards/provisioning/, dashboards/json/)
are sent to a Grafana that cannot mount them, e.g. a managed one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

DATASOURCE_FILE = Path("provisioning/datasources/influxdb.yaml")
DASHBOARD_FOLDER = Path("json")
FOLDER_UID = "iotmon"
FOLDER_TITLE = "iotmon"

# Keys of a provisioning entry that the HTTP API does not take.
_PROVISIONING_ONLY = ("editable", "orgId", "version")
# Grafana's own expansion rules for provisioning files: $VAR or ${VAR}; $$ is a literal $.
_ENV_REFERENCE = re.compile(r"\$\$|\$\{(\w+)\}|\$(\w+)")


class DashboardsError(RuntimeError):
    """A dashboards file that cannot be used, or a push Grafana refused."""


def default_dashboards_dir() -> Path:
    """The repository's dashboards/ when run from a checkout, else ./dashboards (images)."""
    checkout = Path(__file__).resolve().parents[3] / "dashboards"
    return checkout if checkout.is_dir() else Path("dashboards")


def expand_variables(text: str, variables: Mapping[str, str], where: str) -> str:
    """Expand ``$VAR`` / ``${VAR}`` as Grafana does, but refuse variables nobody set."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise DashboardsError(f"{where}: ${{{name}}} has no value")
        return variables[name]

    return _ENV_REFERENCE.sub(replace, text)


def _expand(value: Any, variables: Mapping[str, str], where: str) -> Any:
    if isinstance(value, str):
        return expand_variables(value, variables, where)
    if isinstance(value, dict):
        return {k: _expand(v, variables, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, variables, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def load_datasources(path: Path, variables: Mapping[str, str]) -> list[dict[str, Any]]:
    """The datasources of a provisioning file as HTTP API payloads, variables expanded."""
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise DashboardsError(f"{path}: {exc}") from exc
    entries = document.get("datasources") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise DashboardsError(f"{path}: no 'datasources' list")
    payloads = []
    for index, entry in enumerate(entries):
        payload = _expand(entry, variables, f"{path}:datasources[{index}]")
        for key in _PROVISIONING_ONLY:
            payload.pop(key, None)
        if not payload.get("user"):
            payload.pop("user", None)
        secure = {k: v for k, v in payload.pop("secureJsonData", {}).items() if v}
        if secure:
            payload["secureJsonData"] = secure
        payloads.append(payload)
    return payloads


def load_dashboards(folder: Path) -> list[dict[str, Any]]:
    files = sorted(folder.glob("*.json"))
    if not files:
        raise DashboardsError(f"no dashboard JSON in {folder}")
    dashboards = []
    for file in files:
        try:
            dashboard = json.loads(file.read_text())
        except (OSError, ValueError) as exc:
            raise DashboardsError(f"{file}: {exc}") from exc
        if not isinstance(dashboard, dict) or not dashboard.get("uid"):
            raise DashboardsError(f"{file}: a dashboard needs a uid to be updated in place")
        dashboards.append(dashboard)
    return dashboards


@dataclass(frozen=True, slots=True)
class PushResult:
    datasources: list[str]
    dashboards: list[str]


def push(
    grafana: Any,
    datasources: list[dict[str, Any]],
    dashboards: list[dict[str, Any]],
    *,
    folder_uid: str = FOLDER_UID,
    folder_title: str = FOLDER_TITLE,
) -> PushResult:
    """Create or update datasources (by uid), the folder, then the dashboards (overwrite).

    ``grafana`` is a ``grafana_client.GrafanaApi``.
    """
    from grafana_client.client import GrafanaClientError

    for datasource in datasources:
        uid = datasource["uid"]
        try:
            grafana.datasource.get_datasource_by_uid(uid)
        except GrafanaClientError as exc:
            if exc.status_code != 404:
                raise
            grafana.datasource.create_datasource(datasource)
        else:
            grafana.datasource.update_datasource_by_uid(uid, datasource)
    try:
        grafana.folder.get_folder(folder_uid)
    except GrafanaClientError as exc:
        if exc.status_code != 404:
            raise
        grafana.folder.create_folder(folder_title, uid=folder_uid)
    for dashboard in dashboards:
        grafana.dashboard.update_dashboard(
            {
                "dashboard": {**dashboard, "id": None},
                "folderUid": folder_uid,
                "overwrite": True,
                "message": "iotmon dashboards push",
            }
        )
    return PushResult([d["uid"] for d in datasources], [d["uid"] for d in dashboards])


def push_command(
    url: Annotated[str, typer.Option(envvar="GRAFANA_URL", help="Grafana base URL.")],
    token: Annotated[
        str | None,
        typer.Option(envvar="GRAFANA_TOKEN", help="Service account token (or --user/--password)."),
    ] = None,
    user: Annotated[
        str | None, typer.Option(envvar="GRAFANA_USER", help="Basic auth user.")
    ] = None,
    password: Annotated[
        str | None, typer.Option(envvar="GRAFANA_PASSWORD", help="Basic auth password.")
    ] = None,
    influx_url: Annotated[
        str,
        typer.Option(
            envvar="IOTMON_INFLUXDB_URL", help="InfluxDB URL as Grafana's server reaches it."
        ),
    ] = "http://influxdb:8086",
    influx_database: Annotated[
        str, typer.Option(envvar="IOTMON_INFLUXDB_DATABASE", help="InfluxDB database.")
    ] = "iotmon",
    influx_user: Annotated[
        str, typer.Option(envvar="IOTMON_INFLUXDB_USER", help="InfluxDB user Grafana reads as.")
    ] = "",
    influx_password: Annotated[
        str, typer.Option(envvar="IOTMON_INFLUXDB_PASSWORD", help="That user's password.")
    ] = "",
    dashboards_dir: Annotated[
        Path | None, typer.Option(help="The dashboards/ folder (default: this checkout's).")
    ] = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="Per request, seconds.")] = 10.0,
) -> None:
    """Create or update the iotmon datasource and dashboards in a running Grafana."""
    from grafana_client.api import GrafanaApi
    from grafana_client.client import GrafanaException

    if token and (user or password):
        raise typer.BadParameter("give --token or --user/--password, not both")
    if bool(user) != bool(password):
        raise typer.BadParameter("--user and --password go together")
    credential: str | tuple[str, str] | None = token
    if user and password:
        credential = (user, password)
    folder = dashboards_dir or default_dashboards_dir()
    variables = {
        "IOTMON_INFLUXDB_URL": influx_url,
        "IOTMON_INFLUXDB_DATABASE": influx_database,
        "IOTMON_INFLUXDB_USER": influx_user,
        "IOTMON_INFLUXDB_PASSWORD": influx_password,
    }
    try:
        datasources = load_datasources(folder / DATASOURCE_FILE, variables)
        dashboards = load_dashboards(folder / DASHBOARD_FOLDER)
        grafana = GrafanaApi.from_url(url, credential=credential, timeout=timeout)
        result = push(grafana, datasources, dashboards)
    except DashboardsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except (GrafanaException, OSError) as exc:
        typer.echo(f"error: Grafana at {url} refused the push: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"pushed datasource(s) {', '.join(result.datasources)} and dashboard(s) "
        f"{', '.join(result.dashboards)} to {url}"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    group = typer.Typer(help="Grafana dashboards: push them to a running Grafana.")
    group.command("push")(push_command)
    app.add_typer(group, name="dashboards")
