"""Time-series storage behind one interface: InfluxDB (1.x/2.x/3 via the v1 API) or SQLite."""

from iotmon_contract import StatusEvent
from iotmon_storage.base import (
    DeviceSummary,
    LatestReading,
    Point,
    Position,
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
    "TimeSeriesStore",
    "bucket_grid",
    "count_buckets",
    "open_store",
]
