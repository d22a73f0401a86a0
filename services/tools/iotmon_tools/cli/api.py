"""`iotmon api`: the API service's own CLI (``iotmon-api run``) under ``iotmon``."""

from __future__ import annotations

import typer

from iotmon_api.cli import main as api_main

_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command("api", context_settings=_PASS_THROUGH, add_help_option=False)
    def api(ctx: typer.Context) -> None:
        """Serve the HTTP API (same as `iotmon-api run`; --help for options)."""
        raise typer.Exit(api_main(["run", *ctx.args]))
