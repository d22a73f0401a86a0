"""Choose and open a store from settings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from iotmon_storage.base import TimeSeriesStore


class StoreSettings(BaseModel):
    """Where time series live; nested in each service's Settings (``…__STORE__…`` env vars)."""

    backend: Literal["influxdb", "sqlite"] = Field(
        default="influxdb", description="influxdb (1.x/2.x/3 via the v1 API) or sqlite (embedded)."
    )
    url: str = Field(default="http://127.0.0.1:8086", description="InfluxDB base URL.")
    database: str = Field(default="iotmon", min_length=1, description="InfluxDB database/bucket.")
    username: str | None = Field(default=None, description="InfluxDB 1.x user.")
    password: SecretStr | None = Field(default=None, description="InfluxDB 1.x password.")
    token: SecretStr | None = Field(default=None, description="InfluxDB 2.x/3 token.")
    retention_policy: str | None = Field(default=None, description="InfluxDB retention policy.")
    timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="InfluxDB: seconds to connect and to wait for each read or write on the "
        "socket; a request that takes longer fails as 'store unavailable'. Services that "
        "must not stall on a hung store set a shorter default (ingest: 5 s).",
    )
    sqlite_path: Path = Field(default=Path("iotmon.db"), description="SQLite file (sqlite).")


def open_store(settings: StoreSettings) -> TimeSeriesStore:
    if settings.backend == "sqlite":
        from iotmon_storage.sqlite import SqliteStore

        return SqliteStore(settings.sqlite_path)
    from iotmon_storage.influx import InfluxStore

    return InfluxStore(
        settings.url,
        settings.database,
        username=settings.username,
        password=settings.password.get_secret_value() if settings.password else None,
        token=settings.token.get_secret_value() if settings.token else None,
        retention_policy=settings.retention_policy,
        timeout=settings.timeout_s,
    )
