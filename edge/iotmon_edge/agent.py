"""The edge agent worker: read the drivers every interval and publish per the contract."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from iotmon_contract import DeviceState, FaultSeverity
from iotmon_devices import (
    AvailabilityChange,
    DeviceReading,
    Driver,
    DriverEvent,
    DriverOutput,
    DriverRegistry,
    EventHub,
    FaultProfile,
    SimulatedEnvironmentConfig,
    default_registry,
)
from iotmon_edge.config import (
    AgentConfig,
    EdgeMqttSettings,
    HealthConfig,
    PublishMode,
    QueueConfig,
)
from iotmon_edge.durable_outbox import DurableOutbox, QueuePolicy
from iotmon_edge.health import HealthProbe, health_readings
from iotmon_edge.messages import EventEncoder, SequenceBook, TelemetryEncoder, status_message
from iotmon_edge.outbox import DirectOutbox, Outbox
from iotmon_edge.watchdog import Notifier
from iotmon_edge.zigbee2mqtt import (
    ActionRecord,
    AvailabilityRecord,
    BridgeOutput,
    Zigbee2MqttBridge,
)
from iotmon_runtime.commands import CommandServer
from iotmon_runtime.mqtt import (
    ConnectionEvent,
    MqttClient,
    MqttProtocol,
    MqttSettings,
    OutgoingMessage,
)

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


DROP_WARNING_INTERVAL_S = 60.0
"""Least time between two warning events about dropped messages."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def agent_name() -> str:
    """What DeviceStatus.agent says published a status."""
    try:
        return f"iotmon-edge/{version('iotmon-edge')}"
    except PackageNotFoundError:
        return "iotmon-edge"


@dataclass(frozen=True, slots=True)
class AgentStats:
    cycles: int
    readings: int
    """Readings taken: from the drivers, and the agent's own health readings."""
    messages: int
    """Messages the outbox took."""
    dropped: int
    """Messages the outbox refused."""
    invalid: int
    """Readings dropped because they break the contract."""
    overruns: int
    """Cycles that started late because the previous one ran past its interval."""
    events: int = 0
    """Device events put (driver events, Zigbee2MQTT actions, the queue's warnings)."""
    watchdog_pings: int = 0


class EdgeAgent:
    """Reads every driver each interval and puts contract messages in the outbox.

    Availability: the MQTT client's last will marks the agent offline if it dies;
    on every (re)connect the agent publishes itself and each device it serves
    online (retained), and on a clean ``stop`` offline. MQTT allows one will per
    connection, so after a crash the devices keep their retained ``online``:
    consumers must also look at the agent's status to call a device reachable.

    With a Zigbee2MQTT bridge, the bridge's devices come and go with bridge/devices
    and their availability follows Zigbee2MQTT's; the agent's thread encodes and
    puts what the bridge maps, like driver readings.
    """

    def __init__(
        self,
        config: AgentConfig,
        *,
        drivers: Sequence[Driver],
        client: MqttClient,
        outbox: Outbox,
        clock: Clock = utc_now,
        stop_timeout_s: float = 5.0,
        notifier: Notifier | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        zigbee2mqtt: Zigbee2MqttBridge | None = None,
    ) -> None:
        self._config = config
        self._drivers = list(drivers)
        self._client = client
        self._outbox = outbox
        self._clock = clock
        self._stop_timeout_s = stop_timeout_s
        self._notifier = notifier
        self._monotonic = monotonic
        self._sequences = SequenceBook()
        self._encoder = TelemetryEncoder(
            config.tenant, config.agent_id, config.batch_max_readings, self._sequences
        )
        self._events = EventEncoder(config.tenant, self._sequences)
        self._health = HealthProbe(
            outbox.stats,
            client.stats,
            thermal_zone=config.health.thermal_zone,
            monotonic=monotonic,
        )
        self._next_health = 0.0
        self._reported_drops = 0
        self._next_drop_warning = 0.0
        self._next_ping = 0.0
        self._zigbee = zigbee2mqtt
        # Filled by the bridge's MQTT thread, emptied by the agent's (deque ops are atomic).
        self._bridged: deque[list[BridgeOutput]] = deque()
        # Drivers send events from their own threads; the agent's thread publishes them.
        self._driver_output: queue.SimpleQueue[DriverOutput] = queue.SimpleQueue()
        self._availability: dict[str, DeviceState] = {}
        self._agent_name = agent_name()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._wake = threading.Event()
        self._announce = threading.Event()
        self._thread: threading.Thread | None = None
        self._counts = {name: 0 for name in AgentStats.__slots__}
        self._commands = CommandServer(client, config.tenant, config.agent_id)
        self._started_at = 0.0

    @property
    def config(self) -> AgentConfig:
        return self._config

    @property
    def client(self) -> MqttClient:
        return self._client

    @property
    def outbox(self) -> Outbox:
        return self._outbox

    @property
    def failure(self) -> str | None:
        """Why the agent stopped on its own (e.g. the broker refused the login), or None."""
        return self._client.failure

    @property
    def device_ids(self) -> list[str]:
        """Devices of the drivers (Zigbee2MQTT's are in ``zigbee2mqtt.device_ids``)."""
        return [device for driver in self._drivers for device in driver.device_ids]

    @property
    def zigbee2mqtt(self) -> Zigbee2MqttBridge | None:
        return self._zigbee

    def stats(self) -> AgentStats:
        return AgentStats(**self._counts)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("agent already started")
        # The queue first: numbering goes on from what it committed before a restart.
        self._outbox.start()
        self._sequences.restore(self._outbox.sequences())
        self._reported_drops = self._outbox.stats().dropped
        self._report_damaged_queue()
        EventHub(self._drivers, self._take_driver_output).attach()
        for driver in self._drivers:
            driver.start()
        self._started_at = time.monotonic()
        self._register_commands()
        self._client.add_listener(self._on_connection)
        self._client.start()
        self._thread = threading.Thread(
            target=self._run, name=f"edge-agent-{self._config.agent_id}", daemon=True
        )
        self._thread.start()
        if self._zigbee is not None:
            self._zigbee.start(self._on_bridged)
        logger.info(
            "edge agent %s/%s started: %d devices, every %ss, %s mode",
            self._config.tenant,
            self._config.agent_id,
            len(self.device_ids),
            self._config.publish_interval_s,
            self._config.mode.value,
        )

    def _register_commands(self) -> None:
        """Requests to iotmon/v1/<tenant>/<agent_id>/request/<action> (ping, stats, announce)."""
        commands = self._commands
        commands.register("ping", self._command_ping)
        commands.register("stats", self._command_stats)
        commands.register("announce", self._command_announce)
        commands.start()

    def _command_ping(self, _data: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "agent": self._agent_name,
            "uptime_s": round(time.monotonic() - self._started_at, 3),
            "devices": len(self.device_ids),
        }

    def _command_stats(self, _data: Mapping[str, Any]) -> dict[str, Any]:
        client = self._client.stats()
        stats = {
            "agent": asdict(self.stats()),
            "mqtt": asdict(client),
            "outbox": asdict(self._outbox.stats()),
        }
        if self._zigbee is not None:
            stats["zigbee2mqtt"] = asdict(self._zigbee.stats())
        return stats

    def _command_announce(self, _data: Mapping[str, Any]) -> dict[str, Any]:
        # The agent's own thread publishes; this one only asks it to.
        self._announce.set()
        self._wake.set()
        return {"devices": len(self.device_ids) + 1}

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the agent stops on its own (or ``stop`` is called); True if it did."""
        return self._stopped.wait(timeout)

    def stop(self) -> None:
        """Stop reading, mark everything offline, deliver what is pending, disconnect."""
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        self._wake.set()
        if self._zigbee is not None:
            self._zigbee.stop()  # nothing more arrives from it
        thread.join()
        self._thread = None
        if self._client.failure is None:
            self._publish_driver_output()
            now = self._clock()
            self._drain_bridged()
            if self._zigbee is not None:
                self._put_bridged(self._zigbee.shutdown(now))
            for device in [*self.device_ids, self._config.agent_id]:
                self._put(self._status(device, DeviceState.OFFLINE, now))
            if not self._outbox.flush(self._stop_timeout_s):
                kept = " (kept in the queue for the next start)" if self._durable() else ""
                logger.warning(
                    "stopping with messages undelivered after %ss%s", self._stop_timeout_s, kept
                )
        self._outbox.stop()
        self._client.stop()
        for driver in self._drivers:
            driver.stop()
        self._stopped.set()
        logger.info("edge agent %s stopped: %s", self._config.agent_id, self.stats())

    def publish_cycle(self, now: datetime) -> int:
        """Read every driver at ``now`` and put the messages; returns how many were put.

        The agent's thread calls this every interval; tests call it directly.
        """
        readings: list[DeviceReading] = []
        for driver in self._drivers:
            try:
                readings.extend(driver.read(now))
            except Exception:  # one broken driver must not silence the others
                logger.exception("driver %s failed to read", type(driver).__name__)
        # Faults the reads raised go out with (before) the cycle's readings.
        self._publish_driver_output()
        self._warn_about_drops(now)
        health = self._health_readings(now)
        if self._config.mode is PublishMode.BATCH:
            encoded = self._encoder.batches(readings + health)
        else:
            encoded = self._encoder.singles(readings + health)
        put = self._put_many(encoded.messages)
        self._count(cycles=1, readings=len(readings) + len(health), invalid=encoded.invalid)
        return put

    def publish_event(self, device: str, fields: Mapping[str, Any]) -> bool:
        """Put a device event (``type``, ``ts`` and its own fields; numbered here).

        Call from the agent's thread (drivers are read there).
        """
        message = self._events.encode(device, fields)
        if message is None:
            self._count(invalid=1)
            return False
        self._count(events=1)
        return self._put_many([message]) == 1

    def _health_readings(self, now: datetime) -> list[DeviceReading]:
        health = self._config.health
        at = self._monotonic()
        if not health.enabled or at < self._next_health:
            return []
        self._next_health = at + health.interval_s
        return health_readings(self._config.agent_id, self._health.snapshot(), now)

    def _warn_about_drops(self, now: datetime) -> None:
        """A warning event when the queue's bound dropped messages: at most one a minute,
        with what was dropped since the last one (the health counter has the total)."""
        at = self._monotonic()
        stats = self._outbox.stats()
        dropped = stats.dropped - self._reported_drops
        if dropped <= 0 or at < self._next_drop_warning:
            return
        self._reported_drops = stats.dropped
        self._next_drop_warning = at + DROP_WARNING_INTERVAL_S
        bound = self._config.queue
        limits = (
            f"max_bytes {int(bound.max_bytes)}, max_age_s {bound.max_age_s:g}" if bound else "?"
        )
        self.publish_event(
            self._config.agent_id,
            {
                "type": "fault",
                "ts": now,
                "component": "queue",
                "code": "messages_dropped",
                "severity": FaultSeverity.WARNING,
                "detail": f"dropped the {dropped} oldest queued message(s) to stay within "
                f"{limits}; {stats.dropped} in all",
            },
        )

    def _report_damaged_queue(self) -> None:
        report = self._outbox.open_report if isinstance(self._outbox, DurableOutbox) else None
        if report is None or report.damaged_moved_to is None:
            return
        self.publish_event(
            self._config.agent_id,
            {
                "type": "fault",
                "ts": self._clock(),
                "component": "queue",
                "code": "queue_damaged",
                "severity": FaultSeverity.ERROR,
                "detail": f"queue file was damaged and replaced; kept as "
                f"{report.damaged_moved_to.name}",
            },
        )

    def _durable(self) -> bool:
        return self._outbox.stats().durable

    def announce(self, now: datetime) -> None:
        """Publish the agent online, and each device it serves as its drivers last saw it
        (online unless a driver reported it unreachable), and the Zigbee2MQTT devices as
        their availability stands, retained."""
        self._put(self._status(self._config.agent_id, DeviceState.ONLINE, now))
        for device in self.device_ids:
            state = self._availability.get(device, DeviceState.ONLINE)
            self._put(self._status(device, state, now))
        if self._zigbee is not None:
            self._put_bridged(self._zigbee.statuses(now))

    def _take_driver_output(self, item: DriverOutput) -> None:
        # Any thread (a reader's, a GPIO callback's): queue it and wake the agent.
        self._driver_output.put(item)
        self._wake.set()

    def _publish_driver_output(self) -> None:
        """Publish the events and availability changes drivers sent (agent's thread)."""
        while True:
            try:
                item = self._driver_output.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, DriverEvent):
                self.publish_event(item.device, item.fields())
            elif isinstance(item, AvailabilityChange):
                state = DeviceState.ONLINE if item.online else DeviceState.OFFLINE
                self._availability[item.device] = state
                self._put(self._status(item.device, state, item.ts))

    def _run(self) -> None:
        interval = self._config.publish_interval_s
        next_tick = time.monotonic()
        try:
            while True:
                # Cleared before the checks: a wake-up that lands after them ends the wait.
                self._wake.clear()
                if self._stopping.is_set() or self._client.failure is not None:
                    break
                self._keep_watchdog_fed()
                self._publish_driver_output()
                if self._announce.is_set():
                    self._announce.clear()
                    self.announce(self._clock())
                self._drain_bridged()
                wait_s = next_tick - time.monotonic()
                if wait_s > 0:
                    self._wake.wait(min(wait_s, self._ping_interval()))
                    continue
                self.publish_cycle(self._clock())
                next_tick += interval
                behind = time.monotonic() - next_tick
                if behind > 0:
                    # Skip the ticks we missed rather than bursting to catch up.
                    skipped = int(behind // interval) + 1
                    next_tick += skipped * interval
                    self._count(overruns=1)
                    logger.warning("cycle ran %.2fs late; skipping %d tick(s)", behind, skipped)
        except Exception:
            logger.exception("edge agent loop crashed")
        finally:
            if not self._stopping.is_set():
                # Stopped on its own (auth failure, crash): let wait() return.
                self._stopped.set()

    def _ping_interval(self) -> float:
        interval = self._notifier.ping_interval_s if self._notifier is not None else None
        return interval if interval is not None else 3600.0

    def _keep_watchdog_fed(self) -> None:
        """Ping systemd's watchdog while this loop and the outbox's both go round."""
        notifier = self._notifier
        interval = notifier.ping_interval_s if notifier is not None else None
        if notifier is None or interval is None:
            return
        at = self._monotonic()
        if at < self._next_ping:
            return
        # The outbox goes round at least every second when idle; silent for the whole
        # watchdog timeout (twice the ping interval, 3 s at least) it hangs, and the
        # withheld ping lets systemd restart the agent.
        if not self._outbox.alive(max(3.0, 2 * interval)):
            logger.error("edge outbox is not responding; withholding the watchdog ping")
            return
        if notifier.notify("WATCHDOG=1"):
            self._count(watchdog_pings=1)
        self._next_ping = at + interval

    def _on_bridged(self, outputs: list[BridgeOutput]) -> None:
        # Runs on the bridge client's thread: queue for the agent's thread, wake it.
        self._bridged.append(outputs)
        self._wake.set()

    def _drain_bridged(self) -> None:
        """Put what the Zigbee2MQTT bridge mapped (the agent's thread, or stop())."""
        if self._zigbee is None:
            return
        self._zigbee.tick(self._clock())
        while self._bridged:
            self._put_bridged(self._bridged.popleft())

    def _put_bridged(self, outputs: Sequence[BridgeOutput]) -> None:
        readings: list[DeviceReading] = []
        for output in outputs:
            if isinstance(output, DeviceReading):
                readings.append(output)
                continue
            # In order: a device's status or action goes after the readings before it.
            self._put_readings(readings)
            readings = []
            if isinstance(output, AvailabilityRecord):
                self._put(self._status(output.device, output.state, output.ts))
            elif isinstance(output, ActionRecord):
                self._put_action(output)
        self._put_readings(readings)

    def _put_action(self, record: ActionRecord) -> None:
        self.publish_event(
            record.device, {"type": "action", "ts": record.ts, "action": record.action}
        )

    def _put_readings(self, readings: list[DeviceReading]) -> None:
        if not readings:
            return
        if self._config.mode is PublishMode.BATCH:
            encoded = self._encoder.batches(readings)
        else:
            encoded = self._encoder.singles(readings)
        self._put_many(encoded.messages)
        self._count(readings=len(readings), invalid=encoded.invalid)

    def _on_connection(self, event: ConnectionEvent) -> None:
        # Runs on paho's thread: only signal the agent's thread, which publishes.
        if event is ConnectionEvent.CONNECTED:
            self._announce.set()
        self._wake.set()

    def _status(self, device: str, state: DeviceState, now: datetime) -> OutgoingMessage:
        return status_message(self._config.tenant, device, state, now, self._agent_name)

    def _put(self, message: OutgoingMessage) -> bool:
        return self._put_many([message]) == 1

    def _put_many(self, messages: Sequence[OutgoingMessage]) -> int:
        """Put messages with the sequence numbers that numbered them (stored together)."""
        taken = self._outbox.put_many(messages, self._sequences.changes())
        self._count(messages=taken, dropped=len(messages) - taken)
        return taken

    def _count(self, **increments: int) -> None:
        # Only the agent's thread (and stop(), after joining it) writes counters.
        for name, value in increments.items():
            self._counts[name] += value


def build_agent(
    config: AgentConfig,
    mqtt: MqttSettings,
    *,
    registry: DriverRegistry | None = None,
    clock: Clock = utc_now,
    stop_timeout_s: float = 5.0,
    notifier: Notifier | None = None,
    zigbee2mqtt: MqttSettings | None = None,
) -> EdgeAgent:
    """Wire an agent: drivers from the registry, an MQTT client whose will marks it offline,
    a durable outbox when the config has a ``queue`` (in memory otherwise), and, when it
    has a ``zigbee2mqtt`` section, a bridge with its own client on the local broker
    ``zigbee2mqtt`` (default 127.0.0.1:1883)."""
    registry = registry or default_registry()
    drivers = [registry.create(driver) for driver in config.drivers]
    will = status_message(config.tenant, config.agent_id, DeviceState.OFFLINE, None, agent_name())
    limits = mqtt if isinstance(mqtt, EdgeMqttSettings) else EdgeMqttSettings()
    queue_config = config.queue
    client = MqttClient(
        agent_mqtt_settings(config, mqtt),
        client_id=mqtt.client_id or default_client_id(config),
        will=will,
        # A durable outbox keeps its own window (queue.max_inflight). paho's limit on
        # top of it would cost a scan of every message in flight per PUBACK
        # (Client._update_inflight): a quarter of the drain rate at 1,000 in flight.
        max_inflight=0 if queue_config is not None else limits.max_inflight,
        max_queued=limits.max_queued,
        name=f"edge-{config.agent_id}",
    )
    outbox: Outbox = (
        DurableOutbox(client, queue_policy(queue_config))
        if queue_config is not None
        else DirectOutbox(client)
    )
    bridge = None
    if config.zigbee2mqtt is not None:
        local = zigbee2mqtt or MqttSettings()
        bridge = Zigbee2MqttBridge(
            config.zigbee2mqtt,
            MqttClient(
                local,
                client_id=local.client_id or f"{default_client_id(config)}-zigbee2mqtt",
                name=f"zigbee2mqtt-{config.agent_id}",
            ),
            clock=clock,
        )
    return EdgeAgent(
        config,
        drivers=drivers,
        client=client,
        outbox=outbox,
        clock=clock,
        stop_timeout_s=stop_timeout_s,
        notifier=notifier,
        zigbee2mqtt=bridge,
    )


def queue_policy(queue: QueueConfig) -> QueuePolicy:
    return QueuePolicy(
        path=queue.path,
        max_bytes=int(queue.max_bytes),
        max_age_s=queue.max_age_s,
        drain_rate=queue.drain_rate,
        max_inflight=queue.max_inflight,
        synchronous=queue.synchronous,
    )


def agent_mqtt_settings(config: AgentConfig, mqtt: MqttSettings) -> MqttSettings:
    """The agent's own broker identity: with a password but no user name, it logs in as
    ``<tenant>/<agent_id>``, the user name ``iotmon broker`` gives a device or gateway."""
    if mqtt.username is None and mqtt.password is not None:
        return mqtt.model_copy(update={"username": default_username(config)})
    return mqtt


def default_username(config: AgentConfig) -> str:
    return f"{config.tenant}/{config.agent_id}"


def default_client_id(config: AgentConfig) -> str:
    return f"iotmon-edge-{config.tenant}-{config.agent_id}"


def simulated_agent_config(
    tenant: str,
    devices: int,
    interval: float,
    mode: PublishMode | str = PublishMode.SINGLE,
    *,
    seed: int = 0,
    agent_id: str = "sim-0001",
    id_prefix: str = "env",
    faults: FaultProfile | None = None,
    health: HealthConfig | None = None,
    queue: QueueConfig | None = None,
) -> AgentConfig:
    """An agent with one simulated environment driver of ``devices`` sensors."""
    driver = SimulatedEnvironmentConfig(
        count=devices, seed=seed, id_prefix=id_prefix, faults=faults or FaultProfile()
    )
    return AgentConfig(
        tenant=tenant,
        agent_id=agent_id,
        publish_interval_s=interval,
        mode=PublishMode(mode),
        drivers=[driver],
        health=health or HealthConfig(),
        queue=queue,
    )


def build_simulated_agent(
    tenant: str,
    devices: int,
    interval: float,
    mode: PublishMode | str = PublishMode.SINGLE,
    mqtt_host: str = "127.0.0.1",
    mqtt_port: int = 1883,
    seed: int = 0,
    protocol_version: MqttProtocol | str = MqttProtocol.V5,
    *,
    agent_id: str = "sim-0001",
    username: str | None = None,
    password: str | None = None,
    clock: Clock = utc_now,
) -> EdgeAgent:
    """A fleet of simulated sensors behind one edge agent, ready to ``start()``/``stop()``."""
    config = simulated_agent_config(tenant, devices, interval, mode, seed=seed, agent_id=agent_id)
    settings = EdgeMqttSettings(
        host=mqtt_host,
        port=mqtt_port,
        protocol=MqttProtocol(protocol_version),
        username=username,
        password=password,
    )
    return build_agent(config, settings, clock=clock)
