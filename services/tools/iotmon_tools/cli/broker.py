"""`iotmon broker`: broker identities under Mosquitto's dynamic-security plugin.

``init`` writes the plugin's file before the broker's first start; the other
commands change a running broker over ``$CONTROL/dynamic-security/v1`` as its
admin (``IOTMON_BROKER_MQTT__*``, or the options before the command).
A generated password is printed once, on stdout; nothing logs it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from iotmon_runtime.config_files import ConfigError
from iotmon_runtime.secrets import is_placeholder_secret
from iotmon_runtime.settings import Environment, SettingsError
from iotmon_tools.broker.admin import BrokerAdmin, ClientExists, ClientInfo, UnknownClient
from iotmon_tools.broker.control import BrokerAdminError, DynsecSession
from iotmon_tools.broker.dynsec_file import (
    DynsecFileError,
    Provisioned,
    build_config,
    write_config,
)
from iotmon_tools.broker.identities import (
    DEFAULT_ADMIN_USER,
    DEFAULT_HEALTH_USER,
    Identity,
    IdentityError,
    admin_identity,
    device_identity,
    gateway_identity,
    health_identity,
    service_identity,
)
from iotmon_tools.broker.passwords import generate_password
from iotmon_tools.broker.provisioning import ProvisioningError, load_identities, resolve
from iotmon_tools.broker.settings import BrokerAdminSettings
from iotmon_tools.cli.registry import open_registry

EXIT_REFUSED = 1
"""The broker refused, could not be reached, or a command failed."""
EXIT_USAGE = 2
"""Bad input: an id, a file, a setting."""


@dataclass(frozen=True, slots=True)
class Connection:
    """The options given before the command; the environment fills in the rest."""

    host: str | None
    port: int | None
    user: str | None
    admin_password_file: Path | None
    timeout_s: float | None
    verbose: bool


PasswordFile = Annotated[
    Path | None,
    typer.Option("--password-file", help="Read the password from the first line of this file."),
]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
]
PasswordEnv = Annotated[
    str | None,
    typer.Option("--password-env", help="Read the password from this environment variable."),
]
Children = Annotated[
    list[str] | None,
    typer.Option("--child", help="A child device id the gateway may speak for (repeatable)."),
]
ChildrenFile = Annotated[
    Path | None,
    typer.Option("--children-file", help="Child device ids, one a line ('#' comments)."),
]


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _first_line(text: str, where: str) -> str:
    line = text.splitlines()[0] if text else ""
    if not line:
        raise _fail(f"{where}: no password on its first line", EXIT_USAGE)
    return line


def _password(file: Path | None, stdin: bool, env: str | None) -> tuple[str, bool]:
    """The password given, or a generated one; and whether it was generated."""
    if sum((file is not None, stdin, env is not None)) > 1:
        raise _fail(
            "give at most one of --password-file, --password-stdin, --password-env", EXIT_USAGE
        )
    if file is not None:
        try:
            return _first_line(file.read_text(encoding="utf-8"), str(file)), False
        except OSError as exc:
            raise _fail(f"{file}: cannot read: {exc.strerror or exc}", EXIT_USAGE) from None
    if stdin:
        return _first_line(sys.stdin.readline(), "stdin"), False
    if env is not None:
        value = os.environ.get(env)
        if not value:
            raise _fail(f"{env}: not set", EXIT_USAGE)
        return value, False
    return generate_password(), True


def _show_credentials(username: str, password: str, generated: bool) -> None:
    if generated:
        typer.echo(f"username: {username}")
        typer.echo(f"password: {password}")
        typer.echo("The password is shown this once: store it with the client now.", err=True)


FromRegistry = Annotated[
    str | None,
    typer.Option(
        "--from-registry",
        envvar=None,
        help="Take the children from the registry at this SQLAlchemy URL (as `iotmon "
        "registry` knows them): the broker and ingest then agree on who speaks for whom.",
    ),
]


def _registry_children(url: str, tenant: str, gateway: str) -> list[str]:
    with open_registry(url) as registry:
        known = registry.device(tenant, gateway)
        if known is None:
            raise _fail(f"{tenant}/{gateway} is not in the registry at {url}", EXIT_USAGE)
        return sorted(d.device for d in registry.devices(tenant) if d.gateway == gateway)


def _children(children: list[str] | None, file: Path | None) -> list[str]:
    found = list(children or [])
    if file is not None:
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise _fail(f"{file}: cannot read: {exc.strerror or exc}", EXIT_USAGE) from None
        found.extend(s for s in (line.split("#", 1)[0].strip() for line in lines) if s)
    return found


def _settings(connection: Connection) -> BrokerAdminSettings:
    mqtt: dict[str, Any] = {}
    if connection.host is not None:
        mqtt["host"] = connection.host
    if connection.port is not None:
        mqtt["port"] = connection.port
    if connection.user is not None:
        mqtt["username"] = connection.user
    if connection.admin_password_file is not None:
        mqtt["password"], _ = _password(connection.admin_password_file, False, None)
    overrides: dict[str, Any] = {"mqtt": mqtt} if mqtt else {}
    if connection.timeout_s is not None:
        overrides["timeout_s"] = connection.timeout_s
    try:
        return BrokerAdminSettings.from_environment(**overrides)
    except SettingsError as exc:
        raise _fail("; ".join(exc.problems), EXIT_USAGE) from None


@contextlib.contextmanager
def _admin(ctx: typer.Context) -> Iterator[BrokerAdmin]:
    """An open admin session; every failure becomes an error line and an exit code."""
    connection: Connection = ctx.obj
    settings = _settings(connection)
    # Quiet by default: the client's reconnect warnings would repeat the error line.
    # Undone afterwards, so a caller's own logging (tests, a shell) is left as it was.
    runtime_logger = logging.getLogger("iotmon_runtime")
    level = runtime_logger.level
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    if connection.verbose:
        runtime_logger.addHandler(handler)
        runtime_logger.setLevel(logging.DEBUG)
    else:
        runtime_logger.setLevel(logging.CRITICAL)
    try:
        with DynsecSession(settings.mqtt, timeout_s=settings.timeout_s) as session:
            yield BrokerAdmin(session)
    except (BrokerAdminError, UnknownClient, ClientExists) as exc:
        raise _fail(str(exc), EXIT_REFUSED) from None
    except IdentityError as exc:
        raise _fail(str(exc), EXIT_USAGE) from None
    finally:
        runtime_logger.removeHandler(handler)
        runtime_logger.setLevel(level)


def _identity(build: Any, *args: Any, **kwargs: Any) -> Identity:
    try:
        identity: Identity = build(*args, **kwargs)
    except IdentityError as exc:
        raise _fail(str(exc), EXIT_USAGE) from None
    return identity


def _add(ctx: typer.Context, identity: Identity, password: tuple[str, bool]) -> None:
    with _admin(ctx) as admin:
        admin.add(identity, password[0])
    typer.echo(f"created {identity.kind.value} {identity.username}", err=True)
    _show_credentials(identity.username, *password)


def init_command(
    file: Annotated[
        Path, typer.Option("--file", help="The plugin's file (plugin_opt_config_file).")
    ],
    admin_user: Annotated[
        str, typer.Option("--admin-user", help="Username of the admin.")
    ] = DEFAULT_ADMIN_USER,
    identities: Annotated[
        Path | None,
        typer.Option("--identities", help="YAML of clients to create too (broker/README.md)."),
    ] = None,
    environment: Annotated[
        Environment,
        typer.Option(
            "--environment",
            envvar="IOTMON_BROKER_ENVIRONMENT",
            help="dev allows placeholder passwords; test and prod refuse them.",
        ),
    ] = Environment.DEV,
    if_missing: Annotated[
        bool, typer.Option("--if-missing", help="Do nothing if the file exists (first start).")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    password_file: PasswordFile = None,
    password_stdin: PasswordStdin = False,
    password_env: PasswordEnv = None,
) -> None:
    """Write the dynamic-security file: default access, roles, the admin (and --identities)."""
    if if_missing and file.exists():
        typer.echo(f"{file} exists: left as it is", err=True)
        return
    password = _password(password_file, password_stdin, password_env)
    if environment is not Environment.DEV and is_placeholder_secret(password[0]):
        source = password_env or password_file or "stdin"
        raise _fail(
            f"{source}: placeholder admin password refused when environment is "
            f"{environment.value!r}; set a real value",
            EXIT_USAGE,
        )
    try:
        admin = Provisioned(admin_identity(admin_user), password[0])
        clients = (
            resolve(load_identities(identities), os.environ, environment=environment.value)
            if identities is not None
            else []
        )
        write_config(file, build_config(admin, clients), overwrite=force)
    except (ConfigError, ProvisioningError, IdentityError) as exc:
        raise _fail(str(exc), EXIT_USAGE) from None
    except DynsecFileError as exc:
        raise _fail(str(exc), EXIT_REFUSED) from None
    typer.echo(f"wrote {file}: admin {admin_user} and {len(clients)} client(s)", err=True)
    _show_credentials(admin_user, *password)


def add_device(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="Tenant id.")],
    device: Annotated[str, typer.Argument(help="Device id; its username is TENANT/DEVICE.")],
    password_file: PasswordFile = None,
    password_stdin: PasswordStdin = False,
    password_env: PasswordEnv = None,
) -> None:
    """Add a device: it may publish on its own topics and read its own requests only."""
    identity = _identity(device_identity, tenant, device)
    _add(ctx, identity, _password(password_file, password_stdin, password_env))


def add_gateway(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="Tenant id.")],
    gateway: Annotated[str, typer.Argument(help="The agent's id; username TENANT/GATEWAY.")],
    child: Children = None,
    children_file: ChildrenFile = None,
    from_registry: FromRegistry = None,
    password_file: PasswordFile = None,
    password_stdin: PasswordStdin = False,
    password_env: PasswordEnv = None,
) -> None:
    """Add an edge agent: its own topics and those of the child devices listed."""
    children = _children(child, children_file)
    if from_registry is not None:
        children += _registry_children(from_registry, tenant, gateway)
    identity = _identity(gateway_identity, tenant, gateway, children)
    _add(ctx, identity, _password(password_file, password_stdin, password_env))


def set_children(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="Tenant id.")],
    gateway: Annotated[str, typer.Argument(help="The gateway's id.")],
    child: Children = None,
    children_file: ChildrenFile = None,
    from_registry: FromRegistry = None,
) -> None:
    """Replace a gateway's children with those listed (it reconnects once)."""
    children = _children(child, children_file)
    if from_registry is not None:
        children += _registry_children(from_registry, tenant, gateway)
    _identity(gateway_identity, tenant, gateway, children)
    with _admin(ctx) as admin:
        identity = admin.set_children(tenant, gateway, children)
    typer.echo(f"{identity.username} now speaks for {len(children)} child device(s)", err=True)


def add_service(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Service name; its username is iotmon-NAME.")],
    share_group: Annotated[
        str | None,
        typer.Option("--share-group", help="Its shared-subscription group (iotmon-NAME)."),
    ] = None,
    commands: Annotated[
        bool, typer.Option("--commands", help="May send device requests, read responses.")
    ] = False,
    discovery_prefix: Annotated[
        str | None,
        typer.Option(
            "--discovery-prefix",
            help="Home Assistant's discovery prefix the service writes (the bridge: "
            "homeassistant).",
        ),
    ] = None,
    password_file: PasswordFile = None,
    password_stdin: PasswordStdin = False,
    password_env: PasswordEnv = None,
) -> None:
    """Add a service: reads every tenant's device topics, writes under _sys and _service."""
    identity = _identity(
        service_identity,
        name,
        share_group=share_group,
        commands=commands,
        discovery_prefix=discovery_prefix,
    )
    _add(ctx, identity, _password(password_file, password_stdin, password_env))


def add_health(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="Its username.")] = DEFAULT_HEALTH_USER,
    password_file: PasswordFile = None,
    password_stdin: PasswordStdin = False,
    password_env: PasswordEnv = None,
) -> None:
    """Add a health-check client: reads $SYS/broker/uptime, nothing else."""
    identity = _identity(health_identity, username)
    _add(ctx, identity, _password(password_file, password_stdin, password_env))


def rotate_password(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The client's username.")],
    password_file: PasswordFile = None,
    password_stdin: PasswordStdin = False,
    password_env: PasswordEnv = None,
) -> None:
    """Give a client a new password; the old one is refused from now on."""
    password = _password(password_file, password_stdin, password_env)
    with _admin(ctx) as admin:
        admin.rotate_password(username, password[0])
    typer.echo(f"new password set for {username}", err=True)
    _show_credentials(username, *password)


def revoke(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The client's username.")],
    delete: Annotated[
        bool, typer.Option("--delete", help="Delete it and its role instead of disabling it.")
    ] = False,
) -> None:
    """Disable a client (or delete it): its sessions are closed and its logins refused."""
    with _admin(ctx) as admin:
        admin.revoke(username, delete=delete)
    typer.echo(f"{'deleted' if delete else 'disabled'} {username}", err=True)


def enable(
    ctx: typer.Context, username: Annotated[str, typer.Argument(help="The client's username.")]
) -> None:
    """Enable a disabled client again."""
    with _admin(ctx) as admin:
        admin.enable(username)
    typer.echo(f"enabled {username}", err=True)


def _as_row(info: ClientInfo) -> dict[str, Any]:
    return {
        "username": info.username,
        "kind": info.kind.value if info.kind else None,
        "disabled": info.disabled,
        "roles": list(info.roles),
        "devices": list(info.devices),
    }


def list_clients(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
) -> None:
    """List the broker's clients: kind, state, and the devices each may speak for."""
    with _admin(ctx) as admin:
        clients = admin.list()
    if as_json:
        typer.echo(json.dumps([_as_row(info) for info in clients], indent=2))
        return
    for info in clients:
        kind = info.kind.value if info.kind else "other"
        state = " (disabled)" if info.disabled else ""
        children = len(info.devices) - 1
        extra = f", {children} child device(s)" if children > 0 else ""
        typer.echo(f"{info.username}\t{kind}{state}{extra}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    group = typer.Typer(
        help="Broker identities (Mosquitto dynamic security): who may publish and read what.",
        no_args_is_help=True,
    )

    @group.callback()
    def connection(
        ctx: typer.Context,
        host: Annotated[
            str | None, typer.Option(help="Broker host (IOTMON_BROKER_MQTT__HOST).")
        ] = None,
        port: Annotated[
            int | None, typer.Option(help="Broker port (IOTMON_BROKER_MQTT__PORT).")
        ] = None,
        user: Annotated[
            str | None,
            typer.Option(
                help=f"Admin username (IOTMON_BROKER_MQTT__USERNAME; {DEFAULT_ADMIN_USER})."
            ),
        ] = None,
        admin_password_file: Annotated[
            Path | None,
            typer.Option(help="File holding the admin password (IOTMON_BROKER_MQTT__PASSWORD)."),
        ] = None,
        timeout: Annotated[
            float | None, typer.Option(help="Seconds to wait for the broker (10).")
        ] = None,
        verbose: Annotated[bool, typer.Option(help="Show the MQTT client's log.")] = False,
    ) -> None:
        """Connection to the running broker, for every command but init."""
        ctx.obj = Connection(host, port, user, admin_password_file, timeout, verbose)

    group.command("init")(init_command)
    group.command("add-device")(add_device)
    group.command("add-gateway")(add_gateway)
    group.command("set-children")(set_children)
    group.command("add-service")(add_service)
    group.command("add-health")(add_health)
    group.command("rotate-password")(rotate_password)
    group.command("revoke")(revoke)
    group.command("enable")(enable)
    group.command("list")(list_clients)
    app.add_typer(group, name="broker")
