"""Query parameters of the time-series routes, checked into a request before the store is asked:
metrics (``keys``), window, aggregate, bucket, fill, time zone, order, and page cursors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query
from fastapi.exceptions import RequestValidationError

from iotmon_api.config import Settings
from iotmon_api.cursors import CURSOR_PATTERN, CursorError, DeviceCursor, PointsCursor
from iotmon_api.deps import Clock, ClockDep, Rfc3339Query, SettingsDep, invalid, parse_rfc3339
from iotmon_api.window import (
    MAX_BUCKET_SECONDS,
    ZONE_PATTERN,
    PointsWindow,
    SeriesAggregate,
    SeriesWindow,
    SortOrder,
    TimeRange,
    WindowError,
    aggregated,
    check_bucket_budget,
    parse_fill,
    parse_zone,
    resolve_range,
)
from iotmon_contract.payloads import METRIC_PATTERN
from iotmon_storage import Aggregate
from iotmon_storage.buckets import from_ns

DEFAULT_POINTS_PAGE = 1000
MAX_POINTS_PAGE = 10_000

MAX_KEYS = 32
KEYS_PATTERN = (
    "^" + METRIC_PATTERN.strip("^$") + "(?:," + METRIC_PATTERN.strip("^$") + "){0,%d}$"
) % (MAX_KEYS - 1)
FILL_PATTERN = (
    r"^(?:none|null|previous|linear|[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)$"
)

StartQuery = Annotated[
    Rfc3339Query,
    Query(description="Start (inclusive), RFC 3339 with offset; default end - 1 h."),
]
EndQuery = Annotated[
    Rfc3339Query,
    Query(description="End (exclusive), RFC 3339 with offset; default now."),
]
BucketQuery = Annotated[
    int | None,
    Query(
        ge=1,
        le=MAX_BUCKET_SECONDS,
        description="Bucket width in seconds (default 60). Buckets are aligned to the Unix "
        "epoch in UTC, like InfluxQL's GROUP BY time(): the first may start before `start` "
        "and holds only readings from `start` on. With `tz`, a whole number of days.",
        examples=[300],
    ),
]
FillQuery = Annotated[
    str | None,
    Query(
        pattern=FILL_PATTERN,
        description="Empty buckets, as InfluxQL's fill(): `none` leaves them out (default); "
        "`null` gives them value null (a count: 0); `previous` the value of the nearest "
        "earlier bucket of the window; `linear` interpolates between the nearest non-empty "
        "buckets on either side (null at the edges); a number gives that number. "
        "A filled bucket's `count` is 0.",
        examples=["null", "previous", "linear", "0"],
    ),
]
TzQuery = Annotated[
    str | None,
    Query(
        pattern=ZONE_PATTERN,
        description="IANA time zone for day buckets: they start at local midnight and last "
        "whole calendar days (23 or 25 h across a DST change); bucket starts carry the "
        "zone's offset. Needs a bucket of whole days; without it buckets and times are UTC.",
        examples=["Europe/Paris"],
    ),
]
KeysQuery = Annotated[
    str | None,
    Query(
        pattern=KEYS_PATTERN,
        description=f"Metrics, comma-separated (at most {MAX_KEYS}); default every metric the "
        "device has. An unknown metric is 404.",
        examples=["temperature,humidity"],
    ),
]
OrderQuery = Annotated[
    SortOrder | None,
    Query(description="Oldest first (asc, default) or newest first (desc)."),
]


def parse_keys(keys: str | None) -> list[str] | None:
    """The metrics asked for, in the order given, each once (None: every metric)."""
    if keys is None:
        return None
    return list(dict.fromkeys(keys.split(",")))


def _window_error(exc: WindowError) -> RequestValidationError:
    return invalid(exc.field, str(exc), exc.value)


async def series_window(
    settings: SettingsDep,
    clock: ClockDep,
    start: StartQuery = None,
    end: EndQuery = None,
    bucket: BucketQuery = None,
    agg: Annotated[Aggregate, Query(description="Aggregate over each bucket.")] = Aggregate.MEAN,
    fill: FillQuery = None,
    tz: TzQuery = None,
) -> SeriesWindow:
    begin, finish = parse_rfc3339("start", start), parse_rfc3339("end", end)
    try:
        return aggregated(
            resolve_range(begin, finish, now=clock()),
            bucket if bucket is not None else 60,
            agg,
            fill=parse_fill(fill),
            zone=parse_zone(tz),
            max_buckets=settings.max_buckets,
        )
    except WindowError as exc:
        raise _window_error(exc) from None


SeriesWindowDep = Annotated[SeriesWindow, Depends(series_window)]


@dataclass(frozen=True, slots=True)
class SeriesRequest:
    """A /series or /export request, checked: the metrics asked for (None: all) and
    either an aggregated window (``window``) or raw points (``points``)."""

    keys: list[str] | None
    window: SeriesWindow | None
    points: PointsWindow | None
    order: SortOrder
    span: TimeRange


def _reject(field: str, message: str, value: object) -> RequestValidationError:
    return invalid(field, message, value)


def _continue_points(
    cursor: str,
    keys: list[str] | None,
    span: tuple[datetime | None, datetime | None],
    order: SortOrder | None,
) -> tuple[PointsCursor, list[str], TimeRange, SortOrder]:
    """The query a cursor continues; what the request also gives must be the same."""
    try:
        found = PointsCursor.decode(cursor)
    except CursorError as exc:
        raise _reject("cursor", str(exc), cursor) from None
    pinned = TimeRange(from_ns(found.start_ns), from_ns(found.end_ns))
    pinned_order = SortOrder.DESC if found.descending else SortOrder.ASC
    same = (
        (keys is None or keys == list(found.keys))
        and (span[0] is None or span[0] == pinned.start)
        and (span[1] is None or span[1] == pinned.end)
        and (order is None or order is pinned_order)
    )
    if not same:
        raise _reject(
            "cursor",
            "the cursor continues another query: give the same keys, start, end and order "
            "as the first page, or leave them out",
            cursor,
        )
    return found, list(found.keys), pinned, pinned_order


AggQuery = Annotated[
    SeriesAggregate | None,
    Query(
        description="Aggregate over each bucket, or `none` for raw points. /series: default "
        "mean (none when a cursor is given), raw points paged with `limit` and `cursor`; "
        "/export: default none.",
    ),
]


async def series_request(
    settings: SettingsDep,
    clock: ClockDep,
    keys: KeysQuery = None,
    start: StartQuery = None,
    end: EndQuery = None,
    agg: AggQuery = None,
    bucket: BucketQuery = None,
    fill: FillQuery = None,
    tz: TzQuery = None,
    order: OrderQuery = None,
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_POINTS_PAGE,
            description="Raw points (agg=none) per page, over all keys; default "
            f"{DEFAULT_POINTS_PAGE}.",
        ),
    ] = None,
    cursor: Annotated[
        str | None,
        Query(
            pattern=CURSOR_PATTERN,
            description="`next_cursor` of the previous page (raw points): continues the same "
            "query, whose keys, start, end and order may then be left out.",
        ),
    ] = None,
) -> SeriesRequest:
    if agg is None:
        agg = SeriesAggregate.NONE if cursor is not None else SeriesAggregate.MEAN
    return _series_request(
        settings, clock, keys, start, end, agg, bucket, fill, tz, order, limit, cursor
    )


async def export_request(
    settings: SettingsDep,
    clock: ClockDep,
    keys: KeysQuery = None,
    start: StartQuery = None,
    end: EndQuery = None,
    agg: AggQuery = None,
    bucket: BucketQuery = None,
    fill: FillQuery = None,
    tz: TzQuery = None,
    order: OrderQuery = None,
) -> SeriesRequest:
    return _series_request(
        settings, clock, keys, start, end, agg or SeriesAggregate.NONE, bucket, fill, tz, order,
        None, None,
    )  # fmt: skip


def _series_request(
    settings: Settings,
    clock: Clock,
    keys: str | None,
    start: str | None,
    end: str | None,
    agg: SeriesAggregate,
    bucket: int | None,
    fill: str | None,
    tz: str | None,
    order: SortOrder | None,
    limit: int | None,
    cursor: str | None,
) -> SeriesRequest:
    begin, finish = parse_rfc3339("start", start), parse_rfc3339("end", end)
    wanted = parse_keys(keys)
    try:
        if agg is SeriesAggregate.NONE:
            for field, value in (("bucket", bucket), ("fill", fill), ("tz", tz)):
                if value is not None:
                    raise WindowError(
                        field, f"{field} applies to aggregates; agg=none gives raw points", value
                    )
            after = None
            if cursor is not None:
                found, wanted, span, order = _continue_points(
                    cursor, wanted, (begin, finish), order
                )
                after = found.position
            else:
                span = resolve_range(begin, finish, now=clock())
            order = order or SortOrder.ASC
            page = PointsWindow(
                span.start,
                span.end,
                limit if limit is not None else DEFAULT_POINTS_PAGE,
                order is SortOrder.DESC,
                after,
            )
            return SeriesRequest(wanted, None, page, order, span)
        for field, value in (("limit", limit), ("cursor", cursor)):
            if value is not None:
                raise WindowError(
                    field,
                    f"{field} pages raw points (agg=none); an aggregated series is bounded "
                    "by its buckets",
                    value,
                )
        span = resolve_range(begin, finish, now=clock())
        window = aggregated(
            span,
            bucket if bucket is not None else 60,
            Aggregate(agg.value),
            fill=parse_fill(fill),
            zone=parse_zone(tz),
            max_buckets=settings.max_buckets,
            metrics=len(wanted) if wanted else 1,
        )
        return SeriesRequest(wanted, window, None, order or SortOrder.ASC, span)
    except WindowError as exc:
        raise _window_error(exc) from None


SeriesRequestDep = Annotated[SeriesRequest, Depends(series_request)]
ExportRequestDep = Annotated[SeriesRequest, Depends(export_request)]


def check_window_budget(window: SeriesWindow, metrics: int, max_buckets: int) -> None:
    """422 (on bucket) if ``metrics`` metrics of ``window`` are more buckets than allowed."""
    try:
        check_bucket_budget(window, metrics, max_buckets)
    except WindowError as exc:
        raise _window_error(exc) from None


async def device_page(
    limit: Annotated[
        int, Query(ge=1, le=1000, description="Devices per page, ordered by tenant and id.")
    ] = 100,
    cursor: Annotated[
        str | None,
        Query(pattern=CURSOR_PATTERN, description="`next_cursor` of the previous page."),
    ] = None,
) -> tuple[int, DeviceCursor | None]:
    try:
        return limit, DeviceCursor.decode(cursor) if cursor is not None else None
    except CursorError as exc:
        raise _reject("cursor", str(exc), cursor) from None


DevicePageDep = Annotated[tuple[int, DeviceCursor | None], Depends(device_page)]
