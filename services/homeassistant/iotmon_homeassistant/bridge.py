"""The bridge: telemetry of registered devices in, discovery configs and states out.

``HomeAssistantBridge(settings, stop_event)`` is the worker (``start``/``stop``):
the shared MQTT client with two subscriptions (telemetry, and this bridge's own
retained discovery configs, so a restart knows what it announced before), and a
thread that follows the registry. Handlers run on the client's dispatcher thread;
the registry thread shares the bridge's state under one lock.

Nothing is stored locally: what Home Assistant was told lives in the broker's
retained configs, which the bridge reads back on every start.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

from prometheus_client.metrics_core import Metric

from iotmon_contract import TelemetryValidator, telemetry_filter
from iotmon_contract.validation import ContractViolation
from iotmon_homeassistant.config import SERVICE_NAME, Settings
from iotmon_homeassistant.counters import BridgeSnapshot
from iotmon_homeassistant.entities import (
    Announcement,
    Entity,
    EntityKey,
    LatestReadings,
    announced_entity,
    discovery_config,
    encode,
    ha_unit,
    state_payload,
    topics,
)
from iotmon_homeassistant.metrics import bridge_families
from iotmon_registry import Device, Registry, RegistryError
from iotmon_runtime.availability import ServiceAvailability
from iotmon_runtime.metrics import (
    MetricsServer,
    MetricsServerError,
    SnapshotCollector,
    mqtt_client_families,
    service_registry,
)
from iotmon_runtime.mqtt import ConnectionEvent, InboundMessage, MqttClient, RetainHandling
from iotmon_runtime.workers import Supervisor

logger = logging.getLogger(__name__)

_LOG_REFUSALS = 20


class HomeAssistantBridge:
    """Announces the registry's devices to Home Assistant and forwards their readings."""

    def __init__(self, settings: Settings, stop_event: threading.Event | None = None) -> None:
        self._settings = settings
        self._stop_event = stop_event or threading.Event()
        self._availability = ServiceAvailability.of(
            SERVICE_NAME, settings.instance_id, "iotmon-homeassistant"
        )
        self._how = Announcement.of(
            settings.discovery_prefix,
            settings.instance_id,
            self._availability.software,
            device_availability=settings.device_availability,
            expire_after_s=settings.expire_after_s,
        )
        self._lock = threading.Lock()
        self._devices: dict[tuple[str, str], Device] = {}
        self._entities: dict[EntityKey, Entity] = {}
        """What Home Assistant was told (retained configs read back, or published)."""
        self._published_configs: dict[EntityKey, bytes] = {}
        self._latest = LatestReadings()
        self._counts: Counter[str] = Counter()
        self._refused: Counter[str] = Counter()
        self._registry: Registry | None = None
        self._revision: int | None = None
        self._client: MqttClient | None = None
        self._poller: threading.Thread | None = None
        self._stopping = threading.Event()
        self._metrics: MetricsServer | None = None
        self._validator = TelemetryValidator(known_device=self._known, owns_device=self._owns)
        self.failure: str | None = None

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def client(self) -> MqttClient | None:
        return self._client

    @property
    def stop_event(self) -> threading.Event:
        return self._stop_event

    def snapshot(self) -> BridgeSnapshot:
        with self._lock:
            counts = self._counts
            return BridgeSnapshot(
                readings=counts["readings"],
                states_published=counts["states_published"],
                stale_readings=counts["stale_readings"],
                configs_published=counts["configs_published"],
                configs_removed=counts["configs_removed"],
                refused=dict(self._refused),
                registry_errors=counts["registry_errors"],
                entities=len(self._entities),
                devices=len(self._devices),
            )

    # -- lifecycle ---------------------------------------------------------------

    @property
    def metrics_url(self) -> str | None:
        server = self._metrics
        return server.url if server is not None and server.running else None

    def _metric_families(self) -> list[Metric]:
        client = self._client
        return [
            *bridge_families(self.snapshot()),
            *mqtt_client_families([client] if client is not None else []),
        ]

    def start(self) -> None:
        """Start; raises RegistryError when the registry cannot be opened or read, and
        MetricsServerError when the metrics port cannot be bound."""
        settings = self._settings
        if settings.metrics.enabled:
            metrics = service_registry(SERVICE_NAME, "iotmon-homeassistant")
            metrics.register(SnapshotCollector(self._metric_families))
            server = MetricsServer(
                metrics, settings.metrics, setting=Settings.variable("metrics", "port")
            )
            server.start()
            self._metrics = server
        try:
            registry = Registry(settings.registry).open()
            try:
                self._load_devices(registry)
            except BaseException:
                registry.close()
                raise
        except BaseException:
            self._stop_metrics()
            raise
        self._registry = registry
        client = MqttClient(
            settings.mqtt,
            client_id=settings.client_id,
            will=self._availability.will,
            online=self._availability.online,
            name=f"homeassistant-{settings.instance_id}",
        )
        client.add_listener(self._on_connection)
        # Telemetry is never retained (the contract): only live readings.
        client.subscribe(
            telemetry_filter(settings.tenant or "+"),
            self._on_telemetry,
            retain_handling=RetainHandling.NEVER,
            retain_as_published=True,
        )
        # Our own retained configs: what Home Assistant was told before this start.
        client.subscribe(f"{settings.discovery_prefix}/sensor/+/+/config", self._on_config)
        self._client = client
        client.start()
        self._poller = threading.Thread(
            target=self._follow_registry, name="homeassistant-registry", daemon=True
        )
        self._poller.start()
        logger.info(
            "Home Assistant bridge %s started: broker %s, discovery prefix %s, tenant %s, "
            "%d registered devices",
            settings.client_id,
            settings.mqtt.address,
            settings.discovery_prefix,
            settings.tenant or "all",
            len(self._devices),
        )

    def wait_ready(self, timeout: float | None = None) -> bool:
        """True once subscribed (retained configs are on their way)."""
        return self._client is not None and self._client.wait_subscribed(timeout)

    def stop(self) -> None:
        """Say offline (every entity goes unavailable) and disconnect; idempotent."""
        self._stopping.set()
        if self._poller is not None:
            self._poller.join(10)
            self._poller = None
        if self._client is not None:
            self._client.flush(5)
            self._client.stop(offline=self._availability.offline())
            self._client = None
        if self._registry is not None:
            self._registry.close()
            self._registry = None
        self._stop_metrics()
        self._stop_event.set()

    def _stop_metrics(self) -> None:
        if self._metrics is not None:
            self._metrics.stop()
            self._metrics = None

    def run(self) -> int:
        try:
            return Supervisor([("homeassistant", self)], self._stop_event, failed_exit=2).run()
        except RegistryError as exc:
            self._fatal(f"cannot read the registry: {exc}")
        except MetricsServerError as exc:
            self._fatal(str(exc))
        return 2

    def _fatal(self, reason: str) -> None:
        self.failure = reason
        logger.error("Home Assistant bridge stopping: %s", reason)
        self._stop_event.set()

    def _on_connection(self, event: ConnectionEvent) -> None:
        # Network thread: only record and signal.
        if event is ConnectionEvent.FAILED and self._client is not None:
            self._fatal(self._client.failure or "MQTT broker refused the login")

    # -- the registry ------------------------------------------------------------

    def _known(self, tenant: str, device: str) -> bool:
        return (tenant, device) in self._devices

    def _owns(self, tenant: str, gateway: str, child: str) -> bool:
        found = self._devices.get((tenant, child))
        return found is not None and found.gateway == gateway

    def _load_devices(self, registry: Registry) -> bool:
        """Reload the devices if the registry changed; True when it did."""
        revision = registry.revision()
        if revision == self._revision:
            return False
        devices = {(d.tenant, d.device): d for d in registry.devices(self._settings.tenant)}
        with self._lock:
            self._devices = devices
            self._revision = revision
        return True

    def _follow_registry(self) -> None:
        interval = self._settings.registry.refresh_interval_s
        while not self._stopping.wait(interval):
            registry = self._registry
            if registry is None:
                return
            try:
                changed = self._load_devices(registry)
            except RegistryError as exc:
                with self._lock:
                    self._counts["registry_errors"] += 1
                logger.warning("cannot read the registry, keeping the devices I know: %s", exc)
                continue
            try:
                # Every round, not only on a change: configs read back after a restart
                # may name devices removed while the bridge was away.
                self.reconcile(refresh=changed)
            except Exception:
                logger.exception("reconciling Home Assistant's entities failed; going on")

    def reconcile(self, *, refresh: bool = False) -> None:
        """Remove the entities of devices no longer registered; with ``refresh``, announce
        the others again where their device changed (name, gateway, site)."""
        client = self._client
        if client is None:
            return
        with self._lock:
            gone = [e for e in self._entities.values() if self._device_of(e) is None]
            for entity in gone:
                del self._entities[entity.key]
                self._published_configs.pop(entity.key, None)
                self._latest.forget(entity.key.tenant, entity.key.device)
            kept = list(self._entities.values()) if refresh else []
        for entity in gone:
            where = topics(self._settings.discovery_prefix, entity.key)
            # An empty retained config is Home Assistant's removal; the empty retained
            # state clears the last value from the broker.
            client.publish(where.config, b"", qos=1, retain=True)
            client.publish(where.state, b"", qos=1, retain=True)
            logger.info("removed %s from Home Assistant (not registered)", entity.key.unique_id)
        for entity in kept:
            self._announce(client, entity, force=False)
        with self._lock:
            self._counts["configs_removed"] += len(gone)

    def _device_of(self, entity: Entity) -> Device | None:
        key = entity.key
        return self._devices.get((key.tenant, key.device))

    # -- messages ----------------------------------------------------------------

    def _on_config(self, message: InboundMessage) -> None:
        """A retained discovery config the broker held when we subscribed (ours, or another
        integration's): remember ours. Live copies of what we publish come back with the
        retain flag cleared and are left alone: the bridge knows what it sent."""
        if not message.retained or not message.payload:
            return
        entity = announced_entity(message.payload)
        if entity is None or topics(self._settings.discovery_prefix, entity.key).config != (
            message.topic
        ):
            return
        with self._lock:
            self._entities.setdefault(entity.key, entity)
            self._published_configs.setdefault(entity.key, message.payload)

    def _on_telemetry(self, message: InboundMessage) -> None:
        try:
            readings = self._validator.validate(
                message.topic, message.payload, retained=message.retained
            )
        except ContractViolation as exc:
            with self._lock:
                self._refused[exc.reason.value] += 1
                logged = sum(self._refused.values()) <= _LOG_REFUSALS
            if logged:
                # Ingest dead-letters these; the bridge only notes that it left one out.
                logger.info("not forwarded (%s): %s", exc.reason.value, exc.detail[:300])
            return
        client = self._client
        if client is None:
            return
        with self._lock:
            news = self._latest.news(readings)
            self._counts["readings"] += len(readings)
            self._counts["stale_readings"] += len(readings) - len(news)
        prefix = self._settings.discovery_prefix
        for reading in news:
            key = EntityKey(reading.tenant, reading.device, reading.metric)
            unit = ha_unit(reading.unit)
            if unit is None:
                # A reading without its unit keeps the one the entity was announced with.
                known = self._entities.get(key)
                unit = known.unit if known is not None else None
            self._announce(client, Entity(key, unit), force=False)
            client.publish(
                topics(prefix, key).state,
                state_payload(reading),
                qos=1,
                retain=self._settings.retain_state,
            )
        with self._lock:
            self._counts["states_published"] += len(news)

    def _announce(self, client: MqttClient, entity: Entity, *, force: bool) -> None:
        """Publish the entity's config unless the broker already holds the same one."""
        with self._lock:
            device = self._device_of(entity)
            if device is None:
                return
            payload = encode(discovery_config(entity, device, self._how))
            if not force and self._published_configs.get(entity.key) == payload:
                return
            self._entities[entity.key] = entity
            self._published_configs[entity.key] = payload
            self._counts["configs_published"] += 1
        client.publish(
            topics(self._settings.discovery_prefix, entity.key).config, payload, qos=1, retain=True
        )
