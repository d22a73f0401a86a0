"""The store stage: make each batch durable (stored, or spooled), then acknowledge it.

Durable means written to the store (points the store refuses become dead
letters, written with the rest) or fsynced into the spool. When neither is
possible (the store is down and the spool's disk is full) the writer keeps the
batch, pauses intake (``blocked``) and tries again until one of them takes it:
its messages stay unacknowledged, so a crash meanwhile loses nothing (the broker
redelivers them). The spool is replayed whenever the store takes writes again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from iotmon_contract import (
    DeadLetter,
    StatusEvent,
    ValidatedEvent,
    ValidatedReading,
    dead_letter_topic,
)
from iotmon_contract.topics import DEAD_LETTER_RULE
from iotmon_ingest.counters import IngestCounters
from iotmon_ingest.domain import (
    Rejected,
    StoreGate,
    refused_event,
    refused_reading,
    refused_status,
)
from iotmon_ingest.domain import excerpt as payload_excerpt
from iotmon_ingest.pipeline import DecodedBatch
from iotmon_ingest.refusals import isolate_refused
from iotmon_ingest.spool import Spool, SpooledBatch, SpoolFull
from iotmon_storage import StoreError, StoreRefused, TimeSeriesStore
from iotmon_storage.base import dead_letter_stamps

logger = logging.getLogger(__name__)

_WRITE_CHUNK = 50_000
"""Readings per InfluxDB request: large gateway batches are split."""
_DEAD_LETTER_LOGS_PER_INTERVAL = 20


@dataclass(frozen=True, slots=True)
class Written:
    """What a batch's write stored."""

    readings: int
    statuses: int
    events: int = 0


_SPOOLED = Written(0, 0)


@dataclass(frozen=True, slots=True)
class Blocked:
    """Why intake is paused: the batch held (its messages unacknowledged) and the failure."""

    reason: str
    full: bool
    """Out of space (disk, quota, spool_max_bytes), rather than a spool that cannot be written."""
    messages: int


class _Abandoned(Exception):
    """Stopping while a batch could not be made durable: it stays unacknowledged."""


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
        retry_min_s: float,
        retry_max_s: float,
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
        self._retry_min = retry_min_s
        self._retry_max = max(retry_max_s, retry_min_s)
        self._on_fatal = on_fatal
        self._thread: threading.Thread | None = None
        self._abandon = threading.Event()
        self._schema_ready = False
        self._dead_letter_topic = dead_letter_topic(service)
        self._logged_dead_letters = 0
        self._suppressed_dead_letters = 0
        self._outage_logged = False
        # Read by the health monitor's thread: plain attributes, each written by
        # this thread only.
        self.blocked: Blocked | None = None
        """Why intake is paused (no store, no spool), or None; replaced whole."""
        self.write_started: float | None = None
        """time.monotonic() when the store write in progress began, or None."""
        self.store_error: str | None = None
        """The store's last failure while it is unavailable, or None."""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ingest-store", daemon=True)
        self._thread.start()

    def abandon_when_blocked(self) -> None:
        """From now on, give up (without acknowledging) on a batch nothing takes."""
        self._abandon.set()

    def stop(self, timeout: float | None = None) -> None:
        """Wait for the decoder's end marker to arrive and everything before it to be stored."""
        if self._thread is not None:
            self._thread.join(timeout)

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def store_healthy(self) -> bool:
        return self._gate.healthy

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
            self._replay()
        except _Abandoned:
            logger.warning(
                "stopping with %d messages neither stored nor spooled; unacknowledged, the "
                "broker delivers them again",
                self.blocked.messages if self.blocked else 0,
            )
        except Exception:
            logger.exception("ingest store writer stopped on an unexpected error")
            self._on_fatal("store writer crashed")

    # -- one batch -------------------------------------------------------------

    def _handle(self, batch: DecodedBatch) -> None:
        outcome = batch.outcome
        if outcome.rejected:
            self._dead_letters(outcome.rejected)
        records = SpooledBatch(
            batch.received_ns,
            outcome.readings,
            outcome.statuses,
            outcome.dead_letters,
            outcome.events,
        )
        written = self._make_durable(records, outcome.messages)
        acked = self._ack(batch.tokens)
        self._counters.add(
            batches=1,
            acked=acked,
            ignored=outcome.ignored,
            readings_written=written.readings,
            statuses_written=written.statuses,
            events_written=written.events,
        )

    def _make_durable(self, records: SpooledBatch, messages: int) -> Written:
        """Store or spool; while neither takes the batch, hold it with intake paused."""
        delay = self._retry_min
        while True:
            if self._gate.allow():
                written = self._write(records)
                if written is not None:
                    self._unblock()
                    return written
            try:
                self._spool.put(records)
            except SpoolFull as exc:
                self._block(exc, messages)
            else:
                self._counters.add(spooled_batches=1, spooled_readings=len(records.readings))
                self._unblock()
                return _SPOOLED
            if self._abandon.wait(delay):
                raise _Abandoned
            delay = min(delay * 2, self._retry_max)

    def _block(self, failure: SpoolFull, messages: int) -> None:
        self._counters.add(spool_failures=1)
        if self.blocked is None:
            logger.error(
                "%s; intake paused, %d messages held unacknowledged until the store or "
                "the spool takes them",
                failure,
                messages,
            )
        self.blocked = Blocked(str(failure), failure.full, messages)

    def _unblock(self) -> None:
        if self.blocked is not None:
            logger.info("intake resumed: the held batch is durable")
            self.blocked = None

    def _write(self, records: SpooledBatch) -> Written | None:
        """Write a batch to the store; None when the store is unavailable (nothing is lost:
        the caller spools it or keeps it). Refused points become dead letters, written
        with the rest and published once the whole batch is stored."""
        started = time.monotonic()
        self.write_started = started
        try:
            if not self._schema_ready:
                self._store.ensure_schema()
                self._schema_ready = True
            refused: list[Rejected] = []
            readings_refused = self._write_readings(records, refused)
            statuses_refused = self._write_statuses(records.statuses, refused)
            events_refused = self._write_events(records.events, refused)
            unstored = self._write_dead_letters(
                [*records.dead_letters, *(item.letter for item in refused)]
            )
        except StoreError as exc:
            # Unavailable, or failing in a way the points are not to blame for (e.g.
            # credentials refused): retry later, spool meanwhile.
            self._gate.failed()
            self.store_error = str(exc)[:500]
            self._counters.add(store_failures=1)
            if not self._outage_logged:
                logger.warning("store unavailable, spooling to %s: %s", self._spool.folder, exc)
                self._outage_logged = True
            return None
        finally:
            self.write_started = None
        if not self._gate.healthy or self._outage_logged:
            logger.info("store available again")
            self._outage_logged = False
        self._gate.succeeded()
        self.store_error = None
        self._counters.write_latency(time.monotonic() - started)
        if refused:
            self._counters.add(
                refused_readings=readings_refused,
                refused_statuses=statuses_refused,
                refused_events=events_refused,
            )
            self._dead_letters(refused)
        if unstored:
            self._counters.add(unstored_dead_letters=unstored)
        return Written(
            len(records.readings) - readings_refused,
            len(records.statuses) - statuses_refused,
            len(records.events) - events_refused,
        )

    def _write_readings(self, records: SpooledBatch, refused: list[Rejected]) -> int:
        """Write the readings in chunks; add a dead letter per refused one; return how many."""
        store = self._store
        readings = records.readings
        count = 0
        for chunk_index, start in enumerate(range(0, len(readings), _WRITE_CHUNK)):
            chunk = readings[start : start + _WRITE_CHUNK]
            # A nanosecond apart: each chunk's _device_seen points are their own,
            # not overwrites of the previous chunk's (same series, same time).
            seen_at_ns = records.seen_at_ns + chunk_index
            try:
                store.write_readings(chunk, seen_at_ns)
            except StoreRefused as refusal:
                # What a store refuses clusters by measurement (a field type conflict)
                # or by time (a retention policy): in that order the refused points lie
                # together and halving finds them in a few writes, not one per point.
                ordered = sorted(chunk, key=_metric_then_time)
                found = isolate_refused(ordered, _readings_only(store), refusal)
                refused.extend(
                    refused_reading(f.item, f.reason, service=self._service) for f in found
                )
                count += len(found)
                self._correct_seen(chunk, [f.item for f in found], seen_at_ns)
        return count

    def _correct_seen(
        self, chunk: Sequence[ValidatedReading], refused: Sequence[ValidatedReading], at_ns: int
    ) -> None:
        """Overwrite the chunk's _device_seen counts (the refused write may have stored
        them counting refused readings) with what was stored, 0 for none."""
        stored = Counter((r.tenant, r.device) for r in chunk)
        stored.subtract((r.tenant, r.device) for r in refused)
        try:
            self._store.mark_seen(dict(stored), at_ns)
        except StoreRefused as exc:
            logger.warning("the store refused the devices' seen marks: %s", exc.reason)

    def _write_statuses(self, statuses: list[StatusEvent], refused: list[Rejected]) -> int:
        if not statuses:
            return 0
        try:
            self._store.write_statuses(statuses)
        except StoreRefused as refusal:
            ordered = sorted(statuses, key=lambda status: status.ts_ns)
            found = isolate_refused(ordered, self._store.write_statuses, refusal)
            refused.extend(refused_status(f.item, f.reason, service=self._service) for f in found)
            return len(found)
        return 0

    def _write_events(self, events: list[ValidatedEvent], refused: list[Rejected]) -> int:
        if not events:
            return 0
        try:
            self._store.write_events(events)
        except StoreRefused as refusal:
            ordered = sorted(events, key=lambda event: (event.type, event.ts_ns))
            found = isolate_refused(ordered, self._store.write_events, refusal)
            refused.extend(refused_event(f.item, f.reason, service=self._service) for f in found)
            return len(found)
        return 0

    def _write_dead_letters(self, letters: list[DeadLetter]) -> int:
        """Write the batch's dead letters; return how many the store refused (logged:
        they were published on the dead-letter topic, and cannot be dead-lettered)."""
        if not letters:
            return 0
        stamps = dead_letter_stamps(letters)
        store = self._store
        try:
            store.write_dead_letters(letters, stamps)
        except StoreRefused as refusal:

            def write(part: Sequence[tuple[DeadLetter, int]]) -> None:
                store.write_dead_letters([p[0] for p in part], [p[1] for p in part])

            found = isolate_refused(list(zip(letters, stamps, strict=True)), write, refusal)
            for item in found[:_DEAD_LETTER_LOGS_PER_INTERVAL]:
                logger.error(
                    "the store refused a dead letter (%s on %s): %s",
                    item.item[0].reason.value,
                    item.item[0].topic[:200],
                    item.reason,
                )
            return len(found)
        return 0

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

    def take_suppressed_logs(self) -> int:
        """Dead-letter log lines left out since the last call; starts a new log budget."""
        suppressed = self._suppressed_dead_letters
        self._suppressed_dead_letters = 0
        self._logged_dead_letters = 0
        return suppressed

    # -- spool replay ------------------------------------------------------------

    def _replay(self, max_batches: int = 8) -> None:
        if not self._spool.pending() or not self._gate.allow():
            return
        replayed = 0
        for path, records in self._spool.oldest():
            if records is None:
                kept = self._spool.quarantine(path)
                self._counters.add(quarantined_files=1)
                logger.error("spool file %s is unreadable; moved to %s", path, kept)
                continue
            written = self._write(records)
            if written is None:
                return
            try:
                self._spool.remove(path)
            except OSError:
                # Stored already; replaying it again later only overwrites the same points.
                logger.exception("could not remove replayed spool file %s", path)
                return
            self._counters.add(replayed_batches=1, replayed_readings=written.readings)
            replayed += 1
            if replayed >= max_batches:
                break
        if replayed and not self._spool.pending():
            logger.info("spool drained")


def _metric_then_time(reading: ValidatedReading) -> tuple[str, int]:
    return reading.metric, reading.ts_ns


def _readings_only(store: TimeSeriesStore) -> Callable[[Sequence[ValidatedReading]], None]:
    def write(part: Sequence[ValidatedReading]) -> None:
        store.write_readings(part, None)

    return write
