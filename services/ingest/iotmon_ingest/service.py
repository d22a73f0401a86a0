"""The ingest service: MQTT → validate → store, acknowledging only what is durable.

``IngestService(settings, stop_event)`` is the in-process worker (``start``/
``stop``): the shared MQTT client with ingest's subscriptions registered on it,
the decoder, the store writer and the monitor (health file, counters log).
"""

from __future__ import annotations

import gc
import logging
import queue
import threading
import time
from datetime import timedelta

from prometheus_client.metrics_core import Metric

from iotmon_contract import (
    EventValidator,
    TelemetryValidator,
    event_filter,
    shared_subscription,
    status_filter,
    telemetry_filter,
)
from iotmon_ingest.config import DEFAULT_SHARE_GROUP, SERVICE_NAME, IngestSettings
from iotmon_ingest.counters import CounterSnapshot, IngestCounters
from iotmon_ingest.domain import StoreGate
from iotmon_ingest.gateways import GatewayChildren
from iotmon_ingest.health import Health, HealthState
from iotmon_ingest.metrics import IngestGauges, ingest_families
from iotmon_ingest.monitor import Monitor
from iotmon_ingest.pipeline import DecodedBatch, Decoder, InboundQueue
from iotmon_ingest.registry import load_registry
from iotmon_ingest.spool import Spool
from iotmon_ingest.writer import StoreWriter
from iotmon_registry import Registry, RegistryError
from iotmon_runtime.availability import ServiceAvailability
from iotmon_runtime.metrics import (
    MetricsServer,
    MetricsServerError,
    SnapshotCollector,
    mqtt_client_families,
    service_registry,
)
from iotmon_runtime.mqtt import ConnectionEvent, MqttClient, RetainHandling
from iotmon_runtime.workers import Supervisor
from iotmon_storage import TimeSeriesStore, open_store

logger = logging.getLogger(__name__)

EXIT_FATAL = 2
_STOP_TIMEOUT_S = 60.0


class IngestService:
    """One ingest process's worth of work: MQTT client, decoder and store writer.

    ``stop_event`` is set when the service fails fatally (e.g. the broker
    refuses our credentials), so whoever waits on it wakes up; ``stop`` is what
    flushes, acknowledges and disconnects.
    """

    def __init__(
        self,
        settings: IngestSettings,
        stop_event: threading.Event | None = None,
        *,
        store: TimeSeriesStore | None = None,
    ) -> None:
        self._settings = settings
        self._stop_event = stop_event or threading.Event()
        self._store = store
        self._counters = IngestCounters()
        self._client: MqttClient | None = None
        self._decoder: Decoder | None = None
        self._writer: StoreWriter | None = None
        self._inbound: InboundQueue | None = None
        self._spool: Spool | None = None
        self._monitor: Monitor | None = None
        self._registry: Registry | None = None
        self._gateways: GatewayChildren | None = None
        self._owns_store = store is None
        self._handoff: queue.Queue[DecodedBatch | None] | None = None
        self._metrics: MetricsServer | None = None
        self._availability = ServiceAvailability.of(
            SERVICE_NAME, settings.instance_id, "iotmon-ingest"
        )
        self.failure: str | None = None

    @property
    def settings(self) -> IngestSettings:
        return self._settings

    @property
    def counters(self) -> CounterSnapshot:
        return self._counters.snapshot()

    @property
    def client(self) -> MqttClient | None:
        return self._client

    @property
    def stop_event(self) -> threading.Event:
        return self._stop_event

    @property
    def gateways(self) -> GatewayChildren | None:
        return self._gateways

    @property
    def metrics_url(self) -> str | None:
        """Where /metrics answers while running (None when disabled or stopped)."""
        server = self._metrics
        return server.url if server is not None and server.running else None

    def start(self) -> None:
        """Start; raises RegistryError when the registry cannot be opened or read, and
        MetricsServerError when the metrics port cannot be bound."""
        self._start_metrics()
        try:
            self._start()
        except BaseException:
            self._stop_metrics()
            raise

    def _start_metrics(self) -> None:
        """/metrics first: a taken port fails the start before anything connects."""
        settings = self._settings
        if not settings.metrics.enabled:
            return
        registry = service_registry(SERVICE_NAME, "iotmon-ingest")
        registry.register(SnapshotCollector(self._metric_families))
        server = MetricsServer(
            registry, settings.metrics, setting=IngestSettings.variable("metrics", "port")
        )
        server.start()
        self._metrics = server

    def _stop_metrics(self) -> None:
        if self._metrics is not None:
            self._metrics.stop()
            self._metrics = None

    def _metric_families(self) -> list[Metric]:
        client = self._client
        clients = [client] if client is not None else []
        return [
            *ingest_families(self._counters.snapshot(), self.gauges()),
            *mqtt_client_families(clients),
        ]

    def gauges(self) -> IngestGauges:
        """Queue depths and states right now (read from other threads: plain reads)."""
        inbound, handoff, spool, writer = self._inbound, self._handoff, self._spool, self._writer
        blocked = writer.blocked if writer is not None else None
        return IngestGauges(
            inbound_messages=len(inbound) if inbound is not None else 0,
            inbound_bytes=inbound.pending_bytes if inbound is not None else 0,
            handoff_batches=handoff.qsize() if handoff is not None else 0,
            spool_batches=spool.pending() if spool is not None else 0,
            spool_bytes=spool.pending_bytes() if spool is not None else 0,
            intake_paused=blocked is not None,
            held_messages=blocked.messages if blocked is not None else 0,
            store_up=writer.store_healthy if writer is not None else False,
        )

    def _start(self) -> None:
        settings = self._settings
        allowed = load_registry(settings.device_registry) if settings.device_registry else None
        self._registry = Registry(settings.registry).open()
        gateways = GatewayChildren(
            self._registry,
            refresh_interval_s=settings.registry.refresh_interval_s,
            miss_refresh_interval_s=settings.registry.miss_refresh_interval_s,
        )
        try:
            gateways.start()
        except BaseException:
            self._registry.close()
            self._registry = None
            raise
        self._gateways = gateways
        known = allowed.is_known if allowed else None
        skew = timedelta(seconds=settings.max_future_skew_s)
        age = timedelta(seconds=settings.max_age_s)
        validator = TelemetryValidator(
            known_device=known, owns_device=gateways.owns_device, max_future_skew=skew, max_age=age
        )
        events = EventValidator(
            known_device=known, owns_device=gateways.owns_device, max_future_skew=skew, max_age=age
        )
        if self._store is None:
            self._store = open_store(settings.store)
        inbound = InboundQueue(settings.buffer_bytes)
        # Two batches in hand-off: one being written, one validated and waiting.
        handoff: queue.Queue[DecodedBatch | None] = queue.Queue(maxsize=2)
        client = self._build_client(inbound)
        spool = Spool(settings.spool_folder, max_bytes=settings.spool_max_bytes)
        spool.open()
        self._decoder = Decoder(
            inbound,
            handoff,
            validator,
            service=SERVICE_NAME,
            batch_size=settings.batch_size,
            batch_bytes=settings.batch_bytes,
            flush_interval_s=settings.flush_interval_s,
            counters=self._counters,
            on_fatal=self._fatal,
            events=events,
        )
        self._writer = StoreWriter(
            handoff,
            self._store,
            spool,
            StoreGate(settings.store_retry_min_s, settings.store_retry_max_s, time.monotonic),
            ack=client.ack,
            publish=client.publish,
            service=SERVICE_NAME,
            counters=self._counters,
            retry_min_s=settings.store_retry_min_s,
            retry_max_s=settings.store_retry_max_s,
            on_fatal=self._fatal,
        )
        self._decoder.consumer_alive = self._writer.alive
        self._client = client
        self._inbound = inbound
        self._handoff = handoff
        self._spool = spool
        self._monitor = Monitor(
            self.health,
            settings.health_file,
            counters=self._counters.snapshot,
            spool_pending=spool.pending,
            take_suppressed_logs=self._writer.take_suppressed_logs,
            health_interval_s=settings.health_interval_s,
            stats_interval_s=settings.stats_interval_s,
        )
        self._writer.start()
        self._decoder.start()
        self._monitor.start()
        client.start()
        logger.info(
            "ingest %s started: broker %s:%s (MQTT %s%s), store %s, registry %s, spool %s",
            settings.client_id,
            settings.mqtt.host,
            settings.mqtt.port,
            settings.mqtt.protocol.value,
            f", share group {settings.mqtt.share_group}"
            if settings.mqtt.share_group and settings.mqtt.protocol.value == "5"
            else "",
            settings.store.url if settings.store.backend == "influxdb" else settings.store.backend,
            settings.registry.display_url(),
            spool.folder,
        )

    def _build_client(self, inbound: InboundQueue) -> MqttClient:
        """The shared client with ingest's subscriptions: handlers only enqueue (inline)."""
        mqtt = self._settings.mqtt
        client = MqttClient(
            mqtt,
            client_id=self._settings.client_id,
            will=self._availability.will,
            online=self._availability.online,
            manual_ack=True,
            persistent_session=True,
            session_expiry_s=mqtt.session_expiry_s,
            receive_maximum=mqtt.receive_maximum,
            fast_path=mqtt.fast_path,
            name=f"ingest-{self._settings.client_id}",
        )
        client.set_paused(self._intake_paused)
        client.add_listener(self._on_connection)
        # Plain unless several sessions split the stream: mosquitto 2.0 saves only plain
        # subscriptions with a persistent session, so only a plain one still exists,
        # queueing for us, when a restarted broker accepts its first publish.
        # Telemetry is never retained (contract): no retained messages on subscribe, and
        # the publisher's retain flag kept on live ones, so decode_batch dead-letters them
        # instead of storing a stale reading again after every restart.
        client.subscribe(
            telemetry_filter(),
            inbound.put,
            share_group=mqtt.share_group,
            retain_handling=RetainHandling.NEVER,
            retain_as_published=True,
            inline=True,
        )
        # Device events like telemetry: in the same mode, never retained (the contract).
        client.subscribe(
            event_filter(),
            inbound.put,
            share_group=mqtt.share_group,
            retain_handling=RetainHandling.NEVER,
            retain_as_published=True,
            inline=True,
        )
        # A resumed session keeps the other mode's filters from an earlier configuration.
        for stream in (telemetry_filter(), event_filter()):
            other_mode = (
                stream if mqtt.share_group else shared_subscription(DEFAULT_SHARE_GROUP, stream)
            )
            client.leave_on_resume(other_mode)
        if mqtt.subscribe_status:
            # Retained statuses only when the subscription is new: a resumed session
            # already has them stored. Not shared: status is state, every replica's.
            client.subscribe(
                status_filter(),
                inbound.put,
                retain_handling=RetainHandling.IF_NEW_SUBSCRIPTION,
                inline=True,
            )
        return client

    def _intake_paused(self) -> bool:
        """Stop reading from the broker: too much received and unwritten, or a batch
        that neither the store nor the spool takes (network thread: attribute reads)."""
        inbound, writer = self._inbound, self._writer
        return (inbound is not None and inbound.full()) or (
            writer is not None and writer.blocked is not None
        )

    def health(self) -> Health:
        """How this ingest is doing: ok, or degraded with the reasons why."""
        settings = self._settings
        writer, client, spool = self._writer, self._client, self._spool
        reasons: list[str] = []
        paused = False
        held = 0
        if writer is not None:
            blocked = writer.blocked
            if blocked is not None:
                paused = True
                held = blocked.messages
                what = "spool full" if blocked.full else "spool not writable"
                reasons.append(f"{what}: intake paused ({blocked.reason})")
            if not writer.store_healthy:
                reasons.append(f"store unavailable: {writer.store_error or 'retrying'}")
            started = writer.write_started
            if started is not None:
                waited = time.monotonic() - started
                if waited > min(settings.store.timeout_s, 2.0):
                    reasons.append(f"store write pending for {waited:.0f}s")
        if client is not None and not client.connected:
            reasons.append(f"MQTT broker {settings.mqtt.address} not connected")
        mqtt = client.stats() if client is not None else None
        spool_batches = spool.pending() if spool is not None else 0
        if spool_batches:
            plural = "es" if spool_batches != 1 else ""
            reasons.append(f"spool holds {spool_batches} batch{plural} for the store")
        return Health(
            state=HealthState.DEGRADED if reasons else HealthState.OK,
            intake_paused=paused,
            reasons=tuple(reasons),
            held_messages=held,
            spool_batches=spool_batches,
            spool_bytes=spool.pending_bytes() if spool is not None else 0,
            mqtt_received=mqtt.received if mqtt is not None else 0,
            mqtt_acks=mqtt.acks if mqtt is not None else 0,
            counters=self._counters.snapshot().as_dict(),
            client_id=settings.client_id,
            written_at=time.time(),
            interval_s=settings.health_interval_s,
        )

    def _on_connection(self, event: ConnectionEvent) -> None:
        # Network thread: only record and signal.
        if event is ConnectionEvent.FAILED and self._client is not None:
            self._fatal(self._client.failure or "MQTT broker refused the login")

    def wait_connected(self, timeout: float | None = None) -> bool:
        """True once subscribed (tests and the demo wait for this before publishing)."""
        return self._client is not None and self._client.wait_subscribed(timeout)

    def stop(self) -> None:
        """Flush what was received, write it, acknowledge it, then disconnect (idempotent)."""
        if self._client is None:
            return
        if self._writer is not None:
            # What neither the store nor the spool takes now stays with the broker.
            self._writer.abandon_when_blocked()
        if self._decoder is not None:
            self._decoder.stop(_STOP_TIMEOUT_S)
        if self._writer is not None:
            self._writer.stop(_STOP_TIMEOUT_S)
        if self._monitor is not None:
            self._monitor.stop()
        self._client.stop(offline=self._availability.offline())
        if self._gateways is not None:
            self._gateways.stop()
        if self._registry is not None:
            self._registry.close()
        self._gateways = None
        self._registry = None
        if self._store is not None and self._owns_store:
            self._store.close()
        self._stop_metrics()
        self._decoder = self._writer = None
        self._monitor = None
        self._client = None
        self._stop_event.set()
        logger.info("ingest %s stopped", self._settings.client_id)

    def run(self) -> int:
        """Start, wait for the stop event, stop; the process exit code."""
        try:
            return Supervisor([("ingest", self)], self._stop_event, failed_exit=EXIT_FATAL).run()
        except RegistryError as exc:
            self._fatal(f"cannot read the registry: {exc}")
        except MetricsServerError as exc:
            self._fatal(str(exc))
        return EXIT_FATAL

    def _fatal(self, reason: str) -> None:
        self.failure = reason
        logger.error("ingest stopping: %s", reason)
        self._stop_event.set()


def tune_gc() -> None:
    """Garbage-collector setting for a process whose job is ingest (not for library use).

    The cyclic collector's older generations rescanned every module and pydantic
    schema loaded at start-up, again and again under a gateway batch's allocations;
    freezing the start-up heap took validation plus encoding from 6.2 to about 3.8 µs
    per reading (docs/benchmarks.md). The thresholds stay CPython's: raising them
    let httpx's per-request reference cycles keep ~1,000 request bodies alive.
    """
    gc.freeze()
