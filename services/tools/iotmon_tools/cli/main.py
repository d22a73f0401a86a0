"""Entry point of ``iotmon``: each area registers its own commands from its module."""

from __future__ import annotations

from typing import Annotated

import typer

from iotmon_runtime.version import version_line
from iotmon_tools.cli import (
    api,
    bench,
    broker,
    bus,
    config,
    contract,
    dashboards,
    demo,
    ingest,
    registry,
    simulate,
    tokens,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(version_line("iotmon", "iotmon-tools"))
        raise typer.Exit()


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="iotmon",
        help="iotmon: IoT monitoring reference platform (devices → edge → MQTT → ingest → "
        "InfluxDB → API and Grafana).",
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,
    )

    @app.callback()
    def root(
        version: Annotated[
            bool,
            typer.Option(
                "--version",
                callback=_print_version,
                is_eager=True,
                help="Print the version and the wire contract's version, then exit.",
            ),
        ] = False,
    ) -> None:
        """iotmon: IoT monitoring reference platform."""

    areas = (
        demo, ingest, api, registry, tokens, simulate, bench, broker, dashboards, config, contract,
        bus,
    )  # fmt: skip
    for module in areas:
        module.register(app)
    return app


def run() -> None:
    build_app()()
