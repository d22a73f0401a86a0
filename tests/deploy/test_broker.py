"""broker/ on a real mosquitto: authentication and the dynamic-security roles.

The production mosquitto.conf is used as it is, with only the listener, the
folders and the plugin's path swapped for local ones. Its dynamic-security file
is made as docker-compose.yml makes it: broker-admin's command (``iotmon broker
init`` with broker/identities.compose.yaml) and environment, the passwords read
from the development secrets it mounts. The test's own devices are then added
over $CONTROL, as an operator would. The TLS listener of docker-compose.tls.yml
runs on the same configuration with a certificate made here.
"""

from __future__ import annotations

import functools
import getpass
import queue
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from iotmon_contract import (
    DeadLetterReason,
    dead_letter_topic,
    event_topic,
    service_status_topic,
    status_topic,
    telemetry_filter,
    telemetry_topic,
)
from iotmon_edge.agent import build_simulated_agent
from iotmon_homeassistant import HomeAssistantBridge
from iotmon_homeassistant import Settings as BridgeSettings
from iotmon_ingest import IngestService, IngestSettings
from iotmon_registry import Registry, RegistrySettings
from iotmon_runtime.mqtt import MqttClient, MqttSettings
from iotmon_storage import StoreSettings, open_store
from iotmon_tools.broker import (
    BrokerAdmin,
    DynsecSession,
    device_identity,
    gateway_identity,
)
from iotmon_tools.cli.main import build_app
from iotmon_tools.localstack import InfluxdProcess, find_dynsec_plugin, find_program, free_port
from iotmon_tools.localstack.processes import ManagedProcess, port_open
from tests.deploy.compose import (
    TLS_FILE as TLS,
)
from tests.deploy.compose import (
    broker_init_command,
    dev_secrets,
    environment,
    load_compose,
    local_environment,
    local_paths,
    simulator_config,
)
from tests.services.ingest.support import single, stored_values, ts_from_us, unique, wait_until
from tests.utils.mqtt_peer import NO_MATCHING_SUBSCRIBERS, NOT_AUTHORIZED, TIMEOUT, Peer

REPO = Path(__file__).resolve().parents[2]
BROKER = REPO / "broker"
COMPOSE = load_compose()
SERVICES = COMPOSE["services"]
ADMIN_ENV = environment(SERVICES["broker-admin"])
SECRETS = dev_secrets()
AGENT_USER = environment(SERVICES["simulators"])["IOTMON_EDGE_MQTT__USERNAME"]
AGENT_TENANT, AGENT_ID = simulator_config().tenant, simulator_config().agent_id
AGENT_CHILDREN = [d for driver in simulator_config().drivers for d in driver.declared_device_ids()]
NOT_A_CHILD = "env-0000"  # a device of the agent's tenant it is not registered for
TEST_GATEWAY = ("acme", "gw-9", ["meter-1", "meter-2"])

USERS = {
    "iotmon-ingest": SECRETS["mqtt_ingest_password"],
    "iotmon-health": SECRETS["mqtt_health_password"],
    AGENT_USER: SECRETS["mqtt_simulator_password"],
    "iotmon-homeassistant": SECRETS["mqtt_homeassistant_password"],
    "demo/video-0": SECRETS["mqtt_video_password"],
    "demo/bus-12": "bus-12-password",
    "acme/env-1": "env-1-password",
    "acme/env-2": "env-2-password",
    "other/env-1": "other-password",
    f"{AGENT_TENANT}/{NOT_A_CHILD}": "plain-device-password",
    "acme/gw-9": "gateway-password",
}
GRANTED_QOS_1 = 1


def adapt_config(
    text: str,
    *,
    port: int,
    data_dir: Path,
    dynsec_file: Path,
    plugin: Path,
    conf_d: Path = BROKER / "conf.d",
) -> str:
    """The production config with the listener, paths and user fit for a test run."""
    replacements = {
        r"listener 1883": f"listener {port} 127.0.0.1",
        r"plugin \S+": f"plugin {plugin}",
        r"plugin_opt_config_file \S+": f"plugin_opt_config_file {dynsec_file}",
        r"persistence_location \S+": f"persistence_location {data_dir}/",
        r"include_dir \S+": f"include_dir {conf_d}",
    }
    for pattern, replacement in replacements.items():
        text, count = re.subn(rf"^{pattern}$", replacement, text, flags=re.MULTILINE)
        assert count == 1, f"broker/mosquitto.conf: expected one line matching {pattern!r}"
    # Started as root, mosquitto would drop to user "mosquitto", who cannot read tmp_path.
    return f"{text}\nuser {getpass.getuser()}\n"


def compose_init(dynsec_file: Path) -> None:
    """broker-admin's command from docker-compose.yml, its mounts and secrets mapped to
    local paths."""
    service = SERVICES["broker-admin"]
    mounts = {target: source for source, target in (v.split(":")[:2] for v in service["volumes"])}
    command = [str(part) for part in service["command"]]
    assert mounts[str(Path(command[command.index("--file") + 1]).parent)] == "broker-security"
    command = broker_init_command(service, COMPOSE, dynsec_file, dynsec_file.parent)
    result = CliRunner().invoke(build_app(), command, env=local_environment(service, COMPOSE))
    assert result.exit_code == 0, result.output
    assert oct(dynsec_file.stat().st_mode & 0o777) == "0o600"


@dataclass(frozen=True)
class Broker:
    port: int
    admin: MqttSettings
    state: Path

    def settings(self, username: str) -> MqttSettings:
        return MqttSettings(
            port=self.port, username=username, password=USERS[username], client_id=unique("c-")
        )


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    program = find_program("mosquitto")
    plugin = find_dynsec_plugin()
    if program is None or plugin is None:
        pytest.fail("mosquitto 2 with its dynamic-security plugin is not installed")
    state = tmp_path_factory.mktemp("broker")
    dynsec_file = state / "dynamic-security.json"
    compose_init(dynsec_file)
    port = free_port()
    (state / "data").mkdir()
    config = state / "mosquitto.conf"
    config.write_text(
        adapt_config(
            (BROKER / "mosquitto.conf").read_text(),
            port=port,
            data_dir=state / "data",
            dynsec_file=dynsec_file,
            plugin=plugin,
        )
    )
    process = ManagedProcess("mosquitto", [program, "-c", str(config)], state / "mosquitto.log")
    process.start(lambda: port_open("127.0.0.1", port))
    admin = MqttSettings(
        port=port,
        username=ADMIN_ENV["IOTMON_BROKER_MQTT__USERNAME"],
        password=SECRETS["mqtt_admin_password"],
    )
    with DynsecSession(admin) as session:
        operator = BrokerAdmin(session)
        for username in (
            "acme/env-1",
            "acme/env-2",
            "other/env-1",
            f"{AGENT_TENANT}/env-0000",
            "demo/bus-12",
        ):
            tenant, device = username.split("/")
            operator.add(device_identity(tenant, device), USERS[username])
        operator.add(gateway_identity(*TEST_GATEWAY), USERS["acme/gw-9"])
    yield Broker(port, admin, state)
    process.stop()


@pytest.fixture
def peers(broker: Broker) -> Iterator[dict[str, Peer]]:
    opened: dict[str, Peer] = {}

    class Opener(dict[str, Peer]):
        def __missing__(self, username: str) -> Peer:
            peer = Peer(broker.port, username, USERS[username])
            assert not peer.connect().is_failure, f"{username} refused"
            opened[username] = self[username] = peer
            return peer

    yield Opener()
    for peer in opened.values():
        peer.close()


def test_anonymous_clients_are_refused(broker: Broker) -> None:
    rc = Peer(broker.port, None).connect()
    assert rc.is_failure
    assert rc.getName() == "Not authorized"


@pytest.mark.parametrize(
    ("username", "password"),
    [("acme/env-1", "wrong"), ("acme/env-1", ""), ("nobody", "env-1-password")],
)
def test_wrong_credentials_are_refused(broker: Broker, username: str, password: str) -> None:
    assert Peer(broker.port, username, password).connect().is_failure


def test_device_publishes_only_on_its_own_topics(peers: dict[str, Peer]) -> None:
    ingest = peers["iotmon-ingest"]
    ingest.subscribe("iotmon/v1/+/+/telemetry")
    ingest.subscribe("iotmon/v1/+/+/status")
    ingest.subscribe("iotmon/v1/+/+/event")
    device = peers["acme/env-1"]
    forged = [
        telemetry_topic("acme", "env-2"),  # another device of the tenant
        telemetry_topic("other", "env-1"),  # the same device id in another tenant
        status_topic("acme", "env-2"),
        "iotmon/v1/acme/env-2/event",
        "iotmon/v1/acme/env-2/response/reboot",
        "iotmon/v1/acme/env-1/request/reboot",  # requests come from services
        dead_letter_topic("ingest"),  # a service's topic
        "iotmon/v1/acme/_service/ingest/alert",
        "iotmon/v1/acme/env-1/telemetry/extra",
        "iotmon/v1/acme/env-1",
        "iotmon/v1/%u/telemetry",  # 2.0's plugin has no %u: never a grant
    ]
    for topic in forged:
        assert device.publish(topic, b"forged") == NOT_AUTHORIZED, topic
    own = [telemetry_topic("acme", "env-1"), status_topic("acme", "env-1")]
    own.append("iotmon/v1/acme/env-1/event")
    for topic in own:
        assert device.publish(topic, b"genuine", retain=topic.endswith("status")) == 0, topic
    # No subscriber reads responses here: accepted without one (16), not refused.
    response = "iotmon/v1/acme/env-1/response/reboot"
    assert device.publish(response, b"{}") == NO_MATCHING_SUBSCRIBERS
    # Messages of one client reach a subscriber in order: once the genuine ones
    # are in, any forged one the broker had let through would be too.
    received = [ingest.messages.get(timeout=TIMEOUT)[:2] for _ in own]
    assert received == [(topic, b"genuine") for topic in own]
    assert ingest.drain() == []
    device.publish(status_topic("acme", "env-1"), b"", retain=True)  # clear the retained status


@pytest.mark.parametrize(
    "topic_filter",
    [
        "#",
        "iotmon/v1/#",
        "iotmon/v1/acme/+/telemetry",
        telemetry_topic("acme", "env-2"),
        "iotmon/v1/acme/env-2/request/+",  # another device's commands
        "iotmon/v1/acme/env-1/request/#",  # wider than its own grant
        "$share/iotmon-ingest/iotmon/v1/+/+/telemetry",  # ingest's share group
        "$share/iotmon-ingest/iotmon/v1/acme/env-2/telemetry",
        "$share/anything/iotmon/v1/#",
        "$SYS/#",
        "$CONTROL/dynamic-security/v1/response",
    ],
)
def test_device_subscriptions_beyond_its_requests_are_refused_at_subscribe_time(
    peers: dict[str, Peer], topic_filter: str
) -> None:
    assert peers["acme/env-1"].subscribe_code(topic_filter) == NOT_AUTHORIZED


def test_device_may_subscribe_to_its_own_requests(peers: dict[str, Peer]) -> None:
    device = peers["acme/env-1"]
    assert device.subscribe_code("iotmon/v1/acme/env-1/request/+") == GRANTED_QOS_1
    assert device.subscribe_code("iotmon/v1/acme/env-1/request/reboot") == GRANTED_QOS_1


def test_the_runtime_client_reports_a_refused_share_group_subscription(broker: Broker) -> None:
    client = MqttClient(broker.settings("acme/env-1"), client_id=unique("snoop-"))
    client.subscribe("iotmon/v1/+/+/telemetry", lambda _m: None, share_group="iotmon-ingest")
    client.start()
    try:
        assert wait_until(lambda: client.refused_subscriptions == ["Not authorized"], TIMEOUT)
        assert not client.wait_subscribed(0.1)
    finally:
        client.stop()


def production_ingest(
    broker: Broker,
    influxd: InfluxdProcess,
    folder: Path,
    database: str,
    *,
    instance_id: str | None = None,
    share_group: str | None = None,
) -> IngestService:
    """Real ingest as compose's iotmon-ingest identity (not started)."""
    return IngestService(
        IngestSettings(
            instance_id=instance_id or unique("i"),
            mqtt={
                "port": broker.port,
                "username": "iotmon-ingest",
                "password": USERS["iotmon-ingest"],
                "share_group": share_group,
            },
            store=StoreSettings(url=influxd.url, database=database),
            registry={"url": f"sqlite:///{folder / 'registry.db'}"},
            spool_dir=folder / "spool",
            flush_interval_s=0.05,
            metrics={"port": 0},
        )
    )


def test_a_device_in_ingests_share_group_takes_nothing_from_it(
    broker: Broker, influxd: InfluxdProcess, tmp_path: Path
) -> None:
    """Real ingest stores every reading of one device while another tries to join its
    share group. An acl_file broker grants that subscription and hands the intruder
    its round-robin share, then drops it on the read check: half the readings lost."""
    database = unique("broker_")
    # In the group the intruders try to join: a plain subscription (ingest's default)
    # would get every message whatever the broker let them do.
    ingest = production_ingest(broker, influxd, tmp_path, database, share_group="iotmon-ingest")
    intruders = []
    for _ in range(3):
        intruder = MqttClient(broker.settings("acme/env-1"), client_id=unique("intruder-"))
        intruder.subscribe("iotmon/v1/+/+/telemetry", lambda _m: None, share_group="iotmon-ingest")
        intruders.append(intruder)
    store = open_store(StoreSettings(url=influxd.url, database=database))
    store.ensure_schema()
    ingest.start()
    victim = Peer(broker.port, "acme/env-2", USERS["acme/env-2"])
    try:
        assert ingest.wait_connected(TIMEOUT)
        for intruder in intruders:
            intruder.start()
        assert wait_until(lambda: all(i.refused_subscriptions for i in intruders), TIMEOUT)
        assert not victim.connect().is_failure
        base = time.time_ns() // 1000 - 60_000_000
        for i in range(30):
            code = victim.publish(
                telemetry_topic("acme", "env-2"), single(float(i), ts_from_us(base + i))
            )
            assert code == 0
        expected = {("env-2", (base + i) * 1000): float(i) for i in range(30)}
        assert wait_until(lambda: stored_values(store, "acme", "temperature") == expected, 15)
    finally:
        victim.close()
        for intruder in intruders:
            intruder.stop()
        ingest.stop()
        store.close()


def wrote_one(service: IngestService) -> bool:
    return service.counters.readings_written == 1


def test_retained_telemetry_is_refused_once_and_never_stored(
    broker: Broker, influxd: InfluxdProcess, tmp_path: Path
) -> None:
    """No role can refuse a retain flag, so the broker keeps a retained reading; ingest
    dead-letters it as it arrives, and no later session, resumed or new, is handed it."""
    database = unique("broker_")
    store = open_store(StoreSettings(url=influxd.url, database=database))
    store.ensure_schema()
    device = Peer(broker.port, "acme/env-2", USERS["acme/env-2"])
    topic = telemetry_topic("acme", "env-2")
    base = time.time_ns() // 1000 - 60_000_000
    first = production_ingest(broker, influxd, tmp_path, database, instance_id="retain-0")
    assert not device.connect().is_failure
    try:
        first.start()
        assert first.wait_connected(TIMEOUT)
        assert device.publish(topic, single(1.0, ts_from_us(base)), retain=True) == 0
        assert wait_until(lambda: first.counters.dead_letters == {"retained": 1}, TIMEOUT)
        first.stop()
        for instance_id in ("retain-0", "retain-1"):  # its session resumed, and a new one
            later = production_ingest(broker, influxd, tmp_path, database, instance_id=instance_id)
            try:
                later.start()
                assert later.wait_connected(TIMEOUT)
                assert device.publish(topic, single(2.0, ts_from_us(base + 1))) == 0
                assert wait_until(functools.partial(wrote_one, later), TIMEOUT)
                assert later.counters.dead_letters == {}, instance_id
            finally:
                later.stop()
        assert stored_values(store, "acme", "temperature") == {("env-2", (base + 1) * 1000): 2.0}
        assert [d.reason for d in store.dead_letters(limit=10)] == [DeadLetterReason.RETAINED]
    finally:
        first.stop()
        device.publish(topic, b"", retain=True)  # the other tests' subscribers get none
        device.close()
        store.close()


def test_ingest_reads_in_its_own_share_group_and_writes_only_its_topics(
    peers: dict[str, Peer],
) -> None:
    ingest = peers["iotmon-ingest"]
    granted = [
        "$share/iotmon-ingest/iotmon/v1/+/+/telemetry",
        "$share/iotmon-ingest/iotmon/v1/+/+/status",
        "$share/iotmon-ingest/iotmon/v1/+/+/event",
        "iotmon/v1/+/+/status",
        "iotmon/v1/+/+/telemetry",  # MQTT 3.1.1 has no share groups
    ]
    for topic_filter in granted:
        assert ingest.subscribe_code(topic_filter) == GRANTED_QOS_1, topic_filter
    refused = [
        "$share/another-group/iotmon/v1/+/+/telemetry",
        "#",
        "iotmon/v1/#",
        "iotmon/v1/+/+/request/+",
        "$SYS/#",
        "$CONTROL/dynamic-security/v1/response",
    ]
    for topic_filter in refused:
        assert ingest.subscribe_code(topic_filter) == NOT_AUTHORIZED, topic_filter
    assert ingest.publish(dead_letter_topic("ingest"), b"{}") != NOT_AUTHORIZED
    assert ingest.publish("iotmon/v1/acme/_service/ingest/notice", b"{}") != NOT_AUTHORIZED
    assert ingest.publish("iotmon/v1/_sys/status/ingest/ingest-0", b"{}") != NOT_AUTHORIZED
    # Nor may it speak for another service.
    assert ingest.publish("iotmon/v1/acme/_service/alerts/alert", b"{}") == NOT_AUTHORIZED
    assert ingest.publish(dead_letter_topic("alerts"), b"{}") == NOT_AUTHORIZED
    assert ingest.publish("iotmon/v1/_sys/status/alerts/alerts-0", b"{}") == NOT_AUTHORIZED
    assert ingest.publish(telemetry_topic("acme", "env-1"), b"forged") == NOT_AUTHORIZED
    assert ingest.publish("iotmon/v1/acme/env-1/request/reboot", b"{}") == NOT_AUTHORIZED
    assert peers["other/env-1"].publish(telemetry_topic("other", "env-1"), b"r") == 0
    assert ingest.messages.get(timeout=TIMEOUT)[:2] == (telemetry_topic("other", "env-1"), b"r")


def test_compose_agent_publishes_its_childrens_status_and_telemetry(
    broker: Broker, peers: dict[str, Peer]
) -> None:
    """The real edge agent, as compose's simulator user: every topic it uses is granted."""
    ingest = peers["iotmon-ingest"]
    ingest.subscribe(f"iotmon/v1/{AGENT_TENANT}/+/telemetry")
    ingest.subscribe(f"iotmon/v1/{AGENT_TENANT}/+/status")
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
    assert children == AGENT_CHILDREN[:3]
    wanted = {status_topic(AGENT_TENANT, d) for d in [AGENT_ID, *children]} | {
        telemetry_topic(AGENT_TENANT, d) for d in children
    }
    seen: set[str] = set()
    agent.start()
    try:
        while not wanted <= seen:
            try:
                seen.add(ingest.messages.get(timeout=TIMEOUT).topic)
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


def test_the_video_service_does_what_it_needs_within_its_compose_role(
    peers: dict[str, Peer],
) -> None:
    """Compose's video-0 gateway: its cameras' topics (as any gateway), the availability
    of video instance video-0, and the events of the bus its cabin camera follows;
    nothing else."""
    video = peers["demo/video-0"]
    own_status = service_status_topic("video", "video-0")
    assert video.publish(own_status, b'{"state":"online"}', retain=True) < 128
    for forged in (
        service_status_topic("video", "video-1"),  # another instance
        service_status_topic("alerts", "video-0"),  # another service
        event_topic("demo", "bus-12"),  # it reads the bus's events, never writes them
        dead_letter_topic("video"),
    ):
        assert video.publish(forged, b"{}") == NOT_AUTHORIZED, forged
    assert video.subscribe_code(event_topic("demo", "bus-12")) < 128
    for refused in (event_topic("demo", "bus-13"), "iotmon/v1/demo/+/event", telemetry_filter()):
        assert video.subscribe_code(refused) == NOT_AUTHORIZED, refused
    bus = peers["demo/bus-12"]
    assert bus.publish(event_topic("demo", "bus-12"), b'{"type":"run_end"}') == 0
    message = video.messages.get(timeout=TIMEOUT)
    assert (message.topic, message.payload) == (
        event_topic("demo", "bus-12"),
        b'{"type":"run_end"}',
    )
    assert video.publish(own_status, b"", retain=True) < 128  # no retained status left


def test_gateway_is_confined_to_its_registered_children(peers: dict[str, Peer]) -> None:
    agent = peers[AGENT_USER]
    child = AGENT_CHILDREN[0]
    forged = [
        telemetry_topic(AGENT_TENANT, NOT_A_CHILD),  # its tenant, not its child
        status_topic(AGENT_TENANT, NOT_A_CHILD),
        telemetry_topic("acme", "env-1"),  # another tenant
        telemetry_topic("other", AGENT_ID),  # its own id under another tenant
        telemetry_topic("other", child),
        dead_letter_topic("ingest"),
        f"iotmon/v1/_sys/{AGENT_ID}/status",
        f"iotmon/v1/{AGENT_TENANT}/{child}/telemetry/extra",
        f"iotmon/v1/{AGENT_TENANT}/{child}/request/reboot",
        f"iotmon/v1/{AGENT_TENANT}/{child}",
    ]
    for topic in forged:
        assert agent.publish(topic, b"forged") == NOT_AUTHORIZED, topic
    granted = [
        telemetry_topic(AGENT_TENANT, child),
        status_topic(AGENT_TENANT, child),
        f"iotmon/v1/{AGENT_TENANT}/{child}/event",
        f"iotmon/v1/{AGENT_TENANT}/{child}/response/reboot",
        telemetry_topic(AGENT_TENANT, AGENT_ID),
    ]
    for topic in granted:
        assert agent.publish(topic, b"genuine") in (0, NO_MATCHING_SUBSCRIBERS), topic
    # It reads its children's requests, not anyone else's, and nothing else.
    assert agent.subscribe_code(f"iotmon/v1/{AGENT_TENANT}/{child}/request/+") == GRANTED_QOS_1
    for topic_filter in (
        f"iotmon/v1/{AGENT_TENANT}/{NOT_A_CHILD}/request/+",
        f"iotmon/v1/{AGENT_TENANT}/+/request/+",
        f"iotmon/v1/{AGENT_TENANT}/#",
        "#",
    ):
        assert agent.subscribe_code(topic_filter) == NOT_AUTHORIZED, topic_filter
    # The grant is the gateway's alone: a plain device of that tenant still writes
    # only its own topics.
    device = peers[f"{AGENT_TENANT}/{NOT_A_CHILD}"]
    assert device.publish(status_topic(AGENT_TENANT, child), b"forged") == NOT_AUTHORIZED
    assert device.publish(telemetry_topic(AGENT_TENANT, AGENT_ID), b"forged") == NOT_AUTHORIZED


def test_new_children_replace_the_old_ones(broker: Broker, peers: dict[str, Peer]) -> None:
    tenant, gateway, children = TEST_GATEWAY
    assert peers["acme/gw-9"].publish(telemetry_topic(tenant, "meter-1"), b"r") != NOT_AUTHORIZED
    with DynsecSession(broker.admin) as session:
        BrokerAdmin(session).set_children(tenant, gateway, [children[1], "meter-3"])
    # The role change closed the gateway's session: a new connection has the new grant.
    renewed = Peer(broker.port, "acme/gw-9", USERS["acme/gw-9"])
    assert not renewed.connect().is_failure
    try:
        assert renewed.publish(telemetry_topic(tenant, "meter-1"), b"r") == NOT_AUTHORIZED
        assert renewed.publish(telemetry_topic(tenant, "meter-2"), b"r") != NOT_AUTHORIZED
        assert renewed.publish(telemetry_topic(tenant, "meter-3"), b"r") != NOT_AUTHORIZED
    finally:
        renewed.close()


def test_compose_health_check_command_works(broker: Broker) -> None:
    kind, command = SERVICES["mosquitto"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    # Compose turns $$ into $; the container listens on 1883, this broker elsewhere; the
    # secret is the development file compose mounts.
    command = command.replace("$$", "$").replace("-p 1883", f"-p {broker.port}")
    command = local_paths(command, SERVICES["mosquitto"], COMPOSE)
    sub = find_program("mosquitto_sub")
    assert sub is not None
    command = command.replace("mosquitto_sub", sub)
    healthy = subprocess.run(["sh", "-c", command], capture_output=True, timeout=30)
    assert healthy.returncode == 0, healthy.stderr
    wrong = Path(broker.state) / "wrong-password"
    wrong.write_text("wrong\n")
    refused_command = command.replace(
        str(local_paths("/run/secrets/mqtt_health_password", SERVICES["mosquitto"], COMPOSE)),
        str(wrong),
    )
    assert refused_command != command
    refused = subprocess.run(["sh", "-c", refused_command], capture_output=True, timeout=30)
    assert refused.returncode != 0


def test_the_health_user_reads_uptime_and_nothing_else(peers: dict[str, Peer]) -> None:
    health = peers["iotmon-health"]
    assert health.subscribe_code("$SYS/broker/uptime") == GRANTED_QOS_1
    for topic_filter in ("$SYS/#", "#", "iotmon/v1/+/+/telemetry"):
        assert health.subscribe_code(topic_filter) == NOT_AUTHORIZED, topic_filter
    assert health.publish(telemetry_topic("acme", "env-1"), b"forged") == NOT_AUTHORIZED


def test_an_acl_file_grants_a_share_group_subscription_it_cannot_serve(tmp_path: Path) -> None:
    """Why broker/ has no acl_file: mosquitto accepts a device's subscription to the
    ingest share group (SUBACK granted), and only filters deliveries afterwards, so
    the device takes its turn of the group's messages and they are dropped."""
    program = find_program("mosquitto")
    passwd = find_program("mosquitto_passwd")
    assert program is not None
    assert passwd is not None
    passwords = tmp_path / "passwd"
    subprocess.run([passwd, "-b", "-c", str(passwords), "acme/env-1", "pw"], check=True)
    acl = tmp_path / "acl"
    acl.write_text("pattern write iotmon/v1/%u/telemetry\n")
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(
        f"user {getpass.getuser()}\nlistener {port} 127.0.0.1\nallow_anonymous false\n"
        f"password_file {passwords}\nacl_file {acl}\n"
    )
    process = ManagedProcess("mosquitto", [program, "-c", str(config)], tmp_path / "m.log")
    process.start(lambda: port_open("127.0.0.1", port))
    device = Peer(port, "acme/env-1", "pw")
    try:
        assert not device.connect().is_failure
        code = device.subscribe_code("$share/iotmon-ingest/iotmon/v1/+/+/telemetry")
        assert code == GRANTED_QOS_1
    finally:
        device.close()
        process.stop()


def _certificates(folder: Path) -> Path:
    """A CA and a server certificate for 127.0.0.1 made with openssl; returns the CA."""
    openssl = shutil.which("openssl")
    assert openssl is not None, "openssl is needed to test the TLS listener"

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=folder, check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", "2", "-subj", "/CN=iotmon-test-ca")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost")  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext")  # fmt: skip
    return folder / "ca.crt"


def test_the_tls_listener_of_the_tls_compose_file(tmp_path: Path) -> None:
    """docker-compose.tls.yml's broker: the production config with broker/tls/ as its
    conf.d and a certificate where IOTMON_MQTT_TLS_DIR says. A device logs in over TLS
    with its own password and reaches ingest on the plain listener; without trusting the
    CA, or without a password, it does not get in."""
    tls_compose = load_compose({"IOTMON_MQTT_TLS_DIR": str(tmp_path / "certs")}, overrides=[TLS])
    mosquitto = tls_compose["services"]["mosquitto"]
    mounts = {t: s for s, t in (v.split(":")[:2] for v in mosquitto["volumes"])}
    conf_source = mounts["/mosquitto/config/conf.d"]
    assert conf_source == "./broker/tls"
    certs = Path(mounts["/mosquitto/certs"])
    certs.mkdir()
    ca = _certificates(certs)
    tls_port, plain_port = free_port(), free_port()
    assert f"{tls_port}" not in " ".join(mosquitto["ports"])
    assert any(p.endswith(":8883") for p in mosquitto["ports"])
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    for listener in (REPO / conf_source).glob("*.conf"):
        text = listener.read_text().replace("/mosquitto/certs", str(certs))
        text, count = re.subn(
            r"^listener 8883$", f"listener {tls_port} 127.0.0.1", text, flags=re.M
        )
        assert count == 1
        (conf_d / listener.name).write_text(text)
    program, plugin = find_program("mosquitto"), find_dynsec_plugin()
    assert program is not None
    assert plugin is not None
    dynsec_file = tmp_path / "dynamic-security.json"
    compose_init(dynsec_file)
    (tmp_path / "data").mkdir()
    config = tmp_path / "mosquitto.conf"
    config.write_text(
        adapt_config(
            (BROKER / "mosquitto.conf").read_text(),
            port=plain_port,
            data_dir=tmp_path / "data",
            dynsec_file=dynsec_file,
            plugin=plugin,
            conf_d=conf_d,
        )
    )
    process = ManagedProcess("mosquitto", [program, "-c", str(config)], tmp_path / "m.log")
    process.start(lambda: port_open("127.0.0.1", tls_port) and port_open("127.0.0.1", plain_port))
    admin = MqttSettings(
        port=plain_port, username="iotmon-admin", password=SECRETS["mqtt_admin_password"]
    )
    clients: list[MqttClient] = []

    def client(**settings: Any) -> MqttClient:
        started = MqttClient(MqttSettings(**settings), client_id=unique("tls-"))
        clients.append(started)
        started.start()
        return started

    try:
        with DynsecSession(admin) as session:
            BrokerAdmin(session).add(device_identity("acme", "env-1"), USERS["acme/env-1"])
        received: queue.Queue[bytes] = queue.Queue()
        ingest = client(port=plain_port, username="iotmon-ingest", password=USERS["iotmon-ingest"])
        ingest.subscribe("iotmon/v1/+/+/telemetry", lambda m: received.put(m.payload))
        assert ingest.wait_subscribed(TIMEOUT)
        device = client(
            host="127.0.0.1",
            port=tls_port,
            username="acme/env-1",
            password=USERS["acme/env-1"],
            tls=True,
            ca_file=ca,
        )
        assert device.wait_connected(TIMEOUT)
        assert device.publish(telemetry_topic("acme", "env-1"), b"over-tls")
        assert received.get(timeout=TIMEOUT) == b"over-tls"
        untrusting = client(
            port=tls_port, username="acme/env-1", password=USERS["acme/env-1"], tls=True
        )
        anonymous = client(port=tls_port, tls=True, ca_file=ca)
        assert not untrusting.wait_connected(2)
        assert not anonymous.wait_connected(0.5)
    finally:
        for started in clients:
            started.stop()
        process.stop()


def test_the_home_assistant_bridge_works_within_its_compose_role(
    broker: Broker, peers: dict[str, Peer], tmp_path: Path
) -> None:
    """The real bridge, logged in as compose's iotmon-homeassistant: its subscriptions are
    granted, the broker takes every config and state it publishes, and it may not write
    outside its discovery prefix or read what other integrations announce elsewhere."""
    registry = RegistrySettings(url=f"sqlite:///{tmp_path / 'registry.db'}")
    with Registry(registry) as opened:
        opened.add_device("acme", "env-1")
    bridge = HomeAssistantBridge(
        BridgeSettings(
            instance_id=unique("b"),
            mqtt=broker.settings("iotmon-homeassistant"),
            registry={"url": registry.url},
            tenant="acme",
            metrics={"enabled": False},
        )
    )
    bridge.start()
    try:
        assert bridge.wait_ready(TIMEOUT)
        client = bridge.client
        assert client is not None
        assert client.refused_subscriptions == []
        ts = ts_from_us(time.time_ns() // 1000 - 1_000_000)
        assert peers["acme/env-1"].publish(telemetry_topic("acme", "env-1"), single(21.0, ts)) == 0
        assert wait_until(lambda: bridge.snapshot().states_published == 1, TIMEOUT)
        assert client.flush(TIMEOUT)
        stats = client.stats()
        assert stats.rejected == 0, "the broker refused a config or state"
        assert stats.completed >= 2  # online, config, state
    finally:
        bridge.stop()
    peer = peers["iotmon-homeassistant"]
    assert peer.publish("homeassistant/sensor/x/y/config", b"") != NOT_AUTHORIZED
    assert peer.publish("zigbee2mqtt/bridge/request/x", b"{}") == NOT_AUTHORIZED
    assert peer.subscribe_code("homeassistant/#") == NOT_AUTHORIZED
