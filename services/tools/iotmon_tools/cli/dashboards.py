"""`iotmon dashboards push`: upload the Grafana datasource and dashboards through its HTTP API.

The same files Grafana provisions from disk (dashboards/provisioning/, dashboards/json/)
are sent to a Grafana that cannot mount them, e.g. a managed one. Pushing is idempotent:
datasources are updated by uid, dashboards saved by uid with ``overwrite`` (Grafana
keeps one dashboard per uid and bumps its version).

The dashboard files are in Grafana's import format: ``__inputs`` names the datasource
to choose on import. Push fills them in as Grafana's own import does (every
``${DS_…}`` replaced by the uid of the pushed datasource of that plugin), so a pushed
dashboard is the one a person importing it by hand would get.
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

DATASOURCE_FOLDER = Path("provisioning/datasources")
DASHBOARD_FOLDER = Path("json")
FOLDER_UID = "iotmon"
FOLDER_TITLE = "iotmon"

# Keys of a provisioning entry that the HTTP API does not take.
_PROVISIONING_ONLY = ("editable", "orgId", "version")
# Grafana's own expansion rules for provisioning files (pkg/services/provisioning/values):
# $$ is a literal $; ${VAR}, $__env{VAR} and $__file{path} first, then $VAR.
_EXPANDER = re.compile(r"\$(|__\w+)\{([^}]+)\}")
_BARE = re.compile(r"\$(\w+)")
_INPUT_REFERENCE = re.compile(r"\$\{([^}]+)\}")


class DashboardsError(RuntimeError):
    """A dashboards file that cannot be used, or a push Grafana refused."""


def default_dashboards_dir() -> Path:
    """The repository's dashboards/ when run from a checkout, else ./dashboards (images)."""
    checkout = Path(__file__).resolve().parents[3] / "dashboards"
    return checkout if checkout.is_dir() else Path("dashboards")


def expand_variables(text: str, variables: Mapping[str, str], where: str) -> str:
    """Expand a provisioning value as Grafana does, but refuse variables nobody set.

    ``$__file{path}`` is the file's content, stripped of surrounding white space as
    Grafana strips it; a file this machine does not have expands to nothing (it is
    Grafana's path, e.g. a compose secret): the value is then not sent, and Grafana
    keeps what it has.
    """

    def variable(name: str) -> str:
        if name not in variables:
            raise DashboardsError(f"{where}: ${{{name}}} has no value")
        return variables[name]

    def braced(match: re.Match[str]) -> str:
        kind, argument = match.group(1), match.group(2)
        if kind in ("", "__env"):
            return variable(argument)
        if kind == "__file":
            try:
                return Path(argument).read_text(encoding="utf-8").strip()
            except FileNotFoundError:
                return ""
            except (OSError, UnicodeDecodeError) as exc:
                raise DashboardsError(f"{where}: cannot read {argument}: {exc}") from None
        raise DashboardsError(f"{where}: ${kind}{{…}} is not supported by push")

    parts = [
        _BARE.sub(lambda m: variable(m.group(1)), _EXPANDER.sub(braced, part))
        for part in text.split("$$")
    ]
    return "$".join(parts)


def _expand(value: Any, variables: Mapping[str, str], where: str) -> Any:
    if isinstance(value, str):
        return expand_variables(value, variables, where)
    if isinstance(value, dict):
        return {k: _expand(v, variables, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, variables, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def load_datasources(
    path: Path, variables: Mapping[str, str], secure: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """The datasources of a provisioning file as HTTP API payloads, variables expanded.

    ``secure`` replaces ``secureJsonData`` values (e.g. the password a
    ``$__file{/run/secrets/…}`` would read on Grafana's host) of the datasources that
    have that key.
    """
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
        given = payload.pop("secureJsonData", {})
        given.update({k: v for k, v in (secure or {}).items() if k in given and v})
        kept = {k: v for k, v in given.items() if v}
        if kept:
            payload["secureJsonData"] = kept
        payloads.append(payload)
    return payloads


def resolve_inputs(
    dashboard: Mapping[str, Any], datasources: list[dict[str, Any]], where: str
) -> dict[str, Any]:
    """The dashboard as Grafana's import makes it: each ``${INPUT}`` of ``__inputs``
    replaced, in every string, by the uid of the one datasource of its plugin;
    ``__inputs`` dropped. An input with no datasource of its plugin, or several, is an
    error: the import would have asked which."""
    values = {}
    for entry in dashboard.get("__inputs", []):
        name, kind = entry.get("name"), entry.get("type")
        if kind != "datasource":
            raise DashboardsError(f"{where}: input {name} of type {kind!r} is not supported")
        uids = [d["uid"] for d in datasources if d.get("type") == entry.get("pluginId")]
        if len(uids) != 1:
            raise DashboardsError(
                f"{where}: input {name} wants one {entry.get('pluginId')} datasource, "
                f"the provisioning files have {len(uids)}"
            )
        values[name] = uids[0]

    def replace(value: Any) -> Any:
        if isinstance(value, str):
            return _INPUT_REFERENCE.sub(lambda m: values.get(m.group(1), m.group(0)), value)
        if isinstance(value, dict):
            return {k: replace(v) for k, v in value.items()}
        if isinstance(value, list):
            return [replace(v) for v in value]
        return value

    resolved: dict[str, Any] = replace({k: v for k, v in dashboard.items() if k != "__inputs"})
    return resolved


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
    versions: dict[str, int]
    """Each dashboard's version in Grafana after the push."""


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

    # Every dashboard's inputs first: a file that cannot be pushed stops the push before
    # Grafana is changed at all.
    resolved = [resolve_inputs(d, datasources, f"dashboard {d['uid']}") for d in dashboards]
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
    versions = {}
    for dashboard in resolved:
        # No id and overwrite: Grafana saves by uid, a new version of the same dashboard.
        saved = grafana.dashboard.update_dashboard(
            {
                "dashboard": {**dashboard, "id": None},
                "folderUid": folder_uid,
                "overwrite": True,
                "message": "iotmon dashboards push",
            }
        )
        versions[dashboard["uid"]] = int(saved.get("version", 0))
    return PushResult([d["uid"] for d in datasources], [d["uid"] for d in dashboards], versions)


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
    prometheus_url: Annotated[
        str,
        typer.Option(
            envvar="IOTMON_PROMETHEUS_URL",
            help="Prometheus URL as Grafana's server reaches it (the platform-health dashboard).",
        ),
    ] = "http://prometheus:9090",
    influx_password_file: Annotated[
        Path | None,
        typer.Option(
            envvar="IOTMON_INFLUXDB_PASSWORD_FILE",
            help="A file holding that password (its first line): keeps it off the command "
            "line and out of the environment.",
        ),
    ] = None,
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
    if influx_password and influx_password_file:
        raise typer.BadParameter("give --influx-password or --influx-password-file, not both")
    if influx_password_file is not None:
        try:
            lines = influx_password_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            typer.echo(f"error: --influx-password-file {influx_password_file}: {exc}", err=True)
            raise typer.Exit(2) from None
        influx_password = lines[0] if lines else ""
    folder = dashboards_dir or default_dashboards_dir()
    variables = {
        "IOTMON_INFLUXDB_URL": influx_url,
        "IOTMON_INFLUXDB_DATABASE": influx_database,
        "IOTMON_INFLUXDB_USER": influx_user,
        "IOTMON_PROMETHEUS_URL": prometheus_url,
    }
    try:
        files = sorted((folder / DATASOURCE_FOLDER).glob("*.yaml"))
        if not files:
            raise DashboardsError(
                f"no datasource provisioning file in {folder / DATASOURCE_FOLDER}"
            )
        # The InfluxDB password replaces what $__file{} reads on Grafana's host; only the
        # datasources with a password take it.
        datasources = [
            datasource
            for file in files
            for datasource in load_datasources(file, variables, {"password": influx_password})
        ]
        dashboards = load_dashboards(folder / DASHBOARD_FOLDER)
        grafana = GrafanaApi.from_url(url, credential=credential, timeout=timeout)
        result = push(grafana, datasources, dashboards)
    except DashboardsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except (GrafanaException, OSError) as exc:
        typer.echo(f"error: Grafana at {url} refused the push: {exc}", err=True)
        raise typer.Exit(1) from None
    pushed = ", ".join(f"{uid} (version {result.versions[uid]})" for uid in result.dashboards)
    typer.echo(
        f"pushed datasource(s) {', '.join(result.datasources)} and dashboard(s) {pushed} to {url}"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    group = typer.Typer(help="Grafana dashboards: push them to a running Grafana.")
    group.command("push")(push_command)
    app.add_typer(group, name="dashboards")
