"""A bus as an operator looks at it: its run, the children counted aboard, its last sweep.

Pure, like the core: ``bus_view`` runs a fresh ``BusSafetyEngine`` over a bus's stored
events (device time order) and reads the runs and door passages it derived, so the view
counts exactly as the rules do (duplicate reads, directionless reads, run ends placed by
GPS) without reaching into the running alert service's memory. The last sweep is read
from the events themselves: the core keeps tallies, not the reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from iotmon_alerts.bus.engine import BusSafetyEngine
from iotmon_alerts.bus.events import BusEvent
from iotmon_alerts.bus.fleet import Fleet
from iotmon_alerts.bus.geo import nearest_place
from iotmon_alerts.bus.rules import BusRules
from iotmon_alerts.bus.state import BusState
from iotmon_contract.events import (
    IgnitionEvent,
    OccupancyEvent,
    PositionEvent,
    SweepCompleteEvent,
    SweepReadEvent,
)

_JUST_BEFORE = timedelta(microseconds=1)


class RunPhase(StrEnum):
    UNDER_WAY = "under_way"
    """A run started after the last run end: ``aboard`` is who is aboard now."""
    ENDED = "ended"
    """The last run ended and no run started since: ``aboard`` is who the door count left
    aboard at the end and nobody has read at the door since."""
    UNKNOWN = "unknown"
    """No run start or end among the events: ``aboard`` counts every passage read."""


@dataclass(frozen=True, slots=True)
class ChildAboard:
    tag: str
    child: str | None
    """None: a tag the fleet does not know (a visitor's, a lost one)."""
    name: str
    boarded_at: datetime
    """Device time of the passage that left the tag aboard."""


@dataclass(frozen=True, slots=True)
class SweepRead:
    tag: str
    child: str | None
    rssi: float
    inside: bool
    """At least ``sweep_inside_rssi_dbm``: heard inside this bus, not a neighbour's."""
    ts: datetime


@dataclass(frozen=True, slots=True)
class SweepSummary:
    sweep_id: str
    started_at: datetime
    """Device time of its first read (or of its completion, when it heard nothing)."""
    finished_at: datetime | None
    """Device time of its sweep_complete; None while it has not arrived."""
    expected: int | None
    """Reads its sweep_complete announced."""
    reads: tuple[SweepRead, ...]
    """Each tag once, at its strongest read, strongest first."""
    received: int
    """Reads received (repeats of a tag included)."""
    after_run_end: bool
    """It began after the last run end (less the skew tolerance): it is that run's sweep."""

    @property
    def complete(self) -> bool:
        return self.expected is not None and self.received >= self.expected


@dataclass(frozen=True, slots=True)
class Position:
    lat: float
    lon: float
    ts: datetime
    place: str | None
    """The route's stop, school or depot within ``stop_radius_m``, if any."""


@dataclass(frozen=True, slots=True)
class PeopleSeen:
    people: int
    ts: datetime
    device: str
    snapshot_url: str | None


@dataclass(frozen=True, slots=True)
class BusView:
    bus: str
    driver: str
    route: str
    phase: RunPhase
    run: str | None
    """The run's key (its run_id, or ``end-<time>``) when it ended."""
    run_started_at: datetime | None
    run_ended_at: datetime | None
    run_end_place: str | None
    aboard: tuple[ChildAboard, ...]
    last_sweep: SweepSummary | None
    position: Position | None
    ignition_on: bool | None
    people_seen: PeopleSeen | None
    """The latest count of a cabin camera or presence radar."""
    events: int
    """Events the view was built from."""


def bus_view(
    fleet: Fleet, rules: BusRules, bus: str, events: Iterable[BusEvent], now: datetime
) -> BusView:
    """The view of ``bus`` (KeyError if the fleet has none) from its events up to ``now``.

    Events of other buses or tenants are set aside as the core does; each is taken at
    its device time, as if it had arrived then (a late backlog counts where it belongs).
    """
    spec = fleet.buses[bus]
    mine = sorted(
        (
            e
            for e in events
            if e.tenant == fleet.tenant
            and (owner := fleet.devices.get(e.device)) is not None
            and owner.bus == bus
            and e.ts <= now
        ),
        key=lambda e: e.ts,
    )
    engine = BusSafetyEngine(fleet, rules)
    for event in mine:
        engine.handle(event, event.ts)
    state = engine.bus_state(bus)
    phase, since, until, ended = _phase(state, now)
    door = state.door
    aboard_tags = door.aboard(since, until)
    if phase is RunPhase.ENDED:
        aboard_tags = {tag for tag in aboard_tags if not door.read_after(tag, until)}
    aboard = tuple(
        sorted(
            (_aboard(fleet, state, tag, since, until) for tag in aboard_tags),
            key=lambda c: (c.boarded_at, c.tag),
        )
    )
    last_run = state.runs[-1] if state.runs else None
    return BusView(
        bus=bus,
        driver=spec.driver,
        route=spec.route,
        phase=phase,
        run=last_run.key if ended and last_run is not None else None,
        run_started_at=state.open_since()
        if phase is RunPhase.UNDER_WAY
        else (last_run.start if last_run is not None else None),
        run_ended_at=last_run.end if ended and last_run is not None else None,
        run_end_place=last_run.stop if ended and last_run is not None else None,
        aboard=aboard,
        last_sweep=_last_sweep(fleet, rules, mine, state),
        position=_position(rules, state, mine),
        ignition_on=_ignition(mine),
        people_seen=_people(mine),
        events=len(mine),
    )


def _phase(state: BusState, now: datetime) -> tuple[RunPhase, datetime | None, datetime, bool]:
    """The phase, the passages' window (since, until] and whether a run has ended."""
    last_end = state.last_end()
    if state.open_since() is not None:
        return RunPhase.UNDER_WAY, last_end, now, last_end is not None
    if state.runs:
        run = state.runs[-1]
        return RunPhase.ENDED, run.since, run.end, True
    return RunPhase.UNKNOWN, None, now, False


def _aboard(
    fleet: Fleet, state: BusState, tag: str, since: datetime | None, until: datetime
) -> ChildAboard:
    passages = [
        p
        for p in state.door.passages(tag)
        if p.first <= until and (since is None or p.first > since)
    ]
    # the last passage that left the tag aboard: where it last went from off to on
    boarded = passages[-1].first
    for passage in reversed(passages):
        was_aboard = state.door.aboard_after(tag, since, passage.first - _JUST_BEFORE)
        if not was_aboard:
            boarded = passage.first
            break
    child = fleet.tags.get(tag)
    return ChildAboard(
        tag=tag,
        child=child.id if child is not None else None,
        name=_child_name(fleet, child.id) if child is not None else "",
        boarded_at=boarded,
    )


def _child_name(fleet: Fleet, child: str) -> str:
    for spec in fleet.document.children:
        if spec.id == child:
            return spec.name
    return ""


def _last_sweep(
    fleet: Fleet, rules: BusRules, events: list[BusEvent], state: BusState
) -> SweepSummary | None:
    scanner = state.bus.cabin_scanner
    if scanner is None:
        return None
    latest: tuple[datetime, str] | None = None
    for event in events:
        payload = event.payload
        if event.device != scanner or not isinstance(payload, SweepReadEvent | SweepCompleteEvent):
            continue
        if latest is None or event.ts >= latest[0]:
            latest = (event.ts, payload.sweep_id)
    if latest is None:
        return None
    sweep_id = latest[1]
    strongest: dict[str, SweepRead] = {}
    received = 0
    expected: int | None = None
    started: datetime | None = None
    finished: datetime | None = None
    for event in events:
        payload = event.payload
        if event.device != scanner:
            continue
        if isinstance(payload, SweepReadEvent) and payload.sweep_id == sweep_id:
            received += 1
            started = event.ts if started is None else min(started, event.ts)
            known = strongest.get(payload.tag)
            if known is None or payload.rssi > known.rssi:
                child = fleet.tags.get(payload.tag)
                strongest[payload.tag] = SweepRead(
                    tag=payload.tag,
                    child=child.id if child is not None else None,
                    rssi=payload.rssi,
                    inside=payload.rssi >= rules.sweep_inside_rssi_dbm,
                    ts=event.ts,
                )
        elif isinstance(payload, SweepCompleteEvent) and payload.sweep_id == sweep_id:
            expected = payload.reads
            finished = event.ts
    began = started if started is not None else finished
    assert began is not None  # the sweep was found by one of its events
    last_end = state.last_end()
    tolerance = timedelta(seconds=rules.skew_tolerance_s)
    return SweepSummary(
        sweep_id=sweep_id,
        started_at=began,
        finished_at=finished,
        expected=expected,
        reads=tuple(sorted(strongest.values(), key=lambda r: (-r.rssi, r.tag))),
        received=received,
        after_run_end=last_end is not None and began >= last_end - tolerance,
    )


def _position(rules: BusRules, state: BusState, events: list[BusEvent]) -> Position | None:
    fixes = [e for e in events if isinstance(e.payload, PositionEvent)]
    if not fixes:
        return None
    last = fixes[-1].payload
    assert isinstance(last, PositionEvent)
    place = nearest_place(last.lat, last.lon, state.bus.places, rules.stop_radius_m)
    return Position(last.lat, last.lon, last.ts, place.id if place is not None else None)


def _ignition(events: list[BusEvent]) -> bool | None:
    changes = [e.payload for e in events if isinstance(e.payload, IgnitionEvent)]
    return changes[-1].on if changes else None


def _people(events: list[BusEvent]) -> PeopleSeen | None:
    for event in reversed(events):
        payload = event.payload
        if isinstance(payload, OccupancyEvent):
            return PeopleSeen(payload.people, event.ts, event.device, payload.snapshot_url)
    return None
