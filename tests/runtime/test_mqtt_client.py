"""The shared MQTT client against a real mosquitto: handlers, reconnects, acknowledgements."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from iotmon_contract import (
    DeviceState,
    DeviceStatus,
    MessageKind,
    service_status_topic,
    status_topic,
    telemetry_topic,
    topic_rule,
)
from iotmon_runtime.mqtt import (
    InboundMessage,
    MqttClient,
    MqttProtocol,
    MqttSettings,
    OutgoingMessage,
)
from iotmon_runtime.mqtt.client import filters_overlap
from iotmon_tools.localstack import MosquittoProcess, free_port
from tests.runtime.example_consumer import LatestValues
from tests.services.ingest.support import Publisher, single, ts_from_us, unique, wait_until

TIMEOUT = 15.0


def settings_for(broker: MosquittoProcess, **overrides: object) -> MqttSettings:
    values: dict[str, object] = {
        "host": broker.host,
        "port": broker.port,
        "reconnect_min_s": 1,
        "reconnect_max_s": 1,
    }
    values.update(overrides)
    return MqttSettings.model_validate(values)


class Inbox:
    """A handler that records what it is given, with a condition to wait on."""

    def __init__(self, fail_on: bytes | None = None) -> None:
        self.messages: list[InboundMessage] = []
        self._fail_on = fail_on
        self._changed = threading.Condition()

    def __call__(self, message: InboundMessage) -> None:
        if message.payload == self._fail_on:
            raise ValueError("this handler refuses that payload")
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = TIMEOUT) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self.messages) >= count, timeout)

    @property
    def payloads(self) -> list[bytes]:
        with self._changed:
            return [m.payload for m in self.messages]


@pytest.fixture
def started() -> Iterator[Callable[[MqttClient], MqttClient]]:
    clients: list[MqttClient] = []

    def start(client: MqttClient) -> MqttClient:
        client.start()
        clients.append(client)
        assert client.wait_subscribed(TIMEOUT), client.refused_subscriptions
        return client

    yield start
    for client in clients:
        client.stop()


def test_registered_handlers_survive_a_broker_restart(
    tmp_path: Path, started: Callable[[MqttClient], MqttClient]
) -> None:
    broker = MosquittoProcess(tmp_path / "mosquitto", port=free_port(), persistence=False)
    broker.start()
    try:
        topic = f"test/{unique('r')}/a"
        inbox = Inbox()
        client = MqttClient(settings_for(broker), client_id=unique("c-"))
        client.subscribe("test/+/a", inbox)
        started(client)
        client.publish(topic, b"before")
        assert inbox.wait_for(1)
        broker.stop()
        assert wait_until(lambda: not client.connected, TIMEOUT)
        broker.start()  # same port; a clean session: only the client can restore the subscription
        assert client.wait_connected(TIMEOUT)
        assert client.wait_subscribed(TIMEOUT)
        client.publish(topic, b"after")
        assert inbox.wait_for(2)
        assert inbox.payloads == [b"before", b"after"]
        assert client.stats().connects == 2
    finally:
        broker.stop()


def test_subscribing_after_start_takes_effect_at_once(
    mosquitto: MosquittoProcess, started: Callable[[MqttClient], MqttClient]
) -> None:
    client = started(MqttClient(settings_for(mosquitto), client_id=unique("c-")))
    inbox = Inbox()
    topic = f"test/{unique('late')}"
    client.subscribe(topic, inbox)
    assert client.wait_subscribed(TIMEOUT)
    client.publish(topic, b"x")
    assert inbox.wait_for(1)


def test_a_failing_handler_costs_its_message_only(
    mosquitto: MosquittoProcess, started: Callable[[MqttClient], MqttClient]
) -> None:
    topic = f"test/{unique('f')}"
    inbox = Inbox(fail_on=b"bad")
    client = MqttClient(settings_for(mosquitto), client_id=unique("c-"))
    client.subscribe(topic, inbox)
    started(client)
    for payload in (b"1", b"bad", b"2", b"3"):
        client.publish(topic, payload)
    assert inbox.wait_for(3)
    assert inbox.payloads == [b"1", b"2", b"3"]
    assert client.stats().handler_errors == 1


def test_overlapping_filters_are_refused_at_registration(mosquitto: MosquittoProcess) -> None:
    """The broker sends a copy per matching subscription: no handler could tell them apart."""
    client = MqttClient(settings_for(mosquitto), client_id=unique("c-"))
    client.subscribe("iotmon/v1/+/+/telemetry", Inbox())
    client.subscribe("iotmon/v1/+/+/status", Inbox())  # disjoint: fine
    for overlapping in ("iotmon/v1/acme/+/telemetry", "iotmon/#", "#", "+/v1/x/y/telemetry"):
        with pytest.raises(ValueError, match="overlaps"):
            client.subscribe(overlapping, Inbox())


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        ("a/b", "a/b", True),
        ("a/+", "a/b", True),
        ("a/#", "a", True),
        ("a/#", "a/b/c", True),
        ("a/b", "a/c", False),
        ("a/b", "a/b/c", False),
        ("a/+", "a/b/c", False),
        ("+/+/x", "a/b/y", False),
        ("#", "anything/at/all", True),
    ],
)
def test_filter_overlap(first: str, second: str, overlap: bool) -> None:
    assert filters_overlap(first, second) is overlap
    assert filters_overlap(second, first) is overlap


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "paho-path"])
def test_qos_0_and_1_messages_arrive_whole_with_a_token_only_for_qos_1(
    fresh_mosquitto: MosquittoProcess, fast_path: bool
) -> None:
    """The fast path decodes QoS 0 PUBLISH packets itself too (no packet id): topic, payload
    and retain as paho gives them, token 0 (nothing to acknowledge)."""
    topic = f"test/{unique('qos')}"
    client = MqttClient(
        settings_for(fresh_mosquitto),
        client_id=unique("qos-"),
        manual_ack=True,
        fast_path=fast_path,
    )
    inbox = Inbox()
    client.subscribe(f"{topic}/#", inbox, inline=True, qos=1)
    client.start()
    publisher = Publisher(fresh_mosquitto)
    try:
        assert client.wait_subscribed(TIMEOUT)
        assert client.fast_path is fast_path
        sent = [
            (f"{topic}/{index % 3}", f"payload {index} é".encode(), index % 2)
            for index in range(40)
        ]
        for name, payload, qos in sent:
            publisher.publish(name, payload, qos=qos)
        publisher.flush()
        assert inbox.wait_for(len(sent))
        got = [(m.topic, m.payload, m.token != 0, m.retained) for m in inbox.messages]
        assert got == [(name, payload, qos == 1, False) for name, payload, qos in sent]
        assert client.ack([m.token for m in inbox.messages]) == len(sent) // 2
    finally:
        publisher.close()
        client.stop()


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "paho-path"])
def test_manual_ack_leaves_unacknowledged_messages_with_the_broker(
    fresh_mosquitto: MosquittoProcess, fast_path: bool
) -> None:
    """An inline handler owns its acks: what it did not acknowledge comes back next session."""
    topic = f"test/{unique('ack')}"
    client_id = unique("persistent-")

    def session(handler: Callable[[InboundMessage], None], inline: bool) -> MqttClient:
        client = MqttClient(
            settings_for(fresh_mosquitto),
            client_id=client_id,
            manual_ack=True,
            persistent_session=True,
            session_expiry_s=300,
            fast_path=fast_path,
        )
        client.subscribe(topic, handler, inline=inline)
        client.start()
        assert client.wait_subscribed(TIMEOUT)
        return client

    publisher = Publisher(fresh_mosquitto)
    first = Inbox()
    client = session(first, inline=True)
    for index in range(5):
        publisher.publish(topic, str(index).encode())
    publisher.flush()
    assert first.wait_for(5)
    assert client.ack([first.messages[0].token, first.messages[1].token]) == 2
    client.stop()  # a clean stop: the session stays, messages 2..4 were never acknowledged

    second = Inbox()
    client = session(second, inline=False)  # the dispatcher acknowledges after the handler
    try:
        assert second.wait_for(3)
        time.sleep(0.3)
        assert second.payloads == [b"2", b"3", b"4"]
    finally:
        client.stop()

    third = Inbox()
    client = session(third, inline=False)
    try:
        publisher.publish(topic, b"5")
        publisher.flush()
        assert third.wait_for(1)
        time.sleep(0.3)
        assert third.payloads == [b"5"], "acknowledged messages must not come back"
    finally:
        client.stop()
        publisher.close()


def test_shared_subscription_splits_between_members(
    mosquitto: MosquittoProcess, started: Callable[[MqttClient], MqttClient]
) -> None:
    topic = f"test/{unique('share')}"
    group = unique("g")
    inboxes = [Inbox(), Inbox()]
    for inbox in inboxes:
        client = MqttClient(settings_for(mosquitto), client_id=unique("member-"))
        client.subscribe(topic, inbox, share_group=group)
        started(client)
    sender = started(MqttClient(settings_for(mosquitto), client_id=unique("s-")))
    for index in range(40):
        sender.publish(topic, str(index).encode())
    assert sender.flush(TIMEOUT)
    assert wait_until(lambda: sum(len(i.messages) for i in inboxes) == 40, TIMEOUT)
    assert all(inbox.messages for inbox in inboxes), "each member gets a share"
    assert sorted(int(p) for i in inboxes for p in i.payloads) == list(range(40))


def test_online_on_connect_and_offline_on_stop(
    mosquitto: MosquittoProcess, started: Callable[[MqttClient], MqttClient]
) -> None:
    tenant = unique("t")
    rule = topic_rule(MessageKind.STATUS)
    topic = status_topic(tenant, "svc-1")

    def status(state: DeviceState) -> OutgoingMessage:
        payload = DeviceStatus(state=state).model_dump_json(exclude_none=True).encode()
        return OutgoingMessage(topic, payload, rule.qos, rule.retain)

    observer_inbox = Inbox()
    observer = MqttClient(settings_for(mosquitto), client_id=unique("obs-"))
    observer.subscribe(topic, observer_inbox)
    started(observer)
    client = MqttClient(
        settings_for(mosquitto),
        client_id=unique("svc-"),
        will=status(DeviceState.OFFLINE),
        online=status(DeviceState.ONLINE),
    )
    client.start()
    assert client.wait_connected(TIMEOUT)
    assert observer_inbox.wait_for(1)
    # The online message is one the client waits for like any other: were its
    # acknowledgement left uncounted on the taken side, flush would take it for a later
    # message's and return before that one reached the broker.
    assert client.flush(TIMEOUT)
    stats = client.stats()
    assert (stats.accepted, stats.completed) == (1, 1)
    client.stop(offline=status(DeviceState.OFFLINE))
    assert observer_inbox.wait_for(2)
    states = [json.loads(p)["state"] for p in observer_inbox.payloads]
    assert states == ["online", "offline"]
    assert all(m.retained is False for m in observer_inbox.messages)  # live, not replayed
    started(MqttClient(settings_for(mosquitto), client_id=unique("c-"))).publish(
        topic, b"", retain=True
    )


def test_publishes_wait_for_the_broker_and_arrive_in_order(
    tmp_path: Path, started: Callable[[MqttClient], MqttClient]
) -> None:
    port = free_port()
    broker = MosquittoProcess(tmp_path / "mosquitto", port=port, persistence=False)
    client = MqttClient(
        MqttSettings(port=port, reconnect_min_s=1, reconnect_max_s=1), client_id=unique("early-")
    )
    client.start()  # before the broker exists
    try:
        for index in range(3):
            assert client.publish(f"test/{unique('x')}", str(index).encode())
        assert client.stats().held == 3
        broker.start()
        assert client.wait_connected(TIMEOUT)
        assert client.flush(TIMEOUT)
        stats = client.stats()
        assert (stats.held, stats.completed, stats.accepted) == (0, 3, 3)
    finally:
        client.stop()
        broker.stop()


def unreachable_attempts(
    caplog: pytest.LogCaptureFixture, settings: MqttSettings, count: int
) -> list[logging.LogRecord]:
    """The client's "cannot reach" records, at least ``count``, for a port nothing listens on."""
    client = MqttClient(settings, client_id=unique("lonely-"))

    def attempts() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "cannot reach" in r.getMessage()]

    with caplog.at_level(logging.DEBUG):
        client.start()
        try:
            assert wait_until(lambda: len(attempts()) >= count, TIMEOUT)
        finally:
            client.stop()
    return attempts()


def test_reconnect_log_names_the_reason_and_the_wait(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()  # nothing listens here
    settings = MqttSettings(port=port, reconnect_min_s=1, reconnect_max_s=2)
    lines = [r.getMessage() for r in unreachable_attempts(caplog, settings, 3)]
    assert f"cannot reach MQTT broker 127.0.0.1:{port} (ConnectionRefusedError:" in lines[0]
    assert lines[0].endswith("next try in 1s")
    assert lines[1].endswith("next try in 2s")
    assert lines[2].endswith("next try in 2s")  # capped at reconnect_max_s
    noise = [r for r in caplog.records if "Client is not connected" in r.getMessage()]
    assert noise == [], "paho's reasonless ERROR must not reach the log"


def test_reconnect_max_s_bounds_the_wait_between_attempts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The cap is paho's wait, not only the log's: uncapped, paho waits 1, 2, then 4 s."""
    port = free_port()  # nothing listens here
    settings = MqttSettings(port=port, reconnect_min_s=1, reconnect_max_s=1)
    attempts = [r.created for r in unreachable_attempts(caplog, settings, 4)]
    # A second apart (3 s from first to fourth); a slow machine adds, never removes.
    assert attempts[3] - attempts[2] >= 0.9
    assert attempts[3] - attempts[0] < 5.0, attempts


def test_an_example_consumer_is_just_handlers_on_the_client(
    mosquitto: MosquittoProcess, started: Callable[[MqttClient], MqttClient]
) -> None:
    tenant = unique("t")
    client = MqttClient(settings_for(mosquitto), client_id=unique("consumer-"))
    consumer = LatestValues(client, tenant)
    consumer.register()
    started(client)
    publisher = Publisher(mosquitto)
    base = 1_764_000_000_000_000
    now_us = time.time_ns() // 1000
    for index in range(10):
        publisher.publish(
            telemetry_topic(tenant, "env-1"), single(float(index), ts_from_us(now_us - 100 + index))
        )
    publisher.publish(telemetry_topic(tenant, "env-1"), b"{not json")
    publisher.publish(telemetry_topic(tenant, "env-2"), single(5.0, ts_from_us(base)))
    online = DeviceStatus(state=DeviceState.ONLINE).model_dump_json().encode()
    publisher.publish(status_topic(tenant, "env-1"), online)
    publisher.close()
    assert wait_until(lambda: consumer.states.get((tenant, "env-1")) is DeviceState.ONLINE, 10)
    assert wait_until(lambda: sum(consumer.refused.values()) == 2, 10)
    latest = consumer.latest[(tenant, "env-1", "temperature")]
    assert latest.value == 9.0
    # A reading from 2025 is outside the default 30-day window, and not-JSON is refused.
    assert consumer.refused == {"bad_timestamp": 1, "not_json": 1}


def test_mqtt_311_clients_work_without_shared_subscriptions(
    mosquitto: MosquittoProcess, started: Callable[[MqttClient], MqttClient]
) -> None:
    topic = f"test/{unique('v311')}"
    inbox = Inbox()
    client = MqttClient(
        settings_for(mosquitto, protocol=MqttProtocol.V311), client_id=unique("old-")
    )
    subscription = client.subscribe(topic, inbox, share_group=unique("g"))
    assert subscription.share_group is None  # 3.1.1 has none: one replica
    started(client)
    client.publish(topic, b"hello")
    assert inbox.wait_for(1)


def test_the_last_will_marks_a_killed_process_offline(
    mosquitto: MosquittoProcess, started: Callable[[MqttClient], MqttClient], tmp_path: Path
) -> None:
    """ServiceAvailability's will reaches the broker with the connection; SIGKILL sends it."""
    instance = unique("i")
    inbox = Inbox()
    observer = MqttClient(settings_for(mosquitto), client_id=unique("obs-"))
    observer.subscribe(service_status_topic("example", instance), inbox)
    started(observer)
    script = tmp_path / "service.py"
    script.write_text(
        "import threading\n"
        "from iotmon_runtime.availability import ServiceAvailability\n"
        "from iotmon_runtime.mqtt import MqttClient, MqttSettings\n"
        f"a = ServiceAvailability.of('example', {instance!r}, 'iotmon-runtime')\n"
        f"c = MqttClient(MqttSettings(host={mosquitto.host!r}, port={mosquitto.port}, "
        "keepalive_s=5), client_id='example-svc', will=a.will, online=a.online)\n"
        "c.start()\n"
        "threading.Event().wait()\n"
    )
    process = subprocess.Popen([sys.executable, str(script)])
    try:
        assert inbox.wait_for(1), "online never arrived"
        assert json.loads(inbox.payloads[0])["state"] == "online"
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        assert inbox.wait_for(2), "the will never arrived"
        will = json.loads(inbox.payloads[1])
        assert will["state"] == "offline"
        assert "ts" not in will  # a will is written before the process dies
    finally:
        if process.poll() is None:
            process.kill()
        cleaner = started(MqttClient(settings_for(mosquitto), client_id=unique("c-")))
        cleaner.publish(service_status_topic("example", instance), b"", retain=True)
        cleaner.flush(TIMEOUT)
