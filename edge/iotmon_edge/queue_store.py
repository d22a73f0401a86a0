"""The edge agent's on-disk queue: SQLite in WAL mode, one file, a versioned schema.

Messages wait here from the moment the agent takes them until the broker has
acknowledged them, so a dead broker, ``kill -9`` or a power cut loses nothing
committed. SQLite (stdlib) rather than a queue library: its WAL journal makes
every transaction atomic across crashes, which is what the queue's invariants
rest on (a message and its sequence number commit together; a delete is whole
or absent), it needs no extra dependency on the Pi, and ``quick_check`` tells a
damaged file from a good one.

Only ``DurableOutbox``'s thread uses a store once it is open (the connection is
shared across threads on that promise). The owner bounds it: ``drop_oldest`` and
``drop_expired`` free space; ``max_file_bytes`` is a backstop SQLite enforces.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple

from iotmon_runtime.mqtt import OutgoingMessage

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2
"""``PRAGMA user_version`` of a queue this code writes; older ones are migrated on open."""

ROW_OVERHEAD = 40
"""Bytes a queued message costs beyond its payload (rowid, columns, B-tree cell),
counted against the bound so that many tiny messages cannot outgrow it."""

_DROP_BATCH = 5000


class Synchronous(StrEnum):
    """When SQLite waits for the disk (``PRAGMA synchronous`` in WAL mode)."""

    FULL = "full"
    """fsync on every commit: a power cut loses nothing committed."""
    NORMAL = "normal"
    """fsync at checkpoints only: never corrupt, but a power cut may undo the last
    commits (a process crash loses nothing). Gentler on SD cards."""


class QueueStoreError(RuntimeError):
    """A queue file that cannot be used (newer schema, unwritable folder…)."""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    topic: str
    payload: bytes
    qos: int
    size: int
    """What it counts against the bound: payload plus ``ROW_OVERHEAD``."""


@dataclass(frozen=True, slots=True)
class RetainedState:
    """The latest retained message for a topic (a status): state, not a queue item."""

    topic: str
    payload: bytes
    qos: int
    version: int


class Dropped(NamedTuple):
    messages: int
    bytes: int


class QueueTotals(NamedTuple):
    messages: int
    bytes: int


@dataclass(frozen=True, slots=True)
class OpenReport:
    migrated_from: int | None
    """Schema version the file had, when it was migrated on open."""
    damaged_moved_to: Path | None
    """Where a damaged file was moved before a fresh queue was created."""


# -- schema ---------------------------------------------------------------------------
# Each step takes the file from version N-1 to N inside the opening transaction. A
# new file goes through every step, so the path old files take is the one tested.

_V1 = """
CREATE TABLE queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    enqueued_at REAL NOT NULL
);
CREATE TABLE sequences (stream TEXT PRIMARY KEY, next INTEGER NOT NULL) WITHOUT ROWID;
"""
"""Version 1: one row per message with its topic; sequence numbers per stream."""


def _v1_to_v2(db: sqlite3.Connection) -> None:
    """Version 2: topics stored once (a device's topic repeats in every row), sizes
    kept per row for the bound, retained states apart from the queue, and counters
    that outlive a restart (messages dropped)."""
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'queue'").fetchone()
    high_water = int(row[0]) if row else 0
    db.execute("CREATE TABLE topics (id INTEGER PRIMARY KEY, topic TEXT NOT NULL UNIQUE)")
    db.execute("INSERT INTO topics (topic) SELECT topic FROM queue GROUP BY topic ORDER BY min(id)")
    db.execute(
        """CREATE TABLE queue_v2 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            topic_id INTEGER NOT NULL REFERENCES topics (id),
            payload BLOB NOT NULL,
            qos INTEGER NOT NULL,
            size INTEGER NOT NULL,
            enqueued_at REAL NOT NULL
        )"""
    )
    db.execute(
        "INSERT INTO queue_v2 (id, topic_id, payload, qos, size, enqueued_at) "
        "SELECT q.id, t.id, q.payload, q.qos, length(q.payload) + ?, q.enqueued_at "
        "FROM queue AS q JOIN topics AS t ON t.topic = q.topic ORDER BY q.id",
        (ROW_OVERHEAD,),
    )
    db.execute("DROP TABLE queue")
    db.execute("ALTER TABLE queue_v2 RENAME TO queue")
    # Ids of delivered messages are never reused: the outbox's cursors rely on it.
    db.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'queue'", (high_water,))
    db.execute(
        "INSERT INTO sqlite_sequence (name, seq) SELECT 'queue', ? "
        "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'queue')",
        (high_water,),
    )
    db.execute(
        """CREATE TABLE retained (
            topic_id INTEGER PRIMARY KEY REFERENCES topics (id),
            payload BLOB NOT NULL,
            qos INTEGER NOT NULL,
            version INTEGER NOT NULL
        )"""
    )
    db.execute(
        "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID"
    )


def _create_v1(db: sqlite3.Connection) -> None:
    for statement in _V1.split(";"):
        if statement.strip():
            db.execute(statement)


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_create_v1, _v1_to_v2)
"""``MIGRATIONS[n]`` takes a file from version n to n + 1."""

assert len(MIGRATIONS) == SCHEMA_VERSION


def migrate(db: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int | None:
    """Bring an open database to ``target`` in one transaction; returns the version it had
    when it changed anything. Tests use ``target`` to write files of an older version."""
    db.execute("BEGIN IMMEDIATE")
    try:
        current = int(db.execute("PRAGMA user_version").fetchone()[0])
        if current > SCHEMA_VERSION:
            raise QueueStoreError(
                f"queue schema version {current} is newer than this agent's "
                f"{SCHEMA_VERSION}: written by a newer iotmon-edge"
            )
        for step in MIGRATIONS[current:target]:
            step(db)
        if current < target:
            db.execute(f"PRAGMA user_version = {int(target)}")
        db.execute("COMMIT")
    except BaseException:
        _rollback(db)
        raise
    return current if current < target else None


def _rollback(db: sqlite3.Connection) -> None:
    # SQLite rolls back by itself on some errors (SQLITE_FULL): a second rollback
    # would fail and hide the first error.
    if db.in_transaction:
        db.execute("ROLLBACK")


def connect(path: Path, synchronous: Synchronous = Synchronous.FULL) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with WAL on.

    A file of a newer schema is refused before anything (WAL mode included) is written.
    """
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        db.close()
        raise QueueStoreError(
            f"{path}: queue schema version {version} is newer than this agent's "
            f"{SCHEMA_VERSION}: written by a newer iotmon-edge"
        )
    mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        db.close()
        raise QueueStoreError(f"{path}: SQLite refused WAL mode (got {mode})")
    db.execute(f"PRAGMA synchronous = {synchronous.value.upper()}")
    # The WAL is emptied at each checkpoint; keep the file from staying large.
    db.execute("PRAGMA journal_size_limit = 4194304")
    db.execute("PRAGMA foreign_keys = OFF")
    return db


class QueueStore:
    """Messages by arrival (``id``), retained states by topic, sequence numbers, counters."""

    def __init__(
        self,
        path: Path,
        *,
        synchronous: Synchronous = Synchronous.FULL,
        max_file_bytes: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = path
        self._synchronous = synchronous
        self._max_file_bytes = max_file_bytes
        self._clock = clock
        self._db: sqlite3.Connection | None = None
        self._topic_ids: dict[str, int] = {}
        self._topics: dict[int, str] = {}
        self._new_topics: dict[str, int] = {}
        self._messages = 0
        self._bytes = 0

    @property
    def path(self) -> Path:
        return self._path

    # -- lifecycle ------------------------------------------------------------------

    def open(self) -> OpenReport:
        """Open (or create) the file, check it, migrate it; a damaged file is moved aside."""
        if self._db is not None:
            raise RuntimeError("queue store already open")
        self._path.parent.mkdir(parents=True, exist_ok=True)
        moved: Path | None = None
        try:
            db = self._open_checked()
        except sqlite3.DatabaseError as exc:
            moved = self._move_aside(exc)
            db = self._open_checked()
        try:
            migrated = migrate(db)
        except BaseException:
            db.close()
            raise
        self._db = db
        if self._max_file_bytes is not None:
            page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
            pages = max(64, math.ceil(self._max_file_bytes / page_size))
            db.execute(f"PRAGMA max_page_count = {pages}")
        self._load()
        return OpenReport(migrated, moved)

    def _open_checked(self) -> sqlite3.Connection:
        db = connect(self._path, self._synchronous)
        try:
            verdict = db.execute("PRAGMA quick_check").fetchone()[0]
            if verdict != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {verdict}")
        except BaseException:
            db.close()
            raise
        return db

    def _move_aside(self, error: Exception) -> Path:
        """Keep a damaged file for inspection and start afresh rather than crash-loop."""
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(self._clock()))
        target = self._path.with_name(f"{self._path.name}.damaged-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self._path}{suffix}")
            if source.exists():
                source.replace(Path(f"{target}{suffix}"))
        logger.error("queue %s is damaged (%s); moved to %s", self._path, error, target)
        return target

    def _load(self) -> None:
        db = self._require()
        self._topics = dict(db.execute("SELECT id, topic FROM topics"))
        self._topic_ids = {topic: topic_id for topic_id, topic in self._topics.items()}
        messages, size = db.execute("SELECT count(*), total(size) FROM queue").fetchone()
        self._messages, self._bytes = int(messages), int(size)

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            try:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                logger.warning("could not checkpoint the queue's WAL at close", exc_info=True)
            db.close()

    def _require(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("queue store is not open")
        return self._db

    # -- writing --------------------------------------------------------------------

    def append(
        self,
        messages: Sequence[OutgoingMessage],
        sequences: Mapping[str, int] | None = None,
    ) -> None:
        """Store messages and the sequence numbers that produced them, in one transaction.

        Retained messages are states: each replaces the pending state of its topic.
        """
        db = self._require()
        now = self._clock()
        rows = []
        added = 0
        with self._transaction(db):
            for message in messages:
                topic_id = self._topic_id(db, message.topic)
                if message.retain:
                    db.execute(
                        "INSERT OR REPLACE INTO retained (topic_id, payload, qos, version) "
                        "VALUES (?, ?, ?, (SELECT coalesce(max(version), 0) + 1 FROM retained))",
                        (topic_id, message.payload, message.qos),
                    )
                    continue
                size = len(message.payload) + ROW_OVERHEAD
                rows.append((topic_id, message.payload, message.qos, size, now))
                added += size
            db.executemany(
                "INSERT INTO queue (topic_id, payload, qos, size, enqueued_at) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            if sequences:
                db.executemany(
                    "INSERT INTO sequences (stream, next) VALUES (?, ?) "
                    "ON CONFLICT (stream) DO UPDATE SET next = excluded.next",
                    sequences.items(),
                )
        self._messages += len(rows)
        self._bytes += added

    def _topic_id(self, db: sqlite3.Connection, topic: str) -> int:
        topic_id = self._topic_ids.get(topic) or self._new_topics.get(topic)
        if topic_id is None:
            cursor = db.execute("INSERT INTO topics (topic) VALUES (?)", (topic,))
            topic_id = int(cursor.lastrowid or 0)
            # Cached only once committed (see _transaction): a rollback forgets it.
            self._new_topics[topic] = topic_id
        return topic_id

    @contextmanager
    def _transaction(self, db: sqlite3.Connection) -> Iterator[None]:
        self._new_topics = {}
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            _rollback(db)
            self._new_topics = {}
            raise
        db.execute("COMMIT")
        for topic, topic_id in self._new_topics.items():
            self._topic_ids[topic] = topic_id
            self._topics[topic_id] = topic
        self._new_topics = {}

    def delete(self, ids: Collection[int]) -> Dropped:
        """Remove messages (acknowledged by the broker); ids already gone are ignored.

        Committed without waiting for the disk: a delete a power cut undoes only
        sends the message again (a harmless duplicate), and the next synchronous
        commit writes it for good. Acknowledgements come in thousands a second while
        draining; an fsync each would wear an SD card out.
        """
        if not ids:
            return Dropped(0, 0)
        db = self._require()
        relaxed = self._synchronous is not Synchronous.NORMAL
        if relaxed:
            db.execute("PRAGMA synchronous = NORMAL")
        try:
            with self._transaction(db):
                removed = self._delete_rows(db, ids)
        finally:
            if relaxed:
                db.execute(f"PRAGMA synchronous = {self._synchronous.value.upper()}")
        self._forget(removed)
        return removed

    def _delete_rows(self, db: sqlite3.Connection, ids: Collection[int]) -> Dropped:
        messages = size = 0
        for chunk in _chunks(sorted(ids), 500):
            marks = ",".join("?" * len(chunk))
            count, total = db.execute(
                f"SELECT count(*), total(size) FROM queue WHERE id IN ({marks})",  # noqa: S608
                chunk,
            ).fetchone()
            db.execute(f"DELETE FROM queue WHERE id IN ({marks})", chunk)  # noqa: S608
            messages += int(count)
            size += int(total)
        return Dropped(messages, size)

    def _forget(self, removed: Dropped) -> None:
        self._messages -= removed.messages
        self._bytes -= removed.bytes

    def delete_retained(self, topic: str, version: int) -> None:
        """Forget a delivered state unless a newer one replaced it meanwhile."""
        topic_id = self._topic_ids.get(topic)
        if topic_id is None:
            return
        db = self._require()
        with self._transaction(db):
            db.execute(
                "DELETE FROM retained WHERE topic_id = ? AND version = ?", (topic_id, version)
            )

    def drop_oldest(self, down_to_bytes: int, keep: Collection[int] = ()) -> Dropped:
        """Delete the oldest messages until the queue holds at most ``down_to_bytes``.

        ``keep``: ids not to drop (in flight: the broker may already have them).
        """
        excess = self._bytes - down_to_bytes
        if excess <= 0:
            return Dropped(0, 0)
        db = self._require()
        victims: list[int] = []
        freed = 0
        after = 0
        while freed < excess:
            rows = db.execute(
                "SELECT id, size FROM queue WHERE id > ? ORDER BY id LIMIT ?", (after, _DROP_BATCH)
            ).fetchall()
            if not rows:
                break
            for row_id, size in rows:
                after = row_id
                if row_id in keep:
                    continue
                victims.append(row_id)
                freed += size
                if freed >= excess:
                    break
        return self._drop(db, victims)

    def drop_expired(self, enqueued_before: float, keep: Collection[int] = ()) -> Dropped:
        """Delete messages queued before ``enqueued_before`` (seconds since the epoch)."""
        db = self._require()
        # Oldest first by id: the scan stops at the first young message, so its cost is
        # the number expired, not the queue's length.
        victims: list[int] = []
        after = 0
        while True:
            rows = db.execute(
                "SELECT id, enqueued_at FROM queue WHERE id > ? ORDER BY id LIMIT ?",
                (after, _DROP_BATCH),
            ).fetchall()
            young = False
            for row_id, enqueued_at in rows:
                after = row_id
                if enqueued_at >= enqueued_before:
                    young = True
                    break
                if row_id not in keep:
                    victims.append(row_id)
            if young or len(rows) < _DROP_BATCH:
                break
        return self._drop(db, victims)

    def _drop(self, db: sqlite3.Connection, victims: list[int]) -> Dropped:
        if not victims:
            return Dropped(0, 0)
        # The counters commit with the delete: a crash cannot lose the record of a drop.
        with self._transaction(db):
            removed = self._delete_rows(db, victims)
            db.executemany(
                "INSERT INTO counters (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                [("dropped_messages", removed.messages), ("dropped_bytes", removed.bytes)],
            )
        self._forget(removed)
        return removed

    # -- reading --------------------------------------------------------------------

    def read(self, after_id: int, limit: int, up_to_id: int | None = None) -> list[StoredMessage]:
        """Messages with ``after_id < id (<= up_to_id)``, oldest first."""
        db = self._require()
        if up_to_id is None:
            rows = db.execute(
                "SELECT id, topic_id, payload, qos, size FROM queue WHERE id > ? "
                "ORDER BY id LIMIT ?",
                (after_id, limit),
            )
        else:
            rows = db.execute(
                "SELECT id, topic_id, payload, qos, size FROM queue WHERE id > ? AND id <= ? "
                "ORDER BY id LIMIT ?",
                (after_id, up_to_id, limit),
            )
        topics = self._topics
        return [
            StoredMessage(row_id, topics[topic_id], bytes(payload), qos, size)
            for row_id, topic_id, payload, qos, size in rows
        ]

    def retained(self) -> list[RetainedState]:
        db = self._require()
        rows = db.execute("SELECT topic_id, payload, qos, version FROM retained ORDER BY version")
        return [
            RetainedState(self._topics[topic_id], bytes(payload), qos, version)
            for topic_id, payload, qos, version in rows
        ]

    def last_id(self) -> int:
        """The highest id ever given (delivered messages included)."""
        row = (
            self._require()
            .execute("SELECT seq FROM sqlite_sequence WHERE name = 'queue'")
            .fetchone()
        )
        return int(row[0]) if row else 0

    def oldest_enqueued_at(self) -> float | None:
        row = (
            self._require().execute("SELECT enqueued_at FROM queue ORDER BY id LIMIT 1").fetchone()
        )
        return float(row[0]) if row else None

    def sequences(self) -> dict[str, int]:
        return dict(self._require().execute("SELECT stream, next FROM sequences"))

    def counters(self) -> dict[str, int]:
        return dict(self._require().execute("SELECT name, value FROM counters"))

    def totals(self) -> QueueTotals:
        """Messages and bytes queued (kept in memory: safe to read from any thread)."""
        return QueueTotals(self._messages, self._bytes)

    def file_bytes(self) -> int:
        """The file and its WAL on disk."""
        return sum(
            Path(f"{self._path}{suffix}").stat().st_size
            for suffix in ("", "-wal")
            if Path(f"{self._path}{suffix}").exists()
        )


def _chunks(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
