"""The ingest service: MQTT → validate → store, acknowledging only what is durable.

``IngestService(settings, stop_event)`` is the in-process worker (``start``/
``stop``); ``run_ingest(settings)`` is what ``iotmon ingest`` runs: one
service, or a supervisor of worker processes, until SIGINT/SIGTERM.
"""

from __future__ import annotations

import gc
import logging
import queue
import signal
import threading
import time
from datetime import timedelta
from types import FrameType

from iotmon_contract import TelemetryValidator
from iotmon_services.ingest.config import SERVICE_NAME, IngestSettings
from iotmon_services.ingest.counters import CounterSnapshot, IngestCounters
from iotmon_services.ingest.domain import StoreGate
from iotmon_services.ingest.mqtt import IngestTransport
from iotmon_services.ingest.pipeline import DecodedBatch, Decoder, InboundQueue, StoreWriter
from iotmon_services.ingest.registry import load_registry
from iotmon_services.ingest.spool import Spool
from iotmon_services.storage import TimeSeriesStore, open_store

logger = logging.getLogger(__name__)

EXIT_FATAL = 2
_STOP_TIMEOUT_S = 60.0


class IngestService:
    """One ingest process's worth of work: transport, decoder and store writer.

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
        self._transport: IngestTransport | None = None
        self._decoder: Decoder | None = None
        self._writer: StoreWriter | None = None
        self._owns_store = store is None
        self.failure: str | None = None

    @property
    def settings(self) -> IngestSettings:
        return self._settings

    @property
    def counters(self) -> CounterSnapshot:
        return self._counters.snapshot()

    @property
    def transport(self) -> IngestTransport | None:
        return self._transport

    @property
    def stop_event(self) -> threading.Event:
        return self._stop_event

    def start(self) -> None:
        settings = self._settings
        registry = load_registry(settings.device_registry) if settings.device_registry else None
        validator = TelemetryValidator(
            known_device=registry.is_known if registry else None,
            max_future_skew=timedelta(seconds=settings.max_future_skew_s),
            max_age=timedelta(seconds=settings.max_age_s),
        )
        if self._store is None:
            self._store = open_store(settings.store)
        inbound = InboundQueue(settings.buffer_bytes)
        # Two batches in hand-off: one being written, one validated and waiting.
        handoff: queue.Queue[DecodedBatch | None] = queue.Queue(maxsize=2)
        transport = IngestTransport(
            settings.mqtt,
            settings.client_id,
            inbound.put,
            paused=inbound.full,
            on_fatal=self._fatal,
        )
        spool = Spool(settings.spool_dir / settings.client_id)
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
        )
        self._writer = StoreWriter(
            handoff,
            self._store,
            spool,
            StoreGate(settings.store_retry_min_s, settings.store_retry_max_s, time.monotonic),
            ack=transport.ack,
            publish=transport.publish,
            service=SERVICE_NAME,
            counters=self._counters,
            stats_interval_s=settings.stats_interval_s,
            on_fatal=self._fatal,
        )
        self._decoder.consumer_alive = self._writer.alive
        self._transport = transport
        self._writer.start()
        self._decoder.start()
        transport.start()
        logger.info(
            "ingest %s started: broker %s:%s (MQTT %s%s), store %s, spool %s",
            settings.client_id,
            settings.mqtt.host,
            settings.mqtt.port,
            settings.mqtt.protocol.value,
            f", share group {settings.mqtt.share_group}"
            if settings.mqtt.protocol.value == "5"
            else "",
            settings.store.url if settings.store.backend == "influxdb" else settings.store.backend,
            spool.folder,
        )

    def wait_connected(self, timeout: float | None = None) -> bool:
        """True once subscribed (tests and the demo wait for this before publishing)."""
        return self._transport is not None and self._transport.subscribed.wait(timeout)

    def stop(self) -> None:
        """Flush what was received, write it, acknowledge it, then disconnect (idempotent)."""
        if self._transport is None:
            return
        if self._decoder is not None:
            self._decoder.stop(_STOP_TIMEOUT_S)
        if self._writer is not None:
            self._writer.stop(_STOP_TIMEOUT_S)
        self._transport.stop()
        if self._store is not None and self._owns_store:
            self._store.close()
        self._decoder = self._writer = None
        self._transport = None
        self._stop_event.set()
        logger.info("ingest %s stopped", self._settings.client_id)

    def run(self) -> int:
        """Start, wait for the stop event, stop; the process exit code."""
        self.start()
        try:
            self._stop_event.wait()
        finally:
            self.stop()
        return EXIT_FATAL if self.failure else 0

    def _fatal(self, reason: str) -> None:
        self.failure = reason
        logger.error("ingest stopping: %s", reason)
        self._stop_event.set()


def install_stop_signals(stop_event: threading.Event) -> None:
    """SIGINT and SIGTERM set ``stop_event`` (main thread only)."""

    def _handler(signum: int, _frame: FrameType | None) -> None:
        logger.info("received %s, shutting down", signal.Signals(signum).name)
        stop_event.set()

    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)


def tune_gc() -> None:
    """Garbage-collector setting for a process whose job is ingest (not for library use).

    The cyclic collector's older generations rescanned every module and pydantic
    schema loaded at start-up, again and again under a gateway batch's allocations;
    freezing the start-up heap took validation plus encoding from 6.2 to about 3.8 µs
    per reading (docs/benchmarks.md). The thresholds stay CPython's: raising them
    let httpx's per-request reference cycles keep ~1,000 request bodies alive.
    """
    gc.freeze()


def run_ingest(settings: IngestSettings) -> int:
    """What ``iotmon ingest`` does: run until SIGINT/SIGTERM; returns the exit code."""
    if settings.device_registry:
        load_registry(settings.device_registry)  # fail here, not in every worker
    stop_event = threading.Event()
    install_stop_signals(stop_event)
    if settings.workers > 1:
        from iotmon_services.ingest.workers import IngestSupervisor

        return IngestSupervisor(settings, stop_event).run()
    tune_gc()
    return IngestService(settings, stop_event).run()
