"""The console's settings: ``IOTMON_API_CONSOLE__*``."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class ConsoleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules_dir: Path | None = Field(
        default=None,
        description="The alert service's rules folder (IOTMON_ALERTS_RULES_DIR): the bus "
        "view reads each tenant's fleet from its rule file's bus section. Unset: no buses.",
    )
    stream_poll_s: float = Field(
        default=0.5,
        gt=0,
        le=10,
        description="How often the live alert stream looks for changed alerts.",
    )
    stream_keepalive_s: float = Field(
        default=15.0,
        gt=0,
        le=300,
        description="A comment line this often keeps idle proxies from closing the stream.",
    )
    bus_window_h: float = Field(
        default=12.0,
        gt=0,
        le=72,
        description="How far back the bus view reads a bus's events (its current run).",
    )
    bus_max_events: int = Field(
        default=20_000,
        ge=100,
        le=200_000,
        description="Most events the bus view reads per tenant (the newest).",
    )
