"""``iotmon demo``: run the whole local stack and print where to look."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from iotmon_tools.demo import DemoOptions, DemoStack
from iotmon_tools.demo.broker import WATCH
from iotmon_tools.demo.stack import wait_for

WATCHED = ("telemetry", "event", "status")
"""The device topics the printed mosquitto_sub line reads (a service's read rights)."""


def _summary(stack: DemoStack, options: DemoOptions) -> Table:
    endpoints = stack.endpoints
    api = endpoints.api_url
    device = "room-0001" if options.day else "env-0001"
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
    login = ""
    if endpoints.identities is not None:
        # A watcher with a service's read rights: on this broker, as in production,
        # nobody reads anonymously, and a service may read device topics, not '#'.
        watch = endpoints.identities.login(WATCH)
        login = f" -u {watch.username} -P '{watch.password}'"
    table.add_row(
        "Watch MQTT",
        f"mosquitto_sub -p {endpoints.mqtt_port}{login} -v "
        + " ".join(f"-t 'iotmon/v1/{options.tenant}/+/{kind}'" for kind in WATCHED),
    )
    if options.day:
        table.add_row("Simulated day", endpoints.day_label)
        table.add_row("Alerts", f"curl -s {auth} {api}/api/v1/alerts?tenant={options.tenant}")
        table.add_row("Bus notices", f"curl -s {auth} {api}/api/v1/notices?tenant={options.tenant}")
        table.add_row(
            "Webhooks",
            f"{endpoints.receiver_url} (what the operator, facility and guardians received; "
            f"also printed below as they arrive; secrets in {endpoints.webhooks_file})",
        )
        table.add_row("Console", f"{api}/console (log in with the token below)")
        table.add_row("Cameras", f"{endpoints.detector}; snapshots at {endpoints.video_media_url}")
    if endpoints.store.backend == "influxdb":
        # Configured: GRAFANA_URL (and GRAFANA_TOKEN or _USER/_PASSWORD), which the push
        # command reads too.
        grafana = os.environ.get("GRAFANA_URL", "").rstrip("/")
        push = f"iotmon dashboards push --url {grafana or '<your grafana>'}"
        where = f"; then {grafana}/d/iotmon-overview" if grafana else ""
        table.add_row(
            "Grafana",
            f"{push} --influx-url {endpoints.store.url}{where} (dashboards: overview, "
            "environment, edge agents, meters, buses, video, alerts)",
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
        scenario: Annotated[
            str,
            typer.Option(
                help="day: a school day in the life (sensors, meters, buses, cameras, alerts "
                "and webhooks); sensors: environment sensors only."
            ),
        ] = "day",
        speed: Annotated[
            float,
            typer.Option(min=1, max=3600, help="Simulated seconds per real second (day scenario)."),
        ] = 60.0,
        video_model: Annotated[
            Path | None,
            typer.Option(help="ONNX detector weights for the cameras (default: motion-only)."),
        ] = None,
        video_clip: Annotated[
            Path | None,
            typer.Option(help="A video file the cameras loop (default: a clip drawn at start)."),
        ] = None,
        receiver_port: Annotated[
            int, typer.Option(help="Webhook receiver port (a free one if taken).")
        ] = 8099,
        devices: Annotated[
            int | None,
            typer.Option(
                min=1, max=20000, help="Simulated sensors (default: 200; the day's rooms: 12)."
            ),
        ] = None,
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
        """Start broker, InfluxDB, ingest and the API, then a school day through every layer
        (or sensors only); Ctrl-C stops all."""
        if mode not in ("single", "batch"):
            raise typer.BadParameter("must be single or batch", param_hint="--mode")
        if scenario not in ("day", "sensors"):
            raise typer.BadParameter("must be day or sensors", param_hint="--scenario")
        if video_model is not None and not video_model.is_file():
            raise typer.BadParameter(f"{video_model}: no such file", param_hint="--video-model")
        if video_clip is not None and not video_clip.is_file():
            raise typer.BadParameter(f"{video_clip}: no such file", param_hint="--video-clip")
        if devices is None:
            devices = 12 if scenario == "day" else 200
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
            scenario=scenario,
            speed=speed,
            video_model=video_model,
            video_clip=video_clip,
            receiver_port=receiver_port,
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
