"""``iotmon demo``: run the whole local stack and print where to look."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from iotmon_tools.demo import DemoOptions, DemoStack
from iotmon_tools.demo.stack import wait_for


def _summary(stack: DemoStack, options: DemoOptions) -> Table:
    endpoints = stack.endpoints
    api = endpoints.api_url
    device = "env-0001"
    table = Table(title="iotmon demo is running", show_header=False, title_justify="left")
    table.add_column(style="bold cyan")
    # Fold, never ellipsize: these are commands to copy, on narrow terminals and in logs.
    table.add_column(overflow="fold")
    table.add_row("MQTT broker", endpoints.broker)
    table.add_row("Store", endpoints.store_label)
    auth = '-H "Authorization: Bearer $IOTMON_TOKEN"'
    table.add_row("API docs", f"{api}/docs")
    table.add_row("Metrics", f"{api}/metrics  {endpoints.ingest_metrics_url}".strip())
    table.add_row("Token", f"operator of tenant {options.tenant}: export IOTMON_TOKEN (below)")
    table.add_row("Devices", f"curl -s {auth} {api}/api/v1/devices?tenant={options.tenant}")
    table.add_row("Latest", f"curl -s {auth} {api}/api/v1/devices/{options.tenant}/{device}/latest")
    table.add_row(
        "Series",
        f"curl -s {auth} '{api}/api/v1/devices/{options.tenant}/{device}/metrics/temperature"
        "?bucket=10&agg=mean'",
    )
    table.add_row(
        "Watch MQTT",
        f"mosquitto_sub -p {endpoints.mqtt_port} -t 'iotmon/v1/{options.tenant}/#' -v",
    )
    if endpoints.store.backend == "influxdb":
        table.add_row(
            "Grafana",
            f"iotmon dashboards push --url <your grafana> --influx-url {endpoints.store.url}",
        )
    table.add_row("State", str(options.state_dir.resolve()))
    table.add_row("Stop", "Ctrl-C")
    return table


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        embedded: Annotated[
            bool,
            typer.Option(help="Use the in-process MQTT broker (amqtt) and SQLite store."),
        ] = False,
        devices: Annotated[int, typer.Option(min=1, max=20000, help="Simulated sensors.")] = 200,
        interval: Annotated[
            float, typer.Option(min=0.1, max=3600, help="Seconds between readings.")
        ] = 1.0,
        mode: Annotated[
            str, typer.Option(help="single: a message per reading; batch: gateway batches.")
        ] = "single",
        state_dir: Annotated[
            Path, typer.Option(help="Where broker and database data live.")
        ] = Path(".state/demo"),
        api_port: Annotated[int, typer.Option(help="API port (a free one if taken).")] = 8000,
        mqtt_port: Annotated[int, typer.Option(help="MQTT port (a free one if taken).")] = 1883,
        influx_port: Annotated[
            int, typer.Option(help="InfluxDB port (a free one if taken).")
        ] = 8086,
        duration: Annotated[
            float | None, typer.Option(help="Stop after this many seconds (default: Ctrl-C).")
        ] = None,
    ) -> None:
        """Start broker, InfluxDB, ingest, simulated devices and the API; Ctrl-C stops all."""
        if mode not in ("single", "batch"):
            raise typer.BadParameter("must be single or batch", param_hint="--mode")
        console = Console()
        options = DemoOptions(
            state_dir=state_dir,
            embedded=embedded,
            devices=devices,
            interval=interval,
            mode=mode,
            api_port=api_port,
            mqtt_port=mqtt_port,
            influx_port=influx_port,
        )
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        stack = DemoStack(options, console)
        try:
            stack.start()
            console.print(_summary(stack, options))
            # Unwrapped, whatever the terminal's width: lines to copy as they are.
            endpoints = stack.endpoints
            console.print(f"export IOTMON_TOKEN={endpoints.api_token}", soft_wrap=True)
            console.print(
                f'curl -s -H "Authorization: Bearer {endpoints.api_token}" '
                f"{endpoints.api_url}/api/v1/devices?tenant={options.tenant}",
                soft_wrap=True,
                highlight=False,
            )
            wait_for(stop, duration)
            console.print("stopping…")
        finally:
            stack.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        console.print("[green]demo stopped cleanly[/green]")
