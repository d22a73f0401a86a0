"""Entry point of ``iotmon``: each area registers its own commands from its module."""

from __future__ import annotations

import typer

from iotmon_services.cli import api, bench, config, contract, dashboards, demo, ingest, simulate


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="iotmon",
        help="iotmon: IoT monitoring reference platform (devices → edge → MQTT → ingest → "
        "InfluxDB → API and Grafana).",
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,
    )
    for module in (demo, ingest, api, simulate, bench, dashboards, config, contract):
        module.register(app)
    return app


def run() -> None:
    build_app()()
