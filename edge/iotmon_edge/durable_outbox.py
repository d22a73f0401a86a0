"""Durable store-and-forward behind the ``Outbox`` seam: disk first, deleted on PUBACK.

Every message the agent puts is committed to the on-disk queue (``QueueStore``)
before it is published, and leaves the queue only when the broker acknowledged
it. Puts are group-committed by the outbox's thread (one transaction per batch
of puts, e.g. one per agent cycle), together with the sequence numbers that
produced them, so after any crash the numbering goes on where the committed
messages end: a message sent twice carries the same ``seq`` and timestamp and is
harmless (InfluxDB keeps one point per series and time), a dropped one leaves a
visible gap.

Draining is **live-first**: on every (re)connect the messages already queued
become the backlog, sent oldest first at ``drain_rate`` messages/s; messages
queued after the connect go out at once, ahead of the backlog. Each lane keeps
the order of arrival, so a device's messages arrive in order within the backlog
and within the live stream; a consumer sees the live stream resume first and the
gap fill in behind it. Live data is what alerts and dashboards need first; the
backlog is history.

Retained messages (statuses) are state, not queue items: the latest one per
topic is kept apart and sent first on each connect.

The bound is explicit: over ``max_bytes`` the oldest messages are dropped down
to 95 % of it, and messages older than ``max_age_s`` are dropped; both are
counted (persistently) for the agent's warning event and health metrics.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

from iotmon_edge.outbox import OutboxStats
from iotmon_edge.queue_store import OpenReport, QueueStore, StoredMessage, Synchronous
from iotmon_runtime.mqtt import ConnectionEvent, MqttClient, OutgoingMessage

logger = logging.getLogger(__name__)

T = TypeVar("T")

_BUSY_WAIT_S = 0.01
"""Loop period while messages are in flight or a backlog drains."""
_IDLE_WAIT_S = 1.0
_DELETE_EVERY_S = 0.1
"""Acknowledged messages are deleted in batches: a lost delete only means a duplicate."""
_AGE_CHECK_EVERY_S = 1.0
_LOW_WATER = 0.95
_FAILURE_BACKOFF_S = 1.0


@dataclass(frozen=True, slots=True)
class QueuePolicy:
    """What bounds and paces a durable outbox (from the agent YAML's ``queue``)."""

    path: Path
    max_bytes: int
    max_age_s: float
    drain_rate: float
    """Backlog messages per second; 0 = as fast as the broker acknowledges."""
    max_inflight: int = 1000
    max_pending: int = 100_000
    """Messages put but not yet committed (the thread is behind); more are refused."""
    synchronous: Synchronous = Synchronous.FULL


class DurableOutbox:
    """An ``Outbox`` on a ``QueueStore``; one thread writes, sends and deletes."""

    def __init__(
        self,
        client: MqttClient,
        policy: QueuePolicy,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._policy = policy
        self._clock = clock
        self._monotonic = monotonic
        # The file may pass max_bytes by the rows' B-tree overhead and free pages;
        # twice the bound is the hard ceiling SQLite itself refuses to pass.
        self._store = QueueStore(
            policy.path,
            synchronous=policy.synchronous,
            max_file_bytes=2 * policy.max_bytes + 1024 * 1024,
            clock=clock,
        )
        self._lock = threading.Condition()
        self._pending: list[OutgoingMessage] = []
        self._pending_sequences: dict[str, int] = {}
        self._committed_puts = 0
        self._taken_puts = 0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._acked: deque[int] = deque()
        self._acked_retained: deque[tuple[str, int]] = deque()
        self._rejected_ids: deque[int] = deque()
        # Sent and awaiting the PUBACK (the window), and acknowledged but not yet
        # deleted (deletes are batched): both are skipped when reading rows to send.
        self._in_flight: dict[int, int] = {}
        self._to_delete: set[int] = set()
        self._sent_retained: dict[str, int] = {}
        self._retained_dirty = True
        self._handled_connects = 0
        self._boundary = 0
        self._live_cursor = 0
        self._backlog_cursor = 0
        self._tokens = 0.0
        self._tokens_at = 0.0
        self._last_delete = 0.0
        self._last_age_check = 0.0
        self._oldest_enqueued_at: float | None = None
        self._beat = 0.0
        self._report: OpenReport | None = None
        self._sequences: dict[str, int] = {}
        self._counts = dict.fromkeys(
            ("delivered", "rejected", "refused", "dropped", "dropped_bytes", "errors"), 0
        )

    @property
    def policy(self) -> QueuePolicy:
        return self._policy

    @property
    def open_report(self) -> OpenReport | None:
        """How the queue file was found at start (migrated, damaged and replaced)."""
        return self._report

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("outbox already started")
        self._report = self._store.open()
        report = self._report
        if report.migrated_from is not None and report.migrated_from > 0:
            logger.info(
                "queue %s migrated from schema version %d", self._policy.path, report.migrated_from
            )
        self._sequences = self._store.sequences()
        persisted = self._store.counters()
        self._counts["dropped"] = persisted.get("dropped_messages", 0)
        self._counts["dropped_bytes"] = persisted.get("dropped_bytes", 0)
        self._oldest_enqueued_at = self._store.oldest_enqueued_at()
        totals = self._store.totals()
        if totals.messages:
            logger.info(
                "queue %s holds %d message(s), %d bytes, from before this start",
                self._policy.path,
                totals.messages,
                totals.bytes,
            )
        self._client.add_listener(self._on_connection)
        self._stopping.clear()
        self._beat = self._monotonic()
        self._thread = threading.Thread(target=self._run, name="edge-outbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Commit what was put, delete what was acknowledged, close the file."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        self._wake.set()
        thread.join()
        try:
            self._commit_pending()
            self._delete_acknowledged(force=True)
        except sqlite3.Error:
            logger.exception("could not store the last messages at stop")
        self._store.close()

    def alive(self, within_s: float) -> bool:
        """Whether the outbox's thread went round its loop in the last ``within_s``."""
        return self._thread is not None and self._monotonic() - self._beat <= within_s

    # -- the Outbox protocol ----------------------------------------------------------

    def sequences(self) -> dict[str, int]:
        """Next sequence number per stream, as committed with the queued messages."""
        return dict(self._sequences)

    def put(self, topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        return self.put_many([OutgoingMessage(topic, payload, qos, retain)]) == 1

    def put_many(
        self, messages: Sequence[OutgoingMessage], sequences: Mapping[str, int] | None = None
    ) -> int:
        """Take messages for the next commit; returns how many were taken (all or none)."""
        with self._lock:
            if len(self._pending) + len(messages) > self._policy.max_pending:
                self._counts["refused"] += len(messages)
                return 0
            self._pending.extend(messages)
            if sequences:
                self._pending_sequences.update(sequences)
            self._taken_puts += 1
        self._wake.set()
        return len(messages)

    def flush(self, timeout: float) -> bool:
        """Wait until everything put is committed and, while connected, acknowledged."""
        deadline = self._monotonic() + timeout
        with self._lock:
            target = self._taken_puts
            committed = self._lock.wait_for(lambda: self._committed_puts >= target, timeout)
        if not committed:
            return False
        while True:
            if not self._client.connected:
                return True  # stored is as safe as it gets without a broker
            drained = self._store.totals().messages == 0 and not self._in_flight
            if drained and not self._retained_pending():
                return True
            if self._monotonic() >= deadline:
                return False
            self._wake.set()
            time.sleep(0.02)

    def _retained_pending(self) -> bool:
        return self._retained_dirty or bool(self._sent_retained) or bool(self._acked_retained)

    def stats(self) -> OutboxStats:
        totals = self._store.totals()
        with self._lock:
            pending = len(self._pending)
            counts = dict(self._counts)
        oldest = self._oldest_enqueued_at
        return OutboxStats(
            durable=True,
            depth=totals.messages + pending,
            bytes=totals.bytes,
            oldest_age_s=max(0.0, self._clock() - oldest) if oldest is not None else None,
            in_flight=len(self._in_flight),
            **counts,
        )

    # -- the thread -------------------------------------------------------------------

    def _run(self) -> None:
        wait = 0.0
        while True:
            self._wake.wait(wait)
            self._wake.clear()
            stopping = self._stopping.is_set()
            self._beat = self._monotonic()
            try:
                self._commit_pending()
                self._delete_acknowledged(force=False)
                self._enforce_bounds()
                if stopping:
                    return
                self._send()
                wait = _BUSY_WAIT_S if self._busy() else _IDLE_WAIT_S
            except Exception:
                # The loop must outlive a full disk or an I/O error: pending puts wait
                # (bounded by max_pending) and the next round tries again.
                self._count(errors=1)
                logger.exception("edge outbox round failed; retrying in %ss", _FAILURE_BACKOFF_S)
                if stopping:
                    return
                wait = _FAILURE_BACKOFF_S

    def _busy(self) -> bool:
        if self._acked or self._rejected_ids or self._to_delete:
            return True
        connected = self._client.connected
        return connected and bool(self._in_flight or self._backlog_cursor < self._boundary)

    def _kept(self) -> set[int]:
        """Rows the bound must not drop: in flight (the broker may have them) or done."""
        return self._to_delete.union(self._in_flight)

    def _collect_acknowledgements(self) -> None:
        """Free the window at once; the rows themselves are deleted in batches."""
        acked = _drain(self._acked)
        rejected = _drain(self._rejected_ids)
        for row_id in acked + rejected:
            self._in_flight.pop(row_id, None)
            self._to_delete.add(row_id)
        if acked or rejected:
            self._count(delivered=len(acked), rejected=len(rejected))
        if rejected:
            logger.warning(
                "the broker refused %d queued message(s); deleted (not retried)", len(rejected)
            )

    def _commit_pending(self) -> None:
        with self._lock:
            messages, self._pending = self._pending, []
            sequences, self._pending_sequences = self._pending_sequences, {}
            puts = self._taken_puts
        if not messages and not sequences:
            self._mark_committed(puts)
            return
        try:
            self._append(messages, sequences)
        except BaseException:
            with self._lock:  # put them back, ahead of anything put since
                self._pending[:0] = messages
                self._pending_sequences = {**sequences, **self._pending_sequences}
            raise
        self._sequences.update(sequences)
        if any(message.retain for message in messages):
            self._retained_dirty = True
        if self._oldest_enqueued_at is None:
            self._oldest_enqueued_at = self._store.oldest_enqueued_at()
        # Within the bound before anyone is told the puts are stored.
        self._enforce_byte_bound()
        self._mark_committed(puts)

    def _append(self, messages: list[OutgoingMessage], sequences: dict[str, int]) -> None:
        try:
            self._store.append(messages, sequences)
        except sqlite3.OperationalError as exc:
            if "full" not in str(exc).lower():
                raise
            # The disk (or the file's hard ceiling) is full before the byte bound:
            # make room from the oldest end and try once more.
            totals = self._store.totals()
            logger.warning("queue file is full at %d bytes queued; dropping oldest", totals.bytes)
            self._record_drop(self._store.drop_oldest(int(totals.bytes * 0.9), self._kept()))
            self._store.append(messages, sequences)

    def _mark_committed(self, puts: int) -> None:
        with self._lock:
            if puts > self._committed_puts:
                self._committed_puts = puts
                self._lock.notify_all()

    def _delete_acknowledged(self, *, force: bool) -> None:
        self._collect_acknowledgements()
        now = self._monotonic()
        if not force and now - self._last_delete < _DELETE_EVERY_S:
            return
        self._last_delete = now
        done = self._to_delete
        if done:
            self._store.delete(done)
            self._to_delete = set()
        for topic, version in _drain(self._acked_retained):
            self._store.delete_retained(topic, version)
            if self._sent_retained.get(topic) == version:
                del self._sent_retained[topic]
        if done and self._store.totals().messages == 0:
            self._oldest_enqueued_at = None
        elif done:
            self._oldest_enqueued_at = self._store.oldest_enqueued_at()

    def _enforce_byte_bound(self) -> None:
        policy = self._policy
        if self._store.totals().bytes > policy.max_bytes:
            dropped = self._store.drop_oldest(int(policy.max_bytes * _LOW_WATER), self._kept())
            self._record_drop(dropped, f"over max_bytes {policy.max_bytes}")

    def _enforce_bounds(self) -> None:
        policy = self._policy
        self._enforce_byte_bound()
        now = self._monotonic()
        if now - self._last_age_check >= _AGE_CHECK_EVERY_S:
            self._last_age_check = now
            oldest = self._oldest_enqueued_at
            cutoff = self._clock() - policy.max_age_s
            if oldest is not None and oldest < cutoff:
                dropped = self._store.drop_expired(cutoff, self._kept())
                self._record_drop(dropped, f"older than max_age_s {policy.max_age_s:g}")

    def _record_drop(self, dropped: tuple[int, int], why: str = "disk full") -> None:
        messages, size = dropped
        if not messages:
            return
        self._count(dropped=messages, dropped_bytes=size)
        self._oldest_enqueued_at = self._store.oldest_enqueued_at()
        logger.warning("queue dropped its %d oldest message(s), %d bytes: %s", messages, size, why)

    # -- sending ----------------------------------------------------------------------

    def _send(self) -> None:
        client = self._client
        if not client.connected:
            return
        # The client counts a connection before it reports itself connected (our
        # listener hears of it later): a new count is a new connection to set up.
        connects = client.stats().connects
        if connects != self._handled_connects:
            self._handled_connects = connects
            self._on_connected()
        if self._retained_dirty:
            self._send_retained()
        self._collect_acknowledgements()
        window = self._policy.max_inflight - len(self._in_flight)
        if window <= 0:
            return
        sent = self._send_rows(self._store.read(self._live_cursor, window), lane_live=True)
        window -= sent
        if window <= 0 or self._backlog_cursor >= self._boundary:
            return
        budget = min(window, self._take_tokens())
        if budget <= 0:
            return
        rows = self._store.read(self._backlog_cursor, budget, up_to_id=self._boundary)
        self._spend_tokens(self._send_rows(rows, lane_live=False))
        if not rows:
            self._backlog_cursor = self._boundary

    def _on_connected(self) -> None:
        """What is queued now is the backlog; what comes after is live."""
        self._boundary = max(self._boundary, self._store.last_id())
        self._live_cursor = self._boundary
        self._retained_dirty = True
        self._tokens = 0.0
        self._tokens_at = self._monotonic()
        backlog = self._store.totals().messages - len(self._in_flight) - len(self._to_delete)
        if backlog > 0:
            logger.info(
                "connected with %d queued message(s): draining at %s msg/s, live data first",
                backlog,
                f"{self._policy.drain_rate:g}" if self._policy.drain_rate else "full speed",
            )

    def _send_rows(self, rows: list[StoredMessage], *, lane_live: bool) -> int:
        sent = 0
        for row in rows:
            if row.id in self._in_flight or row.id in self._to_delete:
                self._advance(row.id, lane_live)  # in flight (paho resends it) or done
                continue
            message = OutgoingMessage(row.topic, row.payload, row.qos, False)
            try:
                taken = self._client.publish_message(message, partial(self._on_acked, row.id))
            except ValueError:
                logger.exception("dropping a queued message paho cannot send (%s)", row.topic)
                self._rejected_ids.append(row.id)
                self._in_flight[row.id] = row.size
                self._advance(row.id, lane_live)
                continue
            if not taken:
                break  # the client is full or went away: the next round retries
            self._in_flight[row.id] = row.size
            self._advance(row.id, lane_live)
            sent += 1
        return sent

    def _advance(self, row_id: int, lane_live: bool) -> None:
        if lane_live:
            self._live_cursor = max(self._live_cursor, row_id)
        else:
            self._backlog_cursor = max(self._backlog_cursor, row_id)

    def _send_retained(self) -> None:
        self._retained_dirty = False
        for state in self._store.retained():
            if self._sent_retained.get(state.topic, 0) >= state.version:
                continue
            message = OutgoingMessage(state.topic, state.payload, state.qos, True)
            done = partial(self._on_retained_acked, state.topic, state.version)
            if not self._client.publish_message(message, done):
                self._retained_dirty = True
                return
            self._sent_retained[state.topic] = state.version

    def _take_tokens(self) -> int:
        rate = self._policy.drain_rate
        if rate <= 0:
            return self._policy.max_inflight
        now = self._monotonic()
        # A bucket of a tenth of a second: smooth, and no burst after an idle spell.
        self._tokens = min(self._tokens + (now - self._tokens_at) * rate, max(1.0, rate / 10))
        self._tokens_at = now
        return int(self._tokens)

    def _spend_tokens(self, sent: int) -> None:
        if self._policy.drain_rate > 0:
            self._tokens -= sent

    # -- callbacks (paho's thread: record only) ---------------------------------------

    def _on_acked(self, row_id: int, success: bool) -> None:
        if success:
            self._acked.append(row_id)
        else:
            self._rejected_ids.append(row_id)
        # A quarter of the window free is worth a round (filling it) before the timer.
        if len(self._acked) >= max(1, len(self._in_flight) // 4):
            self._wake.set()

    def _on_retained_acked(self, topic: str, version: int, _success: bool) -> None:
        # A refused state is not retried either: the next state replaces it.
        self._acked_retained.append((topic, version))

    def _on_connection(self, event: ConnectionEvent) -> None:
        if event is ConnectionEvent.CONNECTED:
            self._wake.set()

    def _count(self, **increments: int) -> None:
        with self._lock:
            for name, value in increments.items():
                self._counts[name] += value


def _drain(items: deque[T]) -> list[T]:
    taken: list[T] = []
    while items:
        taken.append(items.popleft())
    return taken
