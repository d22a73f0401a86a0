"""Each device's latest readings, read from the store and kept for a second.

Dashboards poll ``latest`` of the same devices many times a second; each answer
from the store costs a query over every metric of the device. Here an answer is
kept ``ttl_s`` (1 s by default, ``IOTMON_API_LATEST_CACHE_S``), and concurrent
requests for a device that is not cached wait for one store query instead of
sending one each. A cached answer is served on the event loop, with no thread
hop and no store call; one past half its time is read again in the background,
so a device polled all the time is never waited for.

Why from the store, not from the MQTT stream: the store holds what ingest
accepted and wrote (valid, from an authorized gateway, not refused by the store),
so ``latest`` never shows a reading the series do not have; and a subscriber to
the whole telemetry stream would cost every API process as much CPU per message
as ingest itself spends, where this costs one query per device and second at
most. The price is up to ``ttl_s`` of extra delay behind ingest.

Failures are not cached: while the store is down every miss asks it again (and
answers 503), so the API recovers on the first request after the store does.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from iotmon_storage import LatestReading, TimeSeriesStore


@dataclass(frozen=True, slots=True)
class _Entry:
    readings: list[LatestReading]
    at: float


class LatestCache:
    """``await get(tenant, device)``: the store's latest readings, at most ``ttl_s`` old."""

    def __init__(
        self,
        store: TimeSeriesStore,
        *,
        ttl_s: float = 1.0,
        max_devices: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._max_devices = max_devices
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._pending: dict[tuple[str, str], asyncio.Future[list[LatestReading]]] = {}
        self.store_reads = 0
        """How many times the store was asked (tests: the cache must save calls)."""

    async def get(self, tenant: str, device: str) -> list[LatestReading]:
        key = (tenant, device)
        entry = self._entries.get(key)
        if entry is not None:
            age = self._clock() - entry.at
            if age < self._ttl_s:
                # Past half its time, read it again in the background: a device asked for
                # all the time is then never waited for, and never older than ttl_s.
                if age >= self._ttl_s / 2 and key not in self._pending:
                    self._start(key)
                return entry.readings
        task = self._pending.get(key) or self._start(key)
        return await asyncio.shield(task)

    def _start(self, key: tuple[str, str]) -> asyncio.Future[list[LatestReading]]:
        # A task of its own: a waiter that gives up (client gone) does not cancel the
        # query the others wait for.
        task = asyncio.ensure_future(self._load(key))
        self._pending[key] = task
        task.add_done_callback(lambda done: self._done(key, done))
        return task

    def _done(self, key: tuple[str, str], task: asyncio.Future[list[LatestReading]]) -> None:
        self._pending.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved here, in case every waiter went away

    async def _load(self, key: tuple[str, str]) -> list[LatestReading]:
        self.store_reads += 1
        asked = self._clock()  # the answer is as old as the question, not the reply
        readings = await run_in_threadpool(self._store.latest, *key)
        if self._ttl_s > 0:
            self._entries[key] = _Entry(readings, asked)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_devices:
                self._entries.popitem(last=False)
        return readings
