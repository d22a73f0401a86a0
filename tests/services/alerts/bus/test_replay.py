"""The replay: bad lines are named, counted and skipped; acknowledgements replay; and
``iotmon bus replay`` over a simulated day writes what the core decides."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from iotmon_alerts.bus import BusRules, NotificationKind, NotificationState, load_fleet
from iotmon_alerts.bus.replay import read_items, replay
from tests.utils.bus import Day, fleet

IOTMON = Path(sys.executable).with_name("iotmon")
ISSUE_FIELDS = [
    "time", "kind", "severity", "bus", "child_tag", "recipients", "state", "stop", "event_time",
]  # fmt: skip


def test_bad_lines_are_named_counted_and_skipped() -> None:
    day = Day()
    day.morning()
    good = len(day.lines)
    bad = [
        "{not json",
        json.dumps({"tenant": "demo", "device": "bus-1-door", "event": {}}),
        json.dumps(
            {"at": "2026-11-25T07:00:00Z", "tenant": "demo", "device": "bus-1-door",
             "event": {"type": "teleport", "ts": "2026-11-25T07:00:00Z", "seq": 1}}
        ),
        json.dumps(
            {"at": "2026-11-25T07:00:00Z", "tenant": "demo", "device": "bus-1-door",
             "event": {"type": "tag_read", "ts": "2026-11-25T07:00:00Z", "seq": 1,
                       "tag": "TAG-ANN", "rssi": "loud"}}
        ),
        json.dumps({"at": "2026-11-25T07:00:00Z", "event": {"type": "walkthrough_check",
                    "ts": "2026-11-25T07:00:00Z", "seq": 1}}),
        json.dumps({"at": "yesterday", "ack": {"fingerprint": "x", "by": "a", "reason": "b"}}),
        "",
    ]  # fmt: skip
    items, errors = read_items([*day.lines[:5], *bad, *day.lines[5:]])
    assert len(items) == good
    unknown_type = errors.pop(2)
    assert unknown_type.startswith(
        "line 8: event: Input tag 'teleport' found using 'type' does not match any of the "
        "expected tags: 'fault', 'tag_read', "
    )
    assert errors == [
        "line 6: not valid JSON",
        "line 7: at: Field required (and 1 more problem)",
        "line 9: event.tag_read.rssi: Input should be a valid number",
        "line 10: an event or status line needs its tenant and device",
        "line 11: at: Input should be an RFC 3339 timestamp with a UTC offset, "
        "e.g. 2026-11-25T10:00:00Z",
    ]
    result = replay(fleet(), BusRules(), items)
    assert len(result.notifications) == len(day.run().all)


def test_events_from_strangers_are_counted_not_fatal() -> None:
    day = Day()
    day.morning()
    day.lines.append(day.lines[-1].replace('"tenant": "demo"', '"tenant": "other"'))
    day.lines.append(day.lines[-2].replace('"bus-1-cabin"', '"bus-9-cabin"'))
    day.event(100, "bus-1-door", {"type": "ignition", "on": False})  # the wrong device
    items, errors = read_items(day.lines)
    assert errors == []
    result = replay(fleet(), BusRules(), items)
    assert result.stats["wrong_tenant"] == 1
    assert result.stats["unknown_device"] == 1
    assert result.stats["unexpected_ignition"] == 1


def test_an_acknowledgement_line_clears_its_alert_and_an_unknown_one_is_refused() -> None:
    day = Day()
    day.morning(alighting=["TAG-ANN", "TAG-BEN"], sweep=[("TAG-CID", -52.0)])
    first = day.run(tail_s=60).of(NotificationKind.CHILD_LEFT_ABOARD, "TAG-CID")[0]
    day.ack(1900, first.fingerprint, reason="tag found on the floor")
    day.ack(1910, "0000000000000000")
    items, _ = read_items(day.lines)
    result = replay(fleet(), BusRules(), items, tail=timedelta(hours=1))
    assert result.errors == [f"line {len(day.lines)}: no alert with fingerprint '0000000000000000'"]
    last = [n for n in result.notifications if n.fingerprint == first.fingerprint][-1]
    assert last.state is NotificationState.ACKNOWLEDGED
    assert last.note == "tag found on the floor"


def _iotmon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(IOTMON), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "COLUMNS": "250"},
    )


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sim")
    run = _iotmon("bus", "simulate", "--out", str(folder), "--seed", "3", "--days", "1")
    assert run.returncode == 0, run.stderr
    assert "bus-days" in run.stdout
    return folder


def test_iotmon_bus_replay_writes_what_the_core_decides(simulated: Path) -> None:
    events = simulated / "events.jsonl"
    with events.open("a") as out:
        out.write('{"at": "2026-09-07T09:00:00Z", "tenant": "demo"}\n')
    output = simulated / "notifications.jsonl"
    run = _iotmon(
        "bus", "replay", "--fleet", str(simulated / "fleet.yaml"), str(events),
        "--output", str(output),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = events.read_text().splitlines()
    assert f"skipped {events}: line {len(lines)}: a line holds exactly one of" in run.stderr
    assert f"replayed {len(lines) - 1} events, 1 bad lines" in run.stderr
    written = [json.loads(line) for line in output.read_text().splitlines()]
    assert written
    assert all(list(n)[: len(ISSUE_FIELDS)] == ISSUE_FIELDS for n in written)
    # the same as the core in-process, notification for notification
    items, _ = read_items(lines)
    expected = replay(load_fleet(simulated / "fleet.yaml"), BusRules(), items).notifications
    assert written == [n.to_json() for n in expected]
    kinds = {n["kind"] for n in written}
    assert {"boarded", "alighted"} <= kinds


def test_iotmon_bus_replay_refuses_a_bad_fleet_saying_where(
    simulated: Path, tmp_path: Path
) -> None:
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(
        (simulated / "fleet.yaml").read_text().replace("radius_m: 150", "radius_m: x")
    )
    run = _iotmon("bus", "replay", "--fleet", str(fleet_file), str(simulated / "events.jsonl"))
    assert run.returncode == 2
    assert f"{fleet_file}: depots.0.radius_m: Input should be a valid number" in run.stderr
