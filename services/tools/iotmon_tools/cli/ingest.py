"""`iotmon ingest`: the ingest service's own CLI (``iotmon-ingest run``) under ``iotmon``."""

from __future__ import annotations

import typer

from iotmon_ingest.cli import main as ingest_main

_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command("ingest", context_settings=_PASS_THROUGH, add_help_option=False)
    def ingest(ctx: typer.Context) -> None:
        """Run ingest until SIGINT/SIGTERM (same as `iotmon-ingest run`; --help for options)."""
        raise typer.Exit(ingest_main(["run", *ctx.args]))
