"""Data access for the routes: call the store or the registry, map records to public schemas.

Store calls block (HTTP to InfluxDB, SQLite), so routes that use these are plain
``def`` functions, which FastAPI runs in its thread pool.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from iotmon_api.catalog import MetricCatalog
from iotmon_api.cursors import DeviceCursor, PointsCursor
from iotmon_api.problems import NotFound
from iotmon_api.schemas import (
    BucketPublic,
    ChildPublic,
    ChildrenPublic,
    DeadLetterPublic,
    DeadLettersPublic,
    DevicePublic,
    DevicesPublic,
    DeviceStatePublic,
    LatestPublic,
    LatestReadingPublic,
    MetricSeriesPublic,
    MultiSeriesPublic,
    PointPublic,
    SeriesPublic,
)
from iotmon_api.scope import ChildScope, DeviceScope
from iotmon_api.series_params import SeriesRequest, check_window_budget
from iotmon_api.window import SeriesAggregate, SeriesWindow, SortOrder
from iotmon_contract.validation import to_ns
from iotmon_registry import Child, Registry
from iotmon_storage import Bucket, LatestReading, Point, Position, TimeSeriesStore


def list_devices(
    store: TimeSeriesStore, scope: DeviceScope, limit: int, after: DeviceCursor | None
) -> DevicesPublic:
    """One page of the devices in scope, ordered by (tenant, device), after ``after``."""
    if scope.devices is not None and not scope.devices:
        return DevicesPublic(data=[], count=0)
    position = (after.tenant, after.device) if after is not None else None
    devices: list[DevicePublic] = []
    more = False
    # The store lists devices sorted by (tenant, device): the page is a slice of it.
    for summary in store.devices(scope.tenant):
        if scope.devices is not None and summary.device not in scope.devices:
            continue
        if position is not None and (summary.tenant, summary.device) <= position:
            continue
        if len(devices) == limit:
            more = True
            break
        devices.append(
            DevicePublic(
                tenant=summary.tenant,
                device=summary.device,
                state=DeviceStatePublic(summary.state.value)
                if summary.state is not None
                else DeviceStatePublic.UNKNOWN,
                last_seen=summary.last_seen,
                state_since=summary.state_since,
            )
        )
    next_cursor = DeviceCursor(devices[-1].tenant, devices[-1].device).encode() if more else None
    return DevicesPublic(data=devices, count=len(devices), next_cursor=next_cursor)


def latest_readings(
    found: list[LatestReading], tenant: str, device: str, keys: list[str] | None = None
) -> LatestPublic:
    """The newest reading of each metric (of ``keys``) of ``found``; 404 for a device
    without readings or a key it never reported."""
    if not found:
        raise NotFound(f"device {tenant}/{device} has no readings")
    if keys is not None:
        by_metric = {r.metric: r for r in found}
        missing = [key for key in keys if key not in by_metric]
        if missing:
            names = ", ".join(repr(key) for key in missing)
            raise NotFound(f"device {tenant}/{device} has no metric {names}")
        found = [by_metric[key] for key in keys]
    readings = [
        LatestReadingPublic(metric=r.metric, value=r.value, unit=r.unit, ts=r.ts) for r in found
    ]
    return LatestPublic(tenant=tenant, device=device, data=readings, count=len(readings))


def read_series(
    store: TimeSeriesStore,
    catalog: MetricCatalog,
    tenant: str,
    device: str,
    metric: str,
    window: SeriesWindow,
) -> SeriesPublic:
    catalog.resolve(tenant, device, [metric])
    found = store.aggregate(tenant, device, [metric], window.grid(), window.agg, window.fill)
    buckets = [BucketPublic(start=b.start, value=b.value, count=b.count) for b in found[metric]]
    return SeriesPublic(
        tenant=tenant,
        device=device,
        metric=metric,
        start=window.start,
        end=window.end,
        bucket=window.bucket,
        agg=window.agg,
        fill=str(window.fill),
        tz=window.zone.key if window.zone is not None else None,
        data=buckets,
        count=len(buckets),
    )


def _bucket_points(buckets: list[Bucket], order: SortOrder) -> list[PointPublic]:
    points = [PointPublic(ts=b.start, value=b.value, count=b.count) for b in buckets]
    return points[::-1] if order is SortOrder.DESC else points


def read_points(
    store: TimeSeriesStore, tenant: str, device: str, keys: list[str], request: SeriesRequest
) -> tuple[list[Point], str | None]:
    """One page of raw points and the cursor of the next (None on the last page)."""
    page = request.points
    assert page is not None
    start_ns, end_ns = to_ns(page.start), to_ns(page.end)
    # One more than asked: whether another page follows, without an empty last page.
    found = store.points(
        tenant, device, keys, start_ns, end_ns,
        limit=page.limit + 1, after=page.after, descending=page.descending,
    )  # fmt: skip
    if len(found) <= page.limit:
        return found, None
    found = found[: page.limit]
    last = found[-1]
    cursor = PointsCursor(
        tuple(keys), start_ns, end_ns, page.descending, Position(last.ts_ns, last.metric)
    )
    return found, cursor.encode()


def read_multi_series(
    store: TimeSeriesStore,
    catalog: MetricCatalog,
    tenant: str,
    device: str,
    request: SeriesRequest,
    max_buckets: int,
) -> MultiSeriesPublic:
    keys = catalog.resolve(tenant, device, request.keys)
    window = request.window
    next_cursor = None
    if window is not None:
        if request.keys is None:
            check_window_budget(window, len(keys), max_buckets)
        found = store.aggregate(tenant, device, keys, window.grid(), window.agg, window.fill)
        data = [
            MetricSeriesPublic(
                metric=key, data=_bucket_points(found[key], request.order), count=len(found[key])
            )
            for key in keys
        ]
    else:
        points, next_cursor = read_points(store, tenant, device, keys, request)
        per_metric: dict[str, list[PointPublic]] = {key: [] for key in keys}
        for point in points:
            per_metric[point.metric].append(PointPublic(ts=point.ts, value=point.value))
        data = [
            MetricSeriesPublic(metric=key, data=per_metric[key], count=len(per_metric[key]))
            for key in keys
        ]
    return MultiSeriesPublic(
        tenant=tenant,
        device=device,
        start=request.span.start,
        end=request.span.end,
        agg=SeriesAggregate(window.agg.value) if window is not None else SeriesAggregate.NONE,
        bucket=window.bucket if window is not None else None,
        fill=str(window.fill) if window is not None else None,
        tz=window.zone.key if window is not None and window.zone is not None else None,
        order=request.order,
        data=data,
        count=len(data),
        next_cursor=next_cursor,
    )


EXPORT_PAGE = 5000
"""Raw points read from the store per query while a CSV export streams."""


def _csv_time(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def export_csv(
    store: TimeSeriesStore,
    catalog: MetricCatalog,
    tenant: str,
    device: str,
    request: SeriesRequest,
    max_buckets: int,
) -> Iterator[str]:
    """CSV of the request's window, in chunks: ``ts,metric,value`` rows of raw points, or
    ``ts,metric,value,count`` rows of buckets, ordered by time, then metric.

    The first chunk is computed when the first ``next()`` is called: a caller that
    calls it before answering turns an unknown metric or a store outage into a
    problem response instead of a truncated file.
    """
    keys = catalog.resolve(tenant, device, request.keys)
    window = request.window
    descending = request.order is SortOrder.DESC
    if window is not None:
        if request.keys is None:
            check_window_budget(window, len(keys), max_buckets)
        found = store.aggregate(tenant, device, keys, window.grid(), window.agg, window.fill)
        rank = {key: index for index, key in enumerate(keys)}
        rows = sorted(
            ((b.start, key, b) for key in keys for b in found[key]),
            key=lambda row: (row[0], rank[row[1]]),
            reverse=descending,
        )
        lines = ["ts,metric,value,count\r\n"]
        for start, key, bucket in rows:
            value = "" if bucket.value is None else repr(bucket.value)
            count = "" if bucket.count is None else bucket.count
            lines.append(f"{_csv_time(start)},{key},{value},{count}\r\n")
        yield "".join(lines)
        return
    page = request.points
    assert page is not None
    start_ns, end_ns = to_ns(page.start), to_ns(page.end)
    after: Position | None = None
    header = "ts,metric,value\r\n"
    while True:
        points = store.points(
            tenant, device, keys, start_ns, end_ns,
            limit=EXPORT_PAGE, after=after, descending=descending,
        )  # fmt: skip
        yield header + "".join(f"{_csv_time(p.ts)},{p.metric},{p.value!r}\r\n" for p in points)
        header = ""
        if len(points) < EXPORT_PAGE:
            return
        after = Position(points[-1].ts_ns, points[-1].metric)


def list_dead_letters(
    store: TimeSeriesStore, limit: int, topic_prefixes: list[str] | None
) -> DeadLettersPublic:
    letters = [
        DeadLetterPublic(
            service=d.service,
            reason=d.reason,
            detail=d.detail,
            topic=d.topic,
            payload_excerpt=d.payload_excerpt,
            payload_bytes=d.payload_bytes,
            received_at=d.received_at,
        )
        for d in store.dead_letters(limit, topic_prefixes)
    ]
    return DeadLettersPublic(data=letters, count=len(letters))


def _child(child: Child) -> ChildPublic:
    return ChildPublic(
        tenant=child.tenant, child=child.child, name=child.name, tags=list(child.tags)
    )


def list_children(registry: Registry, scope: ChildScope) -> ChildrenPublic:
    children = [_child(c) for c in registry.children(scope.tenant, guardian=scope.guardian)]
    return ChildrenPublic(data=children, count=len(children))


def read_child(registry: Registry, tenant: str, child: str) -> ChildPublic | None:
    found = registry.child(tenant, child)
    return _child(found) if found is not None else None
