"""InfluxDB through the v1-compatible HTTP API: /write with line protocol, /query with InfluxQL.

InfluxDB 1.x, 2.x (with a DBRP mapping) and 3 Core all accept this API, which is
also what Grafana's InfluxDB (InfluxQL) datasource speaks, so dashboards and the
API run the same queries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from iotmon_contract import (
    DeadLetter,
    DeadLetterReason,
    DeviceState,
    StatusEvent,
    ValidatedEvent,
    ValidatedReading,
)
from iotmon_storage.base import (
    EVENT_TIME_SPREAD_NS,
    MEASUREMENT_ALERT,
    MEASUREMENT_DEAD_LETTER,
    MEASUREMENT_EVENT,
    MEASUREMENT_SEEN,
    MEASUREMENT_STATUS,
    SCALE,
    AlertEvent,
    DeviceSummary,
    LatestReading,
    NonFiniteResult,
    Point,
    Position,
    StoredEvent,
    StoreError,
    StoreRefused,
    StoreUnavailable,
    TimeSeriesStore,
    dead_letter_stamps,
    finite,
    merge_points,
    point_range,
)
from iotmon_storage.buckets import Aggregate, Aggregated, BucketGrid, BucketRun
from iotmon_storage.line_protocol import (
    encode_alert_events,
    encode_dead_letters,
    encode_events,
    encode_readings,
    encode_seen,
    encode_statuses,
)

_DROPPED = re.compile(r"\bdropped=(\d+)")
_REFUSALS = frozenset({400, 413, 422})
"""Answers that refuse points, not the request: 400 (1.x: partial write, unparsable
lines), 422 (2.x: unprocessable points), 413 (the body is too large; halves are not)."""
_CREDENTIALS = frozenset({401, 403})


def quote_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_identifier(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _error_text(response: httpx.Response) -> str:
    """InfluxDB's own message: the ``error`` of its JSON body, else the body's start."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])[:1000]
    return response.text[:1000] or response.reason_phrase


def regex_literal(prefixes: Sequence[str]) -> str:
    """An InfluxQL regex literal matching strings that start with one of ``prefixes``."""
    alternatives = "|".join(re.escape(prefix) for prefix in prefixes)
    # Inside /.../ a slash ends the literal: escape it (RE2 reads \/ as /).
    return "/^(?:" + alternatives.replace("/", "\\/") + ")/"


def _from_ns(ns: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)


def _measurements(metrics: Sequence[str]) -> str:
    return ",".join(quote_identifier(metric) for metric in metrics)


def _rfc3339(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class InfluxStore(TimeSeriesStore):
    def __init__(
        self,
        url: str,
        database: str,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        retention_policy: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        """``timeout``: seconds to connect, and to wait for each read or write on the
        socket; past it a request fails as StoreUnavailable."""
        headers = {"Authorization": f"Token {token}"} if token else {}
        auth = httpx.BasicAuth(username, password or "") if username else None
        self._client = httpx.Client(base_url=url, headers=headers, auth=auth, timeout=timeout)
        self._database = database
        self._write_params = {"db": database, "precision": "ns"}
        if retention_policy:
            self._write_params["rp"] = retention_policy

    # -- writes ---------------------------------------------------------------

    def _write(self, body: str) -> None:
        if not body:
            return
        try:
            response = self._client.post("/write", params=self._write_params, content=body.encode())
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"InfluxDB write failed: {exc}") from exc
        status = response.status_code
        if status == 204:
            return
        if status in _REFUSALS:
            reason = _error_text(response)
            dropped = _DROPPED.search(reason)
            raise StoreRefused(
                f"InfluxDB ({status}): {reason}", dropped=int(dropped[1]) if dropped else None
            )
        message = f"InfluxDB write returned {status}: {response.text[:500]}"
        if status >= 500 or status in (404, 429) or status in _CREDENTIALS:
            # 404: database not created yet (or a 2.x bucket not mapped). 401/403: the
            # credentials are refused, which an operator fixes. Retrying (and spooling
            # meanwhile) is right for all of them: the points are not at fault.
            raise StoreUnavailable(message)
        raise StoreError(message)

    def write_readings(self, readings: Sequence[ValidatedReading], seen_at_ns: int | None) -> None:
        self._write(encode_readings(readings, seen_at_ns))

    def mark_seen(
        self, readings_per_device: Mapping[tuple[str, str], int], seen_at_ns: int
    ) -> None:
        self._write(encode_seen(readings_per_device, seen_at_ns))

    def write_statuses(self, statuses: Sequence[StatusEvent]) -> None:
        self._write(encode_statuses(statuses))

    def write_dead_letters(
        self, letters: Sequence[DeadLetter], stamps_ns: Sequence[int] | None = None
    ) -> None:
        stamps = dead_letter_stamps(letters) if stamps_ns is None else stamps_ns
        self._write(encode_dead_letters(letters, stamps))

    def write_events(self, events: Sequence[ValidatedEvent]) -> None:
        self._write(encode_events(events))

    def write_alert_events(self, events: Sequence[AlertEvent]) -> None:
        self._write(encode_alert_events(events))

    # -- queries --------------------------------------------------------------

    def query(self, statement: str, *, method: str = "GET") -> list[dict[str, Any]]:
        """Run InfluxQL; return the series of the first statement's result."""
        return self.query_many([statement], method=method)[0]

    def query_many(
        self, statements: Sequence[str], *, method: str = "GET"
    ) -> list[list[dict[str, Any]]]:
        """Run several InfluxQL statements in one request; the series of each, in order."""
        statement = "; ".join(statements)
        params = {"db": self._database, "q": statement, "epoch": "ns"}
        # Uncompressed: on loopback or a LAN, gzip costs both sides more CPU than it saves.
        headers = {"Accept-Encoding": "identity"}
        try:
            if method == "POST":
                response = self._client.post("/query", params=params, headers=headers)
            else:
                response = self._client.get("/query", params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"InfluxDB query failed: {exc}") from exc
        if response.status_code >= 500:
            raise StoreUnavailable(f"InfluxDB query returned {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            if "unsupported value" in response.text:
                # InfluxDB computed +Inf/NaN (a mean of huge values) and cannot encode it.
                raise NonFiniteResult(f"InfluxDB: {response.text[:300]}") from exc
            raise StoreError(f"InfluxDB answered {response.status_code} without JSON") from exc
        if "error" in body:
            raise StoreError(f"InfluxDB: {body['error']}")
        results = body.get("results") or [{}]
        answers: list[list[dict[str, Any]]] = []
        for index in range(len(statements)):
            result = results[index] if index < len(results) else {}
            if "error" in result:
                raise StoreError(f"InfluxDB: {result['error']} (query: {statement[:1000]})")
            answers.append(result.get("series", []))
        return answers

    def ensure_schema(self) -> None:
        # InfluxDB 2.x/3 answer this with an error: there the bucket/database is
        # created by the operator, so a refusal is not fatal.
        try:
            self.query(f"CREATE DATABASE {quote_identifier(self._database)}", method="POST")
        except StoreError as exc:
            if isinstance(exc, StoreUnavailable):
                raise

    def ping(self) -> bool:
        try:
            return self._client.get("/ping").status_code == 204
        except httpx.HTTPError:
            return False

    def latest(self, tenant: str, device: str) -> list[LatestReading]:
        series = self.query(
            'SELECT last("value") FROM /^[a-z][a-z0-9_]*$/ '
            f"WHERE tenant = {quote_literal(tenant)} AND device = {quote_literal(device)} "
            'GROUP BY "unit"'
        )
        readings = []
        for item in series:
            ts_ns, value = item["values"][0][:2]
            unit = (item.get("tags") or {}).get("unit") or None
            readings.append(LatestReading(item["name"], float(value), unit, _from_ns(ts_ns)))
        return sorted(readings, key=lambda r: r.metric)

    def _device(self, tenant: str, device: str) -> str:
        return f"tenant = {quote_literal(tenant)} AND device = {quote_literal(device)}"

    def metrics(self, tenant: str, device: str) -> list[str]:
        # From the series index, without reading points; platform measurements start with _.
        series = self.query(f"SHOW MEASUREMENTS WHERE {self._device(tenant, device)}")
        names = [row[0] for item in series for row in item["values"]]
        return sorted(name for name in names if not name.startswith("_"))

    def _bucket_statement(
        self,
        tenant: str,
        device: str,
        metrics: Sequence[str],
        grid: BucketGrid,
        run: BucketRun,
        aggregate: Aggregate,
        *,
        scaled: bool,
    ) -> str:
        low, high = grid.clipped(run)
        where = f"WHERE {self._device(tenant, device)} AND time >= {low} AND time < {high}"
        group = f"GROUP BY time({run.width_ns}ns, {run.start_ns % run.width_ns}ns) fill(none)"
        if not scaled:
            return (
                f'SELECT {aggregate.value}("value"), count("value") '
                f"FROM {_measurements(metrics)} {where} {group}"
            )
        # A mean or sum that overflowed: taken over values divided by a power of two,
        # then multiplied back (min, max, last and count cannot overflow).
        (metric,) = metrics
        return (
            f'SELECT {aggregate.value}("v"), count("v") FROM '
            f'(SELECT "value" / {int(SCALE)}.0 AS "v" FROM {quote_identifier(metric)} {where}) '
            f"{where.replace(self._device(tenant, device) + ' AND ', '')} {group}"
        )

    def buckets_found(
        self,
        tenant: str,
        device: str,
        metrics: Sequence[str],
        grid: BucketGrid,
        aggregate: Aggregate,
    ) -> dict[str, list[Aggregated]]:
        if not metrics:
            return {}
        # Each run of equal buckets is one statement; all of them go in one request.
        statements = [
            self._bucket_statement(tenant, device, metrics, grid, run, aggregate, scaled=False)
            for run in grid.runs
        ]
        scale = 1.0
        try:
            answers = self._consistent(statements)
        except NonFiniteResult:
            scale = SCALE
            statements = [
                self._bucket_statement(tenant, device, [m], grid, run, aggregate, scaled=True)
                for run in grid.runs
                for m in metrics
            ]
            answers = self._consistent(statements)
        found: dict[str, list[Aggregated]] = {}
        for series in answers:
            for item in series:
                name = metrics[0] if scale != 1.0 and len(metrics) == 1 else item["name"]
                found.setdefault(name, []).extend(
                    Aggregated(
                        int(ts), finite(float(value) * scale), None if count is None else int(count)
                    )
                    for ts, value, count in item["values"]
                    # A count without its aggregate: a torn read (see _consistent).
                    if value is not None
                )
        return found

    def _consistent(self, statements: Sequence[str]) -> list[list[dict[str, Any]]]:
        """The answers, read again once if torn.

        InfluxDB 1.x computes the aggregate and the count of a bucket with separate
        iterators; a write landing in the bucket between them (ingest writes the newest
        bucket all the time) can leave one of them null, or count one point fewer. A torn
        answer is read once more; if it is still torn, the bucket keeps its aggregate with
        an unknown count (or, with no aggregate, is left out until the next read).
        """
        answers = self.query_many(statements)
        if any(
            (row[1] is None) != (row[2] is None)
            for series in answers
            for item in series
            for row in item["values"]
        ):
            answers = self.query_many(statements)
        return answers

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
        # Metrics whose range is the same share a statement; LIMIT applies per series,
        # so each metric gives its first ``limit`` points and they are merged here.
        by_range: dict[tuple[int, int], list[str]] = {}
        for metric in sorted(set(metrics)):
            bounds = point_range(metric, start_ns, end_ns, after, descending=descending)
            if bounds is not None:
                by_range.setdefault(bounds, []).append(metric)
        if not by_range:
            return []
        order = "DESC" if descending else "ASC"
        statements = [
            f'SELECT "value" FROM {_measurements(names)} WHERE {self._device(tenant, device)} '
            f"AND time >= {low} AND time < {high} ORDER BY time {order} LIMIT {int(limit)}"
            for (low, high), names in by_range.items()
        ]
        per_metric = [
            [Point(item["name"], int(ts), float(value)) for ts, value in item["values"]]
            for series in self.query_many(statements)
            for item in series
        ]
        return merge_points(per_metric, limit, descending=descending)

    def devices(self, tenant: str | None = None) -> list[DeviceSummary]:
        where = f" WHERE tenant = {quote_literal(tenant)}" if tenant else ""
        seen = self.query(
            f'SELECT last("readings") FROM {MEASUREMENT_SEEN}{where} GROUP BY "tenant", "device"'
        )
        status = self.query(
            f'SELECT last("state") FROM {MEASUREMENT_STATUS}{where} GROUP BY "tenant", "device"'
        )
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for item in seen:
            key = (item["tags"]["tenant"], item["tags"]["device"])
            found.setdefault(key, {})["seen"] = _from_ns(item["values"][0][0])
        for item in status:
            key = (item["tags"]["tenant"], item["tags"]["device"])
            ts_ns, state = item["values"][0][:2]
            entry = found.setdefault(key, {})
            entry["state"] = DeviceState(state)
            entry["since"] = _from_ns(ts_ns)
        return [
            DeviceSummary(t, d, v.get("seen"), v.get("state"), v.get("since"))
            for (t, d), v in sorted(found.items())
        ]

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
        where = [
            f"tenant = {quote_literal(tenant)}",
            f"time >= {quote_literal(_rfc3339(start))}",
            f"time < {quote_literal(_rfc3339(end))}",
        ]
        if device is not None:
            where.append(f"device = {quote_literal(device)}")
        if types is not None:
            where.append("(" + " OR ".join(f"type = {quote_literal(t)}" for t in types) + ")")
        series = self.query(
            f'SELECT "seq", "data", "device", "type" FROM {MEASUREMENT_EVENT} '
            f"WHERE {' AND '.join(where)} ORDER BY time {order} LIMIT {int(limit)}"
        )
        found = []
        for ts_ns, seq, data, event_device, kind in series[0]["values"] if series else []:
            found.append(
                StoredEvent(
                    tenant,
                    event_device,
                    kind,
                    int(seq),
                    _from_ns(int(ts_ns) - int(seq) % EVENT_TIME_SPREAD_NS),
                    json.loads(data),
                )
            )
        return found

    def dead_letters(
        self, limit: int = 100, topic_prefixes: Sequence[str] | None = None
    ) -> list[DeadLetter]:
        where = ""
        if topic_prefixes is not None:
            if not topic_prefixes:
                return []
            where = f" WHERE topic =~ {regex_literal(topic_prefixes)}"
        series = self.query(
            f"SELECT * FROM {MEASUREMENT_DEAD_LETTER}{where} ORDER BY time DESC LIMIT {int(limit)}"
        )
        if not series:
            return []
        columns = series[0]["columns"]
        letters = []
        for row in series[0]["values"]:
            record = dict(zip(columns, row, strict=True))
            letters.append(
                DeadLetter(
                    service=record["service"],
                    reason=DeadLetterReason(record["reason"]),
                    detail=record["detail"],
                    topic=record["topic"],
                    payload_excerpt=record["payload_excerpt"],
                    payload_bytes=record["payload_bytes"],
                    received_at=_from_ns(record["time"]),
                )
            )
        return letters

    def alert_events(self, tenant: str, limit: int = 100) -> list[AlertEvent]:
        series = self.query(
            f"SELECT * FROM {MEASUREMENT_ALERT} WHERE tenant = {quote_literal(tenant)} "
            f"ORDER BY time DESC LIMIT {int(limit)}"
        )
        if not series:
            return []
        columns = series[0]["columns"]
        events = []
        for row in series[0]["values"]:
            record = dict(zip(columns, row, strict=True))
            events.append(
                AlertEvent(
                    tenant=record["tenant"],
                    fingerprint=record["fingerprint"],
                    rule=record["rule"],
                    state=record["state"],
                    severity=record["severity"],
                    summary=record["summary"],
                    ts_ns=int(record["time"]),
                    notified=bool(record["notified"]),
                    device=record.get("device") or None,
                    site=record.get("site") or None,
                    bus=record.get("bus") or None,
                    child=record.get("child") or None,
                )
            )
        return events

    def count_readings(self, tenant: str, metric: str) -> int:
        series = self.query(
            f'SELECT count("value") FROM {quote_identifier(metric)} '
            f"WHERE tenant = {quote_literal(tenant)}"
        )
        return int(series[0]["values"][0][1]) if series else 0

    def close(self) -> None:
        self._client.close()
