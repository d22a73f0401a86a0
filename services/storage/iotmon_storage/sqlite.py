"""SQLite behind the storage interface: the embedded store for laptops with nothing installed.

Same schema idea as InfluxDB (metric, tenant, device, ts, value), WAL mode and
synchronous=FULL so a write that returned survives a crash, like an InfluxDB
write acknowledged with 204.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from iotmon_contract import (
    DeadLetter,
    DeadLetterReason,
    DeviceState,
    StatusEvent,
    ValidatedEvent,
    ValidatedReading,
)
from iotmon_contract.validation import to_ns
from iotmon_storage.base import (
    EVENT_TIME_SPREAD_NS,
    SCALE,
    AlertEvent,
    DeviceSummary,
    LatestReading,
    Point,
    Position,
    StoredEvent,
    StoreError,
    StoreUnavailable,
    TimeSeriesStore,
    dead_letter_stamps,
    event_data,
    event_time_ns,
    finite,
    merge_points,
    point_range,
)
from iotmon_storage.buckets import Aggregate, Aggregated, BucketGrid

_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    tenant TEXT NOT NULL, device TEXT NOT NULL, metric TEXT NOT NULL,
    ts_ns INTEGER NOT NULL, value REAL NOT NULL, unit TEXT,
    PRIMARY KEY (tenant, device, metric, ts_ns)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS device_seen (
    tenant TEXT NOT NULL, device TEXT NOT NULL, seen_ns INTEGER NOT NULL,
    PRIMARY KEY (tenant, device)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS device_status (
    tenant TEXT NOT NULL, device TEXT NOT NULL, state TEXT NOT NULL, ts_ns INTEGER NOT NULL,
    PRIMARY KEY (tenant, device)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS device_events (
    tenant TEXT NOT NULL, device TEXT NOT NULL, type TEXT NOT NULL,
    ts_ns INTEGER NOT NULL, seq INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (tenant, device, type, ts_ns)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT, received_ns INTEGER NOT NULL, service TEXT NOT NULL,
    reason TEXT NOT NULL, detail TEXT NOT NULL, topic TEXT NOT NULL,
    payload_excerpt TEXT NOT NULL, payload_bytes INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_events (
    tenant TEXT NOT NULL, fingerprint TEXT NOT NULL, rule TEXT NOT NULL, state TEXT NOT NULL,
    severity TEXT NOT NULL, summary TEXT NOT NULL, ts_ns INTEGER NOT NULL,
    notified INTEGER NOT NULL, device TEXT, site TEXT, bus TEXT, child TEXT,
    PRIMARY KEY (tenant, fingerprint, state, ts_ns)
) WITHOUT ROWID;
"""

_AGGREGATES = {
    # On values divided by a power of two (multiplied back below): a mean or sum of
    # values near the float limit must not overflow to infinity on the way. InfluxDB
    # sums unscaled and retries scaled on overflow, which gives the same result.
    Aggregate.MEAN: f"AVG(value / {SCALE!r}) * {SCALE!r}",
    Aggregate.SUM: f"SUM(value / {SCALE!r}) * {SCALE!r}",
    Aggregate.MIN: "MIN(value)",
    Aggregate.MAX: "MAX(value)",
    Aggregate.COUNT: "COUNT(value)",
    # SQLite returns the bare column from the row holding MAX(ts_ns).
    Aggregate.LAST: "value",
}


_FOUND_METRICS = """
WITH RECURSIVE found(metric) AS (
    SELECT MIN(metric) FROM readings WHERE tenant = :tenant AND device = :device
    UNION ALL
    SELECT (SELECT MIN(metric) FROM readings
            WHERE tenant = :tenant AND device = :device AND metric > found.metric)
    FROM found WHERE found.metric IS NOT NULL
)
"""
"""A device's metrics, found by skipping from one to the next through the primary key:
one index seek per metric, however many readings each has (DISTINCT reads them all)."""

_METRICS = _FOUND_METRICS + "SELECT metric FROM found WHERE metric IS NOT NULL"  # noqa: S608
_LATEST = (
    _FOUND_METRICS  # noqa: S608 - constant text, no input spliced in
    + """
SELECT found.metric, r.value, r.unit, r.ts_ns FROM found JOIN readings r
ON r.tenant = :tenant AND r.device = :device AND r.metric = found.metric
AND r.ts_ns = (SELECT MAX(ts_ns) FROM readings
               WHERE tenant = :tenant AND device = :device AND metric = found.metric)
ORDER BY found.metric
"""
)


def _from_ns(ns: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)


class SqliteStore(TimeSeriesStore):
    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=10000")
            self._db = db
        return self._db

    def _run(self, sql: str, rows: Sequence[tuple[object, ...]]) -> None:
        with self._lock:
            try:
                db = self._conn()
                db.execute("BEGIN")
                db.executemany(sql, rows)
                db.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                if self._db is not None and self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise StoreUnavailable(f"SQLite write failed: {exc}") from exc

    def _select(
        self, sql: str, args: Sequence[object] | Mapping[str, object] = ()
    ) -> list[tuple[object, ...]]:
        with self._lock:
            try:
                return list(self._conn().execute(sql, args).fetchall())
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite query failed: {exc}") from exc

    def ensure_schema(self) -> None:
        with self._lock:
            try:
                self._conn().executescript(_SCHEMA)
            except sqlite3.Error as exc:
                raise StoreUnavailable(
                    f"SQLite schema set-up failed at {self._path}: {exc}"
                ) from exc

    def ping(self) -> bool:
        try:
            self._select("SELECT 1")
        except StoreError:
            return False
        return True

    def write_readings(self, readings: Sequence[ValidatedReading], seen_at_ns: int | None) -> None:
        self._run(
            "INSERT OR REPLACE INTO readings (tenant, device, metric, value, unit, ts_ns) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            readings,
        )
        if seen_at_ns is not None:
            self.mark_seen(dict.fromkeys({(r.tenant, r.device) for r in readings}, 1), seen_at_ns)

    def mark_seen(
        self, readings_per_device: Mapping[tuple[str, str], int], seen_at_ns: int
    ) -> None:
        # This schema keeps when a device was last seen, not how many readings it sent.
        self._run(
            "INSERT OR REPLACE INTO device_seen (tenant, device, seen_ns) VALUES (?, ?, ?)",
            [(t, d, seen_at_ns) for t, d in readings_per_device],
        )

    def write_statuses(self, statuses: Sequence[StatusEvent]) -> None:
        self._run(
            "INSERT INTO device_status (tenant, device, state, ts_ns) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (tenant, device) DO UPDATE SET state = excluded.state, "
            "ts_ns = excluded.ts_ns WHERE excluded.ts_ns >= device_status.ts_ns",
            [(s.tenant, s.device, s.state.value, s.ts_ns) for s in statuses],
        )

    def write_dead_letters(
        self, letters: Sequence[DeadLetter], stamps_ns: Sequence[int] | None = None
    ) -> None:
        stamps = dead_letter_stamps(letters) if stamps_ns is None else stamps_ns
        self._run(
            "INSERT INTO dead_letters (received_ns, service, reason, detail, topic, "
            "payload_excerpt, payload_bytes) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    stamp,
                    d.service,
                    d.reason.value,
                    d.detail,
                    d.topic,
                    d.payload_excerpt,
                    d.payload_bytes,
                )
                for d, stamp in zip(letters, stamps, strict=True)
            ],
        )

    def write_alert_events(self, events: Sequence[AlertEvent]) -> None:
        self._run(
            "INSERT OR REPLACE INTO alert_events (tenant, fingerprint, rule, state, severity, "
            "summary, ts_ns, notified, device, site, bus, child) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (e.tenant, e.fingerprint, e.rule, e.state, e.severity, e.summary, e.ts_ns,
                 int(e.notified), e.device, e.site, e.bus, e.child)
                for e in events
            ],
        )  # fmt: skip

    def alert_events(self, tenant: str, limit: int = 100) -> list[AlertEvent]:
        rows = self._select(
            "SELECT tenant, fingerprint, rule, state, severity, summary, ts_ns, notified, "
            "device, site, bus, child FROM alert_events WHERE tenant = ? "
            "ORDER BY ts_ns DESC LIMIT ?",
            (tenant, int(limit)),
        )
        return [
            AlertEvent(
                str(t), str(f), str(r), str(st), str(sv), str(sm), int(ns), bool(n),  # type: ignore[call-overload]
                None if d is None else str(d), None if si is None else str(si),
                None if b is None else str(b), None if c is None else str(c),
            )
            for t, f, r, st, sv, sm, ns, n, d, si, b, c in rows
        ]  # fmt: skip

    def metrics(self, tenant: str, device: str) -> list[str]:
        rows = self._select(
            _METRICS,
            {"tenant": tenant, "device": device},
        )
        return [str(metric) for (metric,) in rows]

    def latest(self, tenant: str, device: str) -> list[LatestReading]:
        # One seek per metric to its newest row: GROUP BY metric would read them all.
        rows = self._select(_LATEST, {"tenant": tenant, "device": device})
        return [
            LatestReading(str(m), float(v), None if u is None else str(u), _from_ns(int(t)))  # type: ignore[arg-type, call-overload]
            for m, v, u, t in rows
        ]

    def buckets_found(
        self,
        tenant: str,
        device: str,
        metrics: Sequence[str],
        grid: BucketGrid,
        aggregate: Aggregate,
    ) -> dict[str, list[Aggregated]]:
        found: dict[str, list[Aggregated]] = {}
        if not metrics:
            return found
        extra = ", MAX(ts_ns)" if aggregate is Aggregate.LAST else ""
        marks = ", ".join("?" * len(metrics))
        for run in grid.runs:
            low, high = grid.clipped(run)
            # ts_ns - start is never negative here: integer division floors correctly.
            rows = self._select(
                f"SELECT metric, (ts_ns - ?) / ? AS bucket, {_AGGREGATES[aggregate]}, "  # noqa: S608
                f"COUNT(value){extra} FROM readings WHERE tenant = ? AND device = ? "
                f"AND metric IN ({marks}) AND ts_ns >= ? AND ts_ns < ? "
                "GROUP BY metric, bucket ORDER BY metric, bucket",
                (run.start_ns, run.width_ns, tenant, device, *metrics, low, high),
            )
            for row in rows:
                metric, index, value, count = row[:4]
                found.setdefault(str(metric), []).append(
                    Aggregated(
                        run.start_ns + int(index) * run.width_ns,  # type: ignore[call-overload]
                        finite(float(value)),  # type: ignore[arg-type]
                        int(count),  # type: ignore[call-overload]
                    )
                )
        return found

    def points(
        self,
        tenant: str,
        device: str,
        metrics: Sequence[str],
        start_ns: int,
        end_ns: int,
        *,
        limit: int,
        after: Position | None = None,
        descending: bool = False,
    ) -> list[Point]:
        order = "DESC" if descending else "ASC"
        per_metric = []
        # One index range per metric, merged here: ordering all metrics by time in SQL
        # would sort every reading of the window.
        for metric in sorted(set(metrics)):
            bounds = point_range(metric, start_ns, end_ns, after, descending=descending)
            if bounds is None:
                continue
            rows = self._select(
                "SELECT ts_ns, value FROM readings WHERE tenant = ? AND device = ? "  # noqa: S608
                f"AND metric = ? AND ts_ns >= ? AND ts_ns < ? ORDER BY ts_ns {order} LIMIT ?",
                (tenant, device, metric, *bounds, int(limit)),
            )
            per_metric.append([Point(metric, int(t), float(v)) for t, v in rows])  # type: ignore[call-overload, arg-type]
        return merge_points(per_metric, limit, descending=descending)

    def devices(self, tenant: str | None = None) -> list[DeviceSummary]:
        where, args = ("WHERE tenant = ?", (tenant,)) if tenant else ("", ())
        seen = self._select(f"SELECT tenant, device, seen_ns FROM device_seen {where}", args)  # noqa: S608
        status = self._select(
            f"SELECT tenant, device, state, ts_ns FROM device_status {where}",  # noqa: S608
            args,
        )
        found: dict[tuple[str, str], dict[str, object]] = {}
        for t, d, ns in seen:
            found.setdefault((str(t), str(d)), {})["seen"] = _from_ns(int(ns))  # type: ignore[call-overload]
        for t, d, state, ns in status:
            entry = found.setdefault((str(t), str(d)), {})
            entry["state"] = DeviceState(str(state))
            entry["since"] = _from_ns(int(ns))  # type: ignore[call-overload]
        return [
            DeviceSummary(t, d, v.get("seen"), v.get("state"), v.get("since"))  # type: ignore[arg-type]
            for (t, d), v in sorted(found.items())
        ]

    def write_events(self, events: Sequence[ValidatedEvent]) -> None:
        # Keyed like InfluxDB's series and time: the same event again overwrites itself.
        self._run(
            "INSERT OR REPLACE INTO device_events (tenant, device, type, ts_ns, seq, data) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                (e.tenant, e.device, e.type, event_time_ns(e.ts_ns, e.seq), e.seq, event_data(e))
                for e in events
            ],
        )

    def events(
        self,
        tenant: str,
        device: str | None,
        start: datetime,
        end: datetime,
        *,
        types: Sequence[str] | None = None,
        limit: int = 1000,
        newest_first: bool = False,
    ) -> list[StoredEvent]:
        if types is not None and not types:
            return []
        order = "DESC" if newest_first else "ASC"
        where = ["tenant = ?", "ts_ns >= ?", "ts_ns < ?"]
        args: list[object] = [tenant, to_ns(start), to_ns(end)]
        if device is not None:
            where.append("device = ?")
            args.append(device)
        if types is not None:
            where.append("type IN (" + ", ".join("?" * len(types)) + ")")
            args.extend(types)
        rows = self._select(
            "SELECT device, type, seq, ts_ns, data FROM device_events "  # noqa: S608
            f"WHERE {' AND '.join(where)} ORDER BY ts_ns {order} LIMIT ?",
            [*args, int(limit)],
        )
        return [
            StoredEvent(
                tenant,
                str(d),
                str(kind),
                int(seq),  # type: ignore[call-overload]
                _from_ns(int(ts) - int(seq) % EVENT_TIME_SPREAD_NS),  # type: ignore[call-overload]
                json.loads(str(data)),
            )
            for d, kind, seq, ts, data in rows
        ]

    def dead_letters(
        self, limit: int = 100, topic_prefixes: Sequence[str] | None = None
    ) -> list[DeadLetter]:
        where, args = "", []
        if topic_prefixes is not None:
            if not topic_prefixes:
                return []
            # substr, not LIKE: '_' and '%' in ids would be wildcards there.
            where = "WHERE " + " OR ".join(["substr(topic, 1, ?) = ?"] * len(topic_prefixes))
            args = [part for prefix in topic_prefixes for part in (len(prefix), prefix)]
        # Only placeholders are spliced in: the prefixes travel as parameters.
        columns = "received_ns, service, reason, detail, topic, payload_excerpt, payload_bytes"
        sql = f"SELECT {columns} FROM dead_letters {where} ORDER BY id DESC LIMIT ?"  # noqa: S608
        rows = self._select(sql, (*args, int(limit)))
        return [
            DeadLetter(
                received_at=_from_ns(int(ns)),  # type: ignore[call-overload]
                service=str(service),
                reason=DeadLetterReason(str(reason)),
                detail=str(detail),
                topic=str(topic),
                payload_excerpt=str(excerpt),
                payload_bytes=int(size),  # type: ignore[call-overload]
            )
            for ns, service, reason, detail, topic, excerpt, size in rows
        ]

    def count_readings(self, tenant: str, metric: str) -> int:
        rows = self._select(
            "SELECT COUNT(*) FROM readings WHERE tenant = ? AND metric = ?", (tenant, metric)
        )
        count = rows[0][0]
        assert isinstance(count, int)
        return count

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
