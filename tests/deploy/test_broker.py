"""broker/ on a real mosquitto: authentication and the per-device ACL.

The production mosquitto.conf and acl are used as they are, with only the
listener, folders and password file swapped for temporary ones; the password
file is built by broker/make-passwd.sh (mosquitto_passwd -b), as in compose.
"""

from __future__ import annotations

import getpass
import os
import queue
import re
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from iotmon_contract import dead_letter_topic, status_topic, telemetry_topic
from iotmon_edge.agent import build_simulated_agent
from iotmon_tools.localstack import find_program, free_port
from iotmon_tools.localstack.processes import ManagedProcess, port_open
from tests.deploy.compose import environment, load_compose, simulator_config

REPO = Path(__file__).resolve().parents[2]
BROKER = REPO / "broker"


def _compose_agent() -> tuple[str, str, str]:
    """docker-compose.yml's simulator agent: (broker username, tenant, agent id)."""
    simulators = load_compose()["services"]["simulators"]
    config = simulator_config()
    username = environment(simulators)["IOTMON_EDGE_MQTT__USERNAME"]
    return username, config.tenant, config.agent_id


AGENT_USER, AGENT_TENANT, AGENT_ID = _compose_agent()
USERS = {
    "acme/env-1": "env-1-password",
    "acme/env-2": "env-2-password",
    "other/env-1": "other-password",
    "iotmon-ingest": "ingest-password",
    "iotmon-health": "health: with colon and spaces",
    AGENT_USER: "agent-password",
    f"{AGENT_TENANT}/env-0000": "child-password",  # a device of the agent's tenant
}
NOT_AUTHORIZED = 135
TIMEOUT = 10.0


def adapt_config(text: str, *, port: int, data_dir: Path, passwd: Path, acl: Path) -> str:
    """The production config with the listener, paths and user fit for a test run."""
    replacements = {
        r"listener 1883": f"listener {port} 127.0.0.1",
        r"password_file \S+": f"password_file {passwd}",
        r"acl_file \S+": f"acl_file {acl}",
        r"persistence_location \S+": f"persistence_location {data_dir}/",
    }
    for pattern, replacement in replacements.items():
        text, count = re.subn(rf"^{pattern}$", replacement, text, flags=re.MULTILINE)
        assert count == 1, f"broker/mosquitto.conf: expected one line matching {pattern!r}"
    # Started as root, mosquitto would drop to user "mosquitto", who cannot read tmp_path.
    return f"{text}\nuser {getpass.getuser()}\n"


@dataclass(frozen=True)
class Broker:
    port: int
    passwd: Path


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    program = find_program("mosquitto")
    if program is None:
        pytest.fail("mosquitto is not installed: run ./scripts/test (it installs it)")
    state = tmp_path_factory.mktemp("broker")
    passwd = state / "passwd"
    built = subprocess.run(
        ["sh", str(BROKER / "make-passwd.sh"), "true"],
        env={
            **os.environ,
            "IOTMON_MQTT_PASSWD_FILE": str(passwd),
            "IOTMON_MQTT_USERS": "\n".join(f"{u}:{p}" for u, p in USERS.items()) + "\n",
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert built.returncode == 0, built.stderr
    assert f"{len(USERS)} user(s) written" in built.stdout
    assert oct(passwd.stat().st_mode & 0o777) == "0o600"
    port = free_port()
    (state / "data").mkdir()
    config = state / "mosquitto.conf"
    config.write_text(
        adapt_config(
            (BROKER / "mosquitto.conf").read_text(),
            port=port,
            data_dir=state / "data",
            passwd=passwd,
            acl=BROKER / "acl",
        )
    )
    process = ManagedProcess("mosquitto", [program, "-c", str(config)], state / "mosquitto.log")
    process.start(lambda: port_open("127.0.0.1", port))
    yield Broker(port, passwd)
    process.stop()


class Peer:
    """A paho MQTT v5 client that reports CONNACK, SUBACK and PUBACK reason codes."""

    def __init__(self, broker: Broker, username: str | None, password: str | None = None):
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"test-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        if username is not None:
            self._client.username_pw_set(username, password)
        self._port = broker.port
        self._connack: queue.Queue[ReasonCode] = queue.Queue()
        self._acks: dict[int, queue.Queue[ReasonCode]] = {}
        self._lock = threading.Lock()
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._client.on_connect = self._on_connect
        self._client.on_publish = self._on_ack
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def _ack_queue(self, mid: int) -> queue.Queue[ReasonCode]:
        with self._lock:
            return self._acks.setdefault(mid, queue.Queue())

    def _on_connect(
        self, client: Any, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        self._connack.put(rc)

    def _on_ack(self, client: Any, userdata: Any, mid: int, rc: ReasonCode, props: Any) -> None:
        self._ack_queue(mid).put(rc)

    def _on_subscribe(
        self, client: Any, userdata: Any, mid: int, codes: list[ReasonCode], props: Any
    ) -> None:
        self._ack_queue(mid).put(codes[0])

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.messages.put((message.topic, bytes(message.payload)))

    def connect(self) -> ReasonCode:
        self._client.connect("127.0.0.1", self._port, keepalive=30)
        self._client.loop_start()
        rc = self._connack.get(timeout=TIMEOUT)
        if rc.is_failure:
            self.close()
        return rc

    def subscribe(self, topic: str) -> None:
        _, mid = self._client.subscribe(topic, qos=1)
        assert mid is not None
        assert not self._ack_queue(mid).get(timeout=TIMEOUT).is_failure

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        """Publish at QoS 1 and return the PUBACK reason code (135: not authorized)."""
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        return self._ack_queue(info.mid).get(timeout=TIMEOUT).value

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@pytest.fixture
def peers(broker: Broker) -> Iterator[dict[str, Peer]]:
    opened: dict[str, Peer] = {}

    class Opener(dict[str, Peer]):
        def __missing__(self, username: str) -> Peer:
            peer = Peer(broker, username, USERS[username])
            assert not peer.connect().is_failure, f"{username} refused"
            opened[username] = self[username] = peer
            return peer

    yield Opener()
    for peer in opened.values():
        peer.close()


def drain(peer: Peer) -> list[tuple[str, bytes]]:
    found = []
    while not peer.messages.empty():
        found.append(peer.messages.get_nowait())
    return found


def test_anonymous_clients_are_refused(broker: Broker) -> None:
    rc = Peer(broker, None).connect()
    assert rc.is_failure
    assert rc.getName() == "Not authorized"


@pytest.mark.parametrize(
    ("username", "password"),
    [("acme/env-1", "wrong"), ("acme/env-1", ""), ("nobody", "env-1-password")],
)
def test_wrong_credentials_are_refused(broker: Broker, username: str, password: str) -> None:
    assert Peer(broker, username, password).connect().is_failure


def test_device_publishes_only_on_its_own_topics(peers: dict[str, Peer]) -> None:
    ingest = peers["iotmon-ingest"]
    ingest.subscribe("iotmon/v1/#")
    device = peers["acme/env-1"]
    forged = [
        telemetry_topic("acme", "env-2"),  # another device of the tenant
        telemetry_topic("other", "env-1"),  # the same device id in another tenant
        status_topic("acme", "env-2"),
        dead_letter_topic("ingest"),  # a service's topic
        "iotmon/v1/acme/env-1/telemetry/extra",
        "iotmon/v1/acme/env-1",
    ]
    for topic in forged:
        assert device.publish(topic, b"forged") == NOT_AUTHORIZED, topic
    own = [telemetry_topic("acme", "env-1"), status_topic("acme", "env-1")]
    for topic in own:
        assert device.publish(topic, b"genuine", retain=topic.endswith("status")) == 0, topic
    # Messages of one client reach a subscriber in order: once the genuine ones
    # are in, any forged one the broker had let through would be too.
    received = [ingest.messages.get(timeout=TIMEOUT) for _ in own]
    assert received == [(topic, b"genuine") for topic in own]
    assert drain(ingest) == []
    device.publish(status_topic("acme", "env-1"), b"", retain=True)  # clear the retained status


def test_device_reads_nothing_of_other_devices(peers: dict[str, Peer]) -> None:
    snoop = peers["acme/env-1"]
    snoop.subscribe("iotmon/v1/#")  # accepted, but the ACL filters every delivery
    ingest = peers["iotmon-ingest"]
    ingest.subscribe(telemetry_topic("acme", "env-2"))
    assert peers["acme/env-2"].publish(telemetry_topic("acme", "env-2"), b"private") == 0
    assert ingest.messages.get(timeout=TIMEOUT) == (telemetry_topic("acme", "env-2"), b"private")
    # The broker fans out a message to every subscriber in one go; give the
    # snooper's copy, were there one, ample time to arrive.
    with pytest.raises(queue.Empty):
        snoop.messages.get(timeout=0.5)


def test_ingest_shares_subscriptions_and_writes_only_under_sys(peers: dict[str, Peer]) -> None:
    ingest = peers["iotmon-ingest"]
    ingest.subscribe("$share/ingest/iotmon/v1/+/+/telemetry")
    assert peers["other/env-1"].publish(telemetry_topic("other", "env-1"), b"r") == 0
    assert ingest.messages.get(timeout=TIMEOUT) == (telemetry_topic("other", "env-1"), b"r")
    assert ingest.publish(dead_letter_topic("ingest"), b"{}") != NOT_AUTHORIZED
    assert ingest.publish(telemetry_topic("acme", "env-1"), b"forged") == NOT_AUTHORIZED


def test_compose_agent_publishes_its_childrens_status_and_telemetry(
    broker: Broker, peers: dict[str, Peer]
) -> None:
    """The real edge agent, as compose's simulator user: every topic it uses is granted."""
    ingest = peers["iotmon-ingest"]
    ingest.subscribe(f"iotmon/v1/{AGENT_TENANT}/#")
    agent = build_simulated_agent(
        AGENT_TENANT,
        3,
        0.1,
        "single",  # children's telemetry on their own topics; batch uses only its own
        "127.0.0.1",
        broker.port,
        agent_id=AGENT_ID,
        username=AGENT_USER,
        password=USERS[AGENT_USER],
    )
    children = agent.device_ids
    assert len(children) == 3
    assert AGENT_ID not in children
    wanted = {status_topic(AGENT_TENANT, d) for d in [AGENT_ID, *children]} | {
        telemetry_topic(AGENT_TENANT, d) for d in children
    }
    seen: set[str] = set()
    agent.start()
    try:
        while not wanted <= seen:
            try:
                seen.add(ingest.messages.get(timeout=TIMEOUT)[0])
            except queue.Empty:
                pytest.fail(f"never reached ingest: {sorted(wanted - seen)}")
    finally:
        agent.stop()
    stats = agent.client.stats()
    # MQTT 5 PUBACK reason codes: one refused status or reading shows here.
    assert stats.rejected == 0, stats
    assert stats.completed == stats.accepted, stats
    assert agent.failure is None
    cleaner = peers[AGENT_USER]
    for device in [AGENT_ID, *children]:  # leave no retained status for the other tests
        assert cleaner.publish(status_topic(AGENT_TENANT, device), b"", retain=True) == 0


def test_agent_user_is_confined_to_its_tenants_device_topics(peers: dict[str, Peer]) -> None:
    agent = peers[AGENT_USER]
    child = "env-0001"
    forged = [
        telemetry_topic("acme", "env-1"),  # another tenant
        status_topic("acme", "env-1"),
        telemetry_topic("other", AGENT_ID),  # its own id under another tenant
        dead_letter_topic("ingest"),
        f"iotmon/v1/_sys/{AGENT_ID}/status",
        f"iotmon/v1/{AGENT_TENANT}/{child}/telemetry/extra",
        f"iotmon/v1/{AGENT_TENANT}/{child}/request/reboot",
        f"iotmon/v1/{AGENT_TENANT}/{child}",
    ]
    for topic in forged:
        assert agent.publish(topic, b"forged") == NOT_AUTHORIZED, topic
    granted = [telemetry_topic(AGENT_TENANT, child), status_topic(AGENT_TENANT, child)]
    for topic in granted:
        # 0, or 16 (no matching subscribers): accepted either way.
        assert agent.publish(topic, b"genuine") in (0, 16), topic
    # The grant is the agent user's alone: a plain device of that tenant still
    # writes only its own topics.
    device = peers[f"{AGENT_TENANT}/env-0000"]
    assert device.publish(status_topic(AGENT_TENANT, child), b"forged") == NOT_AUTHORIZED
    assert device.publish(telemetry_topic(AGENT_TENANT, AGENT_ID), b"forged") == NOT_AUTHORIZED
    # Writing for its children does not let the agent read them, or anyone.
    agent.subscribe("iotmon/v1/#")
    agent.subscribe("$SYS/#")
    ingest = peers["iotmon-ingest"]
    ingest.subscribe(telemetry_topic(AGENT_TENANT, "env-0000"))
    assert device.publish(telemetry_topic(AGENT_TENANT, "env-0000"), b"private") == 0
    assert peers["acme/env-1"].publish(telemetry_topic("acme", "env-1"), b"private") == 0
    assert ingest.messages.get(timeout=TIMEOUT) == (
        telemetry_topic(AGENT_TENANT, "env-0000"),
        b"private",
    )
    with pytest.raises(queue.Empty):
        agent.messages.get(timeout=0.5)


def test_compose_health_check_command_works(broker: Broker) -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    kind, command = compose["services"]["mosquitto"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    # Compose turns $$ into $; the container listens on 1883, this broker elsewhere.
    command = command.replace("$$", "$").replace("-p 1883", f"-p {broker.port}")
    sub = find_program("mosquitto_sub")
    assert sub is not None
    command = command.replace("mosquitto_sub", sub)
    env = {**os.environ, "IOTMON_MQTT_HEALTH_PASSWORD": USERS["iotmon-health"]}
    healthy = subprocess.run(["sh", "-c", command], env=env, capture_output=True, timeout=30)
    assert healthy.returncode == 0, healthy.stderr
    env["IOTMON_MQTT_HEALTH_PASSWORD"] = "wrong"
    refused = subprocess.run(["sh", "-c", command], env=env, capture_output=True, timeout=30)
    assert refused.returncode != 0


def test_make_passwd_refuses_a_line_without_password(tmp_path: Path) -> None:
    done = subprocess.run(
        ["sh", str(BROKER / "make-passwd.sh"), "true"],
        env={
            **os.environ,
            "IOTMON_MQTT_PASSWD_FILE": str(tmp_path / "passwd"),
            "IOTMON_MQTT_USERS": "acme/env-1:ok\nsecret-looking-line\n",
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert "has no ':'" in done.stderr
    assert "secret-looking-line" not in done.stderr
