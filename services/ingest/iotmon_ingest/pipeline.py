"""The first pipeline stage between the MQTT client and the store.

``InboundQueue`` takes messages from the client's network thread (append only).
``Decoder`` cuts it into batches by size, bytes or age and validates them, then
hands them to the store stage (``iotmon_ingest.writer.StoreWriter``), which
writes or spools each batch and only then acknowledges its messages. Two
threads so a batch is validated while the previous one is on its way to the
store (the HTTP wait releases the GIL).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from iotmon_contract import EventValidator, TelemetryValidator
from iotmon_ingest.counters import IngestCounters
from iotmon_ingest.domain import BatchOutcome, decode_batch
from iotmon_runtime.mqtt import InboundMessage

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
        events: EventValidator | None = None,
    ) -> None:
        self._inbound = inbound
        self._handoff = handoff
        self._validator = validator
        self._events = events
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
                    messages,
                    self._validator,
                    service=self._service,
                    received_ns=received_ns,
                    events=self._events,
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
