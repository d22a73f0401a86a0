"""The school-bus safety core: contract events in, notifications out, time handed in.

Pure: no I/O and no clock of its own. ``handle`` takes an event as it arrives (with the
device's time inside), ``tick`` lets time pass (waits, reminders, escalations), and
``acknowledge`` is an operator's word. The alert service and ``iotmon bus replay`` drive
the same object, so a replayed day gives the notifications the live service sent.
The rules are described in docs/school-bus.md.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from iotmon_alerts.bus.availability import DeviceAvailability, Source
from iotmon_alerts.bus.door import DoorLog, Passage
from iotmon_alerts.bus.events import BusEvent
from iotmon_alerts.bus.fleet import Bus, BusDevice, DeviceRole, Fleet
from iotmon_alerts.bus.geo import distance_m, nearest_place
from iotmon_alerts.bus.lifecycle import Lifecycle
from iotmon_alerts.bus.notifications import (
    Evidence,
    Notification,
    NotificationKind,
    NotificationState,
    Reason,
    Recipient,
    RecipientRole,
    alert_fingerprint,
    fingerprint,
)
from iotmon_alerts.bus.rules import BusRules
from iotmon_alerts.bus.state import (
    AfterRunEvent,
    Alert,
    BusState,
    PendingNotice,
    Run,
    SweepTally,
)
from iotmon_alerts.bus.track import Fix
from iotmon_contract.alerts import AlertSeverity
from iotmon_contract.events import (
    DetectionEvent,
    Direction,
    FaultEvent,
    FaultSeverity,
    IgnitionEvent,
    OccupancyEvent,
    PositionEvent,
    RunEndEvent,
    RunStartEvent,
    SweepCompleteEvent,
    SweepReadEvent,
    TagReadEvent,
    WalkthroughCheckEvent,
)
from iotmon_contract.payloads import DeviceState

MAX_ORPHANS = 1000
"""After-run evidence kept per bus while its run end is still on its way."""
PERSON = "person"
"""Subject of a camera/radar's person that no tag explains."""
BUS = "bus"
"""Subject of a bus-level alert (occupancy unknown)."""


@dataclass(frozen=True, slots=True)
class _Desired:
    evidence: Evidence
    kind: NotificationKind


class BusSafetyEngine:
    """Decides what to tell whom about a fleet's buses; see the module docstring."""

    def __init__(self, fleet: Fleet, settings: BusRules) -> None:
        self._fleet = fleet
        self._rules = settings
        self._window = timedelta(seconds=settings.duplicate_window_s)
        self._tolerance = timedelta(seconds=settings.skew_tolerance_s)
        self._buses = {
            bus_id: BusState(bus, DoorLog(self._window)) for bus_id, bus in fleet.buses.items()
        }
        self._stats: Counter[str] = Counter()
        self._lifecycle = Lifecycle(fleet, settings, self._stats)
        self._undecided: list[Run] = []
        self._pruned_at: datetime | None = None

    @property
    def fleet(self) -> Fleet:
        return self._fleet

    @property
    def rules(self) -> BusRules:
        return self._rules

    @property
    def stats(self) -> dict[str, int]:
        """Counts of what the core took in and set aside (unknown devices, weak reads…)."""
        return dict(self._stats)

    def bus_state(self, bus: str) -> BusState:
        """What the core remembers of one bus (KeyError: not in the fleet). For reading
        (``iotmon_alerts.bus.view``): changing it changes the core's decisions."""
        return self._buses[bus]

    # -- input ------------------------------------------------------------------------

    def handle(self, event: BusEvent, now: datetime) -> list[Notification]:
        """Take one event arriving at ``now``; the notifications it decides at once."""
        if event.tenant != self._fleet.tenant:
            self._stats["wrong_tenant"] += 1
            return []
        device = self._fleet.devices.get(event.device)
        if device is None:
            self._stats["unknown_device"] += 1
            return []
        state = self._buses[device.bus]
        out: list[Notification] = []
        payload = event.payload
        self._stats["events"] += 1
        if isinstance(payload, DeviceState):
            self._on_availability(state, event.device, Source.STATUS, event.ts, payload, now, out)
        elif isinstance(payload, TagReadEvent):
            if self._expect(device, DeviceRole.DOOR_READER, "tag_read"):
                self._on_door_read(state, payload, now, out)
        elif isinstance(payload, SweepReadEvent):
            if self._expect(device, DeviceRole.CABIN_SCANNER, "sweep_read"):
                self._on_sweep_read(state, payload, now, out)
        elif isinstance(payload, SweepCompleteEvent):
            if self._expect(device, DeviceRole.CABIN_SCANNER, "sweep_complete"):
                self._on_sweep_complete(state, payload, now, out)
        elif isinstance(payload, PositionEvent):
            if self._expect(device, DeviceRole.TELEMATICS, "position"):
                self._on_position(state, payload, now, out)
        elif isinstance(payload, IgnitionEvent):
            if self._expect(device, DeviceRole.TELEMATICS, "ignition"):
                self._on_ignition(state, payload, now, out)
        elif isinstance(payload, RunStartEvent):
            self._on_run_start(state, payload)
        elif isinstance(payload, RunEndEvent):
            self._close_run(state, payload.ts, now, out, explicit=True, run_id=payload.run_id)
        elif isinstance(payload, WalkthroughCheckEvent):
            self._on_walkthrough(state, payload, now, out)
        elif isinstance(payload, OccupancyEvent | DetectionEvent):
            if self._expect(device, DeviceRole.PRESENCE, payload.type):
                self._on_presence(state, payload, now, out)
        elif isinstance(payload, FaultEvent):
            up = payload.cleared or payload.severity is FaultSeverity.WARNING
            self._on_availability(
                state,
                event.device,
                Source.FAULT,
                payload.ts,
                DeviceState.ONLINE if up else DeviceState.OFFLINE,
                now,
                out,
            )
        else:
            self._stats["ignored_type"] += 1
        return out

    def _expect(self, device: BusDevice, role: DeviceRole, what: str) -> bool:
        if role in device.roles:
            return True
        self._stats[f"unexpected_{what}"] += 1
        return False

    # -- time -------------------------------------------------------------------------

    def next_deadline(self) -> datetime | None:
        """When ``tick`` next has something to do (None: only new events matter)."""
        candidates: list[datetime] = [run.decide_at for run in self._undecided]
        for state in self._buses.values():
            candidates.extend(notice.due for notice in state.notices)
            due = self._reader_due(state)
            if due is not None:
                candidates.append(due)
        due = self._lifecycle.next_deadline()
        if due is not None:
            candidates.append(due)
        return min(candidates) if candidates else None

    def tick(self, now: datetime) -> list[Notification]:
        """Let time pass up to ``now``: decide runs, send waiting notices, remind, escalate."""
        out: list[Notification] = []
        for run in sorted(
            (r for r in self._undecided if r.decide_at <= now), key=lambda r: r.decide_at
        ):
            self._decide(run, now, out)
        for state in self._buses.values():
            for notice in [n for n in state.notices if n.due <= now]:
                self._send_passage(state, notice.passage, now, out)
            due = self._reader_due(state)
            if due is not None and due <= now:
                self._fire_reader_alerts(state, now, out)
        self._lifecycle.tick(now, out)
        if self._pruned_at is None or now - self._pruned_at >= timedelta(minutes=10):
            self._prune(now)
            self._pruned_at = now
        return out

    # -- operator ---------------------------------------------------------------------

    def acknowledge(
        self, fingerprint: str, by: str, reason: str, now: datetime
    ) -> list[Notification]:
        """An operator clears an alert, with a reason; [] if it was already closed.

        Raises UnknownAlert for a fingerprint the core never raised (or has forgotten),
        ValueError without a reason or an acknowledger.
        """
        if not reason.strip() or not by.strip():
            raise ValueError("an acknowledgement needs who acknowledged and a reason")
        alert = self._lifecycle.get(fingerprint)
        if alert.closed:
            return []
        if alert.kind is NotificationKind.READER_OFFLINE:
            readers = self._buses[alert.bus].reader_alerts
            if readers.get(alert.subject) is alert:
                del readers[alert.subject]
        out: list[Notification] = []
        self._lifecycle.close(
            alert,
            NotificationState.ACKNOWLEDGED,
            Reason.ACKNOWLEDGED,
            now,
            out,
            by=by,
            note=reason.strip(),
        )
        return out

    # -- availability -----------------------------------------------------------------

    def _on_availability(
        self,
        state: BusState,
        device: str,
        source: Source,
        ts: datetime,
        value: DeviceState,
        now: datetime,
        out: list[Notification],
    ) -> None:
        if device not in state.bus.readers:
            self._stats["availability_ignored"] += 1
            return
        availability = state.availability.setdefault(device, DeviceAvailability())
        availability.record(source, ts, value is DeviceState.ONLINE)
        alert = state.reader_alerts.get(device)
        if alert is not None and availability.current_outage() is None:
            del state.reader_alerts[device]
            self._lifecycle.close(alert, NotificationState.RESOLVED, Reason.READER_ONLINE, now, out)

    def _reader_due(self, state: BusState) -> datetime | None:
        since = state.open_since()
        if since is None:
            return None
        after = timedelta(seconds=self._rules.reader_offline_after_s)
        due: datetime | None = None
        for device in state.bus.readers:
            availability = state.availability.get(device)
            outage = availability.current_outage() if availability is not None else None
            if outage is None or (device, outage.start) in state.reader_fired:
                continue
            candidate = max(outage.start, since) + after
            due = candidate if due is None else min(due, candidate)
        return due

    def _fire_reader_alerts(self, state: BusState, now: datetime, out: list[Notification]) -> None:
        since = state.open_since()
        if since is None:
            return
        after = timedelta(seconds=self._rules.reader_offline_after_s)
        for device in state.bus.readers:
            availability = state.availability.get(device)
            outage = availability.current_outage() if availability is not None else None
            if outage is None or (device, outage.start) in state.reader_fired:
                continue
            if max(outage.start, since) + after > now:
                continue
            state.reader_fired.add((device, outage.start))
            bus = state.bus
            alert = Alert(
                fingerprint=fingerprint(
                    self._fleet.tenant,
                    bus.id,
                    NotificationKind.READER_OFFLINE,
                    device,
                    _iso(outage.start),
                ),
                kind=NotificationKind.READER_OFFLINE,
                bus=bus.id,
                subject=device,
                tag=None,
                child=None,
                school=bus.school,
                evidence=None,
                severity=AlertSeverity.WARNING,
                fired_at=now,
                event_time=outage.start,
                stop=None,
                run=None,
                device=device,
            )
            state.reader_alerts[device] = alert
            self._lifecycle.fire(alert, self._lifecycle.crew(bus), Reason.READER_OFFLINE, now, out)

    def _outage_start(self, state: BusState, device: str) -> datetime | None:
        availability = state.availability.get(device)
        outage = availability.current_outage() if availability is not None else None
        return outage.start if outage is not None else None

    def _occupancy_unknown(self, state: BusState, run: Run) -> bool:
        """A door reader or cabin scanner down at the run end, since, or ≥ the limit mid-run;
        the gateway only when down at or after the end (mid-run, its durable queue replays
        the reads)."""
        bus = state.bus
        start = run.start or state.previous_end(run)
        limit = timedelta(seconds=self._rules.reader_offline_after_s)
        for device in bus.readers:
            availability = state.availability.get(device)
            if availability is None:
                continue
            if not availability.up_at(run.end) or availability.current_outage() is not None:
                # down at the end, or since (a sweep that failed after it): nobody looked
                return True
            if device == bus.gateway and device not in (bus.door_reader, bus.cabin_scanner):
                continue
            for outage in availability.outages():
                end = outage.end or run.end
                begin = outage.start if start is None else max(outage.start, start)
                if min(end, run.end) - begin >= limit:
                    return True
        return False

    # -- door and position ------------------------------------------------------------

    def _on_door_read(
        self, state: BusState, event: TagReadEvent, now: datetime, out: list[Notification]
    ) -> None:
        if event.rssi < self._rules.door_rssi_min_dbm:
            self._stats["door_reads_weak"] += 1
            return
        passage = state.door.add(event.tag, event.direction, event.ts, now)
        if passage is None:
            self._stats["door_reads_repeated"] += 1
            for run in self._runs_cleared_by(state, event.tag, event.ts):
                self._evaluate(state, run, now, out)
            return
        self._stats["passages"] += 1
        if event.tag not in self._fleet.tags:
            self._stats["passages_unknown_tag"] += 1
        else:
            due = now + timedelta(seconds=self._rules.notice_position_wait_s)
            state.notices.append(PendingNotice(passage, due))
            if state.track.first_after(passage.first) is not None:
                self._send_passage(state, passage, now, out)
        affected = self._runs_cleared_by(state, event.tag, event.ts)
        containing = state.run_containing(event.ts)
        if containing is not None and containing.decided and containing not in affected:
            affected.append(containing)
        for run in affected:
            self._evaluate(state, run, now, out)

    def _runs_cleared_by(self, state: BusState, tag: str, ts: datetime) -> list[Run]:
        """Decided runs that ended before ``ts`` with an open alert about ``tag``."""
        return [
            run
            for run in state.runs
            if run.decided
            and run.end < ts
            and (alert := run.alerts.get(tag)) is not None
            and not alert.closed
        ]

    def _send_passage(
        self, state: BusState, passage: Passage, now: datetime, out: list[Notification]
    ) -> None:
        state.notices = [n for n in state.notices if n.passage is not passage]
        if passage.notified:
            return
        passage.notified = True
        child = self._fleet.tags.get(passage.tag)
        if child is None or not child.guardians:
            return
        since = state.end_before(passage.first - timedelta(microseconds=1))
        direction = state.door.direction_of(passage, since)
        kind = NotificationKind.BOARDED if direction is Direction.IN else NotificationKind.ALIGHTED
        stop = self._place_at(state, passage.first)
        recipients = tuple(Recipient(RecipientRole.GUARDIAN, g) for g in child.guardians)
        out.append(
            Notification(
                time=now,
                kind=kind,
                severity=AlertSeverity.INFO,
                bus=state.bus.id,
                child_tag=passage.tag,
                recipients=recipients,
                state=NotificationState.FIRING,
                stop=stop,
                event_time=passage.first,
                fingerprint=fingerprint(
                    self._fleet.tenant, state.bus.id, kind, passage.tag, _iso(passage.first)
                ),
                tenant=self._fleet.tenant,
                reason=Reason.PASSAGE,
                child=child.id,
            )
        )
        self._stats[f"notices_{kind.value}"] += 1

    def _place_at(self, state: BusState, ts: datetime) -> str | None:
        fix = state.track.nearest(ts, timedelta(seconds=self._rules.position_window_s))
        if fix is None and state.parked_at(ts):
            # parked units report rarely; with the ignition off the bus has not moved
            fix = state.track.last_before(ts)
        if fix is None:
            return None
        place = nearest_place(fix.lat, fix.lon, state.bus.places, self._rules.stop_radius_m)
        if place is None:
            depot = state.bus.depot
            if self._in_depot(state.bus, fix):
                return depot.place.id
            return None
        return place.id

    def _in_depot(self, bus: Bus, fix: Fix) -> bool:
        depot = bus.depot
        return distance_m(fix.lat, fix.lon, depot.place.lat, depot.place.lon) <= depot.radius_m

    def _on_position(
        self, state: BusState, event: PositionEvent, now: datetime, out: list[Notification]
    ) -> None:
        fix = Fix(event.ts, event.lat, event.lon)
        state.track.add(fix)
        for notice in [n for n in state.notices if n.passage.first <= fix.ts]:
            self._send_passage(state, notice.passage, now, out)
        if state.pending_offs:
            self._place_ignition_offs(state, now, out)

    # -- runs -------------------------------------------------------------------------

    def _on_ignition(
        self, state: BusState, event: IgnitionEvent, now: datetime, out: list[Notification]
    ) -> None:
        bisect.insort(state.ignition, (event.ts, event.on), key=lambda change: change[0])
        if event.on:
            self._add_start(state, event.ts)
            # an ignition on after an unplaced off: the bus moved on, that off ended nothing
            state.pending_offs = [t for t in state.pending_offs if t > event.ts]
            return
        state.pending_offs.append(event.ts)
        self._place_ignition_offs(state, now, out)

    def _place_ignition_offs(self, state: BusState, now: datetime, out: list[Notification]) -> None:
        window = timedelta(seconds=self._rules.run_end_position_window_s)
        for off in sorted(state.pending_offs):
            fix = state.track.nearest(off, window)
            if fix is None:
                # parked since: a later fix before the next ignition on says where
                later = state.track.first_after(off)
                restart = state.next_start(off)
                if later is None or (restart is not None and later.ts >= restart):
                    continue
                fix = later
            state.pending_offs.remove(off)
            if self._in_depot(state.bus, fix):
                self._close_run(state, off, now, out, explicit=False, run_id=None)
            else:
                self._stats["ignition_off_outside_depot"] += 1

    def _add_start(self, state: BusState, ts: datetime) -> None:
        if ts not in state.starts:
            state.starts.append(ts)
            state.starts.sort()

    def _on_run_start(self, state: BusState, event: RunStartEvent) -> None:
        self._add_start(state, event.ts)
        if event.run_id is not None:
            state.run_ids[event.ts] = event.run_id

    def _close_run(
        self,
        state: BusState,
        end: datetime,
        now: datetime,
        out: list[Notification],
        *,
        explicit: bool,
        run_id: str | None,
    ) -> None:
        previous = state.end_before(end)
        if previous is not None and end - previous <= self._tolerance:
            self._stats["run_end_repeated"] += 1
            return
        start = state.next_start(previous) if previous is not None else _first(state.starts)
        if start is not None and start > end:
            start = None
        following = state.run_containing(end)
        if following is not None and (start is None or start >= following.end - self._tolerance):
            # no start between this end and a later known end: the same run ended twice
            # (the end-of-run button and the ignition off, in either order)
            if explicit and not following.decided and not following.explicit:
                self._rekey(state, following, end, run_id)
            else:
                self._stats["run_end_repeated"] += 1
            return
        active = start is not None or any(
            previous is None or passage.first > previous
            for tag in state.door.tags()
            for passage in state.door.passages(tag)
            if passage.first <= end
        )
        if not active:
            self._stats["run_end_without_run"] += 1
            return
        if run_id is None:
            run_id = self._run_id_between(state, previous, end)
        run = Run(
            bus=state.bus.id,
            key=run_id if run_id is not None else f"end-{_iso(end)}",
            run_id=run_id,
            since=previous,
            start=start,
            end=end,
            explicit=explicit,
            known_at=now,
            decide_at=now + timedelta(seconds=self._rules.decision_wait_s),
        )
        run.stop = self._place_at(state, end)
        bisect.insort(state.runs, run, key=lambda r: r.end)
        if following is not None:
            # a late end of an earlier run: the next run's passages now start after it
            following.since = end
            self._evaluate(state, following, now, out)
        self._undecided.append(run)
        self._stats["runs"] += 1
        state.pending_offs = [t for t in state.pending_offs if t > end]
        self._adopt_orphans(state, end, now, out)

    def _rekey(self, state: BusState, run: Run, end: datetime, run_id: str | None) -> None:
        """An explicit end arriving after the ignition off that ended the same run first."""
        run.end = end
        run.explicit = True
        run.run_id = run_id or run.run_id
        run.key = run.run_id if run.run_id is not None else f"end-{_iso(end)}"
        state.runs.sort(key=lambda r: r.end)

    def _run_id_between(
        self, state: BusState, previous: datetime | None, end: datetime
    ) -> str | None:
        found = [
            (ts, run_id)
            for ts, run_id in state.run_ids.items()
            if ts <= end and (previous is None or ts > previous)
        ]
        return max(found)[1] if found else None

    # -- after the run: sweep, camera/radar, walk-through -----------------------------

    def _on_sweep_read(
        self, state: BusState, event: SweepReadEvent, now: datetime, out: list[Notification]
    ) -> None:
        run = state.run_after(event.ts, self._tolerance)
        if run is None:
            self._keep_for_later(state, event)
            return
        run.sweeps.setdefault(event.sweep_id, SweepTally()).received += 1
        if event.rssi >= self._rules.sweep_inside_rssi_dbm:
            if event.tag not in run.strong:
                run.strong[event.tag] = event.ts
                if run.decided:
                    self._evaluate(state, run, now, out)
        else:
            run.weak.add(event.tag)
            self._stats["sweep_reads_weak"] += 1

    def _on_sweep_complete(
        self, state: BusState, event: SweepCompleteEvent, now: datetime, out: list[Notification]
    ) -> None:
        run = state.run_after(event.ts, self._tolerance)
        if run is None:
            self._keep_for_later(state, event)
            return
        run.sweeps.setdefault(event.sweep_id, SweepTally()).expected = event.reads

    def _keep_for_later(self, state: BusState, event: AfterRunEvent) -> None:
        """Evidence from a parked bus whose run end has not arrived yet (another device's
        backlog): kept until the end comes, or dropped as mid-run noise when it does."""
        last = state.last_end()
        if last is not None and event.ts < last:
            self._stats[f"{event.type}_outside_parked"] += 1
            return
        state.orphans.append(event)
        if len(state.orphans) > MAX_ORPHANS:
            state.orphans.pop(0)
            self._stats["orphans_dropped"] += 1

    def _adopt_orphans(
        self, state: BusState, end: datetime, now: datetime, out: list[Notification]
    ) -> None:
        waiting, state.orphans = state.orphans, []
        for event in sorted(waiting, key=lambda e: e.ts):
            if event.ts < end - self._tolerance:
                self._stats[f"{event.type}_outside_parked"] += 1
            elif isinstance(event, SweepReadEvent):
                self._on_sweep_read(state, event, now, out)
            elif isinstance(event, SweepCompleteEvent):
                self._on_sweep_complete(state, event, now, out)
            elif isinstance(event, WalkthroughCheckEvent):
                self._on_walkthrough(state, event, now, out)
            else:
                self._on_presence(state, event, now, out)

    def _on_presence(
        self,
        state: BusState,
        event: OccupancyEvent | DetectionEvent,
        now: datetime,
        out: list[Notification],
    ) -> None:
        run = state.run_after(event.ts, timedelta(0))
        if run is None:
            self._keep_for_later(state, event)
            return
        if isinstance(event, DetectionEvent):
            if event.label != "person":
                return
            people = 1
        else:
            people = event.people
        if people == 0:
            run.empty_reports.append(event.ts)
        else:
            if run.person_at is None or event.ts < run.person_at:
                run.person_at = event.ts
            run.people_max = max(run.people_max, people)
        if run.decided:
            self._evaluate(state, run, now, out)

    def _on_walkthrough(
        self, state: BusState, event: WalkthroughCheckEvent, now: datetime, out: list[Notification]
    ) -> None:
        ts = event.ts
        run = state.run_after(ts, self._tolerance)
        if run is None:
            self._keep_for_later(state, event)
            return
        if run.walkthrough is None or ts < run.walkthrough:
            run.walkthrough = ts
        if run.decided:
            self._evaluate(state, run, now, out)
            bus_alert = run.alerts.get(BUS)
            if bus_alert is not None and not bus_alert.closed:
                self._lifecycle.close(
                    bus_alert, NotificationState.RESOLVED, Reason.WALKTHROUGH, now, out
                )

    # -- deciding ---------------------------------------------------------------------

    def _decide(self, run: Run, now: datetime, out: list[Notification]) -> None:
        if run.decided:
            return
        run.decided = True
        self._undecided = [r for r in self._undecided if r is not run]
        state = self._buses[run.bus]
        run.occupancy_unknown = self._occupancy_unknown(state, run)
        self._evaluate(state, run, now, out)
        if run.occupancy_unknown:
            self._stats["runs_occupancy_unknown"] += 1
            alert = self._new_alert(
                state, run, NotificationKind.OCCUPANCY_UNKNOWN, BUS, None, None, now
            )
            alert.severity = AlertSeverity.WARNING
            self._lifecycle.fire(alert, self._lifecycle.crew(state.bus), Reason.RUN_END, now, out)
            if run.walkthrough is not None:
                self._lifecycle.close(
                    alert, NotificationState.RESOLVED, Reason.WALKTHROUGH, now, out
                )
            return
        active = any(not alert.closed for alert in run.alerts.values())
        swept = state.bus.cabin_scanner is None or run.sweep_complete
        if not active and swept:
            run.bus_empty_sent = True
            out.append(
                Notification(
                    time=now,
                    kind=NotificationKind.BUS_EMPTY,
                    severity=AlertSeverity.INFO,
                    bus=run.bus,
                    child_tag=None,
                    recipients=Lifecycle.sorted(set(self._lifecycle.crew(state.bus))),
                    state=NotificationState.FIRING,
                    stop=run.stop,
                    event_time=run.end,
                    fingerprint=fingerprint(
                        self._fleet.tenant, run.bus, run.key, NotificationKind.BUS_EMPTY
                    ),
                    tenant=self._fleet.tenant,
                    reason=Reason.RUN_END,
                    evidence=None,
                    run=run.key,
                )
            )
            self._stats["runs_bus_empty"] += 1

    def _desired(self, state: BusState, run: Run) -> dict[str, _Desired]:
        """What the evidence says about the parked bus: subject → evidence and kind.

        A camera/radar's person that the sweep does not explain makes the counted-only
        children seen, unless the driver's walk-through came first and cleared them: a
        person seen after the check goes to the crew and school as an unknown person.
        """
        since = state.previous_end(run)
        door = state.door
        aboard = door.aboard(since, run.end)
        counted = {tag for tag in aboard if not door.read_after(tag, run.end)}
        seen = {tag for tag in run.strong if not door.read_after(tag, run.end)}
        checked = run.walkthrough
        # whoever the sweep heard, or the door let out after the end, was in the cabin
        # and may be the person the camera saw
        explained = set(run.strong) | (aboard - counted)
        unexplained = run.people_max > len(explained) and not self._cabin_cleared(run)
        upgrade = unexplained and (
            checked is None or (run.person_at is not None and run.person_at < checked)
        )
        desired: dict[str, _Desired] = {}
        for tag in sorted(counted | seen):
            kind = (
                NotificationKind.CHILD_LEFT_ABOARD
                if tag in self._fleet.tags
                else NotificationKind.UNKNOWN_TAG
            )
            if tag in seen or (upgrade and tag in counted):
                desired[tag] = _Desired(Evidence.SEEN, kind)
            elif checked is None:
                desired[tag] = _Desired(Evidence.COUNTED, kind)
        if unexplained and not any(tag in desired for tag in counted - seen):
            desired[PERSON] = _Desired(Evidence.SEEN, NotificationKind.CHILD_LEFT_ABOARD)
        return desired

    def _cabin_cleared(self, run: Run) -> bool:
        """The driver walked through after the camera/radar saw somebody, and it has seen
        nobody twice since: the person it saw is accounted for."""
        checked = run.walkthrough
        if checked is None or run.person_at is None or checked < run.person_at:
            return False
        return sum(1 for ts in run.empty_reports if ts > checked) >= 2

    def _evaluate(self, state: BusState, run: Run, now: datetime, out: list[Notification]) -> None:
        if not run.decided:
            return
        desired = self._desired(state, run)
        for subject, want in desired.items():
            alert = run.alerts.get(subject)
            if alert is None or (alert.closed and _stronger(want.evidence, alert.evidence)):
                generation = 0 if alert is None else alert.generation + 1
                self._raise(state, run, subject, want, generation, now, out)
            elif (
                not alert.closed
                and alert.evidence is Evidence.COUNTED
                and (want.evidence is Evidence.SEEN)
            ):
                self._lifecycle.upgrade(alert, now, out)
        for subject, alert in list(run.alerts.items()):
            if subject in desired or subject == BUS or alert.closed:
                continue
            tag = alert.tag
            if tag is not None and state.door.read_after(tag, run.end):
                reason = Reason.DOOR_READ_AFTER_END
            elif alert.evidence is Evidence.SEEN and (tag is None or tag not in run.strong):
                reason = Reason.CABIN_EMPTY
            elif run.walkthrough is not None and alert.evidence is Evidence.COUNTED:
                reason = Reason.WALKTHROUGH
            else:
                reason = Reason.ALIGHTED_BEFORE_END
            self._lifecycle.close(alert, NotificationState.RESOLVED, reason, now, out)

    def _new_alert(
        self,
        state: BusState,
        run: Run,
        kind: NotificationKind,
        subject: str,
        tag: str | None,
        evidence: Evidence | None,
        now: datetime,
        generation: int = 0,
    ) -> Alert:
        child = self._fleet.tags.get(tag) if tag is not None else None
        alert = Alert(
            fingerprint=alert_fingerprint(
                self._fleet.tenant, run.bus, run.key, kind, subject, generation
            ),
            kind=kind,
            bus=run.bus,
            subject=subject,
            tag=tag,
            child=child,
            school=child.school if child is not None else state.bus.school,
            evidence=evidence,
            severity=AlertSeverity.CRITICAL,
            fired_at=now,
            event_time=run.end,
            stop=run.stop,
            run=run,
            generation=generation,
        )
        run.alerts[subject] = alert
        return alert

    def _raise(
        self,
        state: BusState,
        run: Run,
        subject: str,
        want: _Desired,
        generation: int,
        now: datetime,
        out: list[Notification],
    ) -> None:
        tag = None if subject == PERSON else subject
        alert = self._new_alert(state, run, want.kind, subject, tag, want.evidence, now, generation)
        self._lifecycle.raise_at_run_end(alert, want.evidence, now, out)

    # -- forgetting -------------------------------------------------------------------

    def _prune(self, now: datetime) -> None:
        horizon = now - timedelta(seconds=self._rules.run_retention_s)
        for state in self._buses.values():
            # the last run stays: its end is where the next run's passages begin
            kept = [
                run
                for run in state.runs
                if run.end >= horizon
                or run is state.runs[-1]
                or not run.decided
                or any(not alert.closed for alert in run.alerts.values())
            ]
            dropped = [run for run in state.runs if run not in kept]
            for run in dropped:
                for alert in run.alerts.values():
                    self._lifecycle.forget(alert)
            state.runs = kept
            oldest = min([horizon, *(run.end for run in kept)])
            # the evidence of the oldest kept run reaches back to the run before it
            state.door.prune(oldest - timedelta(days=1))
            state.track.prune(oldest - timedelta(days=1))
            keep_from = oldest - timedelta(days=1)
            state.starts = [ts for ts in state.starts if ts >= keep_from]
            state.run_ids = {ts: rid for ts, rid in state.run_ids.items() if ts >= keep_from}
            for availability in state.availability.values():
                availability.prune(keep_from)
            state.reader_fired = {
                (device, start)
                for device, start in state.reader_fired
                if start >= horizon or self._outage_start(state, device) == start
            }


def _stronger(new: Evidence, old: Evidence | None) -> bool:
    return new is Evidence.SEEN and old is not Evidence.SEEN


def _first(values: list[datetime]) -> datetime | None:
    return values[0] if values else None


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds")
