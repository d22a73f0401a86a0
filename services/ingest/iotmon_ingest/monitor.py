"""The thread that reports on ingest: the health file every health interval, the counters
in the log every stats interval.

Its own thread, not the store writer's loop: a write blocked on a hung store
(up to ``store.timeout_s`` per request) must not silence the one thing that
says so.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from iotmon_ingest.counters import CounterSnapshot
from iotmon_ingest.health import Health, write_health

logger = logging.getLogger(__name__)


class Monitor:
    """Writes ``health()`` to ``health_file`` and logs the counters, until stopped."""

    def __init__(
        self,
        health: Callable[[], Health],
        health_file: Path,
        *,
        counters: Callable[[], CounterSnapshot],
        spool_pending: Callable[[], int],
        take_suppressed_logs: Callable[[], int],
        health_interval_s: float,
        stats_interval_s: float,
    ) -> None:
        self._health = health
        self._health_file = health_file
        self._counters = counters
        self._spool_pending = spool_pending
        self._take_suppressed_logs = take_suppressed_logs
        self._health_interval = health_interval_s
        self._stats_interval = stats_interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_stats = (time.monotonic(), 0)
        self._health_failing = False

    def start(self) -> None:
        self._last_stats = (time.monotonic(), 0)
        self.write_health()
        self._thread = threading.Thread(target=self._run, name="ingest-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop, with a last health file and a last counters line."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.write_health()
        self.log_stats()

    def _run(self) -> None:
        next_stats = time.monotonic() + self._stats_interval
        while not self._stop.wait(
            min(self._health_interval, max(0.0, next_stats - time.monotonic()))
        ):
            try:
                self.write_health()
                if time.monotonic() >= next_stats:
                    self.log_stats()
                    next_stats = time.monotonic() + self._stats_interval
            except Exception:
                # Reporting must never take ingest down.
                logger.exception("ingest monitor failed; going on")

    def write_health(self) -> None:
        try:
            write_health(self._health_file, self._health())
        except OSError as exc:
            if not self._health_failing:
                logger.error("cannot write the health file %s: %s", self._health_file, exc)
            self._health_failing = True
        else:
            if self._health_failing:
                logger.info("health file %s written again", self._health_file)
            self._health_failing = False

    def log_stats(self) -> None:
        now = time.monotonic()
        snapshot = self._counters()
        since, readings_before = self._last_stats
        rate = (snapshot.readings_written - readings_before) / max(now - since, 1e-9)
        suppressed = self._take_suppressed_logs()
        logger.info(
            "ingest: received=%d readings_written=%d (%.0f/s) dead_letters=%s spooled=%d "
            "replayed=%d spool_pending=%d batches=%d write_mean=%.1fms write_max=%.1fms%s",
            snapshot.received,
            snapshot.readings_written,
            rate,
            snapshot.dead_letters or 0,
            snapshot.spooled_readings,
            snapshot.replayed_readings,
            self._spool_pending(),
            snapshot.batches,
            snapshot.write_seconds_mean * 1000,
            snapshot.write_seconds_max * 1000,
            f" ({suppressed} dead-letter logs suppressed)" if suppressed else "",
        )
        self._last_stats = (now, snapshot.readings_written)
