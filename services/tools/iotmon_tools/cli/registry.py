"""``iotmon registry``: register sites, devices and their gateways, children and guardians.

``import edge.yaml`` registers an edge agent as the gateway of every device its
drivers declare, so the agent's config and the registry agree on who may speak
for whom. The database is ``--url`` or ``IOTMON_REGISTRY_URL`` (the one ingest
and the API are given as ``IOTMON_*_REGISTRY__URL``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr, ValidationError
from rich.console import Console
from rich.table import Table

from iotmon_edge import ConfigError, load_agent_config
from iotmon_registry import Registry, RegistryError, RegistrySettings
from iotmon_registry.settings import DEFAULT_URL
from iotmon_tools.registry_import import import_agent

URL_VARIABLE = "IOTMON_REGISTRY_URL"

UrlOption = Annotated[
    str,
    typer.Option(
        "--url",
        envvar=URL_VARIABLE,
        show_envvar=True,
        help="Registry database (SQLAlchemy URL).",
    ),
]
TenantOption = Annotated[str, typer.Option("--tenant", "-t", help="Tenant id.")]
NameOption = Annotated[str, typer.Option(help="A human-readable name.")]


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr; the caller raises the returned Exit(1)."""
    Console(stderr=True).print(f"[red]error[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


@contextmanager
def open_registry(url: str) -> Iterator[Registry]:
    """The registry at ``url``; its errors end the command with exit 1, naming what and where."""
    try:
        settings = RegistrySettings(url=SecretStr(url))
    except ValidationError as exc:
        message = exc.errors(include_input=False)[0]["msg"].removeprefix("Value error, ")
        raise fail(f"--url / {URL_VARIABLE}: {message}") from None
    try:
        with Registry(settings) as registry:
            yield registry
    except RegistryError as exc:
        raise fail(str(exc)) from None


def _table(title: str, columns: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> Table:
    table = Table(*columns, title=f"{title} ({len(rows)})", title_justify="left")
    for row in rows:
        table.add_row(*row)
    return table


def _inherited(site: str | None) -> str:
    return f"({site})" if site else ""


def register(app: typer.Typer) -> None:
    registry_app = typer.Typer(
        help="The registry: sites, devices and gateways, children and guardians.",
        no_args_is_help=True,
    )
    console = Console()

    @registry_app.command("import")
    def import_agents(
        files: Annotated[
            list[Path], typer.Argument(help="Edge agent YAML files (the agent's edge.yaml).")
        ],
        site: Annotated[
            str | None, typer.Option(help="Put each agent (and so its children) on this site.")
        ] = None,
        url: UrlOption = DEFAULT_URL,
    ) -> None:
        """Register each agent as a gateway of its tenant, with its declared devices as children."""
        configs = []
        for path in files:
            try:
                configs.append(load_agent_config(path))
            except ConfigError as exc:
                raise fail(str(exc)) from None
        with open_registry(url) as registry:
            for path, config in zip(files, configs, strict=True):
                try:
                    done = import_agent(registry, config, site=site)
                except RegistryError as exc:
                    raise fail(f"{path}: {exc}") from None
                console.print(
                    f"{path}: gateway {done.tenant}/{done.gateway} with {done.children} "
                    f"children ({done.added} new, {done.moved} moved here, "
                    f"{done.released} released)",
                    highlight=False,
                )

    @registry_app.command("add-site")
    def add_site(
        site: Annotated[str, typer.Argument(help="Site id.")],
        tenant: TenantOption,
        name: NameOption = "",
        url: UrlOption = DEFAULT_URL,
    ) -> None:
        """Register a site of a tenant (the tenant too, if new)."""
        with open_registry(url) as registry:
            registry.add_site(tenant, site, name=name)
        console.print(f"site {tenant}/{site} registered", highlight=False)

    @registry_app.command("add-device")
    def add_device(
        device: Annotated[str, typer.Argument(help="Device id (as in its MQTT topics).")],
        tenant: TenantOption,
        site: Annotated[str | None, typer.Option(help="The site it is on.")] = None,
        gateway: Annotated[
            str | None,
            typer.Option(help="The registered device that may publish its readings."),
        ] = None,
        name: NameOption = "",
        url: UrlOption = DEFAULT_URL,
    ) -> None:
        """Register a device, optionally on a site and as a gateway's child."""
        with open_registry(url) as registry:
            registry.add_device(tenant, device, site=site, gateway=gateway, name=name)
        behind = f" behind gateway {gateway}" if gateway else ""
        console.print(f"device {tenant}/{device} registered{behind}", highlight=False)

    @registry_app.command("remove-device")
    def remove_device(
        device: Annotated[str, typer.Argument(help="Device id.")],
        tenant: TenantOption,
        url: UrlOption = DEFAULT_URL,
    ) -> None:
        """Remove a device (its children stay, without a gateway). Ingest refuses its
        telemetry once registered devices are enforced; the Home Assistant bridge removes
        its entities."""
        with open_registry(url) as registry:
            removed = registry.remove_device(tenant, device)
        console.print(f"device {removed.tenant}/{removed.device} removed", highlight=False)

    @registry_app.command("add-child")
    def add_child(
        child: Annotated[str, typer.Argument(help="Child id.")],
        tenant: TenantOption,
        tag: Annotated[
            list[str] | None, typer.Option("--tag", help="A tag id the child carries (repeat).")
        ] = None,
        name: NameOption = "",
        url: UrlOption = DEFAULT_URL,
    ) -> None:
        """Register a child with the tag ids they carry."""
        with open_registry(url) as registry:
            added = registry.add_child(tenant, child, tag or [], name=name)
        console.print(
            f"child {tenant}/{child} registered with tags {', '.join(added.tags) or '(none)'}",
            highlight=False,
        )

    @registry_app.command("add-guardian")
    def add_guardian(
        guardian: Annotated[str, typer.Argument(help="Guardian id.")],
        tenant: TenantOption,
        child: Annotated[
            list[str], typer.Option("--child", help="A registered child of theirs (repeat).")
        ],
        name: NameOption = "",
        url: UrlOption = DEFAULT_URL,
    ) -> None:
        """Register a guardian of one or more registered children."""
        with open_registry(url) as registry:
            added = registry.add_guardian(tenant, guardian, child, name=name)
        console.print(
            f"guardian {tenant}/{guardian} registered for {', '.join(added.children)}",
            highlight=False,
        )

    @registry_app.command("list")
    def list_all(
        tenant: Annotated[
            str | None, typer.Option("--tenant", "-t", help="Only this tenant.")
        ] = None,
        url: UrlOption = DEFAULT_URL,
    ) -> None:
        """Show sites, devices (with site and gateway), children and guardians."""
        with open_registry(url) as registry:
            sites = registry.sites(tenant)
            devices = registry.devices(tenant)
            children = registry.children(tenant)
            guardians = registry.guardians(tenant)
        console.print(f"registry {registry.where}", highlight=False)
        site_rows = [(s.tenant, s.site, s.name) for s in sites]
        # An inherited site in parentheses: the gateway's, not the device's own.
        device_rows = [
            (d.tenant, d.device, d.site or _inherited(d.effective_site), d.gateway or "")
            for d in devices
        ]
        child_rows = [(c.tenant, c.child, ", ".join(c.tags)) for c in children]
        guardian_rows = [(g.tenant, g.guardian, ", ".join(g.children)) for g in guardians]
        console.print(_table("sites", ("tenant", "site", "name"), site_rows))
        console.print(_table("devices", ("tenant", "device", "site", "gateway"), device_rows))
        console.print(_table("children", ("tenant", "child", "tags"), child_rows))
        console.print(_table("guardians", ("tenant", "guardian", "children"), guardian_rows))

    app.add_typer(registry_app, name="registry")
