"""Scores a replay's notifications against the simulator's ground truth: children left
aboard alerted or missed, guardians woken for nothing, notices right and to the right
people."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from iotmon_alerts.bus import (
    Fleet,
    Notification,
    NotificationKind,
    NotificationState,
    RecipientRole,
)
from iotmon_devices.simulators.school_bus import TruthRun

MATCH_RUN_S = 900.0
"""A notification belongs to the bus's run whose true end is nearest, within 15 min."""
NOTICE_MATCH_S = 30.0
DECISION_TARGET_S = 60.0


@dataclass(slots=True)
class Score:
    runs: int = 0
    bus_days: int = 0
    left_aboard: int = 0
    """Children physically aboard at a run end."""
    with_evidence: int = 0
    """Of those: the door counted them or the sweep heard them inside."""
    alerted: int = 0
    """Of those with evidence: a child_left_aboard about them (any recipient)."""
    alerted_in_time: int = 0
    """Of the alerted: the first alert within 60 s of the run end (no link outage)."""
    alerted_with_outage: int = 0
    missed: int = 0
    off_before_decision: int = 0
    """Of those with evidence, not alerted: the driver took them off (their exit read at
    the door) within a minute of the run end, before the core decided; not a miss."""
    guardians_told: int = 0
    """Of those with evidence: their guardians received the alert."""
    undetectable: int = 0
    """Boarded unread and not heard by the sweep."""
    undetectable_person_alert: int = 0
    """Of those: a camera/radar's person alert went out for their bus."""
    false_guardian_runs: int = 0
    false_guardian_by_reason: dict[str, int] = field(default_factory=dict)
    counted_alert_runs: int = 0
    """Runs with a counted-only alert (a walk-through asked for)."""
    reminders: int = 0
    school_escalations: int = 0
    bus_empty: int = 0
    bus_empty_wrong: int = 0
    """bus_empty said while a child was still inside."""
    occupancy_unknown_runs: int = 0
    notices: int = 0
    passages_read: int = 0
    passages_notified: int = 0
    stops_right: int = 0
    stops_missing: int = 0
    notice_delays: list[float] = field(default_factory=list)
    """Seconds from the passage's (device) time to its notice, runs without outages."""
    privacy_violations: int = 0
    decision_delays: list[float] = field(default_factory=list)

    def merge(self, other: Score) -> None:
        """Add another fleet's score to this one."""
        for name in self.__dataclass_fields__:
            mine, theirs = getattr(self, name), getattr(other, name)
            if isinstance(mine, list):
                mine.extend(theirs)
            elif isinstance(mine, dict):
                for key, value in theirs.items():
                    mine[key] = mine.get(key, 0) + value
            else:
                setattr(self, name, mine + theirs)

    @property
    def false_guardian_share(self) -> float:
        return self.false_guardian_runs / self.runs if self.runs else 0.0

    def notice_delay(self, q: float) -> float:
        return _quantile(self.notice_delays, q)

    def decision_delay(self, q: float) -> float:
        return _quantile(self.decision_delays, q)


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[min(98, int(q * 100) - 1)]


def _epoch(value: datetime | None) -> float:
    return value.timestamp() if value is not None else 0.0


def score(
    fleet: Fleet, runs: list[TruthRun], notifications: list[Notification], inside_rssi: float
) -> Score:
    """How the notifications did against what really happened in ``runs``."""
    result = Score(runs=len(runs), bus_days=len({(r.bus, r.day) for r in runs}))
    by_bus: dict[str, list[TruthRun]] = defaultdict(list)
    for run in runs:
        by_bus[run.bus].append(run)
    for bus_runs in by_bus.values():
        bus_runs.sort(key=lambda r: r.end)

    def run_of(n: Notification) -> TruthRun | None:
        t = _epoch(n.event_time)
        best = min(by_bus.get(n.bus, []), key=lambda r: abs(r.end - t), default=None)
        return best if best is not None and abs(best.end - t) <= MATCH_RUN_S else None

    aboard_children: dict[tuple[str, str], set[str]] = defaultdict(set)
    for run in runs:
        for item in run.children_aboard:
            assert item.child is not None
            aboard_children[(run.day, run.period)].add(item.child)

    alerts: dict[int, list[Notification]] = defaultdict(list)
    false_runs: dict[int, str] = {}
    counted_runs: set[int] = set()
    for n in notifications:
        _check_privacy(fleet, n, result)
        if n.kind in (NotificationKind.BOARDED, NotificationKind.ALIGHTED):
            result.notices += 1
            continue
        matched = run_of(n)
        if n.kind is NotificationKind.BUS_EMPTY:
            result.bus_empty += 1
            said = _epoch(n.time)
            if matched is not None and any(
                item.found_at is None or item.found_at > said for item in matched.children_aboard
            ):
                result.bus_empty_wrong += 1
            continue
        if matched is None:
            continue
        key = id(matched)
        if n.kind is NotificationKind.OCCUPANCY_UNKNOWN and n.state is NotificationState.FIRING:
            result.occupancy_unknown_runs += 1
        if n.kind is not NotificationKind.CHILD_LEFT_ABOARD:
            continue
        alerts[key].append(n)
        if n.reason.value == "walkthrough_reminder":
            result.reminders += 1
        if n.reason.value == "guardian_delay":
            result.school_escalations += 1
        if n.evidence is not None and n.evidence.value == "counted" and n.state.value == "firing":
            counted_runs.add(key)
        told = any(r.role is RecipientRole.GUARDIAN for r in n.recipients)
        if told and n.state in (NotificationState.FIRING, NotificationState.ESCALATED):
            child = fleet.tags[n.child_tag].id if n.child_tag in fleet.tags else None
            if child is not None and child not in aboard_children[(matched.day, matched.period)]:
                false_runs.setdefault(key, n.reason.value)
    result.false_guardian_runs = len(false_runs)
    reasons: dict[str, int] = defaultdict(int)
    for reason in false_runs.values():
        reasons[reason] += 1
    result.false_guardian_by_reason = dict(reasons)
    result.counted_alert_runs = len(counted_runs)

    for run in runs:
        run_alerts = alerts.get(id(run), [])
        for item in run.children_aboard:
            result.left_aboard += 1
            heard = item.sweep_rssi is not None and item.sweep_rssi >= inside_rssi
            if not (item.door_evidence or heard):
                result.undetectable += 1
                if any(n.child_tag is None for n in run_alerts):
                    result.undetectable_person_alert += 1
                continue
            result.with_evidence += 1
            about = [n for n in run_alerts if n.child_tag == item.tag]
            if not about:
                found = item.found_at is not None and item.found_at - run.end <= DECISION_TARGET_S
                if found and _exit_read(run, item.tag, item.found_at):
                    result.off_before_decision += 1
                else:
                    result.missed += 1
                continue
            result.alerted += 1
            first = min(_epoch(n.time) for n in about)
            if run.link_outage:
                result.alerted_with_outage += 1
            else:
                delay = first - run.end
                result.decision_delays.append(delay)
                if delay <= DECISION_TARGET_S:
                    result.alerted_in_time += 1
            if any(r.role is RecipientRole.GUARDIAN for n in about for r in n.recipients):
                result.guardians_told += 1
    _score_notices(runs, notifications, fleet, result)
    return result


def _exit_read(run: TruthRun, tag: str | None, found_at: float | None) -> bool:
    return any(
        p.tag == tag and p.read and found_at is not None and abs(p.time - found_at) < 1
        for p in run.passages
    )


def _check_privacy(fleet: Fleet, n: Notification, result: Score) -> None:
    guardians = {r.id for r in n.recipients if r.role is RecipientRole.GUARDIAN}
    if not guardians:
        return
    child = fleet.tags.get(n.child_tag) if n.child_tag is not None else None
    allowed = set(child.guardians) if child is not None else set()
    if n.kind is NotificationKind.UNKNOWN_TAG or not guardians <= allowed:
        result.privacy_violations += 1


def _score_notices(
    runs: list[TruthRun], notifications: list[Notification], fleet: Fleet, result: Score
) -> None:
    notices: dict[tuple[str, str], list[Notification]] = defaultdict(list)
    for n in notifications:
        if n.kind in (NotificationKind.BOARDED, NotificationKind.ALIGHTED) and n.child_tag:
            notices[(n.bus, n.child_tag)].append(n)
    for run in runs:
        for passage in run.passages:
            if not passage.read or passage.tag is None or passage.tag not in fleet.tags:
                continue
            result.passages_read += 1
            kind = "boarded" if passage.direction == "in" else "alighted"
            match = next(
                (
                    n
                    for n in notices.get((run.bus, passage.tag), [])
                    if n.kind.value == kind
                    and abs(_epoch(n.event_time) - passage.time) <= NOTICE_MATCH_S
                ),
                None,
            )
            if match is None:
                continue
            result.passages_notified += 1
            if match.stop is None:
                result.stops_missing += 1
            elif match.stop == passage.place:
                result.stops_right += 1
            if not run.link_outage:
                result.notice_delays.append(_epoch(match.time) - passage.time)
