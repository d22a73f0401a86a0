"""`iotmon simulate`: a fleet of simulated environment sensors from one process.

The simulator is an edge agent with a simulated driver: the same code path,
topics and availability messages as a real agent, at fleet scale.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType
from typing import Annotated

import typer

from iotmon_edge.agent import build_agent, simulated_agent_config
from iotmon_edge.config import PublishMode, Settings
from iotmon_runtime.cli import load_settings
from iotmon_runtime.log import configure_logging


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("simulate")(simulate)


def simulate(
    devices: Annotated[int, typer.Option(min=1, max=100_000, help="Simulated sensors.")] = 100,
    tenant: Annotated[str, typer.Option(help="Tenant id in the topics.")] = "demo",
    interval: Annotated[
        float, typer.Option(min=0.05, help="Seconds between readings of every device.")
    ] = 1.0,
    mode: Annotated[
        PublishMode, typer.Option(help="single: a message per reading; batch: ReadingBatch.")
    ] = PublishMode.SINGLE,
    mqtt_host: Annotated[
        str | None, typer.Option(help="Broker host (default IOTMON_EDGE_MQTT__HOST).")
    ] = None,
    mqtt_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Broker port (default IOTMON_EDGE_MQTT__PORT)."),
    ] = None,
    duration: Annotated[
        float | None, typer.Option(min=0, help="Stop after this many seconds (default: Ctrl-C).")
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Same seed, same readings.")] = 0,
    agent_id: Annotated[str, typer.Option(help="Agent id (its status topic).")] = "sim-0001",
) -> None:
    """Simulate DEVICES environment sensors (temperature, humidity, CO2) publishing over MQTT.

    The broker connection (credentials, TLS, protocol) comes from the edge agent's
    IOTMON_EDGE_MQTT__* settings, as for a real agent.
    """
    settings = load_settings("iotmon simulate", Settings)
    if settings is None:
        raise typer.Exit(2)
    configure_logging(settings.log_level, settings.log_format, service="iotmon-simulate")
    address = {k: v for k, v in (("host", mqtt_host), ("port", mqtt_port)) if v is not None}
    mqtt = settings.mqtt.model_copy(update=address)
    try:
        config = simulated_agent_config(
            tenant, devices, interval, mode, seed=seed, agent_id=agent_id
        )
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise typer.BadParameter(str(exc)) from None
    agent = build_agent(config, mqtt)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    typer.echo(
        f"simulating {devices} devices for tenant {tenant!r} every {interval}s "
        f"({mode.value} mode) -> {mqtt.address}"
    )
    started = time.monotonic()
    deadline = None if duration is None else started + duration
    agent.start()
    while not stop.is_set() and not agent.wait(0.5):
        if deadline is not None and time.monotonic() >= deadline:
            break
    agent.stop()
    elapsed = time.monotonic() - started
    stats, transport = agent.stats(), agent.client.stats()
    typer.echo(
        f"{stats.readings} readings in {stats.cycles} cycles over {elapsed:.1f}s "
        f"({stats.readings / max(elapsed, 1e-9):.0f} readings/s); "
        f"{transport.completed} of {transport.accepted} messages acknowledged, "
        f"{stats.dropped} dropped, {stats.overruns} late cycles"
    )
    if agent.failure is not None:
        typer.echo(f"error: {agent.failure}", err=True)
        raise typer.Exit(1)
