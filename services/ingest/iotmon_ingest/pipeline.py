"""The two pipeline stages between the MQTT client and the store.

``InboundQueue`` takes messages from the client's network thread (append only).
``Decoder`` cuts it into batches by size, bytes or age and validates them;
``StoreWriter`` writes each batch (or spools it, fsynced, when the store is
unavailable), then acknowledges its messages, replays the spool, republishes
dead letters and logs the counters. Two threads so a batch is validated while
the previous one is on its way to the store (the HTTP wait releases the GIL).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from iotmon_contract import TelemetryValidator, dead_letter_topic
from iotmon_contract.topics import DEAD_LETTER_RULE
from iotmon_ingest.counters import IngestCounters
from iotmon_ingest.domain import BatchOutcome, Rejected, StoreGate, decode_batch
from iotmon_ingest.domain import excerpt as payload_excerpt
from iotmon_ingest.spool import Spool, SpooledBatch
from iotmon_runtime.mqtt import InboundMessage
from iotmon_storage import StoreError, StoreUnavailable, TimeSeriesStore

logger = logging.getLogger(__name__)

_WRITE_CHUNK = 50_000
"""Readings per InfluxDB request: large gateway batches are split."""
_DEAD_LETTER_LOGS_PER_INTERVAL = 20
_STORED = "stored"
_REJECTED = "rejected"
_UNAVAILABLE = "unavailable"


class InboundQueue:
    """A deque fed by the network thread; byte totals tell when to apply back-pressure.

    Each total is written by one thread only (``received`` by the producer,
    ``taken`` by the consumer), so no lock is needed on the hot path.
    """

    def __init__(self, limit_bytes: int) -> None:
        self._messages: deque[InboundMessage] = deque()
        self._limit = limit_bytes
        self._received_bytes = 0
        self._taken_bytes = 0

    def put(self, message: InboundMessage) -> None:
        self._messages.append(message)
        self._received_bytes += len(message.payload)

    def __len__(self) -> int:
        return len(self._messages)

    @property
    def pending_bytes(self) -> int:
        return self._received_bytes - self._taken_bytes

    def full(self) -> bool:
        return self._received_bytes - self._taken_bytes > self._limit

    def take(self, max_messages: int, max_bytes: int) -> list[InboundMessage]:
        taken: list[InboundMessage] = []
        size = 0
        popleft = self._messages.popleft
        append = taken.append
        try:
            while len(taken) < max_messages and size < max_bytes:
                message = popleft()
                append(message)
                size += len(message.payload)
        except IndexError:
            pass
        self._taken_bytes += size
        return taken


@dataclass(frozen=True, slots=True)
class DecodedBatch:
    tokens: list[int]
    outcome: BatchOutcome
    received_ns: int


class Decoder:
    """Stage 1: batches from the inbound queue, validated, handed to the store stage."""

    def __init__(
        self,
        inbound: InboundQueue,
        handoff: queue.Queue[DecodedBatch | None],
        validator: TelemetryValidator,
        *,
        service: str,
        batch_size: int,
        batch_bytes: int,
        flush_interval_s: float,
        counters: IngestCounters,
        on_fatal: Callable[[str], None],
    ) -> None:
        self._inbound = inbound
        self._handoff = handoff
        self._validator = validator
        self._service = service
        self._batch_size = batch_size
        self._batch_bytes = batch_bytes
        self._flush_interval = flush_interval_s
        self._counters = counters
        self._on_fatal = on_fatal
        self._stopping = threading.Event()
        self._drain_left: int | None = None
        self._thread: threading.Thread | None = None
        self.consumer_alive: Callable[[], bool] | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ingest-decoder", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Drain what was received, hand it on, then end the store stage too."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _next_batch(self) -> list[InboundMessage] | None:
        inbound = self._inbound
        # Polling, not a condition variable: signalling per message would cost
        # the network thread a lock round each time.
        poll = min(self._flush_interval / 4, 0.005)
        waiting_since: float | None = None
        while not self._stopping.is_set():
            count = len(inbound)
            if count >= self._batch_size or inbound.pending_bytes >= self._batch_bytes:
                return inbound.take(self._batch_size, self._batch_bytes)
            if count:
                now = time.monotonic()
                if waiting_since is None:
                    waiting_since = now
                if now - waiting_since >= self._flush_interval:
                    return inbound.take(self._batch_size, self._batch_bytes)
            time.sleep(poll)
        # Stopping: drain what had arrived when stop was asked; later messages stay
        # unacknowledged and the broker redelivers them to the next run.
        if self._drain_left is None:
            self._drain_left = len(inbound)
        if self._drain_left <= 0:
            return None
        batch = inbound.take(min(self._batch_size, self._drain_left), self._batch_bytes)
        self._drain_left -= len(batch)
        return batch or None

    def _hand_off(self, batch: DecodedBatch | None) -> bool:
        """Queue a batch for the store stage; False if that stage is gone (it failed)."""
        while True:
            try:
                self._handoff.put(batch, timeout=0.5)
            except queue.Full:
                if self.consumer_alive is not None and not self.consumer_alive():
                    return False
            else:
                return True

    def _run(self) -> None:
        try:
            while (messages := self._next_batch()) is not None:
                received_ns = time.time_ns()
                outcome = decode_batch(
                    messages, self._validator, service=self._service, received_ns=received_ns
                )
                self._counters.add(received=len(messages))
                tokens = [message.token for message in messages]
                if not self._hand_off(DecodedBatch(tokens, outcome, received_ns)):
                    return
        except Exception:
            # Unacknowledged messages stay with the broker: stopping loses nothing.
            logger.exception("ingest decoder stopped on an unexpected error")
            self._on_fatal("decoder crashed")
        finally:
            self._hand_off(None)


class StoreWriter:
    """Stage 2: store (or spool), then acknowledge; replay the spool; publish dead letters."""

    def __init__(
        self,
        handoff: queue.Queue[DecodedBatch | None],
        store: TimeSeriesStore,
        spool: Spool,
        gate: StoreGate,
        *,
        ack: Callable[[list[int]], int],
        publish: Callable[[str, bytes, int], object],
        service: str,
        counters: IngestCounters,
        stats_interval_s: float,
        on_fatal: Callable[[str], None],
    ) -> None:
        self._handoff = handoff
        self._store = store
        self._spool = spool
        self._gate = gate
        self._ack = ack
        self._publish = publish
        self._service = service
        self._counters = counters
        self._stats_interval = stats_interval_s
        self._on_fatal = on_fatal
        self._thread: threading.Thread | None = None
        self._schema_ready = False
        self._dead_letter_topic = dead_letter_topic(service)
        self._logged_dead_letters = 0
        self._suppressed_dead_letters = 0
        self._next_stats = 0.0
        self._last_stats = (0.0, 0)
        self._outage_logged = False

    def start(self) -> None:
        self._next_stats = time.monotonic() + self._stats_interval
        self._last_stats = (time.monotonic(), 0)
        self._thread = threading.Thread(target=self._run, name="ingest-store", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Wait for the decoder's end marker to arrive and everything before it to be stored."""
        if self._thread is not None:
            self._thread.join(timeout)

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        try:
            while True:
                try:
                    batch = self._handoff.get(timeout=0.25)
                except queue.Empty:
                    batch = None
                    idle = True
                else:
                    idle = False
                    if batch is None:
                        break
                    self._handle(batch)
                if idle or self._spool.pending():
                    self._replay()
                if time.monotonic() >= self._next_stats:
                    self.log_stats()
            self._replay()
        except _SpoolFailed as exc:
            self._on_fatal(str(exc))
        except Exception:
            logger.exception("ingest store writer stopped on an unexpected error")
            self._on_fatal("store writer crashed")
        finally:
            self.log_stats()

    # -- one batch -------------------------------------------------------------

    def _handle(self, batch: DecodedBatch) -> None:
        outcome = batch.outcome
        if outcome.rejected:
            self._dead_letters(outcome.rejected)
        records = SpooledBatch(
            batch.received_ns, outcome.readings, outcome.statuses, outcome.dead_letters
        )
        result = self._write(records) if self._gate.allow() else _UNAVAILABLE
        if result is _UNAVAILABLE:
            self._spool_batch(records)
        acked = self._ack(batch.tokens)
        self._counters.add(
            batches=1,
            acked=acked,
            ignored=outcome.ignored,
            readings_written=len(outcome.readings) if result is _STORED else 0,
            statuses_written=len(outcome.statuses) if result is _STORED else 0,
        )

    def _write(self, records: SpooledBatch) -> str:
        """Write a batch: stored, rejected (kept aside) or unavailable (the caller spools)."""
        started = time.perf_counter()
        try:
            if not self._schema_ready:
                self._store.ensure_schema()
                self._schema_ready = True
            readings = records.readings
            for chunk, start in enumerate(range(0, len(readings), _WRITE_CHUNK)):
                # A nanosecond apart: each chunk's _device_seen points are their own,
                # not overwrites of the previous chunk's (same series, same time).
                self._store.write_readings(
                    readings[start : start + _WRITE_CHUNK], records.seen_at_ns + chunk
                )
            if records.statuses:
                self._store.write_statuses(records.statuses)
            if records.dead_letters:
                self._store.write_dead_letters(records.dead_letters)
        except StoreUnavailable as exc:
            self._gate.failed()
            self._counters.add(store_failures=1)
            if not self._outage_logged:
                logger.warning("store unavailable, spooling to %s: %s", self._spool.folder, exc)
                self._outage_logged = True
            return _UNAVAILABLE
        except StoreError:
            # Retrying cannot help: keep the batch for an operator, do not block the stream.
            logger.exception("store refused a batch; kept in %s/rejected", self._spool.folder)
            self._put_in_spool(records, rejected=True)
            self._counters.add(rejected_batches=1)
            return _REJECTED
        if not self._gate.healthy or self._outage_logged:
            logger.info("store available again")
            self._outage_logged = False
        self._gate.succeeded()
        self._counters.write_latency(time.perf_counter() - started)
        return _STORED

    def _spool_batch(self, records: SpooledBatch) -> None:
        self._put_in_spool(records)
        self._counters.add(spooled_batches=1, spooled_readings=len(records.readings))

    def _put_in_spool(self, records: SpooledBatch, *, rejected: bool = False) -> None:
        try:
            self._spool.put(records, rejected=rejected)
        except OSError as exc:
            # Not durable anywhere: stop without acknowledging; the broker redelivers.
            raise _SpoolFailed(f"cannot write the spool in {self._spool.folder}: {exc}") from exc

    def _dead_letters(self, rejected: list[Rejected]) -> None:
        for item in rejected:
            letter = item.letter
            self._counters.dead_letter(letter.reason.value)
            self._publish(
                self._dead_letter_topic, letter.model_dump_json().encode(), DEAD_LETTER_RULE.qos
            )
            if self._logged_dead_letters < _DEAD_LETTER_LOGS_PER_INTERVAL:
                self._logged_dead_letters += 1
                logger.warning(
                    "dead letter (%s) on %s: %s; payload %s",
                    letter.reason.value,
                    item.topic[:200],
                    letter.detail[:300],
                    payload_excerpt(item.payload),
                )
            else:
                self._suppressed_dead_letters += 1

    # -- spool replay ------------------------------------------------------------

    def _replay(self, max_batches: int = 8) -> None:
        if not self._spool.pending() or not self._gate.allow():
            return
        replayed = 0
        for path, records in self._spool.oldest():
            if records is None:
                kept = self._spool.quarantine(path)
                logger.error("spool file %s is unreadable; moved to %s", path, kept)
                continue
            result = self._write(records)
            if result is _UNAVAILABLE:
                return
            self._spool.remove(path)
            if result is _STORED:
                self._counters.add(replayed_batches=1, replayed_readings=len(records.readings))
            replayed += 1
            if replayed >= max_batches:
                break
        if replayed and not self._spool.pending():
            logger.info("spool drained")

    # -- stats -----------------------------------------------------------------

    def log_stats(self) -> None:
        now = time.monotonic()
        snapshot = self._counters.snapshot()
        since, readings_before = self._last_stats
        rate = (snapshot.readings_written - readings_before) / max(now - since, 1e-9)
        logger.info(
            "ingest: received=%d readings_written=%d (%.0f/s) dead_letters=%s spooled=%d "
            "replayed=%d spool_pending=%d batches=%d write_mean=%.1fms write_max=%.1fms%s",
            snapshot.received,
            snapshot.readings_written,
            rate,
            snapshot.dead_letters or 0,
            snapshot.spooled_readings,
            snapshot.replayed_readings,
            self._spool.pending(),
            snapshot.batches,
            snapshot.write_seconds_mean * 1000,
            snapshot.write_seconds_max * 1000,
            f" ({self._suppressed_dead_letters} dead-letter logs suppressed)"
            if self._suppressed_dead_letters
            else "",
        )
        self._last_stats = (now, snapshot.readings_written)
        self._next_stats = now + self._stats_interval
        self._logged_dead_letters = 0
        self._suppressed_dead_letters = 0


class _SpoolFailed(RuntimeError):
    pass
