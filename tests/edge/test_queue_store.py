"""The on-disk queue on its own: order, retained states, sequences, bounds, schema versions."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from iotmon_edge.queue_store import (
    ROW_OVERHEAD,
    SCHEMA_VERSION,
    QueueStore,
    QueueStoreError,
    Synchronous,
    connect,
    migrate,
)
from iotmon_runtime.mqtt import OutgoingMessage


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def message(n: int, device: str = "d1", size: int = 10) -> OutgoingMessage:
    payload = f"{n:0{size}d}".encode()
    return OutgoingMessage(f"iotmon/v1/t/{device}/telemetry", payload, 1, False)


def status(device: str, state: str) -> OutgoingMessage:
    return OutgoingMessage(f"iotmon/v1/t/{device}/status", state.encode(), 1, True)


@pytest.fixture
def store(tmp_path: Path) -> QueueStore:
    opened = QueueStore(tmp_path / "q.db", clock=Clock())
    opened.open()
    return opened


def test_messages_come_back_in_the_order_they_were_put(store: QueueStore) -> None:
    store.append([message(n, f"d{n % 3}") for n in range(10)])
    rows = store.read(0, 100)
    assert [r.payload for r in rows] == [message(n).payload for n in range(10)]
    assert [r.topic for r in rows] == [f"iotmon/v1/t/d{n % 3}/telemetry" for n in range(10)]
    assert [r.id for r in rows] == sorted(r.id for r in rows)
    assert store.read(rows[4].id, 3) == rows[5:8]
    assert store.read(rows[4].id, 100, up_to_id=rows[6].id) == rows[5:7]
    assert store.totals() == (10, sum(len(m.payload) + ROW_OVERHEAD for m in [message(0)] * 10))


def test_acknowledged_messages_leave_and_their_ids_are_never_reused(
    tmp_path: Path, store: QueueStore
) -> None:
    store.append([message(n) for n in range(5)])
    ids = [r.id for r in store.read(0, 10)]
    removed = store.delete([*ids[:3], 999])  # an id already gone is ignored
    assert removed.messages == 3
    assert [r.id for r in store.read(0, 10)] == ids[3:]
    store.delete(ids[3:])
    assert store.totals() == (0, 0)
    store.close()
    reopened = QueueStore(tmp_path / "q.db")
    reopened.open()
    # An emptied queue goes on numbering after the last id: the outbox's cursors rely on it.
    reopened.append([message(9)])
    (row,) = reopened.read(0, 10)
    assert row.id == ids[-1] + 1
    assert reopened.last_id() == row.id


def test_a_retained_state_replaces_the_pending_one_of_its_topic(store: QueueStore) -> None:
    store.append([status("d1", "online"), message(1), status("d2", "online")])
    store.append([status("d1", "offline")])
    states = {s.topic: s for s in store.retained()}
    assert {t: s.payload for t, s in states.items()} == {
        "iotmon/v1/t/d1/status": b"offline",
        "iotmon/v1/t/d2/status": b"online",
    }
    assert store.totals().messages == 1  # states are not queue items
    # Acknowledging an older version leaves a newer one in place.
    d1 = states["iotmon/v1/t/d1/status"]
    store.delete_retained(d1.topic, d1.version - 1)
    assert len(store.retained()) == 2
    store.delete_retained(d1.topic, d1.version)
    assert [s.topic for s in store.retained()] == ["iotmon/v1/t/d2/status"]


def test_sequences_commit_with_the_messages(tmp_path: Path, store: QueueStore) -> None:
    store.append([message(0), message(1)], {"telemetry:d1": 2})
    store.append([message(2)], {"telemetry:d1": 3, "event:d1": 1})
    store.close()
    reopened = QueueStore(tmp_path / "q.db")
    reopened.open()
    assert reopened.sequences() == {"telemetry:d1": 3, "event:d1": 1}
    assert reopened.totals().messages == 3


def test_a_failed_transaction_leaves_nothing_behind(store: QueueStore) -> None:
    store.append([message(0)], {"telemetry:d1": 1})
    bad = OutgoingMessage("iotmon/v1/t/other/telemetry", b"x", None, False)  # type: ignore[arg-type]
    with pytest.raises(sqlite3.IntegrityError):
        store.append([message(1, "other"), bad], {"telemetry:d1": 9})
    assert store.totals().messages == 1
    assert store.sequences() == {"telemetry:d1": 1}
    # The topic inserted by the rolled-back transaction is not cached either.
    store.append([message(2, "other")])
    assert [r.topic for r in store.read(0, 10)][-1] == "iotmon/v1/t/other/telemetry"


def test_drop_oldest_frees_down_to_the_target_and_spares_messages_in_flight(
    store: QueueStore,
) -> None:
    store.append([message(n) for n in range(100)])
    ids = [r.id for r in store.read(0, 1000)]
    per_message = len(message(0).payload) + ROW_OVERHEAD
    in_flight = {ids[0], ids[1]}
    dropped = store.drop_oldest(50 * per_message, keep=in_flight)
    assert dropped == (50, 50 * per_message)
    assert store.totals() == (50, 50 * per_message)
    left = [r.id for r in store.read(0, 1000)]
    assert left == ids[:2] + ids[52:]
    assert store.counters() == {"dropped_messages": 50, "dropped_bytes": 50 * per_message}
    assert store.drop_oldest(10**9) == (0, 0)


def test_drop_expired_stops_at_the_first_young_message(tmp_path: Path) -> None:
    clock = Clock()
    store = QueueStore(tmp_path / "q.db", clock=clock)
    store.open()
    store.append([message(n) for n in range(3)])
    clock.now += 100
    store.append([message(n) for n in range(3, 5)])
    ids = [r.id for r in store.read(0, 10)]
    dropped = store.drop_expired(clock.now - 50, keep={ids[1]})
    assert dropped.messages == 2
    assert [r.id for r in store.read(0, 10)] == [ids[1], *ids[3:]]
    assert store.oldest_enqueued_at() == clock.now - 100  # the one in flight
    assert store.counters()["dropped_messages"] == 2


def test_a_new_file_is_at_the_current_version_in_wal_mode(store: QueueStore) -> None:
    db = sqlite3.connect(store.path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()


def test_a_version_1_queue_opens_with_its_messages_ids_and_sequences(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    db = connect(path)
    assert migrate(db, target=1) == 0
    rows = [
        ("iotmon/v1/t/a/telemetry", b'{"seq":0}', 1, 1_800_000_000.0),
        ("iotmon/v1/t/b/telemetry", b'{"seq":0}', 1, 1_800_000_001.0),
        ("iotmon/v1/t/a/telemetry", b'{"seq":1}', 1, 1_800_000_002.0),
        ("iotmon/v1/t/a/telemetry", b'{"seq":2}', 1, 1_800_000_003.0),
    ]
    db.executemany("INSERT INTO queue (topic, payload, qos, enqueued_at) VALUES (?, ?, ?, ?)", rows)
    db.execute("DELETE FROM queue WHERE id = 4")  # delivered: its id must stay used
    db.execute("INSERT INTO sequences (stream, next) VALUES ('telemetry:a', 3), ('telemetry:b', 1)")
    db.close()

    store = QueueStore(path)
    report = store.open()
    assert report.migrated_from == 1
    assert [(r.id, r.topic, r.payload) for r in store.read(0, 10)] == [
        (1, rows[0][0], rows[0][1]),
        (2, rows[1][0], rows[1][1]),
        (3, rows[2][0], rows[2][1]),
    ]
    assert store.totals() == (3, sum(len(r[1]) + ROW_OVERHEAD for r in rows[:3]))
    assert store.sequences() == {"telemetry:a": 3, "telemetry:b": 1}
    assert store.oldest_enqueued_at() == 1_800_000_000.0
    store.append([message(7, "a")])
    assert store.read(3, 10)[0].id == 5
    store.close()
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    check.close()


def test_a_queue_from_a_newer_agent_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    before = path.read_bytes()
    with pytest.raises(QueueStoreError, match="newer"):
        QueueStore(path).open()
    assert path.read_bytes() == before


def test_a_damaged_file_is_moved_aside_and_a_fresh_queue_starts(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    store = QueueStore(path)
    store.open()
    store.append([message(n, size=2000) for n in range(200)])
    store.close()
    data = bytearray(path.read_bytes())
    data[5000:9000] = b"\xa5" * 4000  # pages in the middle: garbage
    path.write_bytes(bytes(data))
    fresh = QueueStore(path)
    report = fresh.open()
    assert report.damaged_moved_to is not None
    assert report.damaged_moved_to.exists()
    assert fresh.totals() == (0, 0)
    fresh.append([message(1)])
    assert len(fresh.read(0, 10)) == 1


def test_the_file_cannot_outgrow_its_hard_ceiling(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "q.db", max_file_bytes=256 * 1024, synchronous=Synchronous.NORMAL)
    store.open()

    def fill() -> None:
        for n in range(1000):
            store.append([message(n, size=1000)])

    with pytest.raises(sqlite3.OperationalError, match="full"):
        fill()
    assert store.file_bytes() <= 256 * 1024 + 4 * 1024 * 1024  # the file, plus at most the WAL
    assert (tmp_path / "q.db").stat().st_size <= 256 * 1024
