"""Start and stop the local demo stack: broker, store, ingest, simulated devices, API.

Real mosquitto and influxd from PATH when present; otherwise (or with
``embedded``) an in-process amqtt broker and a SQLite store behind the same
storage interface, so the demo also runs on a laptop with nothing installed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from pydantic import SecretStr
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from iotmon_edge import EdgeMqttSettings, build_agent
from iotmon_registry import PrincipalKind, Principals, Registry, RegistrySettings
from iotmon_runtime.mqtt import MqttClient, MqttSettings
from iotmon_runtime.workers import Worker
from iotmon_storage import StoreSettings, open_store
from iotmon_tools.demo.broker import DemoIdentities, demo_identities, registry_gateways
from iotmon_tools.demo.clock import DemoClock
from iotmon_tools.demo.day import (
    CAMERAS,
    VIDEO_GATEWAY,
    AlertsWorker,
    DayParts,
    alerts_database,
    alerts_settings,
    bus_agent,
    register_day,
    start_receiver,
    subscribe,
    video_service,
    write_secrets,
)
from iotmon_tools.demo.day_plan import LEAK_AFTER, DayPlan, plan_day
from iotmon_tools.demo.options import DemoOptions, Endpoints, port_or_free
from iotmon_tools.demo.wiring import agent_config, build_api, build_devices, build_ingest
from iotmon_tools.demo.zigbee import Zigbee2MqttStandIn
from iotmon_tools.localstack import (
    BrokerSecurity,
    EmbeddedBroker,
    InfluxdProcess,
    MosquittoProcess,
    find_program,
)
from iotmon_tools.registry_import import import_agent

DEMO_TOKEN_LIFETIME = timedelta(days=7)


@dataclass
class DayState:
    """The day scenario's plan, its clock and what it started."""

    plan: DayPlan
    clock: DemoClock
    parts: DayParts

    @classmethod
    def create(cls, options: DemoOptions) -> DayState:
        clock = DemoClock.for_day(options.speed)
        plan = plan_day(
            options.tenant, options.devices, options.interval, clock.epoch, options.seed
        )
        return cls(plan, clock, DayParts())


def connected(client: MqttClient, name: str) -> None:
    """One client at a time: the embedded broker (amqtt 0.12) has a race between clients
    connecting and subscribing at once (it logs a traceback and drops one of them)."""
    if not client.wait_connected(30):
        raise RuntimeError(f"{name} did not connect to the broker within 30 s")


class DemoStack:
    """Starts each part in order with progress shown; ``stop`` undoes what started."""

    def __init__(self, options: DemoOptions, console: Console) -> None:
        self._options = options
        self._console = console
        self._started: list[tuple[str, Worker]] = []
        self.endpoints = Endpoints()
        self._day = DayState.create(options) if options.day else None

    @property
    def clock(self) -> DemoClock | None:
        return self._day.clock if self._day is not None else None

    def _day_steps(self, state: Path) -> list[tuple[str, Callable[[], None]]]:
        day = self._day
        assert day is not None
        options = self._options
        buses = len(day.plan.buses)
        epoch, speed = day.clock.epoch, day.clock.speed
        self.endpoints.day_label = (
            f"{epoch:%A %Y-%m-%d}, from {epoch:%H:%M} UTC at {speed:g}x real time "
            f"(a simulated hour every {3600 / speed:.0f} s); buses run from about 06:30 and "
            f"14:30, the depot's water leaks from {epoch + LEAK_AFTER:%H:%M}"
        )
        return [
            ("webhook receiver", lambda: self._start_receiver(state)),
            ("alert service (simulated clock)", lambda: self._start_alerts(state)),
            (f"school and depot edge agents ({options.devices} room sensors, 5 meters, "
             "4 Zigbee sensors)",
             self._start_site_agents),
            (f"{buses} buses' edge agents", self._start_bus_agents),
            ("video service (2 cameras)", lambda: self._start_video(state)),
        ]  # fmt: skip

    def _edge_mqtt(self, agent_id: str) -> EdgeMqttSettings:
        return EdgeMqttSettings(reconnect_max_s=5, **self.endpoints.mqtt(agent_id))

    def _start_site_agents(self) -> None:
        day = self._day
        assert day is not None
        endpoints = self.endpoints
        zigbee = MqttSettings(
            host=endpoints.mqtt_host,
            port=endpoints.zigbee_port or endpoints.mqtt_port,
            protocol=endpoints.protocol,
        )
        for config in (day.plan.sensors, day.plan.depot_meters):
            local = self._edge_mqtt(config.agent_id)
            agent = build_agent(config, local, clock=day.clock, zigbee2mqtt=zigbee)
            agent.start()
            self._remember(config.agent_id, agent)
            connected(agent.client, config.agent_id)
        # Zigbee2MQTT after the bridge subscribed: it sees the retained bridge/devices either way.
        stand_in = Zigbee2MqttStandIn(zigbee, day.clock, self._options.interval)
        stand_in.start()
        self._remember("zigbee2mqtt", stand_in)

    def _start_bus_agents(self) -> None:
        day = self._day
        assert day is not None
        for bus in day.plan.buses:
            agent = bus_agent(day.plan, bus, self._edge_mqtt(bus.gateway), day.clock, 0.5)
            agent.start()
            self._remember(bus.gateway, agent)
            connected(agent.client, bus.gateway)

    def _start_receiver(self, state: Path) -> None:
        day = self._day
        assert day is not None
        port = port_or_free(self._options.receiver_port)
        url = f"http://127.0.0.1:{port}"
        # Earlier runs' alerts belong to another simulated day: the demo starts afresh.
        for suffix in ("", "-wal", "-shm"):
            (state / f"alerts.db{suffix}").unlink(missing_ok=True)
        day.parts.endpoints = subscribe(alerts_database(state), day.plan, url)
        receiver = start_receiver(self._console, port, day.parts)
        self._remember("webhook receiver", receiver)
        self.endpoints.receiver_url = f"{url}/received"
        self.endpoints.webhooks_file = str(write_secrets(state, day.parts))

    def _start_alerts(self, state: Path) -> None:
        day = self._day
        assert day is not None
        worker = AlertsWorker(alerts_settings(self.endpoints, state, day.plan, day.clock))
        worker.start()
        self._remember("alerts", worker)

    def _start_video(self, state: Path) -> None:
        day = self._day
        assert day is not None
        service, detector = video_service(
            self.endpoints,
            state,
            self._options.tenant,
            self._options.video_model,
            self._options.video_clip,
        )
        service.start()
        self._remember("video", service)
        self.endpoints.detector = detector
        self.endpoints.video_media_url = f"http://127.0.0.1:{service.media_port}"

    @property
    def embedded(self) -> bool:
        if self._options.embedded:
            return True
        return find_program("mosquitto") is None or find_program("influxd") is None

    def start(self) -> None:
        options = self._options
        state = options.state_dir.resolve()
        state.mkdir(parents=True, exist_ok=True)
        if not options.embedded and self.embedded:
            self._console.print(
                "[yellow]mosquitto or influxd not found on PATH: running the embedded "
                "broker and store instead (install them with scripts/setup).[/yellow]"
            )
        # The registry first: the broker's gateway identities are read from it.
        steps: list[tuple[str, Callable[[], None]]] = [
            ("registry", lambda: self._start_registry(state)),
            ("MQTT broker", lambda: self._start_broker(state)),
            ("time-series store", lambda: self._start_store(state)),
            ("ingest", self._start_ingest),
        ]
        if options.day:
            steps += self._day_steps(state)
        else:
            steps.append((f"{options.devices} simulated devices", self._start_devices))
        steps.append(("API", self._start_api))
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=self._console,
            transient=False,
        ) as progress:
            for label, step in steps:
                task = progress.add_task(f"starting {label}", total=1)
                step()
                progress.update(task, completed=1, description=f"[green]✓[/green] {label}")

    def _remember(self, name: str, worker: Worker) -> None:
        self._started.append((name, worker))

    def _start_broker(self, state: Path) -> None:
        endpoints = self.endpoints
        port = port_or_free(self._options.mqtt_port)
        if self.embedded:
            broker: EmbeddedBroker | MosquittoProcess = EmbeddedBroker(port=port)
            endpoints.mqtt_v5 = False
            endpoints.broker = f"embedded amqtt (MQTT 3.1.1) on mqtt://127.0.0.1:{port}"
        else:
            endpoints.identities = self._identities()
            # Passwords are made per run: the file a previous run's broker saved would
            # refuse them.
            broker_dir = state / "mosquitto"
            (broker_dir / "dynamic-security.json").unlink(missing_ok=True)
            broker = MosquittoProcess(
                broker_dir,
                port=port,
                security=BrokerSecurity(identities=endpoints.identities.provisioned),
            )
            endpoints.broker = (
                f"mosquitto on mqtt://127.0.0.1:{port} (dynamic security: every client logs "
                "in with its own identity and role)"
            )
        broker.start()
        self._remember("broker", broker)
        endpoints.mqtt_host, endpoints.mqtt_port = broker.host, broker.port
        if self._day is not None and not self.embedded:
            # Zigbee2MQTT publishes on the school's own broker, as on the school's Pi; the
            # school's edge agent reads it there and speaks for its devices upstream.
            school = MosquittoProcess(state / "mosquitto-school", persistence=False)
            school.start()
            self._remember("school broker", school)
            endpoints.zigbee_port = school.port

    def _identities(self) -> DemoIdentities:
        with Registry(self.endpoints.registry) as registry:
            gateways = registry_gateways(registry, self._options.tenant)
        if self._day is None:
            return demo_identities(self._options.tenant, gateways)
        return demo_identities(
            self._options.tenant, gateways, video_gateway=VIDEO_GATEWAY, cameras=CAMERAS
        )

    def _start_store(self, state: Path) -> None:
        endpoints = self.endpoints
        if self.embedded:
            path = state / "iotmon.db"
            endpoints.store = StoreSettings(backend="sqlite", sqlite_path=path)
            endpoints.store_label = f"SQLite at {path}"
        else:
            port = port_or_free(self._options.influx_port)
            influxd = InfluxdProcess(state / "influxdb", port=port)
            influxd.start()
            self._remember("influxd", influxd)
            endpoints.store = StoreSettings(url=influxd.url, database="iotmon")
            endpoints.store_label = f"InfluxDB 1.x at {influxd.url} (database iotmon)"
        store = open_store(endpoints.store)
        try:
            store.ensure_schema()
        finally:
            store.close()

    def _start_registry(self, state: Path) -> None:
        """The simulated agent is registered as its sensors' gateway (batch mode needs it),
        and an operator token of the demo tenant is minted for the summary's commands."""
        settings = RegistrySettings(url=SecretStr(f"sqlite:///{state / 'registry.db'}"))
        self.endpoints.registry = settings
        with Registry(settings) as registry:
            if self._day is not None:
                register_day(registry, self._day.plan)
            else:
                import_agent(registry, agent_config(self._options))
            issued = Principals(registry).create(
                PrincipalKind.OPERATOR,
                tenant=self._options.tenant,
                name="iotmon demo",
                expires_in=DEMO_TOKEN_LIFETIME,
            )
        self.endpoints.api_token = issued.token

    def _start_ingest(self) -> None:
        worker = build_ingest(self.endpoints, self._options.state_dir.resolve())
        worker.start()
        self._remember("ingest", worker)
        self.endpoints.ingest_metrics_url = worker.metrics_url or ""

    def _start_devices(self) -> None:
        worker = build_devices(self.endpoints, agent_config(self._options))
        worker.start()
        self._remember("devices", worker)

    def _start_api(self) -> None:
        port = port_or_free(self._options.api_port)
        state = self._options.state_dir.resolve()
        alerts = alerts_database(state) if self._day else None
        # The console's bus view reads the fleet from the alert service's own rule files.
        rules = state / "rules" if self._day else None
        worker = build_api(self.endpoints, port, alerts, rules)
        worker.start()
        self._remember("api", worker)
        self.endpoints.api_url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        # Devices first so their offline status is still ingested, broker last.
        for name, worker in reversed(self._started):
            try:
                worker.stop()
            except Exception:  # noqa: BLE001 - one part failing to stop must not keep the rest running
                self._console.print_exception()
                self._console.print(f"[red]{name} did not stop cleanly[/red]")
        self._started.clear()


def wait_for(stop: threading.Event, seconds: float | None) -> None:
    """Block until Ctrl-C (``stop`` set by the signal handler) or ``seconds`` pass."""
    stop.wait(seconds)
