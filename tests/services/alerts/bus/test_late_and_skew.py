"""Events minutes late and out of order across devices after an outage, and device
clocks off by seconds: the decisions still follow the evidence, within 60 s of it."""

from __future__ import annotations

import json

from iotmon_alerts.bus import Evidence, NotificationKind, NotificationState, Reason
from tests.utils.bus import GUARDIANS, Day, at, guardians, iso, roles, seconds_after

LEFT = NotificationKind.CHILD_LEFT_ABOARD
END = 1800.0


def test_a_late_alighting_read_resolves_counted_only_before_the_guardians_hear() -> None:
    """The door reader's backlog (Cid got off at school) arrives 8 minutes after the end."""
    day = Day()
    day.morning(alighting=["TAG-ANN", "TAG-BEN"])
    day.door(928, "bus-1", "TAG-CID", "out", arrive=END + 480)
    notes = day.run()
    steps = [(n.state, n.reason) for n in notes.of(LEFT, "TAG-CID")]
    assert steps == [
        (NotificationState.FIRING, Reason.RUN_END),
        (NotificationState.FIRING, Reason.WALKTHROUGH_REMINDER),
        (NotificationState.RESOLVED, Reason.ALIGHTED_BEFORE_END),
    ]
    assert seconds_after(notes.of(LEFT, "TAG-CID")[-1], END + 480) <= 60
    assert all("guardian" not in roles(n) for n in notes.of(LEFT))
    # the late passage is still news for Cid's guardians, with its own time and stop
    (alighted,) = notes.of(NotificationKind.ALIGHTED, "TAG-CID")
    assert alighted.stop == "school-1"


def _hold_back(day: Day, start: float, end: float, order: list[str]) -> None:
    """A link outage from ``start`` to ``end``: what the bus's devices sent meanwhile
    arrives after it, device by device in ``order``, each device's events in order."""
    backlog: dict[str, list[dict[str, object]]] = {device: [] for device in order}
    kept = []
    for line in day.lines:
        data = json.loads(line)
        sent = data["at"]
        if data.get("device") in backlog and iso(at(start)) <= sent < iso(at(end)):
            backlog[data["device"]].append(data)
        else:
            kept.append(line)
    arrive = end + 1.0
    for device in order:
        for data in backlog[device]:
            data["at"] = iso(at(arrive))
            kept.append(json.dumps(data))
            arrive += 0.05
    day.lines = kept


def test_a_backlog_out_of_order_across_devices_decides_as_if_on_time() -> None:
    """After a link outage spanning the run end, the cabin scanner's backlog arrives, then
    the telematics' (with the run end), then the door reader's: the sweep comes before
    the run end it follows, Cid's alighting read after it."""

    def morning() -> Day:
        day = Day()
        day.morning(alighting=["TAG-ANN", "TAG-BEN"], sweep=[("TAG-CID", -54.0)])
        day.door(930, "bus-1", "TAG-ANN", "out", copies=2)  # a repeat, for the door's backlog
        return day

    late = morning()
    _hold_back(late, 900, END + 300, ["bus-1-cabin", "bus-1-gps", "bus-1-door"])
    expected = [(n.kind, n.state, n.child_tag, n.evidence) for n in morning().run().alerts()]
    got = [(n.kind, n.state, n.child_tag, n.evidence) for n in late.run().alerts()]
    assert got == expected
    assert got[0] == (LEFT, NotificationState.FIRING, "TAG-CID", Evidence.SEEN)
    notes = late.run()
    assert seconds_after(notes.of(LEFT, "TAG-CID")[0], END + 300) <= 60


def test_late_sweep_evidence_is_decided_within_a_minute_of_arriving() -> None:
    day = Day()
    day.morning()
    day.sweep(END + 600, "bus-1", [("TAG-BEN", -50.0)], sweep_id="s2", arrive=END + 1500)
    notes = day.run()
    (alert,) = notes.of(LEFT, "TAG-BEN", NotificationState.FIRING)
    assert alert.evidence is Evidence.SEEN
    assert 0 <= seconds_after(alert, END + 1500) <= 60
    assert guardians(alert) == GUARDIANS["TAG-BEN"]


def test_a_late_boarding_read_after_the_decision_fires_within_a_minute() -> None:
    day = Day()
    day.morning(boarding={"stop-a": ["TAG-ANN"]}, alighting=["TAG-ANN"])
    day.door(310, "bus-1", "TAG-BEN", "in", arrive=END + 900)
    notes = day.run(tail_s=2000)
    alert = notes.of(LEFT, "TAG-BEN")[0]
    assert (alert.evidence, alert.state) == (Evidence.COUNTED, NotificationState.FIRING)
    assert 0 <= seconds_after(alert, END + 900) <= 60


def test_skewed_clocks_keep_stops_and_the_sweep_after_the_end() -> None:
    """Door reader 5 s fast, GPS 5 s slow, scanner 5 s slow (its sweep stamped before the
    end it follows)."""
    day = Day(skew={"bus-1-door": 5.0, "bus-1-gps": -5.0, "bus-1-cabin": -8.0})
    day.morning(alighting=["TAG-ANN", "TAG-BEN"], sweep=[("TAG-CID", -53.0)])
    notes = day.run(tail_s=120)
    (cid,) = notes.of(NotificationKind.BOARDED, "TAG-CID")
    assert cid.stop == "stop-b"
    (alert,) = notes.of(LEFT, "TAG-CID", NotificationState.FIRING)
    assert alert.evidence is Evidence.SEEN


def test_duplicated_run_ends_are_one_run() -> None:
    day = Day()
    day.morning(alighting=["TAG-ANN", "TAG-BEN"])
    day.lines.extend(line for line in list(day.lines) if "run_end" in line)  # redelivered
    notes = day.run(tail_s=300)
    assert len(notes.of(LEFT, "TAG-CID", NotificationState.FIRING)) == 2  # fired, reminded
    assert len({n.fingerprint for n in notes.of(LEFT)}) == 1
