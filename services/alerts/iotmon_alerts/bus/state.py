"""The core's memory: per bus its runs and evidence, per alert its lifecycle."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from iotmon_alerts.bus.availability import DeviceAvailability
from iotmon_alerts.bus.door import DoorLog, Passage
from iotmon_alerts.bus.fleet import Bus, Child
from iotmon_alerts.bus.notifications import (
    Evidence,
    NotificationKind,
    NotificationState,
    Recipient,
)
from iotmon_alerts.bus.track import Track
from iotmon_contract.alerts import AlertSeverity
from iotmon_contract.events import (
    DetectionEvent,
    OccupancyEvent,
    SweepCompleteEvent,
    SweepReadEvent,
    WalkthroughCheckEvent,
)

AfterRunEvent = (
    SweepReadEvent | SweepCompleteEvent | OccupancyEvent | DetectionEvent | WalkthroughCheckEvent
)
"""What a parked bus tells about its cabin after a run ends."""


@dataclass(slots=True)
class SweepTally:
    received: int = 0
    expected: int | None = None
    """``reads`` of its sweep_complete, once that arrived."""

    @property
    def complete(self) -> bool:
        return self.expected is not None and self.received >= self.expected


@dataclass(slots=True, eq=False)
class Run:
    """A run of a bus: from the previous run end to its own end, and what followed."""

    bus: str
    key: str
    run_id: str | None
    since: datetime | None
    """The previous run's end: the run's passages are those after it."""
    start: datetime | None
    end: datetime
    explicit: bool
    known_at: datetime
    decide_at: datetime
    stop: str | None = None
    decided: bool = False
    sweeps: dict[str, SweepTally] = field(default_factory=dict)
    strong: dict[str, datetime] = field(default_factory=dict)
    """Tags a sweep after the end heard at an inside-this-bus RSSI: first such read."""
    weak: set[str] = field(default_factory=set)
    people_max: int = 0
    """Most people a camera/radar reported after the end."""
    person_at: datetime | None = None
    """Device time of the first report of somebody."""
    empty_reports: list[datetime] = field(default_factory=list)
    """Device times of camera/radar reports of nobody after the end."""
    walkthrough: datetime | None = None
    occupancy_unknown: bool = False
    bus_empty_sent: bool = False
    alerts: dict[str, Alert] = field(default_factory=dict)
    """Latest alert per subject (tag, ``person`` or ``bus``)."""

    @property
    def sweep_complete(self) -> bool:
        return any(tally.complete for tally in self.sweeps.values())


@dataclass(slots=True, eq=False)
class Alert:
    """One alert instance: the same fingerprint from firing to resolution."""

    fingerprint: str
    kind: NotificationKind
    bus: str
    subject: str
    tag: str | None
    child: Child | None
    school: str
    evidence: Evidence | None
    severity: AlertSeverity
    fired_at: datetime
    event_time: datetime | None
    stop: str | None
    run: Run | None
    device: str | None = None
    generation: int = 0
    state: NotificationState = NotificationState.FIRING
    notified: set[Recipient] = field(default_factory=set)
    reminded: bool = False
    escalated: bool = False
    """Went past the driver and operator (school, and guardians unless held)."""
    next_repeat: datetime | None = None

    @property
    def closed(self) -> bool:
        return self.state in (NotificationState.ACKNOWLEDGED, NotificationState.RESOLVED)


@dataclass(slots=True, eq=False)
class PendingNotice:
    passage: Passage
    due: datetime


@dataclass(slots=True, eq=False)
class BusState:
    bus: Bus
    door: DoorLog
    track: Track = field(default_factory=Track)
    ignition: list[tuple[datetime, bool]] = field(default_factory=list)
    """Ignition changes by time: a bus with its ignition off stays where it was."""
    starts: list[datetime] = field(default_factory=list)
    """Ignition-on and run_start times, sorted: where runs begin."""
    run_ids: dict[datetime, str] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)
    """Ended runs, by end time."""
    pending_offs: list[datetime] = field(default_factory=list)
    """Ignition offs not yet placed (no fix close enough in time yet)."""
    notices: list[PendingNotice] = field(default_factory=list)
    orphans: list[AfterRunEvent] = field(default_factory=list)
    """After-run evidence (sweeps, camera/radar, walk-through) ahead of its run end."""
    availability: dict[str, DeviceAvailability] = field(default_factory=dict)
    reader_alerts: dict[str, Alert] = field(default_factory=dict)
    """Open reader_offline alerts by device."""
    reader_fired: set[tuple[str, datetime]] = field(default_factory=set)
    """(device, outage start) already alerted: one alert per outage."""

    def parked_at(self, ts: datetime) -> bool:
        """Whether the last ignition change before ``ts`` was an off."""
        index = bisect.bisect_right(self.ignition, ts, key=lambda change: change[0])
        return index > 0 and not self.ignition[index - 1][1]

    def last_end(self) -> datetime | None:
        return self.runs[-1].end if self.runs else None

    def end_before(self, ts: datetime) -> datetime | None:
        """The latest run end at or before ``ts``."""
        index = bisect.bisect_right(self.runs, ts, key=lambda r: r.end)
        return self.runs[index - 1].end if index else None

    def open_since(self) -> datetime | None:
        """Start of the run under way: the first start after the last end, if any."""
        last = self.last_end()
        index = 0 if last is None else bisect.bisect_right(self.starts, last)
        return self.starts[index] if index < len(self.starts) else None

    def next_start(self, after: datetime) -> datetime | None:
        index = bisect.bisect_right(self.starts, after)
        return self.starts[index] if index < len(self.starts) else None

    def run_containing(self, ts: datetime) -> Run | None:
        """The ended run whose span (previous end, end] holds ``ts``."""
        index = bisect.bisect_left(self.runs, ts, key=lambda r: r.end)
        return self.runs[index] if index < len(self.runs) else None

    def run_after(self, ts: datetime, tolerance: timedelta) -> Run | None:
        """The run whose parked time holds ``ts``: from its end (less the tolerance for
        clock skew) until the bus starts again."""
        index = bisect.bisect_right(self.runs, ts + tolerance, key=lambda r: r.end)
        if not index:
            return None
        run = self.runs[index - 1]
        restart = self.next_start(run.end)
        if restart is not None and ts >= restart:
            return None
        return run

    def previous_end(self, run: Run) -> datetime | None:
        return run.since
