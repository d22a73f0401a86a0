"""`iotmon ingest`: consume telemetry from MQTT and write it to the store."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command("ingest")
    def ingest(
        workers: Annotated[
            int | None,
            typer.Option(
                "--workers", "-w", min=1, max=64, help="Worker processes (default from settings)."
            ),
        ] = None,
        log_level: Annotated[
            str | None, typer.Option("--log-level", help="DEBUG, INFO, WARNING…")
        ] = None,
    ) -> None:
        """Run ingest until SIGINT/SIGTERM; settings from IOTMON_INGEST_* variables."""
        from pydantic import ValidationError

        from iotmon_edge.secrets import describe_settings_error
        from iotmon_services.ingest import IngestSettings, run_ingest
        from iotmon_services.ingest.registry import RegistryError
        from iotmon_services.ingest.workers import configure_logging

        try:
            settings = IngestSettings()
        except ValidationError as exc:
            # str(exc) would print the inputs, passwords among them.
            described = describe_settings_error(exc, IngestSettings)
            typer.echo(f"invalid ingest settings (IOTMON_INGEST_*):\n{described}", err=True)
            raise typer.Exit(2) from None
        updates: dict[str, object] = {}
        if workers is not None:
            updates["workers"] = workers
        if log_level is not None:
            updates["log_level"] = log_level
        settings = settings.model_copy(update=updates)
        configure_logging(settings.log_level)
        try:
            code = run_ingest(settings)
        except RegistryError as exc:
            typer.echo(f"invalid device registry:\n{exc}", err=True)
            raise typer.Exit(2) from None
        raise typer.Exit(code)
