"""The storage interface every backend implements, and the records it speaks in.

Schema (both backends): one measurement per metric (``temperature``…) tagged
with tenant and device, field ``value``. Platform records use measurements that
start with ``_`` — metric names cannot (contract METRIC_PATTERN), so they never
collide: ``_device_seen``, ``_device_status``, ``_dead_letter``.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from iotmon_contract import DeadLetter, DeviceState, StatusEvent, ValidatedReading

MEASUREMENT_SEEN = "_device_seen"
MEASUREMENT_STATUS = "_device_status"
MEASUREMENT_DEAD_LETTER = "_dead_letter"


class StoreError(RuntimeError):
    """The store refused a request (bad query, bad data): retrying will not help."""


class StoreUnavailable(StoreError):
    """The store could not be reached or failed transiently: retry or spool."""


class NonFiniteResult(StoreError):
    """The store computed an aggregate it cannot represent (an overflowing mean or sum)."""


FLOAT_MAX = sys.float_info.max
SCALE = float(2**64)
"""Values are divided by it before a mean that would overflow, and the result multiplied
back: a power of two, so both steps are exact (except for values below ~4e-289)."""


def finite(value: float) -> float:
    """Saturate an overflowing aggregate at the largest float instead of infinity."""
    return max(-FLOAT_MAX, min(FLOAT_MAX, value))


class Aggregate(StrEnum):
    MEAN = "mean"
    MIN = "min"
    MAX = "max"
    LAST = "last"
    COUNT = "count"


@dataclass(frozen=True, slots=True)
class LatestReading:
    metric: str
    value: float
    unit: str | None
    ts: datetime


@dataclass(frozen=True, slots=True)
class Bucket:
    start: datetime
    value: float | None
    count: int | None = None


@dataclass(frozen=True, slots=True)
class DeviceSummary:
    tenant: str
    device: str
    last_seen: datetime | None
    state: DeviceState | None
    state_since: datetime | None


class TimeSeriesStore(ABC):
    """A time-series backend. Writes are durable when they return."""

    @abstractmethod
    def ensure_schema(self) -> None:
        """Create the database/tables if missing; idempotent."""

    @abstractmethod
    def ping(self) -> bool: ...

    @abstractmethod
    def write_readings(self, readings: Sequence[ValidatedReading], seen_at_ns: int) -> None:
        """Store readings and mark their devices seen at ``seen_at_ns``."""

    @abstractmethod
    def write_statuses(self, statuses: Sequence[StatusEvent]) -> None: ...

    @abstractmethod
    def write_dead_letters(self, letters: Sequence[DeadLetter]) -> None: ...

    @abstractmethod
    def latest(self, tenant: str, device: str) -> list[LatestReading]:
        """The newest reading of each metric of one device."""

    @abstractmethod
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
        """Readings in [start, end) aggregated into buckets of ``bucket_seconds``.

        Every value is finite: a mean of values near the float limit is computed on
        scaled values, so it never overflows.
        """

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
