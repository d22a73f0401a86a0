"""Simulated school days through the live alert service, on its accelerated clock, over real
mosquitto to a real loopback receiver that verifies every signature: the webhooks carry
the notifications the replay gives for the same days, each guardian receives what is
addressed to them and nothing else, and no child with evidence is missed."""

from __future__ import annotations

import bisect
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from iotmon_alerts.adapters.database import AlertsDatabase, DeliveryState
from iotmon_alerts.bus import BusRules, BusSafetyEngine, Fleet, FleetDocument, Notification
from iotmon_alerts.bus.journal import EntryKind, decode
from iotmon_alerts.bus.replay import read_items, replay
from iotmon_alerts.bus.timeline import Timeline
from iotmon_alerts.clock import SimulatedClock
from iotmon_alerts.domain.model import JournalRecord
from iotmon_alerts.routing import Owner
from iotmon_devices.simulators.school_bus import FaultRates, SchoolBusSimConfig, simulate
from iotmon_devices.simulators.school_bus.truth import TruthRun
from iotmon_tools.bench.bus_score import score
from iotmon_tools.localstack import MosquittoProcess, WebhookReceiver
from tests.services.alerts.support import (
    ClockFeeder,
    ServiceProcess,
    bus_notifications,
    make_settings,
    parse_time,
    service_environment,
    wait_online,
    wait_until,
    write_rules,
)
from tests.utils.mqtt_peer import Peer

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SEED, DAYS, BUSES = 3, 2, 6
ASLEEP = 0.2
"""12 bus-days: two school days of six buses, every fault at its realistic rate except a
child asleep aboard in 20 % of runs (~1 % is realistic), so children are left aboard."""
IDLE_S = 1200.0
"""Idle stretches (nights, the school day) are cut to 20 min: the bus rules are done by
then (decisions at 30 s, guardian delay 10 min), and the live run stays short."""
SPEED = 300.0
TAIL = timedelta(minutes=30)
GUARDIANS = 8

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Days:
    fleet: Fleet
    fleet_json: str
    lines: list[dict[str, Any]]
    runs: list[TruthRun]


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _shifted(text: str, by: timedelta) -> str:
    return _iso(parse_time(text) - by)


class _Cuts:
    """Idle stretches longer than IDLE_S cut to IDLE_S: how far each moment moves."""

    def __init__(self, lines: list[dict[str, Any]]) -> None:
        self.at: list[float] = []
        self.cut: list[float] = []
        cut, previous = 0.0, None
        for line in sorted(lines, key=lambda line: line["at"]):
            at = parse_time(line["at"]).timestamp()
            if previous is not None and at - previous > IDLE_S:
                cut += at - previous - IDLE_S
            previous = at
            self.at.append(at)
            self.cut.append(cut)

    def of(self, moment: float) -> float:
        """The cut before ``moment`` (a moment inside a cut stretch moves with what precedes
        it)."""
        index = bisect.bisect_right(self.at, moment) - 1
        return self.cut[max(index, 0)]


def _compressed(lines: list[dict[str, Any]], cuts: _Cuts) -> list[dict[str, Any]]:
    """The lines with idle stretches cut; a line's device time moves with its delivery, so
    lateness and clock skew stay as simulated."""
    out: list[dict[str, Any]] = []
    for line in sorted(lines, key=lambda line: line["at"]):
        by = timedelta(seconds=cuts.of(parse_time(line["at"]).timestamp()))
        moved = json.loads(json.dumps(line))
        moved["at"] = _shifted(line["at"], by)
        body = moved.get("event") or moved.get("status") or {}
        if "ts" in body:
            body["ts"] = _shifted(body["ts"], by)
        out.append(moved)
    return out


def _compress_truth(runs: list[TruthRun], cuts: _Cuts) -> None:
    """What really happened, on the cut timeline (in place), so the score matches runs."""
    for run in runs:
        by = cuts.of(run.end)
        run.start -= by
        run.end -= by
        if run.walkthrough_at is not None:
            run.walkthrough_at -= by
        for passage in run.passages:
            passage.time -= by
        for left in run.left_aboard:
            if left.found_at is not None:
                left.found_at -= by


def _days() -> Days:
    sim = simulate(
        SchoolBusSimConfig(seed=SEED, days=DAYS, buses=BUSES, faults=FaultRates(asleep=ASLEEP))
    )
    document = sim.world.document()
    fleet = Fleet.from_document(FleetDocument.model_validate(document))
    lines = [line.data for line in sim.lines]
    cuts = _Cuts(lines)
    _compress_truth(sim.runs, cuts)
    return Days(fleet, json.dumps(document), _compressed(lines, cuts), sim.runs)


FIELDS = ("kind", "severity", "bus", "child_tag", "state", "stop")


def _replay_journal(
    fleet: Fleet, rules: BusRules, records: list[JournalRecord], until: datetime
) -> list[Notification]:
    """The core driven through what the service's journal says it took, when it took it."""
    timeline = Timeline(BusSafetyEngine(fleet, rules), journal=False)
    out: list[Notification] = []
    for record in records:
        entry = decode(record.line)
        if entry.kind is EntryKind.ADVANCE:
            out += timeline.advance(entry.at)
        else:
            assert entry.event is not None, entry  # no acknowledgements in these days
            out += timeline.handle(entry.event, entry.at)
    out += timeline.advance(until)
    return [n for n in out if n.time <= until]


def _key(record: dict[str, Any], *, timed: bool = False) -> str:
    """A notification by the issue's fields, without its decision time (a notice is
    decided when its read arrives, which live is a few simulated seconds after the line's
    ``at``); ``event_time`` to the millisecond (the replay writes milliseconds)."""
    kept: dict[str, Any] = {name: record[name] for name in FIELDS}
    kept["recipients"] = sorted((r["role"], r["id"]) for r in record["recipients"])
    event_time = record["event_time"]
    kept["event_time"] = _iso(parse_time(event_time)) if event_time is not None else None
    if timed:
        kept["time"] = _iso(parse_time(record["time"]))
    return json.dumps(kept, sort_keys=True)


@pytest.mark.slow
def test_twelve_bus_days_live_give_the_replays_notifications(
    tmp_path: Path, fresh_mosquitto: MosquittoProcess
) -> None:
    days = _days()
    items, errors = read_items(json.dumps(line) for line in days.lines)
    assert errors == []
    rules = BusRules()
    replayed = replay(days.fleet, rules, items, tail=TAIL)
    assert replayed.errors == []
    scored = score(days.fleet, days.runs, replayed.notifications, rules.sweep_inside_rssi_dbm)
    assert scored.bus_days >= 10
    assert scored.with_evidence > 0
    assert scored.missed == 0
    assert scored.privacy_violations == 0

    settings = make_settings(tmp_path, fresh_mosquitto)
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(days.fleet_json)
    write_rules(
        settings, days.fleet.tenant, f"tenant: {days.fleet.tenant}\nbus:\n  fleet: {fleet_file}\n"
    )
    receiver = WebhookReceiver()
    operator_url = receiver.add_endpoint("/operator", SECRET)
    guardians = sorted({g for child in days.fleet.children.values() for g in child.guardians})
    chosen = guardians[:: max(1, len(guardians) // GUARDIANS)][:GUARDIANS]
    first_at = parse_time(days.lines[0]["at"])
    with AlertsDatabase(settings.database) as database:
        database.add_subscription(
            days.fleet.tenant, Owner.TENANT, operator_url, secret=SECRET, now=first_at
        )
        for guardian in chosen:
            url = receiver.add_endpoint(f"/guardian/{guardian}", SECRET)
            database.add_subscription(
                days.fleet.tenant,
                Owner.GUARDIAN,
                url,
                guardian=guardian,
                secret=SECRET,
                now=first_at,
            )
    # One clock for the test and the service: it reads a minute before the first line
    # three seconds from now.
    starts_at = datetime.now(UTC) + timedelta(seconds=3)
    epoch = first_at - timedelta(minutes=1)
    clock = SimulatedClock(epoch, SPEED, starts_at)
    environment = service_environment(
        settings,
        IOTMON_ALERTS_CLOCK__EPOCH=epoch.isoformat(),
        IOTMON_ALERTS_CLOCK__SPEED=str(SPEED),
        IOTMON_ALERTS_CLOCK__STARTS_AT=starts_at.isoformat(),
        IOTMON_ALERTS_TICK_INTERVAL_S="0.02",
    )
    service = ServiceProcess(environment, tmp_path / "alerts.log")
    peer = Peer(fresh_mosquitto.port, None)
    peer.connect()
    receiver.start()
    service.start()
    try:
        wait_online(peer, settings, service.process)
        feeder = ClockFeeder(peer, clock, days.lines)
        last_at = parse_time(days.lines[-1]["at"])
        started = time.monotonic()
        feeder.publish_until(last_at + timedelta(seconds=1))
        feeder.sleep_until(last_at + TAIL + timedelta(minutes=1))
        with AlertsDatabase(settings.database) as database:
            wait_until(
                lambda: DeliveryState.PENDING.value not in database.outbox_counts(),
                60,
                "the outbox drained",
            )
            journal = database.journal(days.fleet.tenant, epoch)
        wall = time.monotonic() - started
    finally:
        service.stop()
        receiver.stop()
        peer.close()

    cutoff = last_at + TAIL - timedelta(minutes=1)
    live = [
        r
        for r in bus_notifications(receiver.received("/operator"))
        if parse_time(r["time"]) <= cutoff
    ]
    assert receiver.bad_signatures == 0
    # 1. Exactly the replay of the deliveries as the service took them (its journal: each
    # line at the simulated time it arrived), decision times included.
    taken = _replay_journal(days.fleet, rules, journal, cutoff)
    as_taken = [n.to_json() for n in taken]
    missing = Counter(_key(r, timed=True) for r in as_taken) - Counter(
        _key(r, timed=True) for r in live
    )
    extra = Counter(_key(r, timed=True) for r in live) - Counter(
        _key(r, timed=True) for r in as_taken
    )
    assert not missing, (len(as_taken), len(live), list(missing)[:5])
    assert not extra, list(extra)[:5]
    live_score = score(days.fleet, days.runs, taken, rules.sweep_inside_rssi_dbm)
    assert live_score.with_evidence == scored.with_evidence
    assert live_score.missed == 0
    assert live_score.privacy_violations == 0
    # 2. The replay of the file's own delivery times: the same notifications but for the
    # decision times, unless a delivery that went out late (the feeder's lateness, a few
    # simulated seconds under load) crossed a deadline; never more than a handful.
    expected = [n.to_json() for n in replayed.notifications if n.time <= cutoff]
    differing = (Counter(map(_key, expected)) - Counter(map(_key, live))) + (
        Counter(map(_key, live)) - Counter(map(_key, expected))
    )
    assert sum(differing.values()) <= len(expected) // 100, list(differing)[:5]
    kinds = Counter(r["kind"] for r in live)
    assert kinds["boarded"] > 100
    assert kinds["alighted"] > 100
    # Each chosen guardian: exactly the notifications addressed to them, no other family named.
    for guardian in chosen:
        mine = [
            _key({**n.to_json(), "recipients": [{"role": "guardian", "id": guardian}]})
            for n in taken
            if any(r.id == guardian for r in n.recipients)
        ]
        got = bus_notifications(receiver.received(f"/guardian/{guardian}"))
        got = [r for r in got if parse_time(r["time"]) <= cutoff]
        # what a guardian is shown: the roles and themselves (checked below), so compared
        # on the rest
        shown = [_key({**r, "recipients": [{"role": "guardian", "id": guardian}]}) for r in got]
        assert sorted(shown) == sorted(mine), guardian
        assert mine, guardian
        for record in got:
            others = {r["id"] for r in record["recipients"] if r["role"] == "guardian"}
            assert others == {guardian}, record
    lateness = sorted(feeder.lateness)
    logger.info(
        "live: %d lines, %d bus-days, %d runs, %d notifications %s, %.0f s wall at x%g; "
        "feeder lateness p99 %.1f simulated s; left aboard with evidence %d, alerted %d, "
        "missed %d, guardians told %d; %d guardians' endpoints checked; %d notification(s) "
        "differ from the replay of the file's delivery times",
        len(days.lines),
        scored.bus_days,
        scored.runs,
        len(live),
        dict(kinds),
        wall,
        SPEED,
        lateness[int(len(lateness) * 0.99)],
        scored.with_evidence,
        scored.alerted,
        scored.missed,
        scored.guardians_told,
        len(chosen),
        sum(differing.values()),
    )
