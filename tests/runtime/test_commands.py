"""Commands over a real broker: every request gets one reply, failures become error replies."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from iotmon_contract import request_topic, response_filter
from iotmon_edge import build_agent, simulated_agent_config
from iotmon_edge.config import EdgeMqttSettings
from iotmon_runtime.commands import CommandServer
from iotmon_runtime.mqtt import InboundMessage, MqttClient, MqttSettings
from iotmon_tools.localstack import MosquittoProcess
from tests.services.ingest.support import unique

TIMEOUT = 15.0


class Replies:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.by_transaction: dict[str | None, list[dict[str, Any]]] = {}
        self.topics: list[str] = []

    def __call__(self, message: InboundMessage) -> None:
        body = json.loads(message.payload)
        with self._changed:
            self.by_transaction.setdefault(body.get("transaction"), []).append(body)
            self.topics.append(message.topic)
            self._changed.notify_all()

    def wait(self, transaction: str | None) -> dict[str, Any]:
        with self._changed:
            assert self._changed.wait_for(lambda: transaction in self.by_transaction, TIMEOUT)
            (reply,) = self.by_transaction[transaction]
            return reply


@pytest.fixture
def requester(mosquitto: MosquittoProcess) -> Iterator[tuple[MqttClient, Replies, str]]:
    tenant = unique("t")
    replies = Replies()
    client = MqttClient(
        MqttSettings(host=mosquitto.host, port=mosquitto.port), client_id=unique("req-")
    )
    client.subscribe(response_filter(tenant), replies)
    client.start()
    assert client.wait_subscribed(TIMEOUT)
    yield client, replies, tenant
    client.stop()


def _send(client: MqttClient, tenant: str, device: str, action: str, body: bytes) -> None:
    assert client.publish(request_topic(tenant, device, action), body)


def test_every_request_gets_one_reply_and_failures_are_replies(
    mosquitto: MosquittoProcess, requester: tuple[MqttClient, Replies, str]
) -> None:
    client, replies, tenant = requester
    device = MqttClient(
        MqttSettings(host=mosquitto.host, port=mosquitto.port), client_id=unique("dev-")
    )
    server = CommandServer(device, tenant, "reader-1")

    def echo(data: Mapping[str, Any]) -> dict[str, Any]:
        return {"echo": dict(data)}

    def broken(_data: Mapping[str, Any]) -> None:
        raise RuntimeError("reader busy:\na sweep is running")

    server.register("echo", echo)
    server.register("sweep", broken)
    server.register("set", lambda data: {"bad": float("nan")})
    server.start()
    device.start()
    assert device.wait_subscribed(TIMEOUT)
    try:
        _send(client, tenant, "reader-1", "echo", b'{"transaction":"t-1","data":{"x":1}}')
        _send(client, tenant, "reader-1", "sweep", b'{"transaction":"t-2"}')
        _send(client, tenant, "reader-1", "reboot", b'{"transaction":"t-3"}')
        _send(client, tenant, "reader-1", "echo", b'{"data":{}}')
        _send(client, tenant, "reader-1", "set", b'{"transaction":"t-5"}')
        _send(client, tenant, "reader-1", "echo", b'{"transaction":"t-6"}')

        assert replies.wait("t-1") == {
            "status": "ok",
            "data": {"echo": {"x": 1}},
            "transaction": "t-1",
        }
        failed = replies.wait("t-2")
        assert failed["status"] == "error"
        assert failed["error"] == "sweep failed: reader busy: a sweep is running"
        unknown = replies.wait("t-3")
        assert unknown["error"] == "unknown action 'reboot'; known: echo, set, sweep"
        unreadable = replies.wait(None)
        assert unreadable["error"].startswith("unreadable request: transaction: Field required")
        assert replies.wait("t-5")["status"] == "error"
        assert replies.wait("t-6")["status"] == "ok"  # still serving after every failure
        assert set(replies.topics) == {
            f"iotmon/v1/{tenant}/reader-1/response/{action}"
            for action in ("echo", "sweep", "reboot", "set")
        }
        assert (server.answered, server.failed) == (6, 4)
    finally:
        device.stop()


def test_the_edge_agent_answers_ping_and_stats(
    mosquitto: MosquittoProcess, requester: tuple[MqttClient, Replies, str]
) -> None:
    client, replies, tenant = requester
    config = simulated_agent_config(tenant, 3, 0.2, agent_id="gw-7")
    agent = build_agent(config, EdgeMqttSettings(host=mosquitto.host, port=mosquitto.port))
    agent.start()
    try:
        assert agent.client.wait_subscribed(TIMEOUT)
        _send(client, tenant, "gw-7", "ping", b'{"transaction":"p"}')
        _send(client, tenant, "gw-7", "stats", b'{"transaction":"s"}')
        ping = replies.wait("p")
        assert ping["status"] == "ok"
        assert ping["data"]["devices"] == 3
        assert ping["data"]["agent"].startswith("iotmon-edge")
        stats = replies.wait("s")["data"]
        assert stats["mqtt"]["connects"] == 1
        assert {"cycles", "readings", "dropped"} <= set(stats["agent"])
    finally:
        agent.stop()
