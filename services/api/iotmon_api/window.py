"""The time window of a series request, checked before it reaches the store."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from iotmon_storage import Aggregate

DEFAULT_RANGE = timedelta(hours=1)
MAX_BUCKET_SECONDS = 31 * 24 * 3600
EARLIEST = datetime(1677, 9, 22, tzinfo=UTC)
LATEST = datetime(2262, 4, 11, tzinfo=UTC)
"""The instants both stores can hold: nanoseconds since 1970 in a signed 64-bit integer."""


@dataclass(frozen=True, slots=True)
class SeriesWindow:
    start: datetime
    end: datetime
    bucket: int
    agg: Aggregate


class WindowError(ValueError):
    """A window the API refuses; ``field`` is the query parameter to blame."""

    def __init__(self, field: str, message: str, value: object) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


def resolve_window(
    start: datetime | None,
    end: datetime | None,
    bucket: int,
    agg: Aggregate,
    *,
    now: datetime,
    max_buckets: int,
) -> SeriesWindow:
    """Fill defaults (the hour before ``end``; ``end`` = now) and check the window's size."""
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
    buckets = math.ceil((end - start).total_seconds() / bucket)
    if buckets > max_buckets:
        raise WindowError(
            "bucket",
            f"{buckets} buckets of {bucket}s between start and end; at most {max_buckets}: "
            "use a wider bucket or a shorter range",
            bucket,
        )
    return SeriesWindow(start, end, bucket, agg)
