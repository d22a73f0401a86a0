"""The bridge's counters at one moment (read by its /metrics)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class BridgeSnapshot:
    """The bridge's counters and sizes at one moment."""

    readings: int = 0
    states_published: int = 0
    stale_readings: int = 0
    configs_published: int = 0
    configs_removed: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    registry_errors: int = 0
    entities: int = 0
    devices: int = 0
