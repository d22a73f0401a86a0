"""Unit tests of ingest's pure pieces: batch decoding, status parsing, gate, registry, spool."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from iotmon_contract import (
    MAX_PAYLOAD_BYTES,
    DeadLetterReason,
    DeviceState,
    EventValidator,
    StatusEvent,
    TelemetryValidator,
    ValidatedReading,
    parse_status,
)
from iotmon_contract.validation import to_ns
from iotmon_ingest import IngestSettings
from iotmon_ingest.config import DEFAULT_SHARE_GROUP
from iotmon_ingest.domain import StoreGate, decode_batch
from iotmon_ingest.pipeline import InboundQueue
from iotmon_ingest.registry import DeviceRegistry, RegistryError, load_registry
from iotmon_ingest.spool import SPOOL_FORMAT, Spool, SpooledBatch
from iotmon_runtime.mqtt import InboundMessage
from tests.services.ingest.support import batch, single

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TOPIC = "iotmon/v1/acme/env-1/telemetry"


def validator(**kwargs: object) -> TelemetryValidator:
    return TelemetryValidator(clock=lambda: to_ns(NOW), **kwargs)  # type: ignore[arg-type]


def message(topic: str, payload: bytes, token: int = 1, retained: bool = False) -> InboundMessage:
    return InboundMessage(topic, payload, token, retained=retained)


def test_decode_batch_keeps_good_messages_and_dead_letters_each_bad_one() -> None:
    messages = [
        message(TOPIC, single(1.0, NOW)),
        message(TOPIC, b"{not json"),
        message(TOPIC, single(2.0, NOW - timedelta(seconds=1))),
        message(
            TOPIC, json.dumps({"metric": "Bad Metric", "value": 1, "ts": NOW.isoformat()}).encode()
        ),
        message("iotmon/v1/acme/Env-Upper/telemetry", single(3.0, NOW)),
        message(TOPIC, single(4.0, NOW + timedelta(days=1))),
        message(TOPIC, b"x" * (MAX_PAYLOAD_BYTES + 1)),
    ]
    outcome = decode_batch(messages, validator(), service="ingest", received_ns=to_ns(NOW))
    assert [r.value for r in outcome.readings] == [1.0, 2.0]
    assert [r.letter.reason for r in outcome.rejected] == [
        DeadLetterReason.NOT_JSON,
        DeadLetterReason.SCHEMA,
        DeadLetterReason.BAD_TOPIC,
        DeadLetterReason.BAD_TIMESTAMP,
        DeadLetterReason.OVERSIZED,
    ]
    assert outcome.messages == 7
    assert outcome.rejected[0].payload == b"{not json"


def test_decode_batch_expands_a_gateway_batch_with_child_devices() -> None:
    payload = batch([(None, "power_w", 10.0, NOW), ("child-1", "power_w", 11.0, NOW)])
    outcome = decode_batch(
        [message("iotmon/v1/acme/gw-1/telemetry", payload)],
        validator(),
        service="ingest",
        received_ns=0,
    )
    assert outcome.readings == [
        ValidatedReading("acme", "gw-1", "power_w", 10.0, None, to_ns(NOW)),
        ValidatedReading("acme", "child-1", "power_w", 11.0, None, to_ns(NOW)),
    ]


def test_unknown_device_is_dead_lettered_when_a_registry_is_given() -> None:
    registry = DeviceRegistry({"acme": ["env-*"]})
    outcome = decode_batch(
        [
            message(TOPIC, single(1.0, NOW)),
            message("iotmon/v1/acme/x-1/telemetry", single(2.0, NOW)),
        ],
        validator(known_device=registry.is_known),
        service="ingest",
        received_ns=0,
    )
    assert [r.device for r in outcome.readings] == ["env-1"]
    assert [r.letter.reason for r in outcome.rejected] == [DeadLetterReason.UNKNOWN_DEVICE]


def test_status_messages_become_status_events() -> None:
    topic = "iotmon/v1/acme/env-1/status"
    received = to_ns(NOW)
    online = json.dumps(
        {"state": "online", "ts": (NOW - timedelta(seconds=5)).isoformat()}
    ).encode()
    assert parse_status(topic, online, received) == StatusEvent(
        "acme", "env-1", DeviceState.ONLINE, to_ns(NOW - timedelta(seconds=5))
    )
    # A last will has no ts: the receive time stands in.
    will = parse_status(topic, b'{"state":"offline"}', received)
    assert will == StatusEvent("acme", "env-1", DeviceState.OFFLINE, received)
    # An empty retained payload clears the status: nothing to store.
    assert parse_status(topic, b"", received) is None
    outcome = decode_batch(
        [message(topic, b'{"state":"sleepy"}'), message(topic, b"")],
        validator(),
        service="ingest",
        received_ns=received,
    )
    assert [r.letter.reason for r in outcome.rejected] == [DeadLetterReason.SCHEMA]
    assert outcome.ignored == 1


def test_retained_telemetry_is_dead_lettered_and_retained_status_stored() -> None:
    status = json.dumps({"state": "online", "ts": NOW.isoformat()}).encode()
    outcome = decode_batch(
        [
            message(TOPIC, single(1.0, NOW), retained=True),
            message(TOPIC, single(2.0, NOW)),
            message("iotmon/v1/acme/gw-1/telemetry", batch([(None, "power_w", 3.0, NOW)]), 2, True),
            message("iotmon/v1/acme/env-1/status", status, retained=True),
        ],
        validator(),
        service="ingest",
        received_ns=to_ns(NOW),
    )
    assert [r.value for r in outcome.readings] == [2.0]
    assert [r.letter.reason for r in outcome.rejected] == [DeadLetterReason.RETAINED] * 2
    assert outcome.rejected[0].payload == single(1.0, NOW)
    assert [s.state for s in outcome.statuses] == [DeviceState.ONLINE]


def test_store_gate_backs_off_exponentially_and_resets() -> None:
    now = [0.0]
    gate = StoreGate(0.5, 2.0, lambda: now[0])
    assert gate.allow()
    assert gate.healthy
    gate.failed()
    assert not gate.allow()
    now[0] = 0.5
    assert gate.allow()
    gate.failed()  # delay 1.0 from t=0.5
    now[0] = 1.4
    assert not gate.allow()
    gate.failed()
    gate.failed()  # capped at 2.0
    now[0] = 3.3
    assert not gate.allow()
    now[0] = 3.5
    assert gate.allow()
    gate.succeeded()
    assert gate.healthy
    assert gate.allow()


def test_registry_matches_exact_ids_and_patterns() -> None:
    registry = DeviceRegistry({"acme": ["env-*", "gw-1"], "demo*": ["*"]})
    assert registry.is_known("acme", "env-7")
    assert registry.is_known("acme", "gw-1")
    assert not registry.is_known("acme", "gw-2")
    assert registry.is_known("demo-3", "anything")
    assert not registry.is_known("other", "env-1")


def test_registry_file_errors_name_the_key_and_line(tmp_path: Path) -> None:
    path = tmp_path / "devices.yaml"
    path.write_text("tenants:\n  acme:\n    - env-1\n  bad: 7\n")
    with pytest.raises(RegistryError) as error:
        load_registry(path)
    assert "tenants.bad (line 4)" in str(error.value)
    path.write_text("tenants:\n  acme: ['env-*']\n")
    assert load_registry(path).is_known("acme", "env-2")


def test_inbound_queue_takes_by_count_and_bytes_and_reports_back_pressure() -> None:
    inbound = InboundQueue(limit_bytes=25)
    for index in range(5):
        inbound.put(InboundMessage("t", b"x" * 10, index, retained=False))
    assert inbound.full()
    assert [m.token for m in inbound.take(2, 1000)] == [0, 1]
    assert [m.token for m in inbound.take(10, 15)] == [2, 3]
    assert not inbound.full()
    assert len(inbound) == 1
    assert inbound.pending_bytes == 10


def test_spool_round_trips_batches_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    first = SpooledBatch(
        1, [ValidatedReading("acme", "env-1", "temperature", 1.5, "degC", 10)], [], []
    )
    second = SpooledBatch(2, [], [StatusEvent("acme", "env-1", DeviceState.ONLINE, 5)], [])
    spool.put(first)
    spool.put(second)
    # A new Spool object (a restarted process) sees the same files, oldest first.
    reopened = Spool(tmp_path / "spool")
    assert reopened.pending() == 2
    batches = list(reopened.oldest())
    assert [b for _, b in batches] == [first, second]
    reopened.remove(batches[0][0])
    third = reopened.put(first)
    assert reopened.pending() == 2
    assert third.name > batches[1][0].name
    (tmp_path / "spool" / "00000000000000000099.batch.json").write_text("{broken")
    path, decoded = list(reopened.oldest())[-1]
    assert decoded is None
    reopened.quarantine(path)
    assert (tmp_path / "spool" / "rejected" / path.name).exists()


def test_settings_from_environment_nest_and_derive_worker_identities(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IOTMON_INGEST_MQTT__PORT", "1999")
    monkeypatch.setenv("IOTMON_INGEST_STORE__DATABASE", "telemetry")
    monkeypatch.setenv("IOTMON_INGEST_INSTANCE_ID", "host-a")
    monkeypatch.setenv("IOTMON_INGEST_BATCH_SIZE", "100")
    settings = IngestSettings()
    assert settings.mqtt.port == 1999
    assert settings.store.database == "telemetry"
    assert settings.batch_size == 100
    assert settings.client_id == "iotmon-ingest-host-a"
    worker = settings.for_worker(1)
    assert worker.client_id == "iotmon-ingest-host-a-w1"
    assert not worker.mqtt.subscribe_status
    assert settings.for_worker(0).mqtt.subscribe_status
    # One session subscribes plainly (a broker restart keeps that); workers share.
    assert settings.mqtt.share_group is None
    assert worker.mqtt.share_group == DEFAULT_SHARE_GROUP
    monkeypatch.setenv("IOTMON_INGEST_MQTT__SHARE_GROUP", "replicas")
    assert IngestSettings().for_worker(0).mqtt.share_group == "replicas"


def test_prod_refuses_placeholder_secrets() -> None:
    with pytest.raises(ValueError, match="IOTMON_INGEST_MQTT__PASSWORD: placeholder"):
        IngestSettings(environment="prod", mqtt={"password": "changeme"})
    IngestSettings(environment="dev", mqtt={"password": "changeme"})


def test_spool_format_2_keeps_events_and_reads_format_1_files(tmp_path: Path) -> None:
    event_json = (
        b'{"type":"tag_read","ts":"2026-11-25T12:00:00.123456Z","seq":7,'
        b'"tag":"TAG-1","rssi":-55.5,"direction":"in"}'
    )
    event = EventValidator(clock=lambda: to_ns(NOW)).validate(
        "iotmon/v1/acme/door-1/event", event_json
    )
    batch = SpooledBatch(3, [], [], [], [event])
    decoded = SpooledBatch.decode(batch.encode())
    assert decoded == batch
    assert json.loads(batch.encode())["format"] == SPOOL_FORMAT == 2
    # A file written before events existed (no "format" key): still replayed.
    version_1 = (
        b'{"seen_at_ns":5,"readings":[["acme","env-1","temperature",1.5,"degC",10]],'
        b'"statuses":[["acme","env-1","online",5]],"dead_letters":[]}'
    )
    old = SpooledBatch.decode(version_1)
    assert old.readings == [ValidatedReading("acme", "env-1", "temperature", 1.5, "degC", 10)]
    assert old.statuses == [StatusEvent("acme", "env-1", DeviceState.ONLINE, 5)]
    assert old.events == []
    with pytest.raises(ValueError, match="newer"):
        SpooledBatch.decode(
            b'{"format":99,"seen_at_ns":1,"readings":[],"statuses":[],"dead_letters":[]}'
        )


def test_decode_batch_validates_events_beside_telemetry() -> None:
    good = b'{"type":"ignition","ts":"2026-11-25T11:59:00Z","seq":1,"on":true}'
    messages = [
        message("iotmon/v1/acme/bus-1/event", good),
        message(
            "iotmon/v1/acme/bus-1/event", b'{"type":"teleport","ts":"2026-11-25T11:59:00Z","seq":2}'
        ),
        message("iotmon/v1/acme/bus-1/event", good, retained=True),
        message(TOPIC, single(1.0, NOW)),
    ]
    outcome = decode_batch(
        messages,
        validator(),
        service="ingest",
        received_ns=to_ns(NOW),
        events=EventValidator(clock=lambda: to_ns(NOW)),
    )
    assert [(e.device, e.type, e.seq) for e in outcome.events] == [("bus-1", "ignition", 1)]
    assert len(outcome.readings) == 1
    assert [r.letter.reason for r in outcome.rejected] == [
        DeadLetterReason.UNKNOWN_EVENT_TYPE,
        DeadLetterReason.RETAINED,
    ]
