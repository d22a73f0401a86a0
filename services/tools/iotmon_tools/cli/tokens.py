"""``iotmon tokens``: create, list and revoke the API's bearer tokens in the registry.

    iotmon tokens create --kind operator --tenant acme [--expires-in 30d]
    iotmon tokens create --kind facility --tenant acme --site plant-1 [--site …]
    iotmon tokens create --kind guardian --tenant acme --guardian mum
    iotmon tokens create --kind service --expires-in never
    iotmon tokens list [--tenant acme]
    iotmon tokens revoke <token id>

A new token is printed once; the registry keeps only its SHA-256.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from iotmon_registry import PrincipalKind, Principals, RegistryError
from iotmon_registry.settings import DEFAULT_URL
from iotmon_tools.cli.registry import UrlOption, fail, open_registry

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
DEFAULT_EXPIRY = "90d"
KIND_HELP = (
    "operator: one tenant; facility: some sites of it; guardian: their children; "
    "service: every tenant, read."
)


def parse_expiry(text: str) -> timedelta | None:
    """``30d``, ``12h``, ``90m``, ``3600s``, or ``never`` (None)."""
    if text == "never":
        return None
    match = _DURATION.match(text)
    if match is None or int(match.group(1)) == 0:
        raise typer.BadParameter(
            "use a positive number with s, m, h or d (30d, 12h), or never",
            param_hint="--expires-in",
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def register(app: typer.Typer) -> None:
    tokens_app = typer.Typer(
        help="API tokens: each speaks for a principal (operator, facility, guardian, service).",
        no_args_is_help=True,
    )
    console = Console()

    @tokens_app.command("create")
    def create(
        kind: Annotated[PrincipalKind, typer.Option(help=KIND_HELP)],
        tenant: Annotated[
            str | None, typer.Option("--tenant", "-t", help="The tenant (not for service).")
        ] = None,
        site: Annotated[
            list[str] | None, typer.Option("--site", help="A facility's site (repeat).")
        ] = None,
        guardian: Annotated[str | None, typer.Option(help="A guardian principal's id.")] = None,
        name: Annotated[str, typer.Option(help="Who or what holds it, for the list.")] = "",
        expires_in: Annotated[
            str, typer.Option(help="Lifetime: 30d, 12h, 90m, 3600s, or never.")
        ] = DEFAULT_EXPIRY,
        url: UrlOption = DEFAULT_URL,
    ) -> None:
        """Create a principal and its token; the token is printed once."""
        lifetime = parse_expiry(expires_in)
        with open_registry(url) as registry:
            try:
                issued = Principals(registry).create(
                    kind,
                    tenant=tenant,
                    sites=site or [],
                    guardian=guardian,
                    name=name,
                    expires_in=lifetime,
                )
            except RegistryError as exc:
                raise fail(str(exc)) from None
        info = issued.info
        until = info.expires_at.isoformat() if info.expires_at else "never expires"
        err = Console(stderr=True)
        err.print(
            f"token {info.token_id} ({kind.value}"
            f"{f' of {tenant}' if tenant else ''}), expires {until}. "
            "Shown once; keep it secret:",
            highlight=False,
        )
        # Alone on stdout, so scripts can capture it: TOKEN=$(iotmon tokens create …)
        typer.echo(issued.token)

    @tokens_app.command("list")
    def list_tokens(
        tenant: Annotated[
            str | None, typer.Option("--tenant", "-t", help="Only this tenant's.")
        ] = None,
        url: UrlOption = DEFAULT_URL,
    ) -> None:
        """Every token (never its secret) with its principal, expiry and state."""
        with open_registry(url) as registry:
            found = Principals(registry).tokens(tenant)
        now = datetime.now(UTC)
        columns = ("id", "kind", "tenant", "scope", "name", "created", "expires", "state")
        table = Table(*columns, title=f"tokens ({len(found)})", title_justify="left")
        for info in found:
            p = info.principal
            scope = ", ".join(sorted(p.sites)) or (p.guardian or "")
            table.add_row(
                info.token_id,
                p.kind.value,
                p.tenant or "(all)",
                scope,
                p.name,
                f"{info.created_at:%Y-%m-%d %H:%M}",
                f"{info.expires_at:%Y-%m-%d %H:%M}" if info.expires_at else "never",
                info.state(now),
            )
        console.print(table)

    @tokens_app.command("revoke")
    def revoke(
        token_id: Annotated[str, typer.Argument(help="The token's id (iotmon tokens list).")],
        url: UrlOption = DEFAULT_URL,
    ) -> None:
        """Revoke a token: the API refuses it from the next request on."""
        with open_registry(url) as registry:
            info = Principals(registry).revoke(token_id)
        assert info.revoked_at is not None
        console.print(f"token {token_id} revoked at {info.revoked_at.isoformat()}", highlight=False)

    app.add_typer(tokens_app, name="tokens")
