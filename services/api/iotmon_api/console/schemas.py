"""What the console's own routes answer: bus views and camera events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from iotmon_api.schemas import PublicModel


class ChildAboardPublic(PublicModel):
    tag: str
    child: str | None = Field(description="None: a tag the fleet does not know.")
    name: str
    boarded_at: datetime


class SweepReadPublic(PublicModel):
    tag: str
    child: str | None
    rssi: float
    inside: bool = Field(description="Strong enough to be inside this bus.")
    ts: datetime


class SweepPublic(PublicModel):
    sweep_id: str
    started_at: datetime
    finished_at: datetime | None
    expected: int | None
    received: int
    complete: bool
    after_run_end: bool = Field(description="It is the last run's sweep.")
    reads: list[SweepReadPublic]


class PositionPublic(PublicModel):
    lat: float
    lon: float
    ts: datetime
    place: str | None


class PeopleSeenPublic(PublicModel):
    people: int
    ts: datetime
    device: str
    snapshot_url: str | None


class BusViewPublic(PublicModel):
    tenant: str
    bus: str
    driver: str
    route: str
    phase: str = Field(description="under_way, ended or unknown.")
    run: str | None
    run_started_at: datetime | None
    run_ended_at: datetime | None
    run_end_place: str | None
    aboard: list[ChildAboardPublic] = Field(description="Children the door count has aboard.")
    last_sweep: SweepPublic | None
    position: PositionPublic | None
    ignition_on: bool | None
    people_seen: PeopleSeenPublic | None
    events: int = Field(description="Stored events the view was derived from.")


class BusViewsPublic(PublicModel):
    data: list[BusViewPublic]
    count: int


class CameraEventPublic(PublicModel):
    tenant: str
    device: str
    type: str
    seq: int
    ts: datetime
    snapshot_url: str | None
    clip_url: str | None
    data: dict[str, Any] = Field(description="The event's own fields.")


class CameraEventsPublic(PublicModel):
    data: list[CameraEventPublic]
    count: int
