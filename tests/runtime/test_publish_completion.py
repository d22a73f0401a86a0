"""Per-message completion (``on_complete``) of the shared client, against a real mosquitto.

The edge agent's durable queue deletes a message only when its callback says the
broker has it, so each callback must come exactly once, with the broker's verdict,
also across a broker restart, for held messages and when the PUBACK wins the race
against the registration.
"""

from __future__ import annotations

import getpass
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from iotmon_runtime.mqtt import MqttClient, MqttProtocol, MqttSettings
from iotmon_tools.localstack import ManagedProcess, MosquittoProcess, find_program, free_port
from iotmon_tools.localstack.processes import port_open
from tests.edge.recorder import recording
from tests.services.ingest.support import unique, wait_until

TIMEOUT = 20.0


class Outcomes:
    """Callbacks by key: how often each was called and with what."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[int] = Counter()
        self.results: dict[int, bool] = {}
        self.threads: set[str] = set()

    def callback(self, key: int) -> Any:
        def done(success: bool) -> None:
            with self._lock:
                self.calls[key] += 1
                self.results[key] = success
                self.threads.add(threading.current_thread().name)

        return done

    def count(self) -> int:
        with self._lock:
            return len(self.calls)


def _settings(port: int, protocol: MqttProtocol = MqttProtocol.V5, **extra: Any) -> MqttSettings:
    return MqttSettings(port=port, protocol=protocol, reconnect_min_s=1, reconnect_max_s=1, **extra)


@pytest.mark.parametrize("protocol", [MqttProtocol.V5, MqttProtocol.V311])
def test_each_tracked_message_completes_once_across_a_broker_restart(
    fresh_mosquitto: MosquittoProcess, protocol: MqttProtocol
) -> None:
    broker = fresh_mosquitto
    topic = f"test/{unique('done-')}"
    outcomes = Outcomes()
    total = 3000
    client = MqttClient(
        _settings(broker.port, protocol), client_id=unique("track-"), max_inflight=200
    )
    client.start()
    try:
        assert client.wait_connected(TIMEOUT)
        for key in range(total):
            if key == total // 3:
                broker.stop()  # mid-stream: paho keeps what is in flight
            if key == 2 * total // 3:
                broker.start()
            # Untracked messages in between must not disturb the bookkeeping.
            assert client.publish(topic, b"untracked", qos=1)
            assert client.publish(topic, str(key).encode(), on_complete=outcomes.callback(key))
        assert wait_until(lambda: outcomes.count() == total, TIMEOUT), outcomes.count()
        assert client.flush(TIMEOUT)
    finally:
        client.stop()
    assert set(outcomes.calls.values()) == {1}
    assert all(outcomes.results.values())
    assert client.stats().awaiting == 0
    # Callbacks run on paho's network thread, never on the publisher's.
    assert threading.current_thread().name not in outcomes.threads


def test_completed_means_the_broker_delivered_it(mosquitto: MosquittoProcess) -> None:
    topic = f"test/{unique('seen-')}"
    outcomes = Outcomes()
    client = MqttClient(_settings(mosquitto.port), client_id=unique("seen-"))
    with recording(mosquitto.host, mosquitto.port, topic) as observer:
        client.start()
        try:
            assert client.wait_connected(TIMEOUT)
            for key in range(500):
                assert client.publish(topic, str(key).encode(), on_complete=outcomes.callback(key))
            assert wait_until(lambda: outcomes.count() == 500, TIMEOUT)
        finally:
            client.stop()
        assert observer.wait_for(lambda messages: len(messages) == 500, TIMEOUT)
        assert [int(m.payload) for m in observer.messages()] == list(range(500))


def test_messages_held_before_the_first_connection_complete_once_it_is_up(
    tmp_path: Path,
) -> None:
    port = free_port()
    broker = MosquittoProcess(tmp_path / "mosquitto", port=port, persistence=False)
    outcomes = Outcomes()
    client = MqttClient(_settings(port), client_id=unique("held-"))
    client.start()
    try:
        for key in range(5):
            assert client.publish(f"test/{unique('h')}", b"x", on_complete=outcomes.callback(key))
        assert client.stats().held == 5
        assert outcomes.count() == 0
        broker.start()
        assert wait_until(lambda: outcomes.count() == 5, TIMEOUT)
        assert outcomes.results == dict.fromkeys(range(5), True)
    finally:
        client.stop()
        broker.stop()


def test_an_acknowledgement_that_beats_the_registration_is_not_lost(
    mosquitto: MosquittoProcess,
) -> None:
    """paho's publish is made to return only after the PUBACK was handled."""
    outcomes = Outcomes()
    client = MqttClient(_settings(mosquitto.port), client_id=unique("race-"))
    client.start()
    try:
        assert client.wait_connected(TIMEOUT)
        paho_client = client._client  # the test reaches in to hold paho's publish back
        assert paho_client is not None
        real_publish = paho_client.publish

        def slow_publish(*args: Any, **kwargs: Any) -> Any:
            info = real_publish(*args, **kwargs)
            info.wait_for_publish(TIMEOUT)
            assert info.is_published()
            return info

        paho_client.publish = slow_publish  # type: ignore[method-assign]
        for key in range(20):
            assert client.publish(f"test/{unique('r')}", b"x", on_complete=outcomes.callback(key))
        assert wait_until(lambda: outcomes.count() == 20, 5)
        assert outcomes.results == dict.fromkeys(range(20), True)
        assert set(outcomes.calls.values()) == {1}
    finally:
        client.stop()


@pytest.fixture
def acl_broker(tmp_path: Path) -> Iterator[int]:
    """A mosquitto whose anonymous clients may write ``allowed/#`` only."""
    program = find_program("mosquitto")
    if program is None:
        pytest.fail("mosquitto is not installed: run ./scripts/test (it installs it)")
    port = free_port()
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite allowed/#\n")
    config = tmp_path / "mosquitto.conf"
    config.write_text(
        f"user {getpass.getuser()}\nlistener {port} 127.0.0.1\nallow_anonymous true\n"
        f"acl_file {acl}\n"
    )
    process = ManagedProcess("mosquitto", [program, "-c", str(config)], tmp_path / "log")
    process.start(lambda: port_open("127.0.0.1", port))
    yield port
    process.stop()


def test_a_message_the_broker_refuses_completes_with_false(acl_broker: int) -> None:
    outcomes = Outcomes()
    client = MqttClient(_settings(acl_broker), client_id=unique("acl-"))
    client.start()
    try:
        assert client.wait_connected(TIMEOUT)
        assert client.publish("allowed/a", b"x", on_complete=outcomes.callback(1))
        assert client.publish("denied/b", b"x", on_complete=outcomes.callback(2))
        assert wait_until(lambda: outcomes.count() == 2, TIMEOUT)
    finally:
        client.stop()
    assert outcomes.results == {1: True, 2: False}
    assert client.stats().rejected == 1


def test_a_refused_publish_is_never_reported(tmp_path: Path) -> None:
    outcomes = Outcomes()
    client = MqttClient(_settings(free_port()), client_id=unique("full-"), max_queued=1)
    assert not client.publish("t/x", b"x", on_complete=outcomes.callback(0))  # not started
    client.start()
    try:
        assert client.publish("t/x", b"x", on_complete=outcomes.callback(1))
        assert not client.publish("t/x", b"x", on_complete=outcomes.callback(2))  # hold is full
    finally:
        client.stop()
    assert outcomes.count() == 0
    assert client.stats().refused == 2
