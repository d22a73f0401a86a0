"""Response models of the API (``XPublic``): what clients see, decoupled from storage records."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from iotmon_contract import DeadLetterReason
from iotmon_storage import Aggregate


class PublicModel(BaseModel):
    model_config = ConfigDict(frozen=True)


class DeviceStatePublic(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    UNKNOWN = "unknown"


class HealthPublic(PublicModel):
    status: Literal["ok", "unavailable"]
    store: str = Field(description="Store backend: influxdb or sqlite.")
    detail: str | None = Field(default=None, description="Why the service is not healthy.")


class DevicePublic(PublicModel):
    tenant: str
    device: str
    state: DeviceStatePublic = Field(description="Last availability; unknown if never reported.")
    last_seen: datetime | None = Field(description="When ingest last stored its telemetry.")
    state_since: datetime | None = Field(description="When the current state was reported.")


class DevicesPublic(PublicModel):
    data: list[DevicePublic]
    count: int


class LatestReadingPublic(PublicModel):
    metric: str
    value: float
    unit: str | None
    ts: datetime


class LatestPublic(PublicModel):
    tenant: str
    device: str
    data: list[LatestReadingPublic] = Field(description="Newest reading of each metric.")
    count: int


class BucketPublic(PublicModel):
    start: datetime = Field(description="Start of the bucket (inclusive).")
    value: float | None = Field(description="The aggregate over the bucket.")
    count: int | None = Field(description="Readings in the bucket.")


class SeriesPublic(PublicModel):
    tenant: str
    device: str
    metric: str
    start: datetime
    end: datetime
    bucket: int = Field(description="Bucket width in seconds.")
    agg: Aggregate
    data: list[BucketPublic] = Field(description="Buckets holding readings; empty ones omitted.")
    count: int


class DeadLetterPublic(PublicModel):
    service: str
    reason: DeadLetterReason
    detail: str
    topic: str
    payload_excerpt: str
    payload_bytes: int
    received_at: datetime


class DeadLettersPublic(PublicModel):
    data: list[DeadLetterPublic] = Field(description="Newest first.")
    count: int


class ChildPublic(PublicModel):
    tenant: str
    child: str
    name: str
    tags: list[str] = Field(description="Tag ids the child carries (RFID/BLE).")


class ChildrenPublic(PublicModel):
    data: list[ChildPublic]
    count: int


class PrincipalPublic(PublicModel):
    """Who the request's token speaks for, and its scope."""

    kind: Literal["operator", "facility", "guardian", "service"]
    name: str
    tenant: str | None = Field(description="Its tenant; none for a service (every tenant).")
    sites: list[str] = Field(description="A facility's sites.")
    guardian: str | None = Field(description="A guardian principal's guardian id.")
    token_id: str | None = Field(description="The registry token's public id (None: static).")
