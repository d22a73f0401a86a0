"""The day in the life's parts beside the demo stack: the school's and depot's edge agents,
one edge agent per bus, the alert service on the demo clock with webhook subscriptions of
an operator, a facility and guardians, the loopback receiver that shows what they got,
and the video service playing a generated clip on two cameras."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr
from rich.console import Console

from iotmon_alerts.adapters.database import AlertsDatabase
from iotmon_alerts.config import (
    AlertsDatabaseSettings,
    AlertsMetricsSettings,
    AlertsMqttSettings,
    AlertsSettings,
    SimulatedClockSettings,
    WebhookSettings,
)
from iotmon_alerts.routing import EventType, Owner, SubscriptionFilter
from iotmon_alerts.service import AlertService
from iotmon_contract import DeviceState
from iotmon_edge import AgentConfig, DirectOutbox, EdgeAgent, EdgeMqttSettings
from iotmon_edge.agent import agent_name, default_client_id
from iotmon_edge.messages import status_message
from iotmon_registry import Registry
from iotmon_runtime.mqtt import MqttClient, MqttSettings
from iotmon_tools.demo.broker import ALERTS
from iotmon_tools.demo.bus_replay import BusDevices, BusReplayDriver
from iotmon_tools.demo.clip import write_clip
from iotmon_tools.demo.clock import DemoClock
from iotmon_tools.demo.day_plan import DayPlan, write_rules
from iotmon_tools.demo.options import Endpoints
from iotmon_tools.demo.zigbee import bridge_devices
from iotmon_tools.localstack.webhook_receiver import ReceivedWebhook, WebhookReceiver
from iotmon_tools.registry_import import import_agent
from iotmon_video.cameras import CameraConfig, FileSource, VideoConfig
from iotmon_video.config import VideoMetricsSettings, VideoSettings
from iotmon_video.detectors.config import OnnxDetectorConfig
from iotmon_video.service import VideoService, load_detector

CAMERAS = ("cam-gate", "cam-corridor")
VIDEO_GATEWAY = "video-demo"
"""The video service's instance and broker identity: the gateway of the cameras."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    path: str
    owner: Owner
    who: str
    secret: str


def register_day(registry: Registry, plan: DayPlan) -> None:
    """Sites, each agent as the gateway of its devices (with their site), the children."""
    known = {site.site for site in registry.sites(plan.tenant)}
    for site, name in ((plan.school, "School"), (plan.depot, "Depot")):
        if site not in known:
            registry.add_site(plan.tenant, site, name=name)
    # The agent's drivers' devices, and the Zigbee sensors its bridge will discover.
    school = [d for driver in plan.sensors.drivers for d in driver.declared_device_ids()]
    zigbee = [
        f"zb-{device['ieee_address'].removeprefix('0x')}"
        for device in bridge_devices()
        if device.get("type") != "Coordinator"
    ]
    registry.import_gateway(plan.tenant, plan.sensors.agent_id, school + zigbee, site=plan.school)
    import_agent(registry, plan.depot_meters, site=plan.depot)
    for bus in plan.buses:
        registry.import_gateway(plan.tenant, bus.gateway, [bus.vehicle, *bus.devices])
    # The fleet's children and guardians, as the fleet file names them (API scopes, the
    # console); the same seed makes the same ones, so a second run finds them there.
    world = plan.simulation.world
    for child in world.children:
        if registry.child(plan.tenant, child.id) is None:
            registry.add_child(plan.tenant, child.id, [child.tag])
    for guardian in world.guardians:
        if registry.guardian(plan.tenant, guardian.id) is None:
            registry.add_guardian(plan.tenant, guardian.id, guardian.children)


def bus_agent(
    plan: DayPlan, bus: BusDevices, mqtt: EdgeMqttSettings, clock: DemoClock, interval: float
) -> EdgeAgent:
    """An edge agent on the bus: its readers' events replayed by ``BusReplayDriver``."""
    config = AgentConfig(
        tenant=plan.tenant, agent_id=bus.gateway, publish_interval_s=interval, drivers=[]
    )
    will = status_message(plan.tenant, bus.gateway, DeviceState.OFFLINE, None, agent_name())
    client = MqttClient(
        mqtt, client_id=default_client_id(config), will=will, name=f"edge-{bus.gateway}"
    )
    return EdgeAgent(
        config,
        drivers=[BusReplayDriver(bus, plan.simulation.lines)],
        client=client,
        outbox=DirectOutbox(client),
        clock=clock,
    )


class AlertsWorker:
    """The alert service in-process; ``start`` returns once it listens (the devices start
    after it, so their first events are not missed)."""

    def __init__(self, settings: AlertsSettings) -> None:
        self._service = AlertService(settings, threading.Event())

    def start(self) -> None:
        self._service.start()
        client = self._service.client
        if client is None or not client.wait_subscribed(30):
            raise RuntimeError("the alert service did not subscribe within 30 s")

    def stop(self) -> None:
        self._service.stop()


def describe(received: ReceivedWebhook, who: str) -> str:
    """One console line per webhook: who got what."""
    data = received.payload.get("data", {})
    if "notice" in data:
        notice = data["notice"]
        return f"{who} ← notice {notice.get('kind')}: {notice.get('summary', '')}"
    alerts = data.get("alerts", [])
    parts = [f"{a.get('rule')} {a.get('state')}: {a.get('summary', '')}" for a in alerts]
    return f"{who} ← " + "; ".join(parts)


@dataclass
class DayParts:
    """The webhook endpoints the day scenario subscribed (the receiver's console names them)."""

    endpoints: list[Endpoint] = field(default_factory=list)


def start_receiver(console: Console, port: int, parts: DayParts) -> WebhookReceiver:
    who = {e.path: e.who for e in parts.endpoints}

    def show(received: ReceivedWebhook) -> None:
        console.print(
            f"[magenta]webhook[/magenta] {describe(received, who.get(received.path, '?'))}",
            highlight=False,
            soft_wrap=True,
        )

    receiver = WebhookReceiver(port=port, on_received=show)
    for endpoint in parts.endpoints:
        receiver.add_endpoint(endpoint.path, endpoint.secret)
    receiver.start()
    return receiver


def subscribe(database: AlertsDatabaseSettings, plan: DayPlan, receiver_url: str) -> list[Endpoint]:
    """An operator, the facility of both sites and the guardians of the children left
    aboard today, each with its own endpoint and secret; earlier runs' subscriptions go."""
    db = AlertsDatabase(database).open()
    endpoints = []
    try:
        for old in db.subscriptions(plan.tenant):
            db.delete_subscription(old.id)
        # The operator and facility want alerts; a guardian also the boarded/alighted notices.
        alerts_only = SubscriptionFilter(types=[EventType.ALERTS])
        sites = frozenset({plan.school, plan.depot})
        wanted: list[tuple[str, Owner, str, SubscriptionFilter, dict[str, object]]] = [
            ("/operator", Owner.TENANT, "operator", alerts_only, {}),
            ("/facility", Owner.FACILITY, "facility", alerts_only, {"sites": sites}),
        ]
        for guardian in plan.guardians_of_left_children[:3]:
            wanted.append((f"/guardian/{guardian}", Owner.GUARDIAN, f"guardian {guardian}",
                           SubscriptionFilter(), {"guardian": guardian}))  # fmt: skip
        for path, owner, who, wants, scope in wanted:
            subscription = db.add_subscription(
                plan.tenant,
                owner,
                receiver_url + path,
                filter=wants,
                description=f"iotmon demo: {who}",
                created_by="iotmon demo",
                now=datetime.now(UTC),
                **scope,  # type: ignore[arg-type]
            )
            endpoints.append(Endpoint(path, owner, who, subscription.secret))
    finally:
        db.close()
    return endpoints


def alerts_settings(
    endpoints: Endpoints, state: Path, plan: DayPlan, clock: DemoClock
) -> AlertsSettings:
    return AlertsSettings(
        instance_id="demo",
        mqtt=AlertsMqttSettings(share_group=None, **endpoints.mqtt(ALERTS)),
        database=alerts_database(state),
        store=endpoints.store,
        registry=endpoints.registry,
        rules_dir=write_rules(plan, state / "rules"),
        tick_interval_s=0.2,
        actions_interval_s=0.5,
        webhooks=WebhookSettings(backoff_base_s=1.0, backoff_max_s=30.0, poll_interval_s=0.5),
        clock=SimulatedClockSettings(
            epoch=clock.epoch, speed=clock.speed, starts_at=clock.starts_at
        ),
        # The cameras report on the wall clock, which runs ahead of the simulated day.
        max_future_skew_s=(clock.starts_at - clock.epoch).total_seconds() + 3600,
        log_level="WARNING",
        # A free port, as ingest's: the demo must start beside a running alert service.
        metrics=AlertsMetricsSettings(port=0),
    )


def alerts_database(state: Path) -> AlertsDatabaseSettings:
    return AlertsDatabaseSettings(url=SecretStr(f"sqlite:///{state / 'alerts.db'}"))


def video_service(
    endpoints: Endpoints, state: Path, tenant: str, model: Path | None, clip: Path | None
) -> tuple[VideoService, str]:
    """Two cameras looping a generated clip; the detector when ``model`` is given (else, or
    when it cannot load, motion-only: camera metrics, no object events)."""
    clip = clip.resolve() if clip is not None else write_clip(state / "video" / "corridor.avi")
    cameras = [
        CameraConfig(id=camera, source=FileSource(type="file", path=clip, loop=True), fps=5)
        for camera in CAMERAS
    ]
    config = VideoConfig(
        tenant=tenant,
        cameras=cameras,
        **({"detector": OnnxDetectorConfig(type="onnx", model=model)} if model else {}),
    )
    settings = VideoSettings(
        instance_id=VIDEO_GATEWAY,
        cameras_file=state / "video" / "video.yaml",
        mqtt=MqttSettings(**endpoints.mqtt(VIDEO_GATEWAY)),
        media_dir=state / "video" / "media",
        http_port=0,
        metrics=VideoMetricsSettings(port=0),
        metrics_interval_s=5.0,
        log_level="WARNING",
    )
    detector = load_detector(config) if model else None
    return VideoService(settings, config, detector=detector), (
        detector.name if detector else "motion-only (no detector weights)"
    )


def write_secrets(state: Path, parts: DayParts) -> Path:
    """The subscriptions' endpoints and secrets, for whoever wants to verify a signature."""
    path = state / "webhooks.json"
    path.write_text(
        json.dumps(
            [
                {"path": e.path, "who": e.who, "owner": e.owner.value, "secret": e.secret}
                for e in parts.endpoints
            ],
            indent=2,
        )
    )
    path.chmod(0o600)
    return path


__all__ = [
    "CAMERAS",
    "VIDEO_GATEWAY",
    "AlertsWorker",
    "DayParts",
    "alerts_database",
    "alerts_settings",
    "bus_agent",
    "register_day",
    "start_receiver",
    "subscribe",
    "video_service",
    "write_secrets",
]
