"""Time-series storage behind one interface: InfluxDB (1.x/2.x/3 via the v1 API) or SQLite."""

from iotmon_contract import StatusEvent
from iotmon_storage.base import (
    Aggregate,
    AlertEvent,
    Bucket,
    DeviceSummary,
    LatestReading,
    StoredEvent,
    StoreError,
    StoreRefused,
    StoreUnavailable,
    TimeSeriesStore,
)
from iotmon_storage.factory import StoreSettings, open_store

__all__ = [
    "Aggregate",
    "AlertEvent",
    "Bucket",
    "DeviceSummary",
    "LatestReading",
    "StatusEvent",
    "StoreError",
    "StoreRefused",
    "StoreSettings",
    "StoreUnavailable",
    "StoredEvent",
    "TimeSeriesStore",
    "open_store",
]
