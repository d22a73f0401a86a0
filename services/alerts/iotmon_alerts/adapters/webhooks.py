"""Webhook delivery from the SQL outbox, signed per the Standard Webhooks spec.

An asyncio loop on its own thread: each subscription (endpoint) with a due
delivery gets a worker task that sends its deliveries one after another, so a
slow or dead endpoint holds up only itself; a semaphore bounds how many are in
flight across all endpoints, and every attempt has a timeout. A failed attempt
is retried with exponential backoff and jitter (``retry_delay``), the
``webhook-id`` unchanged; after the last attempt the delivery is dead and
waits for a replay from the API. The outbox is SQL, so a restart resumes where
the last run stopped: a delivery sent but not yet marked is sent again with
the same id, and receivers de-duplicate on it, as the spec asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from iotmon_alerts.adapters.database import (
    AlertsDatabase,
    DatabaseUnavailable,
    OutboxItem,
    retry_delay,
)
from iotmon_alerts.config import WebhookSettings
from iotmon_alerts.routing import Subscription

logger = logging.getLogger(__name__)

USER_AGENT = "iotmon-alerts (Standard Webhooks)"


def utc_now() -> datetime:
    return datetime.now(UTC)


def sign(secret: str, webhook_id: str, timestamp: datetime, body: str) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt (the timestamp is the attempt's)."""
    signature = Webhook(secret).sign(webhook_id, timestamp, body)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


@dataclass(slots=True)
class DispatchCounters:
    attempts: int = 0
    delivered: int = 0
    failed_attempts: int = 0
    dead: int = 0
    errors: dict[str, int] = field(default_factory=dict)


class WebhookDispatcher:
    """Sends what the outbox holds; ``wake()`` when new deliveries were recorded."""

    def __init__(
        self,
        database: AlertsDatabase,
        settings: WebhookSettings,
        *,
        clock: Callable[[], datetime] = utc_now,
        wall: Callable[[], datetime] = utc_now,
        jitter: Callable[[], float] = random.random,
        on_delivered: Callable[[str], None] | None = None,
    ) -> None:
        self._database = database
        self._settings = settings
        # The outbox runs on the service's clock (what is due, when to retry: a simulated
        # day retries on simulated time), signatures on the wall clock: receivers refuse
        # timestamps far from their own time.
        self._clock = clock
        self._wall = wall
        self._jitter = jitter
        self._on_delivered = on_delivered
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._hinted: set[str] = set()
        """Subscriptions just given new deliveries (read and written on the loop only)."""
        self.counters = DispatchCounters()
        self._lock = threading.Lock()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("webhook dispatcher already started")
        ready = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="webhooks", daemon=True
        )
        self._thread.start()
        ready.wait(10)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def wake(self, subscriptions: Iterable[str] = ()) -> None:
        """New deliveries are in the outbox: look now rather than at the next poll.

        ``subscriptions`` (those the new deliveries are for) lets their workers start
        without first asking the database which subscriptions have work.
        """
        loop, event = self._loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
            hinted = frozenset(subscriptions)

            def hint() -> None:
                self._hinted |= hinted
                event.set()

            # The loop may close in between: it is stopping anyway.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(hint)

    def counters_snapshot(self) -> DispatchCounters:
        """A copy of the counters, taken under their lock (for another thread)."""
        with self._lock:
            c = self.counters
            return DispatchCounters(
                c.attempts, c.delivered, c.failed_attempts, c.dead, dict(c.errors)
            )

    @property
    def in_flight_endpoints(self) -> int:
        return len(self._workers)

    def _count(self, **increments: int) -> None:
        with self._lock:
            for name, value in increments.items():
                setattr(self.counters, name, getattr(self.counters, name) + value)

    def _count_error(self, kind: str) -> None:
        with self._lock:
            self.counters.errors[kind] = self.counters.errors.get(kind, 0) + 1

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main(ready))
        finally:
            loop.close()
            self._loop = None

    async def _main(self, ready: threading.Event) -> None:
        settings = self._settings
        self._wake = asyncio.Event()
        semaphore = asyncio.Semaphore(settings.max_concurrency)
        limits = httpx.Limits(
            max_connections=settings.max_concurrency,
            max_keepalive_connections=settings.max_concurrency,
        )
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(settings.timeout_s), limits=limits, follow_redirects=False
        ) as client:
            ready.set()
            polled_at = -float("inf")
            while not self._stopping:
                hinted, self._hinted = self._hinted, set()
                due: Iterable[str] = hinted
                # A wake that names its subscriptions starts them at once (one database
                # hop less on an alert's way out); the poll still runs every interval for
                # retries that fell due.
                if not hinted or time.monotonic() - polled_at >= settings.poll_interval_s:
                    polled_at = time.monotonic()
                    try:
                        found = await asyncio.to_thread(
                            self._database.due_subscriptions, self._clock()
                        )
                    except DatabaseUnavailable as exc:
                        logger.warning("outbox unreadable, retrying: %s", exc)
                        found = []
                    due = hinted.union(found)
                for subscription_id in due:
                    if subscription_id not in self._workers:
                        self._workers[subscription_id] = asyncio.create_task(
                            self._endpoint(client, semaphore, subscription_id)
                        )
                if not self._hinted:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), settings.poll_interval_s)
                self._wake.clear()
            workers = list(self._workers.values())
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _endpoint(
        self, client: httpx.AsyncClient, semaphore: asyncio.Semaphore, subscription_id: str
    ) -> None:
        """One endpoint's deliveries, oldest due first, one at a time."""
        try:
            while not self._stopping:
                # one hop to the database thread for both (each hop waits for the GIL)
                item, subscription = await asyncio.to_thread(
                    self._next, subscription_id, self._clock()
                )
                if item is None:
                    return
                if subscription is None or not subscription.enabled:
                    return
                async with semaphore:
                    await self._attempt(client, item.id, item.payload, item.attempts, subscription)
        except DatabaseUnavailable as exc:
            logger.warning("outbox unavailable for %s: %s", subscription_id, exc)
        except Exception:
            logger.exception("webhook worker for %s failed", subscription_id)
        finally:
            self._workers.pop(subscription_id, None)

    def _next(
        self, subscription_id: str, now: datetime
    ) -> tuple[OutboxItem | None, Subscription | None]:
        item = self._database.next_due(subscription_id, now)
        if item is None:
            return None, None
        return item, self._database.subscription(subscription_id)

    async def _attempt(
        self,
        client: httpx.AsyncClient,
        item_id: str,
        body: str,
        attempts: int,
        subscription: Subscription,
    ) -> None:
        headers = sign(subscription.secret, item_id, self._wall(), body)
        self._count(attempts=1)
        status: int | None = None
        try:
            response = await client.post(subscription.url, content=body.encode(), headers=headers)
            status = response.status_code
            if 200 <= status < 300:
                await asyncio.to_thread(self._database.delivered, item_id, status, self._clock())
                self._count(delivered=1)
                if self._on_delivered is not None:
                    self._on_delivered(item_id)
                return
            error = f"HTTP {status}"
            self._count_error(f"http_{status}")
        except httpx.TimeoutException:
            error = f"timed out after {self._settings.timeout_s:g}s"
            self._count_error("timeout")
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
            self._count_error(type(exc).__name__)
        done = attempts + 1
        settings = self._settings
        if done >= settings.max_attempts:
            retry_at = None
            self._count(dead=1)
            logger.warning(
                "webhook %s to %s dead after %d attempts: %s", item_id, subscription.id, done, error
            )
        else:
            delay = retry_delay(
                done, settings.backoff_base_s, settings.backoff_max_s, self._jitter()
            )
            retry_at = self._clock() + delay
            logger.info(
                "webhook %s to %s failed (%s); attempt %d in %.1fs",
                item_id,
                subscription.id,
                error,
                done + 1,
                delay.total_seconds(),
            )
        self._count(failed_attempts=1)
        await asyncio.to_thread(self._database.failed, item_id, error, status, retry_at)
