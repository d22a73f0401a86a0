"""Bucket boundaries and fill, computed once here so that every backend answers alike.

Buckets are aligned to the Unix epoch in UTC, as InfluxQL's ``GROUP BY time()``
aligns them: a 300 s bucket starts at a multiple of 300 s since
1970-01-01T00:00:00Z, so the first bucket of a window may start before it (it
holds only the readings from the window's start on). With a time zone, buckets
of whole days start at local midnight and last that many calendar days: 23 or
25 hours across a daylight-saving change.

A grid is a few *runs* of equal-width, contiguous buckets; InfluxDB answers each
run with one ``GROUP BY time(width, offset)`` statement, SQLite with one query.

Fill (``none``, ``null``, ``previous``, ``linear`` or a number) follows InfluxQL's
``fill()`` exactly and is applied here to the buckets a store found, so both
backends fill alike, even across the runs of a grid.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import NamedTuple
from zoneinfo import ZoneInfo

from iotmon_contract.validation import to_ns

NS = 1_000_000_000
DAY_S = 86_400
_EPOCH_DAY = date(1970, 1, 1).toordinal()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_ns(ns: int) -> datetime:
    """A store timestamp as an aware UTC datetime (microseconds: Python's precision)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


class Aggregate(StrEnum):
    MEAN = "mean"
    MIN = "min"
    MAX = "max"
    SUM = "sum"
    LAST = "last"
    COUNT = "count"


@dataclass(frozen=True, slots=True)
class Bucket:
    start: datetime
    value: float | None
    count: int | None = None


class Aggregated(NamedTuple):
    """A non-empty bucket as a store found it: start in ns, the aggregate, its readings
    (None: unknown, the store read the bucket while a write landed in it)."""

    start_ns: int
    value: float
    readings: int | None


@dataclass(frozen=True, slots=True)
class BucketRun:
    """``count`` contiguous buckets of ``width_ns``, the first starting at ``start_ns``."""

    start_ns: int
    width_ns: int
    count: int

    @property
    def end_ns(self) -> int:
        return self.start_ns + self.width_ns * self.count


@dataclass(frozen=True, slots=True)
class BucketGrid:
    """The buckets of a window [start_ns, end_ns): the first holds start, the last end - 1."""

    start_ns: int
    end_ns: int
    runs: tuple[BucketRun, ...]
    zone: ZoneInfo | None = None

    def starts(self) -> list[int]:
        return [
            run.start_ns + index * run.width_ns for run in self.runs for index in range(run.count)
        ]

    @property
    def count(self) -> int:
        return sum(run.count for run in self.runs)

    def clipped(self, run: BucketRun) -> tuple[int, int]:
        """The part of the window a run covers (its first bucket may start before it)."""
        return max(run.start_ns, self.start_ns), min(run.end_ns, self.end_ns)

    def timestamp(self, ns: int) -> datetime:
        """A bucket start as a datetime, in the grid's zone (UTC without one)."""
        utc = from_ns(ns)
        return utc.astimezone(self.zone) if self.zone is not None else utc


def count_buckets(start: datetime, end: datetime, bucket_seconds: int) -> int:
    """How many epoch-aligned buckets of ``bucket_seconds`` cover [start, end)."""
    width = bucket_seconds * NS
    first = to_ns(start) // width * width
    return -(-(to_ns(end) - first) // width)


def _local_midnight_ns(day: date, zone: ZoneInfo) -> int:
    """The first instant of ``day`` in ``zone``; where midnight does not exist (a
    daylight-saving jump at 00:00) fold=0 reads it with the earlier offset, which
    is the instant the day begins."""
    return to_ns(datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC))


def bucket_grid(
    start: datetime, end: datetime, bucket_seconds: int, zone: ZoneInfo | None = None
) -> BucketGrid:
    """The grid of ``bucket_seconds`` buckets over [start, end).

    With ``zone``, ``bucket_seconds`` must be a whole number of days: buckets are
    N local calendar days, aligned to 1970-01-01 in that zone.
    """
    start_ns, end_ns = to_ns(start), to_ns(end)
    if start_ns >= end_ns:
        raise ValueError("the window is empty")
    if zone is None:
        width = bucket_seconds * NS
        first = start_ns // width * width
        return BucketGrid(
            start_ns, end_ns, (BucketRun(first, width, -(-(end_ns - first) // width)),)
        )
    if bucket_seconds % DAY_S:
        raise ValueError("a time zone applies to buckets of whole days")
    days = bucket_seconds // DAY_S
    local_start = start.astimezone(zone).date()
    ordinal = local_start.toordinal() - _EPOCH_DAY
    day = date.fromordinal(_EPOCH_DAY + ordinal // days * days)
    boundaries = [_local_midnight_ns(day, zone)]
    while boundaries[-1] < end_ns:
        day += timedelta(days=days)
        boundaries.append(_local_midnight_ns(day, zone))
    runs: list[BucketRun] = []
    for left, right in itertools.pairwise(boundaries):
        width = right - left
        if runs and runs[-1].width_ns == width:
            last = runs[-1]
            runs[-1] = BucketRun(last.start_ns, width, last.count + 1)
        else:
            runs.append(BucketRun(left, width, 1))
    return BucketGrid(start_ns, end_ns, tuple(runs), zone)


class FillMode(StrEnum):
    NONE = "none"
    """Empty buckets are left out."""
    NULL = "null"
    """Empty buckets are given with value null (a count: 0)."""
    PREVIOUS = "previous"
    """The value of the nearest earlier bucket of the window that has one, else null."""
    LINEAR = "linear"
    """Interpolated between the nearest non-empty buckets on either side, else null."""
    VALUE = "value"
    """A fixed number."""


@dataclass(frozen=True, slots=True)
class Fill:
    mode: FillMode = FillMode.NONE
    value: float | None = None

    @classmethod
    def parse(cls, text: str) -> Fill:
        """``none``, ``null``, ``previous``, ``linear`` or a finite number; ValueError else."""
        try:
            return cls(FillMode(text))
        except ValueError:
            pass
        if text == FillMode.VALUE.value:
            raise ValueError("fill takes none, null, previous, linear or a number")
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"fill {text!r}: none, null, previous, linear or a number") from None
        if not math.isfinite(number):
            raise ValueError(f"fill {text!r}: the number must be finite")
        return cls(FillMode.VALUE, number)

    def __str__(self) -> str:
        return repr(self.value) if self.mode is FillMode.VALUE else self.mode.value


def _linear(at: int, before: int, after: int, low: float, high: float) -> float:
    # InfluxQL's linear fill, term for term, so both give the same float.
    slope = (high - low) / float(after - before)
    return slope * float(at - before) + low


def fill_buckets(
    grid: BucketGrid, found: Sequence[Aggregated], aggregate: Aggregate, fill: Fill
) -> list[Bucket]:
    """The buckets of ``grid`` as records: only ``found`` with fill none, else every
    bucket, the empty ones filled.

    ``found`` holds the non-empty buckets, in order. A filled bucket's ``count``
    is 0: how many readings it holds, whatever value the fill gives it.
    """
    if fill.mode is FillMode.NONE:
        return [Bucket(grid.timestamp(b.start_ns), b.value, b.readings) for b in found]
    by_start = {bucket.start_ns: bucket for bucket in found}
    starts = grid.starts()
    # The next non-empty bucket at or after each position, for linear fill.
    following: list[int | None] = [None] * len(starts)
    upcoming: int | None = None
    for index in range(len(starts) - 1, -1, -1):
        if starts[index] in by_start:
            upcoming = index
        following[index] = upcoming
    filled: list[Bucket] = []
    last: Aggregated | None = None
    for index, start_ns in enumerate(starts):
        bucket = by_start.get(start_ns)
        if bucket is not None:
            filled.append(Bucket(grid.timestamp(start_ns), bucket.value, bucket.readings))
            last = bucket
            continue
        value: float | None = None
        if fill.mode is FillMode.VALUE:
            value = fill.value
        elif fill.mode is FillMode.PREVIOUS:
            value = last.value if last is not None else None
        elif fill.mode is FillMode.LINEAR:
            after = following[index]
            if last is not None and after is not None:
                high = by_start[starts[after]]
                value = _linear(start_ns, last.start_ns, high.start_ns, last.value, high.value)
                if aggregate is Aggregate.COUNT:
                    value = float(math.trunc(value))  # InfluxQL's integer fill truncates
        elif aggregate is Aggregate.COUNT:
            value = 0.0  # InfluxQL counts an empty bucket as 0 under fill(null)
        filled.append(Bucket(grid.timestamp(start_ns), value, 0))
    return filled
