"""Response models of the API (``XPublic``): what clients see, decoupled from storage records."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from iotmon_alerts.routing import SubscriptionFilter
from iotmon_api.window import SeriesAggregate, SortOrder
from iotmon_contract import PRINTABLE_PATTERN, AlertSeverity, AlertState, DeadLetterReason
from iotmon_contract.topics import IDENTIFIER_PATTERN
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
    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "data": [
                        {
                            "tenant": "acme",
                            "device": "env-1",
                            "state": "online",
                            "last_seen": "2026-11-25T10:09:58.120Z",
                            "state_since": "2026-11-25T08:00:00Z",
                        }
                    ],
                    "count": 1,
                    "next_cursor": "WzEsImRldmljZXMiLCJhY21lIiwiZW52LTEiXQ",
                }
            ]
        },
    )

    data: list[DevicePublic] = Field(description="This page, ordered by tenant and device.")
    count: int = Field(description="Devices on this page.")
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; null on the last."
    )


class LatestReadingPublic(PublicModel):
    metric: str
    value: float
    unit: str | None
    ts: datetime


class LatestPublic(PublicModel):
    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "tenant": "acme",
                    "device": "env-1",
                    "data": [
                        {
                            "metric": "humidity",
                            "value": 48.5,
                            "unit": "%",
                            "ts": "2026-11-25T10:09:00Z",
                        },
                        {
                            "metric": "temperature",
                            "value": 21.4,
                            "unit": "degC",
                            "ts": "2026-11-25T10:09:30Z",
                        },
                    ],
                    "count": 2,
                }
            ]
        },
    )

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
    fill: str = Field(default="none", description="How empty buckets were filled.")
    tz: str | None = Field(default=None, description="The zone of day buckets (None: UTC).")
    data: list[BucketPublic] = Field(
        description="Buckets holding readings (with a fill other than none, every bucket)."
    )
    count: int


class PointPublic(PublicModel):
    ts: datetime = Field(description="The reading's time, or the start of its bucket.")
    value: float | None = Field(description="The reading, or the bucket's aggregate (or fill).")
    count: int | None = Field(
        default=None, description="Readings in the bucket (0: filled); null for a raw point."
    )


class MetricSeriesPublic(PublicModel):
    metric: str
    data: list[PointPublic]
    count: int = Field(description="Points or buckets of this metric in the answer.")


_SERIES_EXAMPLE: JsonDict = {
    "tenant": "acme",
    "device": "env-1",
    "start": "2026-11-25T10:00:00Z",
    "end": "2026-11-25T10:10:00Z",
    "agg": "mean",
    "bucket": 300,
    "fill": "null",
    "tz": None,
    "order": "asc",
    "data": [
        {
            "metric": "temperature",
            "data": [
                {"ts": "2026-11-25T10:00:00Z", "value": 22.0, "count": 5},
                {"ts": "2026-11-25T10:05:00Z", "value": 27.0, "count": 5},
            ],
            "count": 2,
        },
        {
            "metric": "humidity",
            "data": [
                {"ts": "2026-11-25T10:00:00Z", "value": 42.0, "count": 3},
                {"ts": "2026-11-25T10:05:00Z", "value": None, "count": 0},
            ],
            "count": 2,
        },
    ],
    "count": 2,
    "next_cursor": None,
}


class MultiSeriesPublic(PublicModel):
    """Several metrics of one device over one window: buckets, or a page of raw points."""

    model_config = ConfigDict(frozen=True, json_schema_extra={"examples": [_SERIES_EXAMPLE]})

    tenant: str
    device: str
    start: datetime = Field(description="The window's start (inclusive), as resolved.")
    end: datetime = Field(description="The window's end (exclusive), as resolved.")
    agg: SeriesAggregate
    bucket: int | None = Field(description="Bucket width in seconds; null for raw points.")
    fill: str | None = Field(description="How empty buckets were filled; null for raw points.")
    tz: str | None = Field(description="The zone of day buckets; null: UTC.")
    order: SortOrder
    data: list[MetricSeriesPublic] = Field(description="One entry per metric, as asked.")
    count: int = Field(description="Metrics in data.")
    next_cursor: str | None = Field(
        default=None,
        description="Raw points: pass as `cursor` for the next page; null on the last.",
    )


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


# -- alerts ---------------------------------------------------------------------------


class SubjectPublic(PublicModel):
    device: str | None = None
    site: str | None = None
    bus: str | None = None
    child: str | None = None


class RecipientPublic(PublicModel):
    role: str = Field(description="driver, operator, school, guardian or facility.")
    id: str


class AlertPublic(PublicModel):
    id: int = Field(description="This alert's row: one alert from its firing to its resolution.")
    tenant: str
    fingerprint: str = Field(description="Identity of the condition across its state changes.")
    rule: str
    state: AlertState
    active: bool
    severity: AlertSeverity
    subject: SubjectPublic
    summary: str
    details: dict[str, Any]
    recipients: list[RecipientPublic]
    starts_at: datetime
    ts: datetime = Field(description="When it entered its state.")
    acknowledged_by: str | None
    ack_reason: str | None


class AlertsPublic(PublicModel):
    data: list[AlertPublic] = Field(description="Newest change first.")
    count: int


class AcknowledgeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        min_length=1,
        max_length=500,
        pattern=PRINTABLE_PATTERN,
        description="Why: shown with the alert and sent to its subscribers.",
    )


class ActionPublic(PublicModel):
    id: int
    tenant: str
    kind: str
    fingerprint: str
    by: str
    reason: str
    state: Literal["pending", "done", "failed"] = Field(
        description="pending until the alert service applies it (within a second or so)."
    )
    result: str | None
    created_at: datetime


class NoticePublic(PublicModel):
    id: int
    tenant: str
    kind: str
    ts: datetime
    subject: SubjectPublic
    summary: str
    data: dict[str, Any]
    recipients: list[RecipientPublic]


class NoticesPublic(PublicModel):
    data: list[NoticePublic]
    count: int


Matchers = dict[
    Literal["rule", "severity", "state", "device", "site", "bus", "child", "kind"],
    Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:*?\[\]!-]+$")],
]


class SilenceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: str = Field(pattern=IDENTIFIER_PATTERN)
    matchers: Matchers = Field(
        description="Label → pattern (shell-style); all must match. Empty: every alert."
    )
    starts_at: datetime | None = Field(default=None, description="Default: now.")
    duration_s: int = Field(ge=60, le=30 * 86_400, description="How long it holds.")
    comment: str = Field(min_length=1, max_length=500, pattern=PRINTABLE_PATTERN)


class SilencePublic(PublicModel):
    id: str
    tenant: str
    matchers: dict[str, str]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    active: bool


class SilencesPublic(PublicModel):
    data: list[SilencePublic]
    count: int


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: str = Field(pattern=IDENTIFIER_PATTERN)
    url: str = Field(
        min_length=8,
        max_length=2000,
        pattern=r"^https?://[^\s]+$",
        description="Where to POST (http or https).",
    )
    filter: SubscriptionFilter = Field(default_factory=SubscriptionFilter)
    description: str = Field(default="", max_length=200, pattern=PRINTABLE_PATTERN)


class SubscriptionPublic(PublicModel):
    id: str
    tenant: str
    owner: Literal["tenant", "facility", "guardian"] = Field(
        description="Whose: an operator's (the tenant), a facility's (its sites), a guardian's."
    )
    sites: list[str]
    guardian: str | None
    url: str
    filter: SubscriptionFilter
    description: str
    enabled: bool


class SubscriptionCreated(SubscriptionPublic):
    secret: str = Field(
        description="The signing secret (Standard Webhooks, whsec_…): shown once, keep it."
    )


class SubscriptionsPublic(PublicModel):
    data: list[SubscriptionPublic]
    count: int


class DeliveryPublic(PublicModel):
    id: str = Field(description="The webhook-id: the same on every attempt.")
    subscription: str
    tenant: str
    event_type: str
    state: Literal["pending", "delivered", "dead"]
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    last_status: int | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveriesPublic(PublicModel):
    data: list[DeliveryPublic]
    count: int
