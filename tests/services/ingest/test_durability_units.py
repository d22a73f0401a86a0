"""Unit tests of what keeps ingest from losing data: isolating refused points, the spool's
bounds and leftovers, the health file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from iotmon_contract import DeadLetterReason, DeviceState, StatusEvent, ValidatedReading
from iotmon_ingest.domain import iso_ns, refused_reading, refused_status
from iotmon_ingest.health import (
    Health,
    HealthState,
    HealthUnreadable,
    judge,
    read_health,
    stale_after_s,
    write_health,
)
from iotmon_ingest.refusals import LINE_BY_LINE, isolate_refused
from iotmon_ingest.spool import Spool, SpooledBatch, SpoolFull
from iotmon_storage import StoreRefused, StoreUnavailable


class RefusingStore:
    """Refuses writes holding any item in ``bad`` (InfluxDB-like: stores the rest, says
    how many it dropped when ``tells_dropped``); records every write."""

    def __init__(self, bad: set[int], *, tells_dropped: bool = True) -> None:
        self.bad = bad
        self.tells_dropped = tells_dropped
        self.stored: set[int] = set()
        self.writes: list[list[int]] = []

    def write(self, items: Sequence[int]) -> None:
        self.writes.append(list(items))
        refused = [i for i in items if i in self.bad]
        self.stored.update(i for i in items if i not in self.bad)
        if refused:
            raise StoreRefused(
                f"partial write: item {refused[0]} refused",
                dropped=len(refused) if self.tells_dropped else None,
            )


@pytest.mark.parametrize("tells_dropped", [True, False])
@pytest.mark.parametrize(
    "bad",
    [set(), {0}, {999}, {3, 4, 5}, {17, 500, 501, 998}, set(range(0, 1000, 7)), set(range(1000))],
    ids=["none", "first", "last", "run", "scattered", "every-7th", "all"],
)
def test_isolate_refused_finds_exactly_the_refused_items_and_stores_the_rest(
    bad: set[int], tells_dropped: bool
) -> None:
    items = list(range(1000))
    store = RefusingStore(bad, tells_dropped=tells_dropped)
    first = StoreRefused("whole batch refused", dropped=None)
    found = isolate_refused(items, store.write, first)
    assert [f.item for f in found] == sorted(bad)
    assert store.stored == set(items) - bad
    # Each refused item is named with the store's answer to a write it was part of.
    assert all(f.reason.startswith("partial write: item ") for f in found)
    # The whole set is never written again: the caller's refused write stands for it.
    assert items not in store.writes


def test_isolate_refused_is_cheap_for_one_bad_item_and_for_an_all_bad_batch() -> None:
    one_bad = RefusingStore({4321})
    isolate_refused(list(range(50_000)), one_bad.write, StoreRefused("x"))
    # Two writes per halving down to LINE_BY_LINE, then one per item.
    assert len(one_bad.writes) <= 2 * 16 + LINE_BY_LINE
    all_bad = RefusingStore(set(range(50_000)))
    found = isolate_refused(list(range(50_000)), all_bad.write, StoreRefused("x"))
    assert len(found) == 50_000
    assert len(all_bad.writes) == 2  # each half: "dropped" equals its size


def test_isolate_refused_lets_an_unavailable_store_through() -> None:
    def write(items: Sequence[int]) -> None:
        raise StoreUnavailable("gone")

    with pytest.raises(StoreUnavailable):
        isolate_refused([1, 2, 3], write, StoreRefused("x"))


def test_a_single_refused_item_is_refused_without_another_write() -> None:
    store = RefusingStore({1})
    found = isolate_refused([1], store.write, StoreRefused("the reason", dropped=1))
    assert [(f.item, f.reason) for f in found] == [(1, "the reason")]
    assert store.writes == []


def test_refused_reading_letter_names_the_reading_and_carries_the_reason() -> None:
    reading = ValidatedReading("acme", "child-3", "power_w", 12.5, "W", 1_764_000_000_123_456_789)
    rejected = refused_reading(
        reading, "InfluxDB (400): partial write: beyond retention", service="ingest"
    )
    letter = rejected.letter
    assert letter.reason is DeadLetterReason.STORE_REJECTED
    assert letter.service == "ingest"
    assert letter.topic == "iotmon/v1/acme/child-3/telemetry"
    assert "power_w of acme/child-3 at 2025-11-24T16:00:00.123456789Z" in letter.detail
    assert letter.detail.endswith("InfluxDB (400): partial write: beyond retention")
    payload = json.loads(letter.payload_excerpt)
    assert payload == {
        "tenant": "acme",
        "device": "child-3",
        "metric": "power_w",
        "value": 12.5,
        "unit": "W",
        "ts": "2025-11-24T16:00:00.123456789Z",
        "ts_ns": 1_764_000_000_123_456_789,
    }
    assert letter.payload_bytes == len(rejected.payload)


def test_refused_status_letter_names_the_status() -> None:
    status = StatusEvent("acme", "env-1", DeviceState.OFFLINE, 5)
    letter = refused_status(status, "too old", service="ingest").letter
    assert letter.topic == "iotmon/v1/acme/env-1/status"
    assert "status offline of acme/env-1 at 1970-01-01T00:00:00.000000005Z: too old" in (
        letter.detail
    )


def test_iso_ns_keeps_nanoseconds() -> None:
    assert iso_ns(0) == "1970-01-01T00:00:00.000000000Z"
    assert iso_ns(1_500_000_001) == "1970-01-01T00:00:01.500000001Z"


# -- spool ---------------------------------------------------------------------------


def batch_of(size: int) -> SpooledBatch:
    readings = [
        ValidatedReading("acme", "env-1", "temperature", float(i), None, i) for i in range(size)
    ]
    return SpooledBatch(1, readings, [], [])


def test_spool_byte_bound_refuses_a_batch_and_leaves_nothing_behind(tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    one = len(batch_of(100).encode())
    spool = Spool(folder, max_bytes=2 * one + one // 2)
    spool.put(batch_of(100))
    spool.put(batch_of(100))
    with pytest.raises(SpoolFull, match="spool_max_bytes") as full:
        spool.put(batch_of(100))
    assert full.value.full
    assert spool.pending() == 2
    assert spool.pending_bytes() == 2 * one
    assert sorted(p.name for p in folder.iterdir()) == [
        "00000000000000000001.batch.json",
        "00000000000000000002.batch.json",
    ]
    # Replaying one frees its bytes: the next batch fits.
    path, _ = next(spool.oldest())
    spool.remove(path)
    assert spool.pending_bytes() == one
    assert spool.put(batch_of(100)).name == "00000000000000000003.batch.json"


def test_spool_open_removes_stale_temporaries_and_counts_what_is_there(tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    first = Spool(folder)
    first.put(batch_of(3))
    size = first.pending_bytes()
    # What a process killed in the middle of put leaves: a temporary, never renamed.
    (folder / ".00000000000000000002.batch.json.tmp").write_bytes(b'{"seen_at')
    (folder / "rejected").mkdir()
    (folder / "rejected" / "00000000000000000007.batch.json").write_bytes(b"junk")
    (folder / "rejected" / ".00000000000000000008.batch.json.tmp").write_bytes(b"junk")
    reopened = Spool(folder)
    reopened.open()
    assert not list(folder.rglob("*.tmp"))
    assert reopened.pending() == 1
    assert reopened.pending_bytes() == size
    # Quarantined names are not reused.
    assert reopened.put(batch_of(1)).name == "00000000000000000008.batch.json"


def test_spool_in_a_folder_that_cannot_exist_is_not_writable_not_full(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("in the way")
    with pytest.raises(SpoolFull, match="Not a directory") as failure:
        Spool(blocked / "spool").put(batch_of(1))
    assert not failure.value.full


# -- health --------------------------------------------------------------------------


def health(**changes: object) -> Health:
    values: dict[str, object] = {
        "state": HealthState.DEGRADED,
        "intake_paused": False,
        "reasons": ("store unavailable: gone",),
        "held_messages": 0,
        "spool_batches": 3,
        "spool_bytes": 1234,
        "counters": {"received": 5},
        "client_id": "iotmon-ingest-x",
        "written_at": 1000.0,
        "interval_s": 5.0,
    }
    values.update(changes)
    return Health(**values)  # type: ignore[arg-type]


def test_health_file_round_trips_and_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "state" / "x.health.json"
    write_health(path, health())
    assert read_health(path) == health()
    write_health(path, health(state=HealthState.OK, reasons=()))
    assert read_health(path).state is HealthState.OK
    assert [p.name for p in path.parent.iterdir()] == ["x.health.json"]


def test_health_file_is_rewritten_in_place_when_no_new_file_can_be_made(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    path = folder / "x.health.json"
    write_health(path, health())
    # The temporary file cannot be made (here: a folder has its name; on a full disk:
    # no free block): the atomic replace fails, the in-place rewrite does not.
    (folder / ".x.health.json.tmp").mkdir()
    write_health(path, health(intake_paused=True, reasons=("spool full: intake paused",)))
    assert read_health(path).intake_paused


def test_health_verdicts() -> None:
    fresh = 1000.0 + 1
    assert judge(health(), fresh).healthy
    assert "store unavailable: gone" in judge(health(), fresh).summary
    assert judge(health(state=HealthState.OK, reasons=()), fresh).summary == "iotmon-ingest-x: ok"
    paused = judge(health(intake_paused=True, reasons=("spool full: intake paused (x)",)), fresh)
    assert not paused.healthy
    assert "spool full: intake paused" in paused.summary
    stale = judge(health(), 1000.0 + stale_after_s(5.0) + 1)
    assert not stale.healthy
    assert "stale" in stale.summary
    assert stale_after_s(5.0) == 15.0
    assert stale_after_s(30.0) == 90.0


def test_missing_or_garbled_health_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(HealthUnreadable, match="missing"):
        read_health(tmp_path / "none.json")
    garbled = tmp_path / "garbled.json"
    garbled.write_text('{"format": 1, "state": "ok"')
    with pytest.raises(HealthUnreadable, match="unreadable"):
        read_health(garbled, attempts=1)


# -- settings ------------------------------------------------------------------------


def test_ingest_store_timeout_defaults_short_also_for_a_plain_store_settings() -> None:
    from iotmon_ingest import IngestSettings
    from iotmon_storage import StoreSettings

    assert StoreSettings().timeout_s == 30.0  # the API's queries keep the long default
    assert IngestSettings(environment="test").store.timeout_s == 5.0
    # The demo hands every service one StoreSettings: what it sets counts, the rest
    # takes ingest's defaults.
    given = IngestSettings(environment="test", store=StoreSettings(url="http://db:8086"))
    assert (given.store.url, given.store.timeout_s) == ("http://db:8086", 5.0)
    explicit = IngestSettings(environment="test", store=StoreSettings(timeout_s=42))
    assert explicit.store.timeout_s == 42.0
