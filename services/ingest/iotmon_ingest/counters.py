"""Ingest's counters: updated once per batch by the pipeline, read by anyone."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field, replace

from iotmon_runtime.metrics import HistogramSnapshot


@dataclass(frozen=True, slots=True)
class CounterSnapshot:
    """A consistent copy of the counters at one moment."""

    received: int = 0
    batches: int = 0
    readings_written: int = 0
    statuses_written: int = 0
    events_written: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)
    ignored: int = 0
    acked: int = 0
    spooled_batches: int = 0
    spooled_readings: int = 0
    replayed_batches: int = 0
    replayed_readings: int = 0
    store_failures: int = 0
    refused_readings: int = 0
    """Readings the store refused (each also a store_rejected dead letter)."""
    refused_statuses: int = 0
    refused_events: int = 0
    unstored_dead_letters: int = 0
    """Dead letters the store refused (published on the dead-letter topic all the same)."""
    spool_failures: int = 0
    """Batches the spool could not take (full, or not writable): intake paused meanwhile."""
    quarantined_files: int = 0
    """Spool files that could not be read back, moved to the spool's rejected/."""
    write_seconds_total: float = 0.0
    write_seconds_max: float = 0.0
    writes: int = 0
    write_latency: HistogramSnapshot = field(default_factory=HistogramSnapshot.empty)
    """Store write durations by bucket (exported as a Prometheus histogram)."""

    @property
    def dead_letters_total(self) -> int:
        return sum(self.dead_letters.values())

    @property
    def write_seconds_mean(self) -> float:
        return self.write_seconds_total / self.writes if self.writes else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "received": self.received,
            "batches": self.batches,
            "readings_written": self.readings_written,
            "statuses_written": self.statuses_written,
            "events_written": self.events_written,
            "dead_letters": dict(self.dead_letters),
            "ignored": self.ignored,
            "acked": self.acked,
            "spooled_batches": self.spooled_batches,
            "spooled_readings": self.spooled_readings,
            "replayed_batches": self.replayed_batches,
            "replayed_readings": self.replayed_readings,
            "store_failures": self.store_failures,
            "refused_readings": self.refused_readings,
            "refused_statuses": self.refused_statuses,
            "refused_events": self.refused_events,
            "unstored_dead_letters": self.unstored_dead_letters,
            "spool_failures": self.spool_failures,
            "quarantined_files": self.quarantined_files,
            "write_seconds_mean": round(self.write_seconds_mean, 6),
            "write_seconds_max": round(self.write_seconds_max, 6),
        }


class IngestCounters:
    """Thread-safe counters; each update is one lock round per batch, never per message."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = CounterSnapshot()
        self._dead: Counter[str] = Counter()

    def add(self, **increments: int | float) -> None:
        with self._lock:
            values = self._values
            changes = {name: getattr(values, name) + amount for name, amount in increments.items()}
            self._values = replace(values, **changes)

    def dead_letter(self, reason: str, count: int = 1) -> None:
        with self._lock:
            self._dead[reason] += count

    def write_latency(self, seconds: float) -> None:
        with self._lock:
            values = self._values
            self._values = replace(
                values,
                writes=values.writes + 1,
                write_seconds_total=values.write_seconds_total + seconds,
                write_seconds_max=max(values.write_seconds_max, seconds),
                write_latency=values.write_latency.observe(seconds),
            )

    def snapshot(self) -> CounterSnapshot:
        with self._lock:
            return replace(self._values, dead_letters=dict(self._dead))
