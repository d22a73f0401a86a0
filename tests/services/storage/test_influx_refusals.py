"""InfluxStore's answers to refused points, refused credentials and a store that hangs.

Real influxd for what it really refuses (a retention policy, a field type conflict);
real loopback HTTP servers for answers influxd 1.x cannot be made to give.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from iotmon_contract import DeadLetterReason, ValidatedReading
from iotmon_contract.validation import ContractViolation
from iotmon_storage import StoreRefused, StoreSettings, StoreUnavailable, open_store
from iotmon_storage.influx import InfluxStore, quote_identifier
from iotmon_tools.localstack import InfluxdProcess

HOUR_NS = 3600 * 10**9


@pytest.fixture
def database() -> str:
    return f"r_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def influx(influxd: InfluxdProcess, database: str) -> Iterator[InfluxStore]:
    store = open_store(StoreSettings(url=influxd.url, database=database))
    assert isinstance(store, InfluxStore)
    store.ensure_schema()
    yield store
    store.close()


def write_raw(influxd: InfluxdProcess, database: str, line: str) -> None:
    """A point written by someone else (another tool), straight to InfluxDB."""
    response = httpx.post(f"{influxd.url}/write", params={"db": database}, content=line)
    assert response.status_code == 204, response.text


def reading(device: str, value: float, ts_ns: int, metric: str = "temperature") -> ValidatedReading:
    return ValidatedReading("acme", device, metric, value, None, ts_ns)


def stored(store: InfluxStore, metric: str) -> dict[tuple[str, int], float]:
    series = store.query(f"SELECT value FROM {quote_identifier(metric)} GROUP BY device")  # noqa: S608
    return {
        (item["tags"]["device"], int(ts)): float(value)
        for item in series
        for ts, value in item["values"]
    }


def test_points_beyond_the_retention_policy_are_refused_and_the_rest_stored(
    influx: InfluxStore, database: str
) -> None:
    influx.query(
        f'CREATE RETENTION POLICY "hour" ON "{database}" DURATION 1h REPLICATION 1 DEFAULT',
        method="POST",
    )
    now = time.time_ns()
    readings = [
        reading("env-1", 1.0, now - 60 * 10**9),
        reading("env-1", 2.0, now - 3 * HOUR_NS),
        reading("env-2", 3.0, now - 2 * HOUR_NS),
        reading("env-2", 4.0, now - 30 * 10**9),
    ]
    with pytest.raises(StoreRefused) as refused:
        influx.write_readings(readings, now)
    assert "beyond retention policy" in refused.value.reason
    assert refused.value.dropped == 2
    # A partial write: what InfluxDB accepted is stored.
    assert stored(influx, "temperature") == {
        ("env-1", now - 60 * 10**9): 1.0,
        ("env-2", now - 30 * 10**9): 4.0,
    }
    with pytest.raises(StoreRefused) as again:
        influx.write_readings(readings[1:3], None)
    assert again.value.dropped == 2


def test_a_field_type_conflict_is_refused_with_influxdbs_reason(
    influx: InfluxStore, influxd: InfluxdProcess, database: str
) -> None:
    now = time.time_ns()
    write_raw(influxd, database, f"pressure,device=env-1,tenant=acme value=7i {now - 10**9}")
    with pytest.raises(StoreRefused) as refused:
        influx.write_readings([reading("env-1", 1.5, now, metric="pressure")], now)
    assert "field type conflict" in refused.value.reason
    assert refused.value.dropped == 1


def test_mark_seen_overwrites_the_count_write_readings_marked(influx: InfluxStore) -> None:
    now = time.time_ns()
    influx.write_readings([reading("env-1", float(i), now - i) for i in range(3)], now)
    influx.mark_seen({("acme", "env-1"): 1, ("acme", "env-2"): 0}, now)
    series = influx.query('SELECT "readings" FROM "_device_seen" GROUP BY device')
    counts = {item["tags"]["device"]: [v for _, v in item["values"]] for item in series}
    assert counts == {"env-1": [1], "env-2": [0]}


def test_dead_letters_written_twice_are_stored_once_at_their_receipt_time(
    influx: InfluxStore,
) -> None:
    letters = [
        ContractViolation(DeadLetterReason.SCHEMA, f"bad {i}").dead_letter(
            "ingest", "iotmon/v1/acme/env-1/telemetry", b"{}"
        )
        for i in range(3)
    ]
    influx.write_dead_letters(letters)
    influx.write_dead_letters(letters)
    back = sorted(influx.dead_letters(), key=lambda d: d.detail)
    assert [d.detail for d in back] == ["bad 0", "bad 1", "bad 2"]
    for original, again in zip(letters, back, strict=True):
        assert abs(again.received_at - original.received_at) < timedelta(microseconds=1)


def test_a_newline_in_a_unit_is_stored_not_refused(influx: InfluxStore) -> None:
    now = time.time_ns()
    influx.write_readings([ValidatedReading("acme", "env-1", "temperature", 1.0, "a\nb", now)], now)
    latest = influx.latest("acme", "env-1")
    assert [(r.value, r.unit) for r in latest] == [(1.0, "a b")]


class _Answer(http.server.BaseHTTPRequestHandler):
    """Answers every write with the status and body the server was given."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, body = self.server.answer  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def answering() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("status", "body", "expected", "reason"),
    [
        (422, {"error": "failure writing points: unprocessable"}, StoreRefused, "unprocessable"),
        (413, {"error": "Request Entity Too Large"}, StoreRefused, "Too Large"),
        (401, {"error": "authorization failed"}, StoreUnavailable, "401"),
        (403, {"error": "forbidden"}, StoreUnavailable, "403"),
        (503, {"error": "busy"}, StoreUnavailable, "503"),
    ],
)
def test_http_answers_map_to_refused_or_unavailable(
    answering: http.server.ThreadingHTTPServer,
    status: int,
    body: dict[str, str],
    expected: type[Exception],
    reason: str,
) -> None:
    answering.answer = (status, json.dumps(body).encode())  # type: ignore[attr-defined]
    host, port = answering.server_address[:2]
    store = InfluxStore(f"http://{host!s}:{port}", "db")
    try:
        with pytest.raises(expected, match=reason) as raised:
            store.write_readings([reading("env-1", 1.0, time.time_ns())], time.time_ns())
        assert type(raised.value) is expected
    finally:
        store.close()


def test_a_store_that_never_answers_fails_after_the_timeout_not_after_thirty_seconds() -> None:
    # A listening socket nobody reads from: the connection is accepted by the
    # kernel, the request sent, and no answer ever comes (like a paused influxd).
    silent = socket.create_server(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    store = open_store(StoreSettings(url=f"http://127.0.0.1:{port}", database="db", timeout_s=0.5))
    started = time.monotonic()
    try:
        with pytest.raises(StoreUnavailable, match="timed out"):
            store.write_readings([reading("env-1", 1.0, time.time_ns())], time.time_ns())
    finally:
        store.close()
        silent.close()
    assert time.monotonic() - started < 10


def test_refusal_reason_falls_back_to_the_body_text(
    answering: http.server.ThreadingHTTPServer,
) -> None:
    answering.answer = (400, b"not json at all")  # type: ignore[attr-defined]
    host, port = answering.server_address[:2]
    store = InfluxStore(f"http://{host!s}:{port}", "db")
    try:
        with pytest.raises(StoreRefused) as refused:
            store.write_readings([reading("env-1", 1.0, time.time_ns())], None)
        assert refused.value.reason == "InfluxDB (400): not json at all"
        assert refused.value.dropped is None
    finally:
        store.close()
