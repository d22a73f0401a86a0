"""The bus rules' journal: a core rebuilt from what another one took (cut anywhere, through
the JSON lines the service stores) goes on exactly as the first one did."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from typing import Any

import pytest

from iotmon_alerts.bus import BusEvent, BusRules, BusSafetyEngine, Fleet, FleetDocument
from iotmon_alerts.bus.journal import (
    Acknowledgement,
    EntryKind,
    JournalEntry,
    JournalError,
    decode,
    encode,
)
from iotmon_alerts.bus.replay import ReplayItem, read_items
from iotmon_alerts.bus.timeline import Timeline
from iotmon_contract.payloads import DeviceState
from iotmon_devices.simulators.school_bus import FaultRates, SchoolBusSimConfig, simulate
from tests.utils.bus import Day, at, fleet


def _record(notifications: list[Any]) -> list[dict[str, Any]]:
    return [n.to_json() for n in notifications]


def _feed(timeline: Timeline, item: ReplayItem) -> list[Any]:
    if item.event is not None:
        return timeline.handle(item.event, item.at)
    assert item.ack is not None
    return timeline.acknowledge(item.ack.fingerprint, item.ack.by, item.ack.reason, item.at)


def _simulated(seed: int) -> tuple[Fleet, list[ReplayItem]]:
    sim = simulate(SchoolBusSimConfig(seed=seed, days=1, buses=3, faults=FaultRates(asleep=0.5)))
    fleet = Fleet.from_document(FleetDocument.model_validate(sim.world.document()))
    items, errors = read_items(json.dumps(line.data) for line in sim.lines)
    assert errors == []
    return fleet, items


def _run(
    timeline: Timeline, items: list[ReplayItem], offsets: list[float], tail: Any
) -> list[list[dict[str, Any]]]:
    """Each input, then the service's periodic tick a moment after it; what each decided."""
    told = []
    for item, offset in zip(items, offsets, strict=True):
        out = _feed(timeline, item)
        out.extend(timeline.advance(item.at + timedelta(seconds=offset)))
        told.append(_record(out))
    told.append(_record(timeline.advance(tail)))
    return told


@pytest.mark.parametrize("seed", [1, 2])
def test_a_core_rebuilt_from_the_journal_goes_on_as_the_first_did(seed: int) -> None:
    """Cut a simulated day anywhere (with a child asleep in half the runs): a core rebuilt
    from the journal's JSON lines up to the cut decides, from there on, exactly what the
    first one decided, and tells nothing while rebuilding."""
    fleet, items = _simulated(seed)
    rng = random.Random(seed)
    offsets = [rng.uniform(0, 3) for _ in items]
    tail = items[-1].at + timedelta(hours=1)
    first = Timeline(BusSafetyEngine(fleet, BusRules()))
    lines: list[str] = []
    journal_at: list[int] = []
    told: list[list[dict[str, Any]]] = []
    for item, offset in zip(items, offsets, strict=True):
        journal_at.append(len(lines))
        told.append(_run(first, [item], [offset], item.at)[0])
        lines.extend(encode(entry) for entry in first.take_journal())
    told.append(_record(first.advance(tail)))
    alerts = sum(1 for out in told for n in out if n["kind"] == "child_left_aboard")
    assert alerts > 3
    # cuts right after a periodic tick that decided something (the journal's "advance"
    # lines matter there), and anywhere
    after_ticks = [
        i
        for i in range(1, len(items))
        if any('"kind":"advance"' in line for line in lines[journal_at[i - 1] : journal_at[i]])
    ]
    assert len(after_ticks) >= 4
    for cut in sorted(rng.sample(after_ticks, 4) + rng.sample(range(1, len(items)), 6)):
        rebuilt = Timeline(BusSafetyEngine(fleet, BusRules()))
        report = rebuilt.rebuild(decode(line) for line in lines[: journal_at[cut]])
        assert report.entries == journal_at[cut]
        assert rebuilt.take_journal() == []
        assert _run(rebuilt, items[cut:], offsets[cut:], tail) == told[cut:], f"cut at {cut}"


def test_a_core_without_the_journal_misses_the_child_counted_aboard() -> None:
    """Why the journal exists: Cid's boarding came before the cut; without it, a new core
    never learns Cid is aboard and the run end raises nothing."""
    day = Day()
    day.morning(alighting=["TAG-ANN", "TAG-BEN"])
    items = Day.items(day)
    cut = next(i for i, item in enumerate(items) if item.at > at(700))
    first = Timeline(BusSafetyEngine(fleet(), BusRules()))
    for item in items[:cut]:
        _feed(first, item)
    lines = [encode(entry) for entry in first.take_journal()]
    rebuilt = Timeline(BusSafetyEngine(fleet(), BusRules()))
    rebuilt.rebuild(decode(line) for line in lines)
    forgetful = Timeline(BusSafetyEngine(fleet(), BusRules()))
    told: dict[str, list[Any]] = {"rebuilt": [], "forgetful": []}
    for item in items[cut:]:
        told["rebuilt"].extend(_feed(rebuilt, item))
        told["forgetful"].extend(_feed(forgetful, item))
    end = items[-1].at + timedelta(minutes=30)
    told["rebuilt"].extend(rebuilt.advance(end))
    told["forgetful"].extend(forgetful.advance(end))
    left = {
        k: [n.child_tag for n in v if n.kind.value == "child_left_aboard"] for k, v in told.items()
    }
    assert "TAG-CID" in left["rebuilt"]
    assert left["forgetful"] == []


def test_journal_lines_round_trip_and_name_what_is_wrong() -> None:
    day = Day()
    day.door(10, "bus-1", "TAG-ANN", "in")
    day.status(20, "bus-1-door", "offline")
    (door, status) = [item.event for item in day.items()]
    assert door is not None
    assert status is not None
    entries = [
        JournalEntry(at(11), EntryKind.EVENT, door),
        JournalEntry(at(21), EntryKind.STATUS, status),
        JournalEntry(at(30), EntryKind.ACK, ack=Acknowledgement("abc123", "op-1", "at home")),
        JournalEntry(at(31), EntryKind.ADVANCE),
    ]
    lines = [encode(entry) for entry in entries]
    assert [decode(line) for line in lines] == entries
    assert json.loads(lines[0])["v"] == 1
    assert isinstance(decode(lines[1]).event, BusEvent)
    assert decode(lines[1]).event.payload is DeviceState.OFFLINE  # type: ignore[union-attr]
    with pytest.raises(JournalError, match=r"^v: "):
        decode(lines[0].replace('"v":1', '"v":2'))
    with pytest.raises(JournalError, match="a status line needs"):
        decode('{"v":1,"at":"2026-11-25T07:00:00Z","kind":"status","tenant":"demo"}')
    with pytest.raises(JournalError):
        decode("not json")
