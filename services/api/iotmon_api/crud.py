"""Data access for the routes: call the store or the registry, map records to public schemas.

Store calls block (HTTP to InfluxDB, SQLite), so routes that use these are plain
``def`` functions, which FastAPI runs in its thread pool.
"""

from __future__ import annotations

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
    SeriesPublic,
)
from iotmon_api.scope import ChildScope, DeviceScope
from iotmon_api.window import SeriesWindow
from iotmon_registry import Child, Registry
from iotmon_storage import TimeSeriesStore


def list_devices(store: TimeSeriesStore, scope: DeviceScope) -> DevicesPublic:
    if scope.devices is not None and not scope.devices:
        return DevicesPublic(data=[], count=0)
    devices = [
        DevicePublic(
            tenant=summary.tenant,
            device=summary.device,
            state=DeviceStatePublic(summary.state.value)
            if summary.state is not None
            else DeviceStatePublic.UNKNOWN,
            last_seen=summary.last_seen,
            state_since=summary.state_since,
        )
        for summary in store.devices(scope.tenant)
        if scope.devices is None or summary.device in scope.devices
    ]
    return DevicesPublic(data=devices, count=len(devices))


def latest_readings(store: TimeSeriesStore, tenant: str, device: str) -> LatestPublic:
    readings = [
        LatestReadingPublic(metric=r.metric, value=r.value, unit=r.unit, ts=r.ts)
        for r in store.latest(tenant, device)
    ]
    return LatestPublic(tenant=tenant, device=device, data=readings, count=len(readings))


def read_series(
    store: TimeSeriesStore, tenant: str, device: str, metric: str, window: SeriesWindow
) -> SeriesPublic:
    buckets = [
        BucketPublic(start=b.start, value=b.value, count=b.count)
        for b in store.series(
            tenant, device, metric, window.start, window.end, window.bucket, window.agg
        )
    ]
    return SeriesPublic(
        tenant=tenant,
        device=device,
        metric=metric,
        start=window.start,
        end=window.end,
        bucket=window.bucket,
        agg=window.agg,
        data=buckets,
        count=len(buckets),
    )


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
