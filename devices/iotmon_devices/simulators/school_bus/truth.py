"""What really happened in a simulated day, for scoring the replay: who was left aboard
and what evidence the devices had of them, every passage, every driver's check."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

TRUTH_VERSION = 1


@dataclass(slots=True)
class LeftAboard:
    """Somebody (or a tag) physically inside the bus at the run end."""

    child: str | None
    """The child, or None for a tag without its child (lost or visitor tag)."""
    tag: str | None
    """The tag inside the bus, or None for a child riding without theirs."""
    registered: bool
    door_evidence: bool
    """Their boarding passage was read by the door reader."""
    sweep_rssi: float | None = None
    """The strongest read of the tag in the run-end sweep, if it was heard."""
    presence_seen: bool = False
    """A camera/radar report after the run end counted them."""
    found_at: float | None = None
    """When the driver took them (or the tag) off, epoch seconds; None: not on this run."""


@dataclass(slots=True)
class TruthPassage:
    child: str | None
    tag: str | None
    place: str
    direction: str
    time: float
    read: bool


@dataclass(slots=True)
class TruthRun:
    bus: str
    period: str
    day: str
    run_id: str
    start: float
    end: float
    """True run end (end-of-run button or ignition off in the depot), epoch seconds."""
    explicit_end: bool
    driver: str
    """prompt, late or never: when this driver would press the check on their own."""
    walkthrough_at: float | None = None
    reminded_press: bool = False
    """The press came because of the operator's reminder."""
    left_aboard: list[LeftAboard] = field(default_factory=list)
    reader_outage_mid: str | None = None
    reader_outage_end: str | None = None
    link_outage: bool = False
    gps_dropout: bool = False
    swept: bool = False
    passages: list[TruthPassage] = field(default_factory=list)

    @property
    def children_aboard(self) -> list[LeftAboard]:
        return [item for item in self.left_aboard if item.child is not None]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
