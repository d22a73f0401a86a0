"""`iotmon api`: serve the HTTP API with uvicorn, settings from ``IOTMON_API_*``."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from pydantic import ValidationError


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("api")(serve_api)


def serve_api(
    host: Annotated[
        str | None, typer.Option(help="Bind address (default IOTMON_API_HOST or 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="TCP port (default IOTMON_API_PORT or 8000)."),
    ] = None,
) -> None:
    """Serve the read API (devices, latest readings, series, dead letters) and /docs."""
    import uvicorn

    from iotmon_services.api import Settings, create_app
    from iotmon_services.api.config import describe_settings_error

    try:
        settings = Settings()
    except ValidationError as exc:
        typer.echo(f"invalid API settings:\n{describe_settings_error(exc)}", err=True)
        raise typer.Exit(2) from None
    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if overrides:
        settings = settings.model_copy(update=overrides)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        proxy_headers=True,
    )
