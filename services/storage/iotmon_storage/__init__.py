"""Time-series storage behind one interface: InfluxDB (1.x/2.x/3 via the v1 API) or SQLite."""

from iotmon_contract import StatusEvent
from iotmon_storage.base import (
    AlertEvent,
    DeviceSummary,
    LatestReading,
    Point,
    Position,
    StoredEvent,
    StoreError,
    StoreRefused,
    StoreUnavailable,
    TimeSeriesStore,
)
from iotmon_storage.buckets import (
    Aggregate,
    Bucket,
    BucketGrid,
    Fill,
    FillMode,
    bucket_grid,
    count_buckets,
)
from iotmon_storage.factory import StoreSettings, open_store

__all__ = [
    "Aggregate",
    "AlertEvent",
    "Bucket",
    "BucketGrid",
    "DeviceSummary",
    "Fill",
    "FillMode",
    "LatestReading",
    "Point",
    "Position",
    "StatusEvent",
    "StoreError",
    "StoreRefused",
    "StoreSettings",
    "StoreUnavailable",
    "StoredEvent",
    "TimeSeriesStore",
    "bucket_grid",
    "count_buckets",
    "open_store",
]
