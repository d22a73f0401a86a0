"""Settings of the bus-safety rules: thresholds, waits and delays, validated with bounds.

The defaults are the design's (see docs/school-bus.md); ``iotmon bench bus`` measures
what the guardian delay, the second sensor and the walk-through reminder each buy.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class BusRules(BaseModel):
    """How the school-bus rules decide; every wait is in seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    duplicate_window_s: float = Field(
        default=20.0,
        ge=1,
        le=120,
        description="Reads of one tag in one direction this close together are one passage.",
    )
    door_rssi_min_dbm: float = Field(
        default=-70.0,
        ge=-150,
        le=30,
        description="Door reads weaker than this are another door's (a neighbouring bus).",
    )
    sweep_inside_rssi_dbm: float = Field(
        default=-66.0,
        ge=-150,
        le=30,
        description="Sweep reads at least this strong mean the tag is inside this bus.",
    )
    decision_wait_s: float = Field(
        default=30.0,
        ge=0,
        le=55,
        description="Longest wait after a run end for the cabin sweep before deciding.",
    )
    notice_position_wait_s: float = Field(
        default=20.0,
        ge=0,
        le=55,
        description="Longest wait for a GPS fix after a door read before its notice goes out.",
    )
    position_window_s: float = Field(
        default=60.0,
        ge=1,
        le=600,
        description="A fix further than this in time from a read does not place it.",
    )
    stop_radius_m: float = Field(
        default=250.0, gt=0, le=5000, description="A place further than this is no stop."
    )
    run_end_position_window_s: float = Field(
        default=120.0,
        ge=1,
        le=1800,
        description="A fix this close in time to an ignition off says where the bus is.",
    )
    skew_tolerance_s: float = Field(
        default=10.0,
        ge=0,
        le=60,
        description="Clock skew between a bus's devices allowed for at a run's boundaries.",
    )
    walkthrough_reminder_s: float = Field(
        default=180.0,
        ge=0,
        le=3600,
        description="A counted-only alert not cleared by a walk-through by then is reminded.",
    )
    guardian_delay_s: float = Field(
        default=600.0,
        ge=0,
        le=7200,
        description="A counted-only alert still open after this goes to school and guardians.",
    )
    repeat_s: float = Field(
        default=600.0, ge=30, le=86400, description="An escalated alert is repeated this often."
    )
    reader_offline_after_s: float = Field(
        default=60.0,
        ge=1,
        le=3600,
        description="A reader offline this long mid-run is a warning; occupancy is unknown.",
    )
    empty_cabin_holds_guardians: bool = Field(
        default=True,
        description="A camera/radar that saw nobody keeps a counted-only alert from the "
        "guardians (it still escalates to the school).",
    )
    run_retention_s: float = Field(
        default=36 * 3600.0,
        ge=3600,
        le=14 * 86400,
        description="Runs with no open alert are forgotten after this.",
    )

    @model_validator(mode="after")
    def _reminder_before_escalation(self) -> Self:
        if self.walkthrough_reminder_s > self.guardian_delay_s:
            raise ValueError("walkthrough_reminder_s must not exceed guardian_delay_s")
        return self
