"""The storage interface every backend implements, and the records it speaks in.

Schema (both backends): one measurement per metric (``temperature``…) tagged
with tenant and device, field ``value``. Platform records use measurements that
start with ``_`` — metric names cannot (contract METRIC_PATTERN), so they never
collide: ``_device_seen``, ``_device_status``, ``_dead_letter``, ``_device_event``
(device events: tagged with tenant, device and type; fields ``seq`` and ``data``, the
event's own fields as JSON).
"""

from __future__ import annotations

import json
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from iotmon_contract import (
    DeadLetter,
    DeviceState,
    StatusEvent,
    ValidatedEvent,
    ValidatedReading,
)
from iotmon_contract.validation import to_ns
from iotmon_storage.buckets import (
    Aggregate,
    Aggregated,
    Bucket,
    BucketGrid,
    Fill,
    bucket_grid,
    fill_buckets,
    from_ns,
)

MEASUREMENT_SEEN = "_device_seen"
MEASUREMENT_STATUS = "_device_status"
MEASUREMENT_DEAD_LETTER = "_dead_letter"
MEASUREMENT_EVENT = "_device_event"

EVENT_TIME_SPREAD_NS = 1_000_000
"""An event is stored at its device time plus ``seq`` modulo this (under a millisecond):
a cabin sweep stamps many reads with the same time, which would otherwise overwrite each
other, while the same event sent twice (seq and time alike) still lands on itself."""
_ENVELOPE = frozenset({"type", "ts", "seq", "device"})


def event_time_ns(ts_ns: int, seq: int) -> int:
    return ts_ns + seq % EVENT_TIME_SPREAD_NS


def event_data(event: ValidatedEvent) -> str:
    """The event's own fields (not its envelope) as compact, sorted JSON."""
    fields = event.event.model_dump(mode="json", exclude=set(_ENVELOPE), exclude_none=True)
    return json.dumps(fields, separators=(",", ":"), sort_keys=True)


MEASUREMENT_ALERT = "_alert"


class StoreError(RuntimeError):
    """The store refused a request (bad query, bad data): retrying will not help."""


class StoreUnavailable(StoreError):
    """The store could not be reached or failed transiently: retry or spool."""


class StoreRefused(StoreError):
    """The store refused some or all of the points of one write (InfluxDB's 400/422
    "partial write", a line it cannot parse, a body too large): writing the same
    points again gets the same answer, but the points it accepted may be stored.

    ``reason`` is the store's own message. ``dropped`` is how many points it says it
    dropped, when it says so (never more than it really dropped, but possibly fewer:
    InfluxDB 1.x counts lines it could not parse as 0).
    """

    def __init__(self, reason: str, *, dropped: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.dropped = dropped


def dead_letter_stamps(letters: Sequence[DeadLetter]) -> list[int]:
    """Each letter's store timestamp: when it was received, plus its position modulo 1,000 ns.

    Derived from the letters, not from the clock of the write, so a batch written
    again (after a partial write, or replayed from ingest's spool) overwrites its
    letters instead of adding copies. Two letters of a batch received in the same
    microsecond stay apart by their positions; letters 1,000 positions apart were
    received microseconds apart.
    """
    stamps = []
    for index, letter in enumerate(letters):
        received = letter.received_at
        if received.tzinfo is None:
            received = received.replace(tzinfo=UTC)
        stamps.append(to_ns(received) + index % 1000)
    return stamps


class NonFiniteResult(StoreError):
    """The store computed an aggregate it cannot represent (an overflowing mean or sum)."""


FLOAT_MAX = sys.float_info.max
SCALE = float(2**64)
"""Values are divided by it before a mean that would overflow, and the result multiplied
back: a power of two, so both steps are exact (except for values below ~4e-289)."""


def finite(value: float) -> float:
    """Saturate an overflowing aggregate at the largest float instead of infinity."""
    return max(-FLOAT_MAX, min(FLOAT_MAX, value))


@dataclass(frozen=True, slots=True)
class LatestReading:
    metric: str
    value: float
    unit: str | None
    ts: datetime


@dataclass(frozen=True, slots=True)
class Point:
    """One stored reading of a metric (a raw point)."""

    metric: str
    ts_ns: int
    value: float

    @property
    def ts(self) -> datetime:
        return from_ns(self.ts_ns)


class Position(NamedTuple):
    """Where a page of points ended: the last point's time and metric."""

    ts_ns: int
    metric: str


def point_key(point: Point) -> tuple[int, str]:
    """The order of points: by time, then metric (one point per metric and time)."""
    return (point.ts_ns, point.metric)


def point_range(
    metric: str, start_ns: int, end_ns: int, after: Position | None, *, descending: bool
) -> tuple[int, int] | None:
    """The times [low, high) of ``metric``'s points that come after ``after`` in the order
    of ``point_key`` (reversed if ``descending``) within [start_ns, end_ns); None if none."""
    low, high = start_ns, end_ns
    if after is not None:
        if descending:
            high = min(high, after.ts_ns + 1 if metric < after.metric else after.ts_ns)
        else:
            low = max(low, after.ts_ns if metric > after.metric else after.ts_ns + 1)
    return (low, high) if low < high else None


def merge_points(
    per_metric: Iterable[Iterable[Point]], limit: int, *, descending: bool
) -> list[Point]:
    """The first ``limit`` points of several metrics' point lists, in (time, metric) order."""
    merged = sorted(
        (point for points in per_metric for point in points), key=point_key, reverse=descending
    )
    return merged[:limit]


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A device event as stored: its envelope and its own fields."""

    tenant: str
    device: str
    type: str
    seq: int
    ts: datetime
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeviceSummary:
    tenant: str
    device: str
    last_seen: datetime | None
    state: DeviceState | None
    state_since: datetime | None


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """An alert entering a state (or a notice), as dashboards plot it: one point each."""

    tenant: str
    fingerprint: str
    rule: str
    state: str
    """firing, escalated, acknowledged, resolved; ``notice`` for a one-off notice."""
    severity: str
    summary: str
    ts_ns: int
    notified: bool
    device: str | None = None
    site: str | None = None
    bus: str | None = None
    child: str | None = None


class TimeSeriesStore(ABC):
    """A time-series backend. Writes are durable when they return."""

    @abstractmethod
    def ensure_schema(self) -> None:
        """Create the database/tables if missing; idempotent."""

    @abstractmethod
    def ping(self) -> bool: ...

    @abstractmethod
    def write_readings(self, readings: Sequence[ValidatedReading], seen_at_ns: int | None) -> None:
        """Store readings and, unless ``seen_at_ns`` is None, mark their devices seen then.

        Raises StoreRefused when the store refuses points (some may be stored: a
        reading is one point per series and timestamp, so writing it again overwrites
        it), StoreUnavailable when it cannot be reached.
        """

    @abstractmethod
    def mark_seen(
        self, readings_per_device: Mapping[tuple[str, str], int], seen_at_ns: int
    ) -> None:
        """Mark (tenant, device) pairs seen at ``seen_at_ns`` with that many readings stored;
        overwrites what ``write_readings`` marked at the same time."""

    @abstractmethod
    def write_statuses(self, statuses: Sequence[StatusEvent]) -> None: ...

    @abstractmethod
    def write_events(self, events: Sequence[ValidatedEvent]) -> None:
        """Store device events at ``event_time_ns``: the same event again overwrites itself.

        Raises StoreRefused / StoreUnavailable as ``write_readings`` does."""

    @abstractmethod
    def events(
        self,
        tenant: str,
        device: str | None,
        start: datetime,
        end: datetime,
        *,
        types: Sequence[str] | None = None,
        limit: int = 1000,
        newest_first: bool = False,
    ) -> list[StoredEvent]:
        """Events of a tenant (one device, or all) in [start, end), oldest first (the
        first ``limit``), or newest first (the last ``limit``)."""

    @abstractmethod
    def write_dead_letters(
        self, letters: Sequence[DeadLetter], stamps_ns: Sequence[int] | None = None
    ) -> None:
        """Store dead letters at ``stamps_ns`` (default ``dead_letter_stamps(letters)``).

        In InfluxDB the same letters at the same stamps overwrite rather than duplicate
        (SQLite, which never stores part of a write, keeps every row it is given)."""

    @abstractmethod
    def write_alert_events(self, events: Sequence[AlertEvent]) -> None:
        """Store alert state changes (measurement ``_alert``): the same event written
        twice is one point (same series and time)."""

    @abstractmethod
    def alert_events(self, tenant: str, limit: int = 100) -> list[AlertEvent]:
        """The newest alert events of a tenant, newest first."""

    @abstractmethod
    def latest(self, tenant: str, device: str) -> list[LatestReading]:
        """The newest reading of each metric of one device."""

    @abstractmethod
    def metrics(self, tenant: str, device: str) -> list[str]:
        """The metrics a device has readings of, sorted (empty: an unknown device)."""

    @abstractmethod
    def buckets_found(
        self,
        tenant: str,
        device: str,
        metrics: Sequence[str],
        grid: BucketGrid,
        aggregate: Aggregate,
    ) -> dict[str, list[Aggregated]]:
        """The non-empty buckets of ``grid`` per metric, in order (metrics without
        readings in the window may be absent).

        Every value is finite: a mean or sum of values near the float limit is computed
        on scaled values, so it never overflows, and saturates at the largest float.
        """

    def aggregate(
        self,
        tenant: str,
        device: str,
        metrics: Sequence[str],
        grid: BucketGrid,
        aggregate: Aggregate,
        fill: Fill | None = None,
    ) -> dict[str, list[Bucket]]:
        """Readings of each metric in the grid's window, aggregated per bucket and filled
        (the same answer from every backend: the fill is computed here)."""
        found = self.buckets_found(tenant, device, metrics, grid, aggregate)
        how = fill if fill is not None else Fill()
        return {m: fill_buckets(grid, found.get(m, []), aggregate, how) for m in metrics}

    def series(
        self,
        tenant: str,
        device: str,
        metric: str,
        start: datetime,
        end: datetime,
        bucket_seconds: int,
        aggregate: Aggregate,
    ) -> list[Bucket]:
        """Readings of one metric in [start, end) in epoch-aligned buckets of
        ``bucket_seconds``, empty buckets left out."""
        grid = bucket_grid(start, end, bucket_seconds)
        return self.aggregate(tenant, device, [metric], grid, aggregate)[metric]

    @abstractmethod
    def points(
        self,
        tenant: str,
        device: str,
        metrics: Sequence[str],
        start_ns: int,
        end_ns: int,
        *,
        limit: int,
        after: Position | None = None,
        descending: bool = False,
    ) -> list[Point]:
        """Raw readings of ``metrics`` in [start_ns, end_ns), at most ``limit``, ordered by
        (time, metric), newest first if ``descending``; only those past ``after`` (the
        position where the previous page ended)."""

    @abstractmethod
    def devices(self, tenant: str | None = None) -> list[DeviceSummary]:
        """Devices seen (telemetry or status), with their last availability state."""

    @abstractmethod
    def dead_letters(
        self, limit: int = 100, topic_prefixes: Sequence[str] | None = None
    ) -> list[DeadLetter]:
        """The newest dead letters, only those whose topic starts with one of
        ``topic_prefixes`` when given (an empty list matches nothing)."""

    @abstractmethod
    def count_readings(self, tenant: str, metric: str) -> int:
        """How many readings of a metric a tenant has stored (tests and benchmarks)."""

    @abstractmethod
    def close(self) -> None: ...
