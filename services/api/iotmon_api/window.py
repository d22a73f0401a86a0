"""The time window of a series request, checked before it reaches the store.

Times come in as RFC 3339 with an offset and are instants; answers carry UTC
(``Z``) unless ``tz`` names a zone, in which bucket starts carry that zone's
offset. Buckets are aligned to the Unix epoch (InfluxQL's ``GROUP BY time()``);
with ``tz``, buckets must be whole days and start at local midnight.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from iotmon_storage import Aggregate, BucketGrid, Fill, Position, bucket_grid, count_buckets

DEFAULT_RANGE = timedelta(hours=1)
MAX_BUCKET_SECONDS = 31 * 24 * 3600
DAY_SECONDS = 86_400
EARLIEST = datetime(1677, 9, 22, tzinfo=UTC)
LATEST = datetime(2262, 4, 11, tzinfo=UTC)
"""The instants both stores can hold: nanoseconds since 1970 in a signed 64-bit integer."""
NO_FILL = Fill()
ZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+-]{0,31}(?:/[A-Za-z0-9_+-]{1,32}){0,2}$"


class SeriesAggregate(StrEnum):
    """What a series answers: raw points (``none``) or an aggregate per bucket."""

    NONE = "none"
    MEAN = "mean"
    MIN = "min"
    MAX = "max"
    SUM = "sum"
    LAST = "last"
    COUNT = "count"


class SortOrder(StrEnum):
    ASC = "asc"
    DESC = "desc"


@dataclass(frozen=True, slots=True)
class TimeRange:
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class SeriesWindow:
    """An aggregated series: buckets of ``bucket`` seconds over [start, end)."""

    start: datetime
    end: datetime
    bucket: int
    agg: Aggregate
    fill: Fill = NO_FILL
    zone: ZoneInfo | None = None

    def grid(self) -> BucketGrid:
        return bucket_grid(self.start, self.end, self.bucket, self.zone)

    def buckets(self) -> int:
        if self.zone is None:
            return count_buckets(self.start, self.end, self.bucket)
        return self.grid().count


@dataclass(frozen=True, slots=True)
class PointsWindow:
    """Raw points over [start, end), a page of ``limit`` after ``after``."""

    start: datetime
    end: datetime
    limit: int
    descending: bool
    after: Position | None = None


class WindowError(ValueError):
    """A window the API refuses; ``field`` is the query parameter to blame."""

    def __init__(self, field: str, message: str, value: object) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


def resolve_range(start: datetime | None, end: datetime | None, *, now: datetime) -> TimeRange:
    """Fill defaults (the hour before ``end``; ``end`` = now) and check the bounds."""
    for field, value in (("start", start), ("end", end)):
        if value is not None and not EARLIEST <= value <= LATEST:
            raise WindowError(
                field,
                f"{field} {value.isoformat()} is outside the range the store keeps "
                f"({EARLIEST.date()} .. {LATEST.date()})",
                value.isoformat(),
            )
    if end is None:
        end = now if start is None or start < now else start + DEFAULT_RANGE
    if start is None:
        start = end - DEFAULT_RANGE
    if start >= end:
        raise WindowError("end", f"end ({end.isoformat()}) must be after start", end.isoformat())
    return TimeRange(start, end)


def parse_zone(name: str | None) -> ZoneInfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise WindowError(
            "tz", f"{name!r} is not an IANA time zone (e.g. Europe/Paris, UTC)", name
        ) from None


def parse_fill(text: str | None) -> Fill:
    try:
        return Fill.parse(text) if text is not None else Fill()
    except ValueError as exc:
        raise WindowError("fill", str(exc), text) from None


def aggregated(
    span: TimeRange,
    bucket: int,
    agg: Aggregate,
    *,
    fill: Fill = NO_FILL,
    zone: ZoneInfo | None = None,
    max_buckets: int,
    metrics: int = 1,
) -> SeriesWindow:
    """The window of an aggregated series; refuses a zone with sub-day buckets and more
    than ``max_buckets`` buckets in all (over ``metrics`` metrics)."""
    if zone is not None and bucket % DAY_SECONDS:
        raise WindowError(
            "tz",
            f"tz applies to buckets of whole days (bucket a multiple of {DAY_SECONDS}), "
            f"not {bucket}s: shorter buckets are aligned to UTC",
            str(zone),
        )
    window = SeriesWindow(span.start, span.end, bucket, agg, fill, zone)
    check_bucket_budget(window, metrics, max_buckets)
    return window


def check_bucket_budget(window: SeriesWindow, metrics: int, max_buckets: int) -> None:
    buckets = window.buckets()
    if buckets * metrics > max_buckets:
        over = f" for {metrics} metrics ({buckets * metrics} in all)" if metrics > 1 else ""
        raise WindowError(
            "bucket",
            f"{buckets} buckets of {window.bucket}s between start and end{over}; at most "
            f"{max_buckets}: use a wider bucket, a shorter range or fewer keys",
            window.bucket,
        )


def resolve_window(
    start: datetime | None,
    end: datetime | None,
    bucket: int,
    agg: Aggregate,
    *,
    now: datetime,
    max_buckets: int,
) -> SeriesWindow:
    """Defaults filled and size checked: the window of a one-metric series."""
    return aggregated(resolve_range(start, end, now=now), bucket, agg, max_buckets=max_buckets)
