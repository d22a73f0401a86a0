"""Properties of the core over generated runs: duplicated and reordered delivery gives the
same notifications, duplicates never change anything, and the lifecycle and recipients
keep their invariants whatever the evidence."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iotmon_alerts.bus import (
    Notification,
    NotificationKind,
    NotificationState,
    RecipientRole,
)
from tests.utils.bus import GUARDIANS, Day, at, iso

TAGS = ("TAG-ANN", "TAG-BEN", "TAG-CID", "VISITOR-9")
END = 1800.0
# walk-through times clear of the decision (end + 30 s), reminder (+210 s) and escalation
# (+630 s) instants by more than the delivery jitter: on a boundary, order decides
WALKTHROUGH_AT = (None, 60.0, 120.0, 300.0, 450.0, 900.0, 1500.0)


@dataclass(frozen=True)
class Rider:
    tag: str
    stop: str
    boarding_read: bool
    alighting_read: bool
    copies: int
    direction_known: bool
    asleep: bool


@dataclass(frozen=True)
class Story:
    riders: tuple[Rider, ...]
    walkthrough: float | None
    heard: tuple[str, ...]
    """Tags the sweep hears inside (the sleepers' and maybe a lost tag's)."""
    weak: tuple[str, ...]
    person: bool


riders = st.builds(
    Rider,
    tag=st.sampled_from(TAGS),
    stop=st.sampled_from(("stop-a", "stop-b")),
    boarding_read=st.booleans(),
    alighting_read=st.booleans(),
    copies=st.integers(1, 4),
    direction_known=st.booleans(),
    asleep=st.booleans(),
)


@st.composite
def stories(draw: st.DrawFn) -> Story:
    chosen = draw(st.lists(riders, max_size=4, unique_by=lambda r: r.tag))
    sleepers = tuple(r.tag for r in chosen if r.asleep)
    heard = tuple(t for t in sleepers if draw(st.booleans()))
    return Story(
        riders=tuple(chosen),
        walkthrough=draw(st.sampled_from(WALKTHROUGH_AT)),
        heard=heard,
        weak=tuple(draw(st.lists(st.sampled_from(TAGS), max_size=2, unique=True))),
        person=draw(st.booleans()),
    )


def build(story: Story, *, copies: bool = True) -> Day:
    day = Day()
    day.ignition(0, "bus-1", True)
    day.run_start(5, "bus-1", run_id="r-1")
    day.fixes(0, 60, "bus-1", "depot-1")
    day.fixes(270, 360, "bus-1", "stop-a")
    day.fixes(570, 660, "bus-1", "stop-b")
    day.fixes(900, 1000, "bus-1", "school-1")
    for i, rider in enumerate(story.riders):
        n = rider.copies if copies else 1
        direction = "in" if rider.direction_known else None
        t = (300.0 if rider.stop == "stop-a" else 600.0) + 8 * i
        if rider.boarding_read:
            day.door(t, "bus-1", rider.tag, direction, copies=n)
        if rider.alighting_read and not rider.asleep:
            day.door(920 + 8 * i, "bus-1", rider.tag, "out" if direction else None, copies=n)
    day.fixes(END - 60, END + 60, "bus-1", "depot-1")
    day.run_end(END, "bus-1", run_id="r-1")
    day.ignition(END + 20, "bus-1", False)
    reads = [(tag, -52.0) for tag in story.heard] + [(tag, -82.0) for tag in story.weak]
    day.sweep(END + 10, "bus-1", reads)
    people = sum(1 for r in story.riders if r.asleep)
    if story.person and people:
        day.occupancy(END + 90, "bus-1", people)
    if story.walkthrough is not None:
        day.walkthrough(END + story.walkthrough, "bus-1")
    return day


def _alert_key(n: Notification) -> tuple[object, ...]:
    return (n.kind, n.state, n.reason, n.child_tag, n.evidence, n.fingerprint, n.recipients)


def _notice_key(n: Notification) -> tuple[object, ...]:
    return (n.kind, n.child_tag, n.stop, n.recipients)


HORIZON = at(END + 3000)
"""Compared up to here: the replay's tail runs from the last arrival, which jitter moves."""


def _summary(
    notes: list[Notification],
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    notes = [n for n in notes if n.time <= HORIZON]
    alerts = sorted((_alert_key(n) for n in notes if not n.is_notice), key=repr)
    notices = sorted((_notice_key(n) for n in notes if n.is_notice), key=repr)
    return alerts, notices


def _jitter(day: Day, seed: int, jitter_s: float, redeliver: float) -> Day:
    """Each line arrives up to ``jitter_s`` late (so devices interleave differently), some
    twice; the broker keeps each device's own order."""
    rng = random.Random(seed)
    delay: dict[str, float] = {}
    lines = []
    last: dict[str, float] = {}
    for data in sorted((json.loads(line) for line in day.lines), key=lambda d: d["at"]):
        device = data["device"]
        delay.setdefault(device, rng.uniform(0, jitter_s))
        sent = _seconds(data["at"]) + delay[device] + rng.uniform(0, 0.5)
        sent = max(sent, last.get(device, sent))
        last[device] = sent
        data["at"] = iso(at(sent))
        lines.append(json.dumps(data))
        if rng.random() < redeliver:
            data["at"] = iso(at(sent + rng.uniform(0.1, 3.0)))
            lines.append(json.dumps(data))
    return Day(lines=lines)


def _seconds(stamp: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(stamp) - at(0)).total_seconds()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(story=stories(), seed=st.integers(0, 2**32 - 1))
def test_duplicated_and_reordered_delivery_gives_the_same_notifications(
    story: Story, seed: int
) -> None:
    day = build(story)
    expected = _summary(day.run().all)
    shaken = _jitter(day, seed, jitter_s=6.0, redeliver=0.2)
    assert _summary(shaken.run().all) == expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(story=stories())
def test_repeated_reads_change_nothing(story: Story) -> None:
    single = [n for n in build(story, copies=False).run().all if n.time <= HORIZON]
    repeated = [n for n in build(story).run().all if n.time <= HORIZON]
    assert repeated == single


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(story=stories())
def test_lifecycles_and_recipients_keep_their_invariants(story: Story) -> None:
    notes = build(story).run().all
    by_alert: dict[str, list[Notification]] = {}
    for n in notes:
        guardians = {r.id for r in n.recipients if r.role is RecipientRole.GUARDIAN}
        if n.kind in (NotificationKind.BOARDED, NotificationKind.ALIGHTED):
            assert n.child_tag is not None
            assert guardians == GUARDIANS[n.child_tag]
        elif n.kind is NotificationKind.CHILD_LEFT_ABOARD and n.child_tag is not None:
            assert guardians <= GUARDIANS[n.child_tag]
        else:
            assert not guardians, n
        if not n.is_notice:
            by_alert.setdefault(n.fingerprint, []).append(n)
    closed = (NotificationState.RESOLVED, NotificationState.ACKNOWLEDGED)
    for steps in by_alert.values():
        assert steps[0].state is NotificationState.FIRING
        assert all(step.state not in closed for step in steps[:-1])
        assert len({(s.kind, s.child_tag, s.bus) for s in steps}) == 1
    # a child read going out before the end, and not heard inside, is never "left aboard"
    # (a read without a direction after an unread boarding looks like a boarding: the
    # passage toggles, and counted-only asks for a walk-through)
    for rider in story.riders:
        read_out = rider.alighting_read and rider.direction_known and not rider.asleep
        if read_out and rider.tag not in story.heard:
            assert not [
                n
                for n in notes
                if n.child_tag == rider.tag
                and n.kind in (NotificationKind.CHILD_LEFT_ABOARD, NotificationKind.UNKNOWN_TAG)
                and n.state is NotificationState.FIRING
            ]
